"""The testbeds' models in PyTorch, built so that their probes are module names the adapters cut at.

- :class:`OneLayerTransformer` (Nanda et al. 2023): token and position embedding, one
  attention block, one ReLU MLP block, the unembedding, no LayerNorm. Its children::

      embed     TokenPositionEmbedding: (B, 3) tokens -> (B, 3, d_model)   <- probe "embed"
      attn      LastPositionAttention: the residual stream at "=" after attention,
                (B, d_model)                                                <- probe "attn"
      mlp       ResidualMLP: x + W_out ReLU(W_in x + b_in) + b_out,
                (B, d_model)                                                <- probe "mlp"
        mlp.hidden  ReLU: the MLP's hidden activation (not a cut, see below)
      unembed   Linear(d_model, p, bias=False): the logits

  The logits are read at the last position only, so every block after the embedding
  computes that position alone (the other positions' residual streams feed nothing but
  the keys and values): the logits are those of the full model. ``mlp.hidden`` is not a
  cut, since the residual stream bypasses it; and the map after it (``W_out``, the
  residual sum, the unembedding) is affine, so the LMN there would read 1 by identity 2,
  as it does at ``mlp`` (docs/design.md, section 2.7).
- :func:`mlp`: ``nn.Sequential`` of ``linear1, hidden1, linear2, hidden2, ..., output``
  (ReLU), for sparse parity (one hidden layer) and the digits (two hidden layers, every
  parameter scaled by Omnigrok's alpha).

Each builder draws its initialisation from ``seed`` on the CPU.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn


class TokenPositionEmbedding(nn.Module):
    """``W_E[tokens] + W_pos``: ``(B, n_ctx)`` int tokens -> ``(B, n_ctx, d_model)``."""

    def __init__(self, n_vocab: int, n_ctx: int, d_model: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(n_vocab, d_model)
        self.positions = nn.Parameter(torch.empty(n_ctx, d_model))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The embedded sequence."""
        return self.tokens(tokens) + self.positions


class LastPositionAttention(nn.Module):
    """Multi-head attention read at the last position, plus the residual stream there.

    The last query attends to every position (a causal mask leaves it all of them), so the
    block returns ``x[:, -1] + W_O attention(q = W_Q x[:, -1], k = W_K x, v = W_V x)``.
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model = {d_model} must be a multiple of n_heads = {n_heads}")
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.query = nn.Linear(d_model, d_model, bias=False)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_ctx, d_model)`` -> ``(B, d_model)``."""
        batch, n_ctx, d_model = x.shape
        last = x[:, -1]
        q = self.query(last).reshape(batch, self.n_heads, self.d_head)
        k = self.key(x).reshape(batch, n_ctx, self.n_heads, self.d_head)
        v = self.value(x).reshape(batch, n_ctx, self.n_heads, self.d_head)
        scores = torch.einsum("bhd,bphd->bhp", q, k) / math.sqrt(self.d_head)
        pattern = torch.softmax(scores, dim=-1)
        z = torch.einsum("bhp,bphd->bhd", pattern, v).reshape(batch, d_model)
        return last + self.out(z)


class ResidualMLP(nn.Module):
    """``x + W_out ReLU(W_in x + b_in) + b_out``, with the ReLU a module (``hidden``)."""

    def __init__(self, d_model: int, d_mlp: int) -> None:
        super().__init__()
        self.inner = nn.Linear(d_model, d_mlp)
        self.hidden = nn.ReLU()
        self.outer = nn.Linear(d_mlp, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The residual stream after the MLP."""
        return x + self.outer(self.hidden(self.inner(x)))


class OneLayerTransformer(nn.Sequential):
    """Nanda et al.'s one-layer transformer on ``a b =`` (see the module docstring)."""

    def __init__(self, p: int, d_model: int, n_heads: int, d_mlp: int) -> None:
        super().__init__(
            OrderedDict(
                embed=TokenPositionEmbedding(p + 1, 3, d_model),
                attn=LastPositionAttention(d_model, n_heads),
                mlp=ResidualMLP(d_model, d_mlp),
                unembed=nn.Linear(d_model, p, bias=False),
            )
        )


def _nanda_init(model: OneLayerTransformer, generator: torch.Generator, init_scale: float) -> None:
    """Nanda et al.'s N(0, 1/d_model) weights (N(0, 1/p) for W_U), zero biases, times ``init_scale``."""
    d_model = model.embed.positions.shape[1]
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.zero_()
                continue
            fan = model.unembed.out_features if name.startswith("unembed") else d_model
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * (init_scale / math.sqrt(fan)))


def transformer(
    p: int, d_model: int, n_heads: int, d_mlp: int, *, seed: int, init_scale: float = 1.0
) -> OneLayerTransformer:
    """Nanda et al.'s transformer for addition mod ``p``, its init from ``seed`` times ``init_scale``."""
    model = OneLayerTransformer(p, d_model, n_heads, d_mlp)
    _nanda_init(model, torch.Generator().manual_seed(seed), init_scale)
    return model


def mlp(
    n_inputs: int, width: int, depth: int, n_classes: int, *, seed: int, init_scale: float = 1.0
) -> nn.Sequential:
    """A ReLU MLP of ``depth`` linear layers (``depth - 1`` hidden layers of ``width``).

    Children: ``linear1, hidden1, ..., linear{depth-1}, hidden{depth-1}, output``.
    PyTorch's default initialisation is drawn from ``seed``, then every parameter is
    multiplied by ``init_scale`` (Omnigrok's alpha).
    """
    if depth < 2:
        raise ValueError(f"depth must be at least 2 (one hidden layer), got {depth}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    fan_in = n_inputs
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for index in range(1, depth):
            layers[f"linear{index}"] = nn.Linear(fan_in, width)
            layers[f"hidden{index}"] = nn.ReLU()
            fan_in = width
        layers["output"] = nn.Linear(fan_in, n_classes)
    model = nn.Sequential(layers)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(init_scale)
    return model
