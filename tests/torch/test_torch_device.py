"""adapters.torch: the whole measurement on the module's device (reduction="device").

On the CPU, ``reduction="device"`` runs the same code as on a GPU (lmn_core.device, on torch
tensors); the tests marked ``gpu`` run it on CUDA.
"""

import device_contract as contract
import numpy as np
import pytest
import torch
from torch import nn

import lmn_core
from adapters.torch import LayerLMN, TorchFunction, layer_lmn
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.tasks import make_task


class Elementwise(nn.Module):
    """A module computing ``function(x)`` elementwise."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        return self.function(x)


@pytest.fixture(scope="module")
def pairs():
    return make_task("modadd").pairs[::16]  # 61 samples


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("probe", ["embedding", "hidden1", "hidden2"])
def test_device_and_host_reductions_agree_in_float64(pairs, probe, fold):
    torch.manual_seed(0)
    model = GrokMLP(31, 31).double()
    host = layer_lmn(model, pairs, probe, fold=fold, reduction="host")
    device = layer_lmn(model, pairs, probe, fold=fold, reduction="device", block_pairs=97)
    np.testing.assert_allclose(device.connectivity, host.connectivity, rtol=0, atol=1e-6)
    assert np.abs(device.connectivity - host.connectivity).max() < 1e-12  # in fact to float64 rounding
    assert device.lmn == pytest.approx(host.lmn, rel=1e-6)


def test_device_and_host_reductions_agree_in_float32(pairs):
    torch.manual_seed(1)
    model = GrokMLP(31, 31)
    host = layer_lmn(model, pairs, "hidden1", reduction="host")
    device = layer_lmn(model, pairs, "hidden1", reduction="device")
    # the points are interpolated in float32 on the device, in float64 rounded once on the host
    np.testing.assert_allclose(device.connectivity, host.connectivity, rtol=0, atol=1e-4)
    assert device.lmn == pytest.approx(host.lmn, rel=1e-5)


def test_image_shaped_samples_are_interpolated_per_element():
    torch.manual_seed(2)
    module = nn.Sequential(nn.Tanh(), nn.Flatten(), nn.Linear(12, 3)).double()
    X = np.random.default_rng(2).normal(size=(9, 3, 2, 2)) * 2.0
    host = lmn_core.connectivity_matrix(TorchFunction(module, reduction="host"), X)
    device = lmn_core.connectivity_matrix(TorchFunction(module, reduction="device", batch_size=7), X)
    np.testing.assert_allclose(device, host, rtol=0, atol=1e-12)
    assert host.min() < 0.9


def reducing(function, reduction, width=1):
    return TorchFunction(Elementwise(function), reduction=reduction)


def test_near_constant_float32_outputs_count_as_linear():
    contract.check_near_constant_float32_outputs_count_as_linear(reducing, torch.sin)


def test_absolute_tolerance_is_applied_on_the_device():
    contract.check_absolute_tolerance_is_applied_where_the_outputs_are(reducing, torch.sin, np.float64)


def test_float32_outputs_are_summed_in_float64():
    contract.check_float32_outputs_are_summed_in_float64(reducing, torch.sin)


def test_duplicate_samples_are_linearly_connected():
    contract.check_duplicate_samples_are_linearly_connected(reducing, torch.sin)


def test_non_finite_interior_output_names_the_pair_and_lambda():
    contract.check_non_finite_interior_output_names_the_pair_and_lambda(reducing, np.float64)


def test_overflowing_outputs_are_an_error_not_a_nan():
    module = Elementwise(lambda x: 1e200 * x**2)
    with pytest.raises(ValueError, match="too large to square"):
        lmn_core.lmn(TorchFunction(module, dtype=torch.float64, reduction="device"), np.array([[0.0], [1.0]]))


def test_a_changing_output_width_is_named():
    module = Elementwise(lambda x: x if x.shape[0] <= 4 else x[:, :1])
    with pytest.raises(
        ValueError, match=r"1 output dimensions \(interior points from pair 0\) but 4 for f\(X\)"
    ):
        lmn_core.lmn(TorchFunction(module, reduction="device"), np.eye(4, dtype=np.float32), block_pairs=1)


def test_auto_measures_on_the_host_on_a_cpu():
    module = nn.Linear(3, 3)
    assert TorchFunction(module).device_plan() is None
    assert TorchFunction(module, reduction="host").device_plan() is None
    plan = TorchFunction(module, reduction="device").device_plan()
    assert isinstance(plan, lmn_core.DevicePlan) and plan.free_memory is None
    with pytest.raises(ValueError, match=r"reduction must be one of .*got 'gpu'"):
        TorchFunction(module, reduction="gpu")


def test_auto_measures_on_the_device_off_the_cpu():
    # a module on PyTorch's "meta" device stands in for one on an accelerator
    module = nn.Linear(3, 3, device="meta")
    function = TorchFunction(module)
    assert isinstance(function.device_plan(), lmn_core.DevicePlan)
    assert function.batch_size is None  # the whole block at once, off the CPU
    assert TorchFunction(module, reduction="host").device_plan() is None


def test_the_device_path_keeps_everything_on_the_device_until_asked(pairs):
    torch.manual_seed(5)
    model = GrokMLP(31, 31).double()
    result = layer_lmn(model, pairs, "hidden1", reduction="device")
    assert isinstance(result.matrix, torch.Tensor) and result.matrix.dtype == torch.float64
    assert isinstance(result.connectivity, np.ndarray)
    np.testing.assert_array_equal(result.connectivity, result.matrix.numpy())
    assert result.connectivity is result.connectivity  # copied once


def test_the_device_path_restores_modes_and_touches_no_gradient(pairs):
    torch.manual_seed(3)
    model = GrokMLP(31, 31)
    model.train()
    model.hidden1.eval()
    modes = {name: module.training for name, module in model.named_modules()}
    state = {name: value.clone() for name, value in model.state_dict().items()}
    layer_lmn(model, pairs[:10], "embedding", reduction="device")
    assert {name: module.training for name, module in model.named_modules()} == modes
    assert all(torch.equal(value, state[name]) for name, value in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())


def test_the_rule_compiled_by_torch_compile_gives_the_rules_values(pairs):
    """``compile_rule=True`` runs the r² rule through ``torch.compile`` (DevicePlan.compile):
    the same L as the rule run one operation at a time, on two measurements of one model and
    one after training changed it."""
    torch.manual_seed(6)
    model = GrokMLP(31, 31)
    plain = LayerLMN(model, "hidden1", reduction="device")
    compiled = LayerLMN(model, "hidden1", reduction="device", compile_rule=True)
    assert compiled.head.device_plan().compile is torch.compile and plain.head.device_plan().compile is None
    with pytest.raises(TypeError, match="compile_rule must be True, False or None, got 1"):
        LayerLMN(model, "hidden1", compile_rule=1)
    for _ in range(2):
        fused, eager = compiled(pairs, block_pairs=500), plain(pairs, block_pairs=500)
        assert fused.connectivity.min() < 0.9
        np.testing.assert_allclose(fused.connectivity, eager.connectivity, rtol=0, atol=1e-13)
        with torch.no_grad():
            model.output.weight.mul_(3.0)
