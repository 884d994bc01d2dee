"""adapters.keras.cut_points, the nearest cut points in refusals, and the float64 warning off TensorFlow."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from test_keras_nested import samples, transfer_model

from adapters.keras import LayerLMN, cut_points, layer_lmn, split


def residual_model() -> keras.Model:
    """A functional model with a skip connection around two layers and a nested base in front."""
    keras.utils.set_random_seed(0)
    base_input = keras.Input((4,))
    base_hidden = keras.layers.Dense(6, activation="silu", name="base_1")(base_input)
    base = keras.Model(base_input, keras.layers.Dense(6, name="base_2")(base_hidden), name="base")
    inputs = keras.Input((4,))
    features = base(inputs)
    inner = keras.layers.Dense(6, activation="silu", name="inner")(features)
    inner = keras.layers.Dense(6, name="inner_out")(inner)
    merged = keras.layers.Add(name="add")([features, inner])
    hidden = keras.layers.Activation("tanh", name="act")(merged)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(hidden), name="residual")


def test_cut_points_of_a_functional_model_with_a_nested_base() -> None:
    assert cut_points(residual_model()) == ["base/base_1", "base/base_2", "base", "add", "act", "logits"]


def test_cut_points_of_a_model_with_two_heads() -> None:
    assert cut_points(transfer_model()) == ["pre", "base/block_1", "base/block_2", "base"]


def test_cut_points_of_a_sequential_model() -> None:
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, name="d1"), keras.layers.Activation("silu", name="a1")]
    )
    assert cut_points(model) == ["d1", "a1"]


def test_every_cut_point_cuts_exactly() -> None:
    model, x = residual_model(), samples()
    for layer in cut_points(model):
        body, head = split(model, layer)
        np.testing.assert_array_equal(
            head.predict_on_batch(body.predict_on_batch(x)), model.predict_on_batch(x)
        )


def test_a_refusal_names_the_nearest_cut_points() -> None:
    model = residual_model()
    with pytest.raises(
        ValueError, match=r"depends on more.*nearest cut points: 'base' before it and 'add' after it"
    ):
        split(model, "inner_out")
    with pytest.raises(ValueError, match=r"nearest cut points: 'base' before it \("):
        layer_lmn(transfer_model(), samples(), "classes", output=0)  # nothing after it is a cut


def float64_model() -> keras.Model:
    inputs = keras.Input((4,), dtype="float64")
    hidden = keras.layers.Dense(6, activation="tanh", dtype="float64", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, dtype="float64", name="out")(hidden))


@pytest.mark.x64
def test_a_float64_model_off_tensorflow_is_warned_about_once() -> None:
    model, x = float64_model(), samples().astype(np.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for layer in ("hidden", "hidden", "out"):
            LayerLMN(model, layer, fold=False)(x)
        layer_lmn(residual_model(), samples(), "act")  # float32: nothing to say
    messages = [str(warning.message) for warning in caught if "float64" in str(warning.message)]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        assert messages == []
    else:
        assert len(messages) == 1
        assert f"Keras's {backend} backend" in messages[0] and "in float32" in messages[0]
