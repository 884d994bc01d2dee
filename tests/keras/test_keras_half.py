"""Half precision in adapters.keras: float16/bfloat16 outputs reach NumPy, with their own tolerance."""

import keras
import ml_dtypes
import numpy as np
import pytest

import lmn_core
from adapters.keras import KerasFunction, LayerLMN
from adapters.keras.function import half_const_rtol

HALF = ["float16", "bfloat16"]


def staircase_model(dtype: str) -> keras.Model:
    """``x -> 256 + 3 tanh(...)``: in half precision the output moves in steps of the dtype's spacing."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(8, activation="silu", name="hidden", dtype=dtype)(inputs)
    squashed = keras.layers.Dense(1, activation="tanh", name="squash", dtype=dtype)(hidden)
    offset = keras.layers.Dense(1, name="offset", dtype=dtype)
    model = keras.Model(inputs, offset(squashed))
    offset.set_weights([np.full((1, 1), 3.0), np.full((1,), 256.0)])
    return model


def samples() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(24, 2)).astype(np.float32)


@pytest.mark.parametrize("dtype", HALF)
def test_half_outputs_reach_numpy_as_float32_exactly(dtype):
    model = staircase_model(dtype)
    outputs = KerasFunction(model)(samples())
    assert outputs.dtype == np.float32
    expected = keras.ops.convert_to_numpy(keras.ops.cast(model(samples()), "float32"))
    np.testing.assert_array_equal(outputs, expected)


@pytest.mark.parametrize("dtype", HALF)
def test_half_rtol_is_32_epsilons_of_the_dtype(dtype):
    assert half_const_rtol(dtype) == pytest.approx(32 * float(ml_dtypes.finfo(dtype).eps))
    assert half_const_rtol("float32") is None


@pytest.mark.parametrize("dtype", HALF)
def test_a_half_staircase_is_constant_under_its_own_tolerance(dtype):
    measure = LayerLMN(staircase_model(dtype), "hidden", fold=False)
    np.testing.assert_array_equal(measure(samples()).connectivity, 1.0)
    # under float32's tolerance the same rounding steps read as a non-linear dimension
    strict = measure(samples(), const_rtol=32 * float(np.finfo(np.float32).eps))
    assert strict.connectivity.min() < 0.99
    plain = lmn_core.lmn(measure.head, measure.body(samples()))
    assert plain.connectivity.min() < 0.99
