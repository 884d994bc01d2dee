"""adapters.keras.KerasFunction: a faithful, side-effect-free NumPy callable (any Keras backend)."""

import subprocess
import sys

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.keras import KerasFunction
from reference_tasks.model.keras_model import build_model
from reference_tasks.tasks import make_task


def dense_head(d_in, d_hidden, d_out, seed):
    """Dense -> SiLU -> Dense with seeded weights, as a functional model."""
    inputs = keras.Input((d_in,))
    init = keras.initializers.RandomNormal(stddev=0.5, seed=seed)
    hidden = keras.layers.Dense(d_hidden, activation="silu", kernel_initializer=init, bias_initializer=init)
    output = keras.layers.Dense(d_out, kernel_initializer=init, bias_initializer=init)
    return keras.Model(inputs, output(hidden(inputs)))


def numpy_head(model, x):
    """The Dense -> SiLU -> Dense head re-implemented in float64 NumPy."""
    w1, b1, w2, b2 = (np.asarray(w, dtype=np.float64) for w in model.get_weights())
    h = x.astype(np.float64) @ w1 + b1
    h = h / (1.0 + np.exp(-h))
    return h @ w2 + b2


@settings(max_examples=12, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 64),
    st.integers(1, 12),
    st.integers(1, 300),
    st.one_of(st.none(), st.integers(1, 120)),
    st.integers(0, 2**31 - 1),
)
def test_agrees_with_numpy_to_float32_precision(d_in, d_hidden, d_out, n_rows, batch_size, seed):
    model = dense_head(d_in, d_hidden, d_out, seed)
    x = np.random.default_rng(seed).standard_normal((n_rows, d_in)).astype(np.float32)
    y = KerasFunction(model, batch_size=batch_size)(x)
    expected = numpy_head(model, x)
    assert y.shape == (n_rows, d_out) and y.dtype == np.float32
    scale = np.abs(expected).max() + 1.0
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5 * scale)


def float64_dense(seed):
    """A one-Dense float64 functional model with seeded weights."""
    inputs = keras.Input((3,), dtype="float64")
    init = keras.initializers.RandomNormal(stddev=0.5, seed=seed)
    dense = keras.layers.Dense(2, dtype="float64", kernel_initializer=init, bias_initializer=init)
    return keras.Model(inputs, dense(inputs))


def numpy_head_linear(model, x):
    kernel, bias = model.get_weights()
    return x.astype(np.float64) @ kernel + bias


@pytest.mark.x64
@pytest.mark.parametrize("seed", range(5))
def test_float_inputs_are_cast_to_the_models_input_dtype(seed):
    model = float64_dense(seed)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = KerasFunction(model)(x)
    assert y.dtype == np.float64
    expected = numpy_head_linear(model, x)
    # Keras's PyTorch and JAX backends compute float64 products in float32: compare to that precision.
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    assert KerasFunction(dense_head(3, 4, 2, 0))(x.astype(np.float64)).dtype == np.float32


@pytest.mark.float64
@pytest.mark.parametrize("seed", range(5))
def test_a_float64_model_is_computed_in_float64(seed):
    model = float64_dense(seed)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(KerasFunction(model)(x), numpy_head_linear(model, x), rtol=1e-12, atol=1e-14)


@pytest.mark.x64
def test_unbuilt_sequential_takes_its_first_weights_dtype_once_built():
    model = keras.Sequential([keras.layers.Dense(2, dtype="float64")])
    x = np.ones((4, 3), dtype=np.float32)
    assert KerasFunction(model).dtype is None
    assert KerasFunction(model)(x).dtype == np.float64
    assert KerasFunction(model).dtype == "float64"


def test_integer_inputs_stay_integers():
    model = build_model(31, 31, seed=3)
    pairs = make_task("modadd").pairs
    y = KerasFunction(model)(pairs)
    expected = keras.ops.convert_to_numpy(model(pairs.astype(np.int32)))
    assert y.shape == (961, 31) and y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_runs_in_inference_mode_and_touches_no_weight():
    inputs = keras.Input((4,))
    x = keras.layers.BatchNormalization()(inputs)
    x = keras.layers.Dropout(0.5)(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    weights = [np.array(w) for w in model.get_weights()]
    data = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32) * 3.0 + 1.0
    f = KerasFunction(model, batch_size=7)
    first, second = f(data), f(data)
    np.testing.assert_array_equal(first, second)  # no dropout, running statistics
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights(), strict=True))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        KerasFunction(dense_head(2, 2, 2, 0), batch_size=0)
    a, b = keras.Input((2,)), keras.Input((2,))
    two_inputs = keras.Model([a, b], keras.layers.Add()([a, b]))
    with pytest.raises(ValueError, match="one input; 'two' has 2"):
        KerasFunction(keras.Model(two_inputs.inputs, two_inputs.outputs, name="two"))
    inputs = keras.Input((2,))
    two_outputs = keras.Model(inputs, [inputs * 2.0, inputs * 3.0], name="forked")
    with pytest.raises(TypeError, match="one output; 'forked' returned list"):
        KerasFunction(two_outputs)(np.zeros((3, 2), dtype=np.float32))


def test_missing_keras_says_which_extra_to_install():
    code = (
        "import sys\nsys.modules['keras'] = None\n"
        "try:\n    import adapters.keras\nexcept ImportError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'lmn[keras]'" in result.stdout
