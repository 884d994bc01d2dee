"""adapters.keras: the whole measurement on the backend's device (reduction="device").

Keras's PyTorch and JAX backends compute on array-API arrays, so ``lmn_core`` measures on
their device (the ``keras-torch`` and ``keras-jax`` tox environments run these tests on the
CPU, through the same code as on a GPU); TensorFlow's tensors are not array-API arrays, so
that backend measures on the host.
"""

import device_contract as contract
import keras
import numpy as np
import pytest

import lmn_core
from adapters.keras import KerasFunction, LayerLMN, layer_lmn
from reference_tasks.model.keras_model import build_model
from reference_tasks.tasks import make_task

ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
array_api_backend = pytest.mark.skipif(
    ON_TENSORFLOW, reason="TensorFlow measures on the host (test_tensorflow_measures_on_the_host)"
)


def elementwise(function, dtype="float32", width=1):
    """A functional model computing ``function(x)`` elementwise on ``(M, width)`` inputs."""
    inputs = keras.Input((width,), dtype=dtype)
    return keras.Model(inputs, keras.layers.Lambda(function, dtype=dtype)(inputs))


@pytest.fixture(scope="module")
def pairs():
    return make_task("modadd").pairs[::16].astype(np.int32)  # 61 samples


@pytest.mark.skipif(not ON_TENSORFLOW, reason="the TensorFlow backend only")
def test_tensorflow_measures_on_the_host():
    model = elementwise(keras.ops.tanh, width=3)
    assert KerasFunction(model).device_plan() is None
    with pytest.raises(ValueError, match="needs Keras on a backend whose tensors are array-API arrays"):
        KerasFunction(model, reduction="device").device_plan()


@array_api_backend
@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("probe", ["embedding", "hidden1", "hidden2"])
def test_device_and_host_agree(pairs, probe, fold):
    model = build_model(31, 31, seed=1)
    host = layer_lmn(model, pairs, probe, fold=fold, reduction="host")
    device = layer_lmn(model, pairs, probe, fold=fold, reduction="device", block_pairs=97)
    # the points are interpolated in float32 on the device, in float64 rounded once on the host
    np.testing.assert_allclose(device.connectivity, host.connectivity, rtol=0, atol=1e-4)
    assert device.lmn == pytest.approx(host.lmn, rel=1e-5)


@array_api_backend
def test_the_matrix_stays_in_the_backends_arrays(pairs):
    result = layer_lmn(build_model(31, 31, seed=3), pairs, "hidden1", reduction="device")
    assert not isinstance(result.matrix, np.ndarray) and result.connectivity.shape == (61, 61)
    assert str(result.matrix.dtype).endswith("float64")  # float64 sums on every backend (JAX too)


@array_api_backend
def test_the_compiled_rule_gives_the_rules_values():
    """The r² rule compiled (DevicePlan.compile: ``jax.jit`` unless ``compile_rule=False`` on
    JAX, ``torch.compile`` when ``compile_rule=True`` on PyTorch) agrees with the rule run one
    operation at a time, on two measurements of one shape and one of another (so nothing of
    one measurement is kept in the compiled function)."""
    model = elementwise(lambda x: keras.ops.tanh(3.0 * x), width=4)
    compiled = KerasFunction(model, reduction="device", compile_rule=True)
    plain = KerasFunction(model, reduction="device", compile_rule=False)
    by_default = KerasFunction(model, reduction="device").device_plan().compile
    assert compiled.device_plan().compile is not None and plain.device_plan().compile is None
    assert (by_default is not None) == (keras.backend.backend() == "jax")
    rng = np.random.default_rng(5)
    for n_samples in (30, 30, 23):
        X = rng.normal(size=(n_samples, 4)).astype(np.float32)
        fused = lmn_core.connectivity_matrix(compiled, X, block_pairs=64)
        eager = lmn_core.connectivity_matrix(plain, X, block_pairs=64)
        assert fused.min() < 0.9
        np.testing.assert_allclose(fused, eager, rtol=0, atol=1e-13)
    with pytest.raises(TypeError, match="compile_rule must be True, False or None, got 'yes'"):
        KerasFunction(model, compile_rule="yes")
    for compile_rule in (True, False):  # the option reaches the head of a layer's cut
        layer = LayerLMN(
            build_model(31, 31, seed=3), "hidden1", reduction="device", compile_rule=compile_rule
        )
        assert (layer.head.device_plan().compile is not None) == compile_rule


def reducing(function, reduction, width=1):
    return KerasFunction(elementwise(function, width=width), reduction=reduction)


@array_api_backend
def test_near_constant_float32_outputs_count_as_linear():
    contract.check_near_constant_float32_outputs_count_as_linear(reducing, keras.ops.sin)


@array_api_backend
def test_absolute_tolerance_is_applied_on_the_device():
    contract.check_absolute_tolerance_is_applied_where_the_outputs_are(reducing, keras.ops.sin, np.float32)


@array_api_backend
def test_float32_outputs_are_summed_in_float64():
    contract.check_float32_outputs_are_summed_in_float64(reducing, keras.ops.sin)


@array_api_backend
def test_duplicate_samples_are_linearly_connected():
    contract.check_duplicate_samples_are_linearly_connected(reducing, keras.ops.sin)


@array_api_backend
def test_non_finite_interior_output_names_the_pair_and_lambda():
    contract.check_non_finite_interior_output_names_the_pair_and_lambda(reducing, np.float32)


def test_auto_measures_on_the_host_on_a_cpu():
    model = elementwise(keras.ops.tanh, width=3)
    assert KerasFunction(model).device_plan() is None
    assert KerasFunction(model, reduction="host").device_plan() is None
    with pytest.raises(ValueError, match=r"reduction must be one of .*got 'gpu'"):
        KerasFunction(model, reduction="gpu")


@array_api_backend
def test_a_layer_measure_follows_training_on_the_device():
    model = build_model(31, 31, seed=2)
    pairs = make_task("modadd").pairs[::48].astype(np.int32)
    measure = LayerLMN(model, "embedding", reduction="device")
    assert isinstance(measure.head.device_plan(), lmn_core.DevicePlan)
    before = measure(pairs, n_points=5).lmn
    kernel = model.get_layer("linear2").kernel
    kernel.assign(keras.ops.convert_to_numpy(kernel) * 3.0)
    after = measure(pairs, n_points=5).lmn
    assert after != before
    expected = layer_lmn(model, pairs, "embedding", n_points=5, reduction="host").lmn
    assert after == pytest.approx(expected, rel=1e-5)
