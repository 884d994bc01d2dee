"""adapters.torch.hooks: cuts by forward hooks, for models torch.fx cannot trace."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

import lmn_core
from adapters.torch import TorchFunction, split
from adapters.torch.hooks import hook_split


class KeywordModel(nn.Module):
    """A forward of ``**kwargs``, which torch.fx cannot trace, and a scale read beside the blocks."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(12, 6)
        self.block1 = nn.Sequential(nn.Linear(6, 6), nn.Tanh())
        self.block2 = nn.Sequential(nn.Linear(6, 6), nn.SiLU())
        self.out = nn.Linear(6 * 3, 2)

    def forward(self, tokens: torch.Tensor, **options) -> torch.Tensor:
        hidden = self.block2(self.block1(self.embed(tokens)))
        scale = options.get("scale", 1.0) * torch.ones(tokens.shape[0], 1)  # depends on the shape only
        result = self.out(hidden.flatten(1)) * scale
        return (
            result + options["bias"] * tokens.float().mean(1, keepdim=True) if "bias" in options else result
        )


def tokens(n: int = 10) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 12, size=(n, 3))


def test_fx_cannot_but_hooks_can_cut_it_exactly() -> None:
    model = KeywordModel().eval()
    with pytest.raises(ValueError, match=r"torch\.fx cannot trace it"):
        split(model, "block1")
    body, head = hook_split(model, "block1", tokens(), input="tokens")
    x = torch.as_tensor(tokens(6))
    with torch.no_grad():
        torch.testing.assert_close(head(body(x)), model(x), rtol=0, atol=0)


def test_the_head_is_the_rest_of_the_model() -> None:
    model = KeywordModel().eval()
    body, head = hook_split(model, "block2", tokens(), input="tokens")
    weight, bias = (tensor.detach().double().numpy() for tensor in (model.out.weight, model.out.bias))
    samples = TorchFunction(body)(tokens(12))
    expected = lmn_core.lmn(lambda x: x.reshape(len(x), -1) @ weight.T + bias, samples.astype(np.float64))
    assert expected.lmn == pytest.approx(1.0)  # only the affine `out` is left
    measured = lmn_core.lmn(TorchFunction(head), samples)
    assert measured.lmn == pytest.approx(1.0, abs=1e-6)
    body1, head1 = hook_split(model, "block1", tokens(), input="tokens")
    assert lmn_core.lmn(TorchFunction(head1), TorchFunction(body1)(tokens(12))).lmn > 1.0


def test_refusals() -> None:
    model = KeywordModel()
    with pytest.raises(ValueError, match="reads that input beside the layer"):
        hook_split(model, "block1", tokens(), input="tokens", fixed_inputs={"bias": 1.0})
    with pytest.raises(ValueError, match=r"'1\.inner' is not a cut of Sequential"):
        hook_split(nn.Sequential(model.embed, ResidualTanh()), "1.inner", tokens(), input="input")
    with pytest.raises(ValueError, match=r"'block1\.0' is called 2 times"):
        hook_split(Twice(), "block1.0", tokens(), input="tokens")
    with pytest.raises(ValueError, match="no layer 'block9'"):
        hook_split(model, "block9", tokens(), input="tokens")


class Twice(KeywordModel):
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.block1(self.block1(self.embed(tokens)))
        return self.out(self.block2(hidden).flatten(1))


class ResidualTanh(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x + self.inner(x))


def test_the_head_may_be_called_from_several_threads_at_once() -> None:
    model = KeywordModel().eval()
    body, head = hook_split(model, "block1", tokens(), input="tokens")
    values = [body(torch.as_tensor(tokens(8))) + k for k in range(6)]
    with torch.no_grad():
        expected = [head(value) for value in values]
    results: dict[int, torch.Tensor] = {}

    def call(k: int) -> None:
        for _ in range(20):
            with torch.no_grad():
                results[k] = head(values[k])

    threads = [threading.Thread(target=call, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k in range(6):
        torch.testing.assert_close(results[k], expected[k], rtol=0, atol=0)
