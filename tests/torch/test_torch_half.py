"""Half precision in adapters.torch: float16/bfloat16 outputs reach NumPy, with their own tolerance."""

import numpy as np
import pytest
import torch
from torch import nn

import lmn_core
from adapters.torch import LayerLMN, TorchFunction
from adapters.torch.function import half_precision_rtol

HALF = [torch.float16, torch.bfloat16]


def staircase_model(dtype: torch.dtype) -> nn.Sequential:
    """``x -> 256 + 3 tanh(...)``: in half precision the output moves in steps of the dtype's spacing."""
    torch.manual_seed(0)
    offset = nn.Linear(1, 1)
    with torch.no_grad():
        offset.weight.fill_(3.0)
        offset.bias.fill_(256.0)
    model = nn.Sequential(nn.Linear(2, 8), nn.SiLU(), nn.Linear(8, 1), nn.Tanh(), offset)
    return model.to(dtype)


def inputs() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(24, 2)).astype(np.float32)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_half_outputs_reach_numpy_as_float32_exactly(dtype):
    model = staircase_model(dtype)
    outputs = TorchFunction(model)(inputs())
    assert outputs.dtype == np.float32
    expected = model(torch.from_numpy(inputs()).to(dtype)).detach().float().numpy()
    np.testing.assert_array_equal(outputs, expected)


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_half_rtol_is_32_epsilons_of_the_dtype(dtype):
    assert half_precision_rtol(dtype) == pytest.approx(32 * torch.finfo(dtype).eps)
    assert half_precision_rtol(torch.float32) is None


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_a_half_staircase_is_constant_under_its_own_tolerance(dtype):
    measure = LayerLMN(staircase_model(dtype), "1", fold=False)
    result = measure(inputs())
    np.testing.assert_array_equal(result.connectivity, 1.0)
    # under float32's tolerance the same rounding steps read as a non-linear dimension
    strict = measure(inputs(), const_rtol=32 * float(np.finfo(np.float32).eps))
    assert strict.connectivity.min() < 0.99
    plain = lmn_core.lmn(measure.head, measure.samples(inputs()))
    assert plain.connectivity.min() < 0.99
