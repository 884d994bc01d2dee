"""adapters.torch.layer_lmn: the LMN from a layer's output to the model's output."""

import numpy as np
import pytest
import torch
from torch import nn

import lmn_core
from adapters.torch import LayerLMN, layer_lmn
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.tasks import make_task


@pytest.fixture(scope="module")
def model64():
    torch.manual_seed(6)
    return GrokMLP(31, 31).double()


@pytest.fixture(scope="module")
def pairs():
    return make_task("modadd").pairs[::24]  # 41 samples


def test_hidden1_agrees_with_a_numpy_head(pairs):
    torch.manual_seed(7)
    model = GrokMLP(31, 31)
    result = layer_lmn(model, pairs, "hidden1")
    params = [p.detach().double().numpy() for p in model.parameters()]
    table, w1, b1, w2, b2, w3, b3 = params
    embedded = np.concatenate([table[pairs[:, 0]], table[pairs[:, 1]]], axis=1)
    z = embedded @ w1.T + b1
    hidden1 = z / (1 + np.exp(-z))

    def head(h):
        u = h @ w2.T + b2
        return (u / (1 + np.exp(-u))) @ w3.T + b3

    expected = lmn_core.lmn(head, hidden1)
    assert result.n_samples == 41 and result.n_points == 21
    assert result.lmn == pytest.approx(expected.lmn, rel=1e-4)
    np.testing.assert_allclose(result.connectivity, expected.connectivity, atol=1e-4)


def test_last_hidden_layer_has_lmn_one(model64, pairs):
    assert layer_lmn(model64, pairs, "hidden2").lmn == pytest.approx(1.0, abs=1e-9)


def test_affine_layers_move_into_the_data(model64, pairs):
    # docs/design.md identity 3: measuring before an affine layer equals measuring after it
    for before, after in [("embedding", "linear1"), ("hidden1", "linear2")]:
        lmn_before = layer_lmn(model64, pairs, before, fold=False).lmn
        assert lmn_before == pytest.approx(layer_lmn(model64, pairs, after, fold=False).lmn, rel=1e-8)
        assert lmn_before > 1.5


def test_lmn_options_and_tensor_inputs_pass_through(model64, pairs):
    result = layer_lmn(model64, torch.from_numpy(pairs), "hidden1", n_points=5, batch_size=7)
    assert result.n_points == 5
    assert result.lmn == pytest.approx(layer_lmn(model64, pairs, "hidden1", n_points=5).lmn, rel=1e-12)


def test_custom_modules_are_checked_with_the_inputs():
    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(2, 2)
            self.b = torch.nn.Tanh()

        def forward(self, x):
            return x + self.b(self.a(x))

    with pytest.raises(ValueError, match="layer 'a' is not a cut of Residual"):
        layer_lmn(Residual(), np.zeros((4, 2), dtype=np.float32), "a")


def test_an_error_inside_the_model_names_the_part_and_the_input():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
    message = r"the body of the cut at layer '1' raised RuntimeError on an input of shape \(20, 5\) and dtype"
    with pytest.raises(lmn_core.FunctionError, match=message) as raised:
        layer_lmn(model, np.zeros((20, 5), dtype=np.float32), "1")
    assert isinstance(raised.value.__cause__, RuntimeError) and "mat1 and mat2" in str(raised.value)
    integers = np.arange(40).reshape(10, 4)
    with pytest.raises(lmn_core.FunctionError, match=r"shape \(10, 4\) and dtype torch.int64: .*same dtype"):
        layer_lmn(model, integers, "1")


def test_the_options_have_one_home():
    from adapters.torch import LayerOptions, LMNMonitor

    torch.manual_seed(4)
    model = GrokMLP(31, 31)
    pairs = make_task("modadd").pairs[::40]
    with pytest.raises(TypeError, match=r"unknown options \['folding'\]; it takes \['output', "):
        LayerLMN(model, "hidden1", folding=False)
    options, rest = LayerOptions.taken_from({"fold": False, "n_points": 5, "reduction": "host"})
    assert options == LayerOptions(fold=False, reduction="host") and rest == {"n_points": 5}
    measure = LayerLMN(model, "hidden1", options, reduction="auto")  # a keyword over the options
    assert measure.options == LayerOptions(fold=False)
    direct = layer_lmn(model, pairs, "hidden1", fold=False, n_points=5)
    assert measure(pairs, n_points=5).lmn == direct.lmn
    monitor = LMNMonitor(model, pairs, "hidden1", every_n_steps=1, fold=False, n_points=5)
    assert monitor.step(0)["hidden1"].lmn == direct.lmn


def test_the_old_schedule_name_of_the_monitor_warns_naming_the_new_one_and_still_works(model64, pairs):
    from adapters.torch import LMNMonitor

    model = model64
    with pytest.warns(
        DeprecationWarning, match=r"LMNMonitor\(every=\.\.\.\) is deprecated.*use every_n_steps="
    ):
        old = LMNMonitor(model, pairs, "hidden1", every=3, n_points=5)
    new = LMNMonitor(model, pairs, "hidden1", every_n_steps=3, n_points=5)
    assert old.every_n_steps == new.every_n_steps == 3
    with pytest.warns(DeprecationWarning, match=r"LMNMonitor\.every is deprecated.*use \.every_n_steps"):
        assert old.every == 3
    assert [old.is_due(step) for step in range(7)] == [new.is_due(step) for step in range(7)]
    assert [step for step in range(7) if new.is_due(step)] == [0, 3, 6]
    assert old.step(3)["hidden1"].lmn == new.step(3)["hidden1"].lmn
    refused = r"every_n_steps= and its old name every=: give every_n_steps= only"
    with pytest.raises(TypeError, match=refused), pytest.warns(DeprecationWarning):
        LMNMonitor(model, pairs, "hidden1", every=3, every_n_steps=5)
