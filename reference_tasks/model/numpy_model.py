"""The reference MLP's forward pass in NumPy, from a weight snapshot.

A snapshot (``reference_tasks.runfolder.weights``) holds the weights of
``reference_tasks.model.torch_model.GrokMLP`` by PyTorch parameter name, whatever framework
trained them. :class:`NumpyGrokMLP` runs the same network in the snapshot's dtype::

    pairs -> embedding -> linear1 -> act (hidden1) -> linear2 -> act (hidden2) -> output

with the activation the run was trained with (SiLU unless its config names another).

:meth:`NumpyGrokMLP.activations` gives the samples ``X`` at a probe and
:meth:`NumpyGrokMLP.head` the rest of the network from that probe to the logits, a
NumPy callable for ``lmn_core.lmn``: together they measure the LMN of a checkpoint
without PyTorch or Keras.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import special

from reference_tasks.model.spec import (
    DEFAULT_ACTIVATION,
    DENSE_LAYERS,
    LEAKY_RELU_SLOPE,
    check_activation,
    probe_index,
    table_name,
    tables_in,
    weight_layout,
)


def silu(x: np.ndarray) -> np.ndarray:
    """``x * sigmoid(x)``, computed as ``x / (1 + exp(-x))`` in ``x``'s dtype.

    For very negative ``x``, ``exp(-x)`` overflows to ``inf`` and the result is the
    correct limit ``-0.0``; that overflow is expected and not reported.
    """
    with np.errstate(over="ignore"):
        return x / (1 + np.exp(-x))


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)`` in ``x``'s dtype."""
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def leaky_relu(x: np.ndarray) -> np.ndarray:
    """``x`` above zero, ``LEAKY_RELU_SLOPE * x`` below, in ``x``'s dtype."""
    return np.where(x > 0, x, x * x.dtype.type(LEAKY_RELU_SLOPE))


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact GELU ``x * Φ(x)`` (PyTorch's ``nn.GELU()``, Keras's ``gelu``), in ``x``'s dtype."""
    return x * x.dtype.type(0.5) * (1 + special.erf(x * x.dtype.type(np.sqrt(0.5))))


ACTIVATION_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "silu": silu,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "gelu": gelu,
    "tanh": np.tanh,
}


