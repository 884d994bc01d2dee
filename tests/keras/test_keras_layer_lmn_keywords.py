"""adapters.keras.layer_lmn's explicit keyword parameters: every option and every keyword of lmn_core.lmn."""

import dataclasses
import inspect

import keras
import numpy as np
import pytest

import lmn_core
from adapters.keras import LayerLMN, LayerOptions, layer_lmn
from adapters.options import LMN_KEYWORDS


def test_the_keywords_are_the_options_then_the_cores_with_their_defaults():
    parameters = inspect.signature(layer_lmn).parameters.values()
    given = {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    options = {field.name: field.default for field in dataclasses.fields(LayerOptions)}
    core = {name: inspect.signature(lmn_core.lmn).parameters[name].default for name in LMN_KEYWORDS}
    assert given == {**options, **core} and list(given) == [*options, *LMN_KEYWORDS]


def test_the_keywords_reach_the_cut_and_the_core():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, activation="tanh", name="h"), keras.layers.Dense(2)]
    )
    inputs = np.random.default_rng(0).standard_normal((12, 3)).astype("float32")
    result = layer_lmn(model, inputs, "h", n_points=7, batch_size=5)
    assert result.n_points == 7
    assert result.lmn == pytest.approx(LayerLMN(model, "h", batch_size=5)(inputs, n_points=7).lmn, rel=1e-12)
