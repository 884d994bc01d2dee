"""adapters.keras.layer_lmn and LayerLMN: the LMN from a layer's output to the model's output."""

import keras
import numpy as np
import pytest

import lmn_core
from adapters.keras import LayerLMN, layer_lmn
from reference_tasks.model.keras_model import build_model
from reference_tasks.tasks import make_task


@pytest.fixture(scope="module")
def model64():
    return build_model(31, 31, dtype="float64", seed=6)


@pytest.fixture(scope="module")
def pairs():
    return make_task("modadd").pairs[::24]  # 41 samples


def test_hidden1_agrees_with_a_numpy_head(pairs):
    model = build_model(31, 31, seed=7)
    result = layer_lmn(model, pairs, "hidden1")
    table, w1, b1, w2, b2, w3, b3 = (np.asarray(w, dtype=np.float64) for w in model.get_weights())
    embedded = np.concatenate([table[pairs[:, 0]], table[pairs[:, 1]]], axis=1)
    z = embedded @ w1 + b1
    hidden1 = z / (1 + np.exp(-z))

    def head(h):
        u = h @ w2 + b2
        return (u / (1 + np.exp(-u))) @ w3 + b3

    expected = lmn_core.lmn(head, hidden1)
    assert result.n_samples == 41 and result.n_points == 21 and result.n_outputs == 31
    assert result.lmn == pytest.approx(expected.lmn, rel=1e-4)
    np.testing.assert_allclose(result.connectivity, expected.connectivity, atol=1e-4)


@pytest.mark.float64
def test_last_hidden_layer_has_lmn_one(model64, pairs):
    assert layer_lmn(model64, pairs, "hidden2").lmn == pytest.approx(1.0, abs=1e-9)


@pytest.mark.float64
def test_affine_layers_move_into_the_data(model64, pairs):
    # docs/design.md identity 3: measuring before an affine layer equals measuring after it
    for before, after in [("embedding", "linear1"), ("hidden1", "linear2")]:
        lmn_before = layer_lmn(model64, pairs, before, fold=False).lmn
        assert lmn_before == pytest.approx(layer_lmn(model64, pairs, after, fold=False).lmn, rel=1e-8)
        assert lmn_before > 1.5


def test_lmn_options_and_batch_size_pass_through(pairs):
    model = build_model(31, 31, seed=4)
    result = layer_lmn(model, pairs, "hidden1", n_points=5, batch_size=7)
    assert result.n_points == 5
    assert result.lmn == pytest.approx(layer_lmn(model, pairs, "hidden1", n_points=5).lmn, rel=1e-6)


def test_layer_lmn_follows_training():
    model = build_model(31, 31, seed=1)
    pairs = make_task("modadd").pairs[::48]
    measure = LayerLMN(model, "hidden1")
    before = measure(pairs, n_points=5).lmn
    kernel = model.get_layer("linear1").kernel
    kernel.assign(kernel.numpy() * 3.0)
    after = measure(pairs, n_points=5).lmn
    assert after != before
    assert after == pytest.approx(layer_lmn(model, pairs, "hidden1", n_points=5).lmn, rel=1e-12)


def test_refusals_name_the_layer():
    x = keras.Input((2,))
    h = keras.layers.Dense(4, name="a")(x)
    model = keras.Model(x, keras.layers.Add()([h, keras.layers.Dense(4, name="b")(h)]))
    with pytest.raises(ValueError, match="layer 'b' is not a cut"):
        layer_lmn(model, np.zeros((4, 2), dtype=np.float32), "b")


def test_an_error_inside_the_model_names_the_part_and_the_input():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
    message = (
        r"the body of the cut at layer 'hidden' raised \w+ on an input of shape \(20, 5\) and dtype float32"
    )
    with pytest.raises(lmn_core.FunctionError, match=message) as raised:
        layer_lmn(model, np.zeros((20, 5), dtype=np.float32), "hidden")
    assert raised.value.__cause__ is not None
