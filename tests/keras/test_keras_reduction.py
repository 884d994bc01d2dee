"""adapters.keras: pairs reduced to L with keras.ops inside one inference step (reduction="device")."""

import keras
import numpy as np
import pytest
import reduction_contract as contract

import lmn_core
from adapters.keras import KerasFunction, LayerLMN, layer_lmn
from adapters.keras_reduction import KerasPairReduction
from reference_tasks.model.keras_model import build_model
from reference_tasks.tasks import make_task


def elementwise(function, dtype="float32", width=1):
    """A functional model computing ``function(x)`` elementwise on ``(M, width)`` inputs."""
    inputs = keras.Input((width,), dtype=dtype)
    return keras.Model(inputs, keras.layers.Lambda(function, dtype=dtype)(inputs))


@pytest.fixture(scope="module")
def pairs():
    return make_task("modadd").pairs[::16].astype(np.int32)  # 61 samples


@pytest.mark.float64
@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("probe", ["embedding", "hidden1", "hidden2"])
def test_device_and_host_reductions_agree_in_float64(pairs, probe, fold):
    model = build_model(31, 31, dtype="float64", seed=0)
    host = layer_lmn(model, pairs, probe, fold=fold, reduction="host")
    device = layer_lmn(model, pairs, probe, fold=fold, reduction="device", block_pairs=97)
    np.testing.assert_allclose(device.connectivity, host.connectivity, rtol=0, atol=1e-6)
    assert np.abs(device.connectivity - host.connectivity).max() < 1e-12  # in fact to float64 rounding
    assert device.lmn == pytest.approx(host.lmn, rel=1e-6)


def test_device_and_host_reductions_agree_in_float32(pairs):
    model = build_model(31, 31, seed=1)
    host = layer_lmn(model, pairs, "hidden1", reduction="host")
    device = layer_lmn(model, pairs, "hidden1", reduction="device", batch_size=100)
    # the points are interpolated in float32 in the backend, in float64 rounded once on the host
    np.testing.assert_allclose(device.connectivity, host.connectivity, rtol=0, atol=1e-4)
    assert device.lmn == pytest.approx(host.lmn, rel=1e-5)


def reducing(function, reduction, width=1):
    return KerasFunction(elementwise(function, width=width), reduction=reduction)


def test_near_constant_float32_outputs_count_as_linear():
    contract.check_near_constant_float32_outputs_count_as_linear(reducing, keras.ops.sin)


def test_absolute_tolerance_is_applied_in_the_backend():
    contract.check_absolute_tolerance_is_applied_where_the_outputs_are(reducing, keras.ops.sin, np.float32)


def test_duplicate_samples_are_linearly_connected():
    contract.check_duplicate_samples_are_linearly_connected(reducing, keras.ops.sin)


def test_non_finite_interior_output_names_the_pair_and_lambda():
    contract.check_non_finite_interior_output_names_the_pair_and_lambda(reducing, np.float32)


def test_auto_reduces_on_the_host_on_a_cpu():
    task = lmn_core.ReductionTask(np.eye(3, dtype=np.float32), np.eye(3), 21, 1e-6, 0.0)
    model = elementwise(keras.ops.tanh, width=3)
    assert KerasFunction(model).pair_reduction(task) is None
    assert KerasFunction(model, reduction="host").pair_reduction(task) is None
    assert isinstance(KerasFunction(model, reduction="device").pair_reduction(task), KerasPairReduction)
    with pytest.raises(ValueError, match=r"reduction must be one of .*got 'gpu'"):
        KerasFunction(model, reduction="gpu")


def test_the_reducer_is_reused_and_follows_training():
    model = build_model(31, 31, seed=2)
    pairs = make_task("modadd").pairs[::48].astype(np.int32)
    measure = LayerLMN(model, "embedding", reduction="device")
    before = measure(pairs, n_points=5).lmn
    reducer = measure.head._reducer
    kernel = model.get_layer("linear2").kernel
    kernel.assign(kernel.numpy() * 3.0)
    after = measure(pairs, n_points=5).lmn
    assert measure.head._reducer is reducer  # same shapes: the compiled step is kept
    assert after != before
    expected = layer_lmn(model, pairs, "embedding", n_points=5, reduction="host").lmn
    assert after == pytest.approx(expected, rel=1e-5)
    measure(pairs, n_points=7)
    assert measure.head._reducer is not reducer  # another λ grid: a new reducer
