"""adapters.keras.LayerProbe: representations, the head's pre-activations and its piecewise-linear form."""

import keras
import numpy as np
import pytest

import lmn_core
from adapters.keras import LayerProbe


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(0).standard_normal((24, 4)).astype("float32")


@pytest.fixture(scope="module")
def sequential():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, name="d1"),
            keras.layers.Activation("silu", name="a1"),
            keras.layers.Dense(6, activation="relu", name="d2"),
            keras.layers.Dense(5, name="d3"),
            keras.layers.ReLU(name="r3"),
            keras.layers.Dense(3, name="out"),
        ]
    )


@pytest.fixture(scope="module")
def functional():
    keras.utils.set_random_seed(1)
    x = keras.Input((4,))
    h = keras.layers.ReLU(name="r1")(keras.layers.Dense(8, name="f1")(x))
    h = keras.layers.Dense(6, activation="relu", name="f2")(h)
    h = keras.layers.Activation("tanh", name="t3")(keras.layers.Dense(5, name="f3")(h))
    return keras.Model(x, keras.layers.Dense(2, name="fo")(h))


def weights(model, name):
    layer = model.get_layer(name)
    return tuple(keras.ops.convert_to_numpy(w).astype(np.float64) for w in (layer.kernel, layer.bias))


def by_hand(model, inputs, name):
    return np.asarray(keras.Model(model.inputs, model.get_layer(name).output).predict_on_batch(inputs))


def test_sequential_representations_and_pre_activations(sequential, inputs):
    given = LayerProbe(sequential, "a1").measure_inputs(inputs, step=3)
    assert given.step == 3 and given.probe == "a1"
    np.testing.assert_allclose(given.representations, by_hand(sequential, inputs, "a1"), rtol=0, atol=1e-6)
    points = given.representations[:10] + 0.25
    first, second = given.pre_activations(points)
    (w2, b2), (w3, b3) = weights(sequential, "d2"), weights(sequential, "d3")
    dense = points @ w2 + b2  # the Dense(activation="relu")'s own pre-activation
    np.testing.assert_allclose(first, dense, rtol=0, atol=1e-5)
    np.testing.assert_allclose(second, np.maximum(dense, 0) @ w3 + b3, rtol=0, atol=1e-5)


def test_functional_representations_and_pre_activations(functional, inputs):
    given = LayerProbe(functional, "r1").measure_inputs(inputs)
    np.testing.assert_allclose(given.representations, by_hand(functional, inputs, "r1"), rtol=0, atol=1e-6)
    points = given.representations + 0.1
    first, second = given.pre_activations(points)
    (w2, b2), (w3, b3) = weights(functional, "f2"), weights(functional, "f3")
    dense = points @ w2 + b2
    np.testing.assert_allclose(first, dense, rtol=0, atol=1e-5)
    np.testing.assert_allclose(second, np.maximum(dense, 0) @ w3 + b3, rtol=0, atol=1e-5)


def test_functional_head_of_an_activation_layer_sees_its_input(functional, inputs):
    given = LayerProbe(functional, "f1").measure_inputs(inputs)
    relu_input, dense, tanh_input = given.pre_activations(given.representations)
    np.testing.assert_allclose(relu_input, by_hand(functional, inputs, "f1"), rtol=0, atol=1e-6)
    assert dense.shape == (24, 6) and tanh_input.shape == (24, 5)


def test_piecewise_linear_head_for_relu_and_none_for_silu_or_tanh(sequential, functional, inputs):
    relu_head = LayerProbe(sequential, "a1").measure_inputs(inputs)
    assert isinstance(relu_head.pwl_head, lmn_core.PiecewiseLinearHead)
    np.testing.assert_allclose(
        relu_head.pwl_head(relu_head.representations), sequential.predict_on_batch(inputs), atol=1e-5
    )
    assert LayerProbe(sequential, "d1").measure_inputs(inputs).pwl_head is None
    assert LayerProbe(functional, "r1").measure_inputs(inputs).pwl_head is None


def test_a_head_with_no_activation_gives_no_pre_activations(sequential, inputs):
    given = LayerProbe(sequential, "r3").measure_inputs(inputs)
    assert given.pre_activations is None
    assert given.supplies() >= {"representations", "pwl_head"}
    assert "pre_activations" not in given.supplies()
