"""The reference MLP's shape, written once: its probes, its layers and its weight layout.

The network is ``pairs -> embedding -> linear1 -> act (hidden1) -> linear2 -> act
(hidden2) -> output``, with one embedding table shared by both operands or one per operand,
and one elementwise activation ``act`` of :data:`ACTIVATIONS` (SiLU, the paper's, by default).
Its weights are named as PyTorch's ``state_dict`` names them; snapshots, the NumPy model and
the PyTorch <-> Keras transfer all read :func:`weight_layout`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PROBES = ("embedding", "hidden1", "hidden2")
HEADLINE_PROBE = "hidden1"
DENSE_LAYERS = ("linear1", "linear2", "output")
EMBEDDING_LAYER = "embedding"
# The hidden activations every framework builds; SiLU is the paper's.
ACTIVATIONS = ("silu", "relu", "leaky_relu", "gelu", "tanh")
DEFAULT_ACTIVATION = "silu"
# LeakyReLU's slope below zero in every framework: PyTorch's default (Keras's is 0.2).
LEAKY_RELU_SLOPE = 0.01
# The activations that make the network piecewise linear (docs/design.md, section 1.6).
PIECEWISE_LINEAR_ACTIVATIONS = ("relu", "leaky_relu")


@dataclass(frozen=True)
class WeightSlot:
    """One weight of the reference MLP.

    Attributes
    ----------
    name
        Its PyTorch ``state_dict`` (and snapshot) name.
    layer
        The layer that holds it, named alike in PyTorch and Keras.
    part
        ``"table"`` (an embedding table, ``index`` 0 or 1), ``"weight"`` or ``"bias"``.
    index
        The embedding table's index; 0 otherwise.
    transposed
        Keras stores it transposed (a ``Dense`` kernel is ``(in, out)``, PyTorch's ``(out, in)``).
    """

    name: str
    layer: str
    part: str
    index: int = 0
    transposed: bool = False


def table_name(index: int) -> str:
    """The snapshot name of embedding table ``index``."""
    return f"{EMBEDDING_LAYER}.tables.{index}.weight"


def weight_layout(n_tables: int) -> tuple[WeightSlot, ...]:
    """Every weight of the reference MLP with ``n_tables`` embedding tables (1 shared, or 2)."""
    if n_tables not in (1, 2):
        raise ValueError(f"the reference MLP has 1 or 2 embedding tables, got {n_tables}")
    tables = tuple(WeightSlot(table_name(i), EMBEDDING_LAYER, "table", index=i) for i in range(n_tables))
    dense = tuple(
        WeightSlot(f"{layer}.{part}", layer, part, transposed=part == "weight")
        for layer in DENSE_LAYERS
        for part in ("weight", "bias")
    )
    return tables + dense


def tables_in(names: Iterable[str]) -> int:
    """How many embedding tables a set of weight names holds (1 or 2)."""
    return 2 if table_name(1) in set(names) else 1


def check_activation(activation: str) -> str:
    """``activation`` if it is one of :data:`ACTIVATIONS`; ``ValueError`` naming them otherwise."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; the reference MLP has {', '.join(ACTIVATIONS)}")
    return activation


def is_piecewise_linear(activation: str) -> bool:
    """Whether the reference MLP with ``activation`` is piecewise linear (its regions can be counted)."""
    return check_activation(activation) in PIECEWISE_LINEAR_ACTIVATIONS


def probe_index(probe: str) -> int:
    """Position of ``probe`` in :data:`PROBES`: the number of dense layers before it."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; the reference MLP has probes {', '.join(PROBES)}")
    return PROBES.index(probe)
