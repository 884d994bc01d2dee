"""adapters.torch.TorchFunction: a faithful, side-effect-free NumPy callable."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from adapters.torch import TorchFunction, eval_mode
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.tasks import make_task


def numpy_head(head, x):
    """The head Linear -> SiLU -> Linear re-implemented in float64 NumPy."""
    w1, b1, w2, b2 = (p.detach().double().numpy() for p in head.parameters())
    h = x.astype(np.float64) @ w1.T + b1
    h = h / (1.0 + np.exp(-h))
    return h @ w2.T + b2


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 64),
    st.integers(1, 12),
    st.integers(1, 300),
    st.one_of(st.none(), st.integers(1, 50)),
    st.integers(0, 2**31 - 1),
)
def test_agrees_with_numpy_to_float32_precision(d_in, d_hidden, d_out, n_rows, batch_size, seed):
    torch.manual_seed(seed)
    head = nn.Sequential(nn.Linear(d_in, d_hidden), nn.SiLU(), nn.Linear(d_hidden, d_out))
    x = np.random.default_rng(seed).standard_normal((n_rows, d_in)).astype(np.float32)
    y = TorchFunction(head, batch_size=batch_size)(x)
    expected = numpy_head(head, x)
    assert y.shape == (n_rows, d_out) and y.dtype == np.float32
    scale = np.abs(expected).max() + 1.0
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5 * scale)


def test_float64_inputs_are_cast_to_the_modules_dtype():
    head = nn.Linear(3, 2).double()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = TorchFunction(head)(x)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, head(torch.from_numpy(x).double()).detach().numpy())
    assert TorchFunction(nn.Linear(3, 2))(x.astype(np.float64)).dtype == np.float32


def test_integer_inputs_stay_integers():
    model = GrokMLP(31, 31)
    pairs = make_task("modadd").pairs
    y = TorchFunction(model)(pairs)
    with torch.no_grad():
        assert np.array_equal(y, model(torch.from_numpy(pairs)).numpy())


class Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(4)
        self.drop = nn.Dropout(0.5)
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return self.linear(self.drop(self.norm(x)))


def noisy_in_mixed_modes() -> tuple[Noisy, dict[str, bool], np.ndarray]:
    """A model in training but for its last layer, each submodule's mode, and inputs."""
    torch.manual_seed(5)
    model = Noisy()
    model.train()
    model.linear.eval()
    modes = {name: m.training for name, m in model.named_modules()}
    return model, modes, np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)


def test_restores_every_mode_and_touches_no_parameter_buffer_or_gradient():
    model, modes, x = noisy_in_mixed_modes()
    state = {name: value.clone() for name, value in model.state_dict().items()}
    f = TorchFunction(model)
    first, second = f(x), f(x)
    np.testing.assert_array_equal(first, second)  # eval mode: no dropout, running statistics
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert all(torch.equal(state[name], value) for name, value in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_a_measurement_long_eval_mode_gives_the_calls_outputs_and_restores_every_mode():
    model, modes, x = noisy_in_mixed_modes()
    f = TorchFunction(model)
    alone = f(x)
    with f.evaluating():
        assert not any(m.training for m in model.modules())
        with f.evaluating():  # nested, as a monitor's measurement inside a user's
            np.testing.assert_array_equal(f(x), alone)
        np.testing.assert_array_equal(f(x), alone)
    assert {name: m.training for name, m in model.named_modules()} == modes
    np.testing.assert_array_equal(f(x), alone)  # each call switches modes again
    assert {name: m.training for name, m in model.named_modules()} == modes


def test_mode_is_restored_when_the_module_fails():
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout())
    model.train()
    with pytest.raises(RuntimeError):
        TorchFunction(model)(np.zeros((2, 5), dtype=np.float32))
    assert all(m.training for m in model.modules())
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert all(m.training for m in model.modules())


def test_device_and_batch_size_are_checked():
    with pytest.raises(
        ValueError, match=r"Linear is on cpu, not on meta: move it first with module.to\('meta'\)"
    ):
        TorchFunction(nn.Linear(2, 2), device="meta")
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        TorchFunction(nn.Linear(2, 2), batch_size=0)
    assert TorchFunction(nn.Tanh()).device == torch.device("cpu")
    assert TorchFunction(nn.Linear(2, 2), device="cpu").device == torch.device("cpu")


def test_missing_torch_says_which_extra_to_install():
    code = (
        "import sys\nsys.modules['torch'] = None\n"
        "try:\n    import adapters.torch\nexcept ImportError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'lmn[torch]'" in result.stdout
