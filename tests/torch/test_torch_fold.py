"""Affine prefix folding in adapters.torch: the head's leading nn.Linear layers move into the samples."""

import numpy as np
import pytest
import torch
from fold_checks import check_folding_keeps_the_connectivity_matrix
from torch import nn

import lmn_core
from adapters.torch import layer_lmn, split
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.tasks import make_task

PROBES = ("embedding", "hidden1", "hidden2")


@pytest.fixture(scope="module")
def pairs():
    return make_task("modadd").pairs[::16]  # 61 samples


def grok_mlp(dtype: torch.dtype, seed: int) -> GrokMLP:
    torch.manual_seed(seed)
    return GrokMLP(31, 31).to(dtype)


@pytest.mark.parametrize(
    ("probe", "body_ends", "head_starts"),
    [("embedding", "linear1", "hidden1"), ("hidden1", "linear2", "hidden2"), ("hidden2", "output", None)],
)
def test_folding_moves_the_next_linear_into_the_body(pairs, probe, body_ends, head_starts):
    model = grok_mlp(torch.float32, 0)
    modules = dict(model.named_children())
    body, head = split(model, probe, fold=True)
    assert body[-1] is modules[body_ends]
    assert (head[0] is modules[head_starts]) if head_starts else len(head) == 0
    x = torch.from_numpy(pairs)
    with torch.no_grad():
        assert torch.equal(head(body(x)), model(x))


@pytest.mark.parametrize("probe", PROBES)
def test_folding_keeps_the_connectivity_matrix_in_float64(pairs, probe):
    check_folding_keeps_the_connectivity_matrix(layer_lmn, grok_mlp(torch.float64, 1), pairs, probe, 1e-12)


@pytest.mark.parametrize("probe", PROBES)
def test_folding_keeps_the_connectivity_matrix_to_float32_rounding(pairs, probe):
    # unfolded, the affine layer runs on the interpolated float32 points: a segment whose outputs
    # barely move gets an r² off by float32 rounding relative to that movement
    check_folding_keeps_the_connectivity_matrix(layer_lmn, grok_mlp(torch.float32, 2), pairs, probe, 1e-3)


def test_a_head_of_one_linear_folds_to_the_identity(pairs):
    model = grok_mlp(torch.float64, 3)
    result = layer_lmn(model, pairs, "hidden2")
    assert result.lmn == pytest.approx(1.0, abs=1e-12)
    assert result.connectivity.min() > 1.0 - 1e-13
    assert result.n_outputs == 31  # measured on the logits, through the identity


def test_consecutive_linears_all_fold():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 6), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 2)
    )
    body, head = split(model, "1", fold=True)
    assert [type(module) for module in head] == [nn.Tanh, nn.Linear]
    assert len(body) == 4
    x = np.random.default_rng(4).normal(size=(20, 3))
    plain = layer_lmn(model.double(), x, "1", fold=False)
    np.testing.assert_allclose(layer_lmn(model, x, "1").connectivity, plain.connectivity, atol=1e-12)


def test_only_a_plain_linear_folds():
    class Scaled(nn.Linear):
        def forward(self, x):
            return torch.tanh(super().forward(x))

    hooked = nn.Linear(4, 4)
    hooked.register_forward_hook(lambda module, args, output: output**2)
    for first in (Scaled(4, 4), hooked, nn.Tanh()):
        model = nn.Sequential(nn.Linear(2, 4), first, nn.Linear(4, 2))
        body, head = split(model, "0", fold=True)
        assert len(body) == 1 and head[0] is first


def test_the_folded_head_is_measured_honestly_on_the_logits(pairs):
    # the identity head runs in the model's float64 (an empty module has no dtype of its own)
    model = grok_mlp(torch.float64, 6)
    with torch.no_grad():
        logits = model(torch.from_numpy(pairs)).numpy()
    expected = lmn_core.lmn(lambda x: x, logits)
    result = layer_lmn(model, pairs, "hidden2")
    np.testing.assert_array_equal(result.connectivity, expected.connectivity)
