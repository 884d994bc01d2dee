"""reference_tasks.model.crossframework: equal weights give equal logits and equal LMN in both frameworks."""

import keras
import numpy as np
import pytest
import torch

from adapters.keras import layer_lmn as keras_layer_lmn
from adapters.keras import layer_regions as keras_layer_regions
from adapters.torch import layer_lmn as torch_layer_lmn
from adapters.torch import layer_regions as torch_layer_regions
from reference_tasks.model import torch_model as torch_models
from reference_tasks.model.crossframework import keras_to_torch, torch_to_keras
from reference_tasks.model.keras_model import build_model
from reference_tasks.model.spec import ACTIVATIONS, PIECEWISE_LINEAR_ACTIVATIONS, PROBES
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.tasks import make_task

TASKS = {"modadd": (31, 31), "s4": (24, 24), "xor": (32, 32)}


def torch_model(task, dtype, shared=True, seed=0):
    torch.manual_seed(seed)
    return GrokMLP(*TASKS[task], shared_embedding=shared).to(getattr(torch, dtype))


def torch_logits(model, pairs):
    with torch.no_grad():
        return model(torch.from_numpy(pairs)).numpy()


@pytest.mark.parametrize(("task", "shared"), [("modadd", True), ("s4", False), ("xor", True)])
def test_equal_weights_give_logits_equal_to_1e_5(task, shared):
    source = torch_model(task, "float32", shared)
    target = build_model(*TASKS[task], shared_embedding=shared, seed=1)
    torch_to_keras(source, target)
    pairs = make_task(task).pairs
    expected = torch_logits(source, pairs)
    np.testing.assert_allclose(target.predict_on_batch(pairs), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_gives_equal_logits_from_equal_weights(activation):
    source = torch_models.build_model(24, 24, activation=activation, init_scale=2.0, seed=3)
    target = build_model(24, 24, activation=activation, seed=4)
    torch_to_keras(source, target)
    pairs = make_task("s4").pairs
    expected = torch_logits(source, pairs)
    np.testing.assert_allclose(target.predict_on_batch(pairs), expected, rtol=1e-5, atol=1e-5)
    other = torch_models.build_model(
        24, 24, activation="tanh" if activation != "tanh" else "relu", init_scale=2.0, seed=3
    )
    assert not np.allclose(expected, torch_logits(other, pairs), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("activation", PIECEWISE_LINEAR_ACTIVATIONS)
def test_equal_weights_give_equal_linear_regions(activation):
    source = torch_models.build_model(32, 32, activation=activation, init_scale=2.0, seed=5)
    target = build_model(32, 32, activation=activation, seed=6)
    torch_to_keras(source, target)
    pairs = make_task("xor").pairs[::11]
    for probe in ("embedding", "hidden1"):
        expected, got = torch_layer_regions(source, pairs, probe), keras_layer_regions(target, pairs, probe)
        assert got.n_regions == expected.n_regions, probe
        assert got.pieces_mean == pytest.approx(expected.pieces_mean, abs=0.02), probe


def test_round_trip_restores_every_parameter_exactly():
    source = torch_model("modadd", "float32", shared=False)
    middle = build_model(31, 31, shared_embedding=False, seed=2)
    torch_to_keras(source, middle)
    back = torch_model("modadd", "float32", shared=False, seed=9)
    keras_to_torch(middle, back)
    for (name, a), b in zip(source.named_parameters(), back.parameters(), strict=True):
        assert torch.equal(a, b), name
    keras_model = build_model(31, 31, seed=3)
    keras_to_torch(keras_model, torch_model("modadd", "float32"))
    pairs = make_task("modadd").pairs
    copied = torch_model("modadd", "float32", seed=4)
    keras_to_torch(keras_model, copied)
    np.testing.assert_allclose(torch_logits(copied, pairs), keras_model.predict_on_batch(pairs), atol=1e-5)


@pytest.mark.float64
@pytest.mark.parametrize("task", ["modadd", "xor"])
def test_lmn_at_every_probe_agrees_to_1e_6_in_float64(task):
    source = torch_model(task, "float64", seed=5)
    target = build_model(*TASKS[task], dtype="float64", seed=6)
    torch_to_keras(source, target)
    pairs = make_task(task).pairs[::13]
    for probe in PROBES:
        expected = torch_layer_lmn(source, pairs, probe)
        result = keras_layer_lmn(target, pairs, probe)
        assert result.lmn == pytest.approx(expected.lmn, rel=1e-6), probe
        np.testing.assert_allclose(result.connectivity, expected.connectivity, atol=1e-9)


def test_lmn_agrees_to_1e_6_in_float32_where_it_is_not_rounding_noise():
    # hidden2's head is affine: its LMN is 1 plus float32 rounding, which differs between
    # the frameworks (about 1e-5); the other probes agree to 1e-6 in float32 too
    source = torch_model("modadd", "float32", seed=7)
    target = build_model(31, 31, seed=8)
    torch_to_keras(source, target)
    pairs = make_task("modadd").pairs[::13]
    for probe in ("embedding", "hidden1"):
        expected = torch_layer_lmn(source, pairs, probe).lmn
        assert keras_layer_lmn(target, pairs, probe).lmn == pytest.approx(expected, rel=1e-6), probe
    assert keras_layer_lmn(target, pairs, "hidden2").lmn == pytest.approx(1.0, abs=1e-3)


def test_models_of_different_shapes_are_refused():
    with pytest.raises(
        ValueError, match=r"shared table on the other\?\): missing \['embedding.tables.1.weight'\]"
    ):
        torch_to_keras(torch_model("modadd", "float32"), build_model(31, 31, shared_embedding=False))
    with pytest.raises(
        ValueError,
        match=r"output.weight: the Keras weight has shape \(31, 100\) in PyTorch layout, the PyTorch "
        r"parameter \(24, 100\)",
    ):
        keras_to_torch(build_model(24, 31), torch_model("s4", "float32"))
    assert keras.backend.backend() in {"tensorflow", "torch", "jax"}