def _affine(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return x @ weight.T + bias


@dataclass(frozen=True, eq=False)
class NumpyGrokMLP:
    """The reference MLP with fixed weights (PyTorch layout: ``weight`` is ``(out, in)``).

    Attributes
    ----------
    tables : tuple of numpy.ndarray
        One ``(n_tokens, dim)`` embedding table shared by both operands, or one per operand.
    weights, biases : tuple of numpy.ndarray
        ``linear1``, ``linear2``, ``output`` weights ``(out, in)`` and biases ``(out,)``.
    activation : str
        The hidden activation, one of ``model.spec.ACTIVATIONS``.
    """

    tables: tuple[np.ndarray, ...]
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str = DEFAULT_ACTIVATION

    @classmethod
    def from_snapshot(
        cls, snapshot: Mapping[str, np.ndarray], activation: str = DEFAULT_ACTIVATION
    ) -> NumpyGrokMLP:
        """Build the network from a snapshot dict, checking its names and shapes.

        A snapshot holds weights only: ``activation`` is the run's (its config's).

        Raises
        ------
        ValueError
            If a weight is missing, unexpected, or its shape does not chain with the others.
        """
        n_tables = tables_in(snapshot)
        expected = {slot.name for slot in weight_layout(n_tables)}
        missing, unknown = expected - set(snapshot), set(snapshot) - expected
        if missing or unknown:
            raise ValueError(
                "snapshot does not hold the reference MLP: "
                f"missing {sorted(missing)}, unexpected {sorted(unknown)}"
            )
        tables = tuple(np.asarray(snapshot[table_name(i)]) for i in range(n_tables))
        weights = tuple(np.asarray(snapshot[f"{layer}.weight"]) for layer in DENSE_LAYERS)
        biases = tuple(np.asarray(snapshot[f"{layer}.bias"]) for layer in DENSE_LAYERS)
        if any(t.ndim != 2 or t.shape != tables[0].shape for t in tables):
            raise ValueError(
                f"embedding tables must be equal (n_tokens, dim) matrices, got {[t.shape for t in tables]}"
            )
        width = 2 * tables[0].shape[1]
        for layer, weight, bias in zip(DENSE_LAYERS, weights, biases, strict=True):
            if weight.ndim != 2 or weight.shape[1] != width or bias.shape != (weight.shape[0],):
                raise ValueError(
                    f"{layer}: weight {weight.shape} and bias {bias.shape} do not take {width} inputs "
                    "(weight must be (out, in), bias (out,))"
                )
            width = weight.shape[0]
        dtypes = {a.dtype for a in (*tables, *weights, *biases)}
        if len(dtypes) != 1 or next(iter(dtypes)).kind != "f":
            raise ValueError(
                f"snapshot weights must share one floating dtype, got {sorted(map(str, dtypes))}"
            )
        return cls(tables, weights, biases, check_activation(activation))

    def act(self, x: np.ndarray) -> np.ndarray:
        """The hidden activation applied to ``x``."""
        return ACTIVATION_FUNCTIONS[self.activation](x)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the weights and of every activation."""
        return self.tables[0].dtype

    @property
    def n_tokens(self) -> int:
        """Number of operand values (embedding rows)."""
        return int(self.tables[0].shape[0])

    def embed(self, pairs: np.ndarray) -> np.ndarray:
        """``(B, 2)`` integer pairs -> ``(B, 2 * dim)`` concatenated embeddings ``[e(a), e(b)]``."""
        pairs = np.asarray(pairs)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype.kind not in "iu":
            raise ValueError(f"pairs must be (B, 2) integers, got shape {pairs.shape} dtype {pairs.dtype}")
        if pairs.size and (pairs.min() < 0 or pairs.max() >= self.n_tokens):
            raise ValueError(f"pairs must lie in 0..{self.n_tokens - 1}, got {pairs.min()}..{pairs.max()}")
        second = self.tables[-1]
        return np.concatenate([self.tables[0][pairs[:, 0]], second[pairs[:, 1]]], axis=1)

    def activations(self, pairs: np.ndarray, probe: str) -> np.ndarray:
        """The output of ``probe`` (``embedding``, ``hidden1`` or ``hidden2``) for integer pairs."""
        start = probe_index(probe)
        x = self.embed(pairs)
        for index in range(start):
            x = self.act(_affine(x, self.weights[index], self.biases[index]))
        return x

    def head(self, probe: str) -> Callable[[np.ndarray], np.ndarray]:
        """The network from ``probe``'s output to the logits, as ``(M, width) -> (M, n_classes)``.

        The callable computes in the weights' dtype (inputs are cast to it).
        """
        start = probe_index(probe)
        weights, biases, dtype, act = self.weights[start:], self.biases[start:], self.dtype, self.act

        def forward(x: np.ndarray) -> np.ndarray:
            y = np.asarray(x, dtype=dtype)
            for index, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
                y = _affine(y, weight, bias)
                if index < len(weights) - 1:
                    y = act(y)
            return y

        return forward

    def folded_head(self, probe: str) -> tuple[Callable[[np.ndarray], np.ndarray], Callable]:
        """The head from ``probe`` as ``(prefix, rest)``: its leading affine layer, then the rest.

        ``rest(prefix(x)) == head(probe)(x)``.

        Measuring ``rest`` on ``prefix(samples)`` gives the same connectivity matrix as
        ``head(probe)`` on ``samples`` (affine pre-composition moves into the data), at a
        fraction of the cost: the prefix runs once per sample, not once per point.
        """
        start = probe_index(probe)
        weight, bias, dtype = self.weights[start], self.biases[start], self.dtype
        weights, biases, act = self.weights[start + 1 :], self.biases[start + 1 :], self.act

        def prefix(x: np.ndarray) -> np.ndarray:
            return _affine(np.asarray(x, dtype=dtype), weight, bias)

        def rest(y: np.ndarray) -> np.ndarray:
            y = np.asarray(y, dtype=dtype)
            for next_weight, next_bias in zip(weights, biases, strict=True):
                y = _affine(act(y), next_weight, next_bias)
            return y

        return prefix, rest

    def logits(self, pairs: np.ndarray) -> np.ndarray:
        """The logits ``(B, n_classes)`` for integer pairs."""
        return self.head("embedding")(self.embed(pairs))
