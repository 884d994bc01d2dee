"""The paper's MLP in PyTorch, built so that its probe points are module names.

``GrokMLP`` is an ``nn.Sequential`` whose children are, in order::

    embedding  PairEmbedding: (B, 2) int pairs -> (B, 2 * embedding_dim), [e(a), e(b)]
    linear1    Linear(2 * embedding_dim, hidden_dim)
    hidden1    SiLU   <- probe "hidden1": the first hidden layer's activations
    linear2    Linear(hidden_dim, hidden_dim)
    hidden2    SiLU   <- probe "hidden2"

(SiLU, or the activation named by ``activation``: ReLU, LeakyReLU, GELU or Tanh)
    output     Linear(hidden_dim, n_classes): the logits

so ``adapters.torch.split(model, "embedding" | "hidden1" | "hidden2")`` cuts it at the
probe points of ``model.spec``. :func:`build_model` draws PyTorch's default initialisation
from a seed, times an initialisation scale.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from reference_tasks.model.spec import DEFAULT_ACTIVATION, LEAKY_RELU_SLOPE, check_activation

ACTIVATION_MODULES = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(LEAKY_RELU_SLOPE),
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}


class PairEmbedding(nn.Module):
    """Embed both operands of ``(a, b)`` pairs and concatenate the two vectors.

    Parameters
    ----------
    n_tokens : int
        Number of operand values.
    dim : int
        Embedding dimension of one operand.
    shared : bool
        One table for both operands (the default) or one table per operand.
    """

    def __init__(self, n_tokens: int, dim: int, *, shared: bool = True) -> None:
        super().__init__()
        self.shared = shared
        self.tables = nn.ModuleList([nn.Embedding(n_tokens, dim) for _ in range(1 if shared else 2)])

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """``(B, 2)`` integer pairs -> ``(B, 2 * dim)`` concatenated embeddings."""
        if self.shared:
            return self.tables[0](pairs).flatten(1)
        return torch.cat([self.tables[0](pairs[:, 0]), self.tables[1](pairs[:, 1])], dim=1)


class GrokMLP(nn.Sequential):
    """Embedding -> Linear -> act -> Linear -> act -> Linear (docs/design.md, section 2); SiLU by default."""

    def __init__(
        self,
        n_tokens: int,
        n_classes: int,
        *,
        embedding_dim: int = 32,
        hidden_dim: int = 100,
        shared_embedding: bool = True,
        activation: str = DEFAULT_ACTIVATION,
    ) -> None:
        activation_module = ACTIVATION_MODULES[check_activation(activation)]
        super().__init__(
            OrderedDict(
                embedding=PairEmbedding(n_tokens, embedding_dim, shared=shared_embedding),
                linear1=nn.Linear(2 * embedding_dim, hidden_dim),
                hidden1=activation_module(),
                linear2=nn.Linear(hidden_dim, hidden_dim),
                hidden2=activation_module(),
                output=nn.Linear(hidden_dim, n_classes),
            )
        )


def build_model(
    n_tokens: int,
    n_classes: int,
    *,
    embedding_dim: int = 32,
    hidden_dim: int = 100,
    shared_embedding: bool = True,
    init_scale: float = 1.0,
    activation: str = DEFAULT_ACTIVATION,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> GrokMLP:
    """A :class:`GrokMLP` with PyTorch's default initial weights from ``seed``, times ``init_scale``.

    The weights are drawn on the CPU in a forked random state, so they do not depend on
    the device and PyTorch's global random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GrokMLP(
            n_tokens,
            n_classes,
            embedding_dim=embedding_dim,
            hidden_dim=hidden_dim,
            shared_embedding=shared_embedding,
            activation=activation,
        )
    if init_scale != 1.0:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(init_scale)
    return model.to(dtype=dtype)
