"""Keras models that are not one flat graph: a base model nested in a transfer-learning
model, cut by a path, and models with several outputs measured through ``output=``."""

import keras
import numpy as np
import pytest

import lmn_core
from adapters.keras import KerasFunction, layer_lmn, split


def transfer_model() -> keras.Model:
    """A base model (two Dense layers) inside an outer model with a preprocessing layer and two heads."""
    keras.utils.set_random_seed(0)
    base_input = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="silu", name="block_1")(base_input)
    hidden = keras.layers.Dense(8, activation="tanh", name="block_2")(hidden)
    base = keras.Model(base_input, hidden, name="base")
    inputs = keras.Input((4,))
    features = base(keras.layers.Dense(6, name="pre")(inputs))
    classes = keras.layers.Dense(3, name="classes")(keras.layers.Activation("silu", name="act")(features))
    boxes = keras.layers.Dense(2, name="boxes")(features)
    return keras.Model(inputs, [classes, boxes], name="detector")


def samples(n: int = 20) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)


def predict(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(value) for value in keras.tree.flatten(model.predict_on_batch(x))]


@pytest.mark.parametrize("path", ["base/block_1", "base.block_1", "base/block_2"])
def test_a_layer_of_a_nested_model_is_cut_by_its_path_exactly(path):
    model = transfer_model()
    body, head = split(model, path)
    x = samples()
    cut = body.predict_on_batch(x)
    for got, expected in zip(predict(head, cut), predict(model, x), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_a_path_through_something_that_is_not_a_nested_model_is_refused():
    with pytest.raises(ValueError, match="no layer 'pre/kernel'"):
        split(transfer_model(), "pre/kernel")
    with pytest.raises(ValueError, match="no layer 'block_9' in 'base'"):
        split(transfer_model(), "base/block_9")


def test_several_outputs_need_output_and_each_is_measured_as_its_own_head():
    model = transfer_model()
    x = samples()
    with pytest.raises(ValueError, match=r"returns 2 outputs: pick the one to measure with output="):
        layer_lmn(model, x, "base/block_1")
    boxes = layer_lmn(model, x, "base/block_1", output=1, fold=False)
    by_name = layer_lmn(model, x, "base/block_1", output="boxes", fold=False)
    assert boxes.n_outputs == 2 and by_name.lmn == boxes.lmn
    classes = layer_lmn(model, x, "base/block_1", output=lambda outputs: outputs[0], fold=False)
    assert classes.n_outputs == 3
    with pytest.raises(ValueError, match=r"output='scores' is not an output of .*'classes', 'boxes'"):
        layer_lmn(model, x, "base/block_1", output="scores")


def test_the_lmn_through_the_nested_cut_equals_the_lmn_of_a_hand_built_head():
    model = transfer_model()
    x = samples()
    base = model.get_layer("base")
    samples_at_cut = keras.ops.convert_to_numpy(base.get_layer("block_1")(model.get_layer("pre")(x)))
    start = keras.Input((8,))
    features = base.get_layer("block_2")(start)
    hand_built = keras.Model(start, model.get_layer("classes")(model.get_layer("act")(features)))
    expected = lmn_core.lmn(KerasFunction(hand_built), samples_at_cut)
    result = layer_lmn(model, x, "base/block_1", output=0, fold=False)
    # the samples come from eager layer calls here and a compiled predict there: float32 rounding
    np.testing.assert_allclose(result.connectivity, expected.connectivity, rtol=0, atol=1e-5)
    assert result.lmn == pytest.approx(expected.lmn, rel=1e-5)


def test_the_old_name_of_narrow_output_warns_and_still_works():
    import adapters.keras

    with pytest.warns(DeprecationWarning, match=r"select_output is renamed adapters\.keras\.narrow_output"):
        old = adapters.keras.select_output
    assert old is adapters.keras.narrow_output
    with pytest.raises(AttributeError, match="has no attribute 'select_outputs'"):
        adapters.keras.select_outputs  # noqa: B018
