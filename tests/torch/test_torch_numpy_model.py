"""The NumPy forward pass of a snapshot equals PyTorch's GrokMLP, activations and LMN."""

import numpy as np
import pytest
import torch

from adapters.torch import layer_lmn, split
from reference_tasks.model.numpy_model import NumpyGrokMLP
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.tasks import make_task

PROBES = ("embedding", "hidden1", "hidden2")


def model_and_snapshot(seed, *, shared=True, dtype=torch.float32):
    torch.manual_seed(seed)
    model = GrokMLP(31, 31, shared_embedding=shared).to(dtype)
    with torch.no_grad():  # move the weights away from their small initial scale
        for parameter in model.parameters():
            parameter.mul_(3.0)
    snapshot = {name: value.detach().numpy().copy() for name, value in model.state_dict().items()}
    return model, snapshot


@pytest.fixture(scope="module")
def pairs():
    return make_task("modadd").pairs[::7]


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_activations_and_heads_match_torch(pairs, shared, dtype):
    model, snapshot = model_and_snapshot(11, shared=shared, dtype=dtype)
    numpy_model = NumpyGrokMLP.from_snapshot(snapshot)
    inputs = torch.from_numpy(pairs)
    with torch.no_grad():
        np.testing.assert_allclose(numpy_model.logits(pairs), model(inputs).numpy(), rtol=1e-5, atol=1e-5)
        for probe in PROBES:
            body, head = split(model, probe)
            x = body(inputs)
            ours = numpy_model.activations(pairs, probe)
            assert ours.dtype == x.numpy().dtype
            np.testing.assert_allclose(ours, x.numpy(), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(numpy_model.head(probe)(ours), head(x).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lmn_from_a_snapshot_equals_the_torch_adapter(pairs, dtype):
    import lmn_core

    model, snapshot = model_and_snapshot(12, dtype=dtype)
    numpy_model = NumpyGrokMLP.from_snapshot(snapshot)
    subset = pairs[:60]
    expected = layer_lmn(model, subset, "hidden1")
    ours = lmn_core.lmn(numpy_model.head("hidden1"), numpy_model.activations(subset, "hidden1"))
    assert ours.lmn == pytest.approx(expected.lmn, rel=1e-4)
    np.testing.assert_allclose(ours.connectivity, expected.connectivity, atol=1e-4)
