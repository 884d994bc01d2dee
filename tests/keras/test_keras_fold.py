"""Affine prefix folding in adapters.keras: the head's leading linear Dense layers move into the samples."""

import keras
import numpy as np
import pytest
from fold_checks import check_folding_keeps_the_connectivity_matrix

import lmn_core
from adapters.keras import LayerLMN, LMNCallback, layer_lmn, split
from reference_tasks.model.keras_model import build_model
from reference_tasks.tasks import make_task

PROBES = ("embedding", "hidden1", "hidden2")


def run(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.fixture(scope="module")
def pairs():
    return make_task("modadd").pairs[::16].astype(np.int32)  # 61 samples


@pytest.mark.parametrize(
    ("probe", "body_ends", "head_starts"),
    [("embedding", "linear1", "hidden1"), ("hidden1", "linear2", "hidden2"), ("hidden2", "output", None)],
)
def test_folding_moves_the_next_dense_into_the_body(pairs, probe, body_ends, head_starts):
    model = build_model(31, 31, seed=0)
    body, head = split(model, probe, fold=True)
    assert body.layers[-1].name == body_ends
    head_layers = [layer.name for layer in head.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert head_layers[:1] == ([head_starts] if head_starts else [])
    np.testing.assert_array_equal(run(head, run(body, pairs)), run(model, pairs))


@pytest.mark.float64
@pytest.mark.parametrize("probe", PROBES)
def test_folding_keeps_the_connectivity_matrix_in_float64(pairs, probe):
    model = build_model(31, 31, dtype="float64", seed=1)
    check_folding_keeps_the_connectivity_matrix(layer_lmn, model, pairs, probe, 1e-12)


@pytest.mark.parametrize("probe", PROBES)
def test_folding_keeps_the_connectivity_matrix_to_float32_rounding(pairs, probe):
    # unfolded, the affine layer runs on the interpolated float32 points: a segment whose outputs
    # barely move gets an r² off by float32 rounding relative to that movement
    check_folding_keeps_the_connectivity_matrix(layer_lmn, build_model(31, 31, seed=2), pairs, probe, 1e-3)


@pytest.mark.float64
def test_a_head_of_one_dense_is_measured_honestly_through_the_identity(pairs):
    model = build_model(31, 31, dtype="float64", seed=3)
    result = layer_lmn(model, pairs, "hidden2")
    expected = lmn_core.lmn(lambda x: x, run(model, pairs))
    assert result.lmn == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(result.connectivity, expected.connectivity, rtol=0, atol=1e-15)


def test_sequential_models_fold_every_leading_linear_dense():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(8, name="a"),
            keras.layers.Activation("tanh", name="act"),
            keras.layers.Dense(6, name="b"),
            keras.layers.Dense(4, activation="linear", name="c"),
            keras.layers.Dense(2, activation="tanh", name="d"),
            keras.layers.Dense(2, name="e"),
        ]
    )
    body, head = split(model, "act", fold=True)
    assert [layer.name for layer in body.layers][-2:] == ["b", "c"]
    assert [layer.name for layer in head.layers] == ["d", "e"]
    x = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    np.testing.assert_array_equal(run(head, run(body, x)), run(model, x))
    body, identity = split(model, "d", fold=True)
    assert body.layers[-1].name == "e"
    y = run(body, x)
    np.testing.assert_array_equal(run(identity, y), y)


def test_a_dense_that_is_not_alone_after_the_cut_is_not_folded():
    inputs = keras.Input((3,))
    cut = keras.layers.Activation("tanh", name="cut")(keras.layers.Dense(4, name="a")(inputs))
    left = keras.layers.Dense(2, name="left")(cut)
    right = keras.layers.Dense(2, name="right")(cut)
    model = keras.Model(inputs, keras.layers.Add(name="join")([left, right]))
    assert split(model, "cut", fold=True)[0].layers[-1].name == "cut"
    skip = keras.Model(inputs, keras.layers.Concatenate()([keras.layers.Dense(2, name="d")(cut), cut]))
    assert split(skip, "cut", fold=True)[0].layers[-1].name == "cut"
    shared = keras.layers.Dense(4, name="shared")
    twice = keras.Model(inputs, shared(keras.layers.Activation("tanh", name="act")(shared(cut))))
    assert split(twice, "cut", fold=True)[0].layers[-1].name == "cut"


def test_layer_lmn_and_callback_fold_by_default(pairs):
    model = build_model(31, 31, seed=4)
    assert LayerLMN(model, "hidden1").body.model.layers[-1].name == "linear2"
    assert LayerLMN(model, "hidden1", fold=False).body.model.layers[-1].name == "hidden1"
    callback = LMNCallback(pairs, ["hidden1"], fold=False, reduction="host")
    callback.set_model(model)
    callback.on_train_begin()
    assert callback._measures["hidden1"].body.model.layers[-1].name == "hidden1"
    assert callback._measures["hidden1"].head.reduction == "host"
