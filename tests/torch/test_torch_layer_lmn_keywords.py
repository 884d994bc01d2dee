"""layer_lmn's explicit keyword parameters: every option and every keyword of lmn_core.lmn, their defaults."""

import dataclasses
import inspect

import numpy as np
import pytest
import torch
from torch import nn

import lmn_core
from adapters import transformer_lens
from adapters.options import LMN_KEYWORDS
from adapters.torch import LayerLMN, LayerOptions, layer_lmn


def defaults(function):
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def lmn_defaults():
    return {name: inspect.signature(lmn_core.lmn).parameters[name].default for name in LMN_KEYWORDS}


def test_the_keywords_are_the_options_then_the_cores_with_their_defaults():
    options = {field.name: field.default for field in dataclasses.fields(LayerOptions)}
    assert defaults(layer_lmn) == {**options, **lmn_defaults()}
    assert list(defaults(layer_lmn)) == [*options, *LMN_KEYWORDS]
    assert defaults(transformer_lens.layer_lmn) == {"options": None, **lmn_defaults()}
    assert LMN_KEYWORDS[:2] == ("n_points", "memory_budget") and "threads" in LMN_KEYWORDS


def test_the_keywords_reach_the_cut_and_the_core():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    inputs = torch.randn(12, 3, dtype=torch.float64)
    result = layer_lmn(model, inputs, "1", n_points=7, fold=False, batch_size=5)
    expected = LayerLMN(model, "1", fold=False, batch_size=5, example_inputs=inputs)(inputs, n_points=7)
    assert result.n_points == 7 and result.lmn == pytest.approx(expected.lmn, rel=1e-12)
    assert np.isfinite(result.lmn)
    with pytest.raises(TypeError, match="n_point"):
        layer_lmn(model, inputs, "1", n_point=7)
