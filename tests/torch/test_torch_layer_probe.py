"""adapters.torch.LayerProbe: representations, the head's pre-activations and its piecewise-linear form."""

import numpy as np
import pytest
import torch
from torch import nn

import lmn_core
from adapters.torch import LayerProbe


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 8), nn.SiLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)
    ).double()


@pytest.fixture(scope="module")
def inputs():
    return torch.randn(30, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def by_hand(model, x, upto):
    with torch.no_grad():
        for module in list(model)[: upto + 1]:
            x = module(x)
    return x


def test_representations_are_the_layers_output(model, inputs):
    probe = LayerProbe(model, "1", example_inputs=inputs)
    given = probe.measure_inputs(inputs, step=7)
    assert given.step == 7 and given.probe == "1"
    np.testing.assert_array_equal(given.representations, by_hand(model, inputs, 1).numpy())


def test_pre_activations_are_the_inputs_of_the_heads_activations(model, inputs):
    given = LayerProbe(model, "1", example_inputs=inputs).measure_inputs(inputs)
    points = given.representations[:9] + 0.5
    first, second = given.pre_activations(points)
    with torch.no_grad():
        u = model[2](torch.from_numpy(points))
        v = model[4](torch.relu(u))
    np.testing.assert_allclose(first, u.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(second, v.numpy(), rtol=0, atol=1e-12)


def test_a_relu_head_has_a_piecewise_linear_form_and_a_silu_head_none(model, inputs):
    relu_head = LayerProbe(model, "1", example_inputs=inputs).measure_inputs(inputs)
    silu_head = LayerProbe(model, "0", example_inputs=inputs).measure_inputs(inputs)
    assert isinstance(relu_head.pwl_head, lmn_core.PiecewiseLinearHead)
    points = relu_head.representations
    np.testing.assert_allclose(relu_head.pwl_head(points), by_hand(model, inputs, 6).numpy(), atol=1e-12)
    assert silu_head.pwl_head is None
    # the SiLU's own input is the first pre-activation of the head after layer "0"
    silu_input, *_ = silu_head.pre_activations(silu_head.representations)
    np.testing.assert_allclose(silu_input, by_hand(model, inputs, 0).numpy(), atol=1e-12)


def test_a_head_with_no_activation_gives_no_pre_activations(model, inputs):
    given = LayerProbe(model, "5", example_inputs=inputs).measure_inputs(inputs)
    assert given.pre_activations is None
    assert "pre_activations" not in given.supplies()


class Reused(nn.Module):
    """One ReLU module called twice, the second time after the cut."""

    def __init__(self):
        super().__init__()
        self.first, self.second, self.out = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)
        self.relu = nn.ReLU()

    def forward(self, x):
        hidden = self.first(x)
        return self.out(self.relu(self.second(self.relu(hidden))))


def test_a_hook_cut_counts_only_the_calls_after_the_cut_and_each_call_of_a_reused_module():
    torch.manual_seed(3)
    model = Reused().double()
    x = torch.randn(12, 3, dtype=torch.float64)
    probe = LayerProbe(model, "first", example_inputs=x, cut_by=("hooks",))
    given = probe.measure_inputs(x)
    points = given.representations
    caught = given.pre_activations(points)
    with torch.no_grad():
        u = torch.from_numpy(points)
        v = model.second(torch.relu(u))
    assert len(caught) == 2
    np.testing.assert_allclose(caught[0], u.numpy(), atol=1e-12)
    np.testing.assert_allclose(caught[1], v.numpy(), atol=1e-12)


def test_local_complexity_of_a_probe_is_the_cores_on_the_same_pre_activations(model, inputs):
    given = LayerProbe(model, "1", example_inputs=inputs).measure_inputs(inputs)
    w2, b2 = (p.detach().numpy() for p in model[2].parameters())
    w4, b4 = (p.detach().numpy() for p in model[4].parameters())

    def pre_activations(points):
        u = points @ w2.T + b2
        return [u, np.maximum(u, 0) @ w4.T + b4]

    expected = lmn_core.local_complexity(given.representations, pre_activations)
    assert lmn_core.compute_measure(lmn_core.progress_builtin.local_complexity, given) == pytest.approx(
        float(expected)
    )
