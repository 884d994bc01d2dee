"""The paper's algorithmic tasks as NumPy arrays, shared by every framework's trainer.

Each task lists all ``(a, b) -> label`` pairs. Operands and labels are integer
token indices in ``0 .. n_tokens - 1`` (``n_classes`` for labels).

- ``modadd`` (option ``p``, default 31): ``label = (a + b) mod p``.
- ``s4`` (option ``n``, default 4): composition in the symmetric group ``S_n``.
  Element ``k`` is the ``k``-th permutation of ``itertools.permutations(range(n))``
  (lexicographic order, so element 0 is the identity). A permutation ``g`` is the
  tuple ``(g(0), ..., g(n-1))``; the pair ``(a, b)`` stands for ``(g, h)`` with
  ``g = element a``, ``h = element b``, and its label is the index of ``g ∘ h``,
  ``(g ∘ h)(i) = g(h(i))`` (``h`` first, then ``g``).
- ``xor`` (option ``n_bits``, default 5): ``label = a XOR b`` on ``n_bits``-bit integers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

DEFAULT_TRAIN_FRACTION = 0.8


@dataclass(frozen=True, eq=False)
class TaskData:
    """Every sample of a task and its label (the data of ``reference_tasks.experiment.Task``).

    Attributes
    ----------
    inputs : numpy.ndarray
        ``(N, *s)`` samples of any shape: token indices (integers, then ``n_tokens`` is
        given) or features (floats). The paper's tasks hold ``(N, 2)`` int64 operand pairs
        ``(a, b)`` in row-major order of ``(a, b)``.
    labels : numpy.ndarray
        ``(N,)`` integer class indices in ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes (the model's output dimension).
    n_tokens : int or None
        For token inputs, the number of distinct token values (an embedding table's size);
        ``None`` for feature inputs.
    """

    inputs: np.ndarray
    labels: np.ndarray
    n_classes: int
    n_tokens: int | None = None

    @property
    def n_samples(self) -> int:
        """``N``, the number of samples."""
        return int(self.inputs.shape[0])

    @property
    def pairs(self) -> np.ndarray:
        """The inputs of the paper's tasks by their name there: ``(N, 2)`` operand pairs."""
        return self.inputs


def _all_pairs(n_tokens: int) -> np.ndarray:
    a, b = np.meshgrid(np.arange(n_tokens), np.arange(n_tokens), indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1).astype(np.int64)


def _check_positive(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def modular_addition(p: int = 31) -> TaskData:
    """Addition modulo ``p``: ``(a, b) -> (a + b) mod p`` for ``a, b`` in ``0 .. p-1``."""
    _check_positive("p", p, 2)
    pairs = _all_pairs(p)
    return TaskData(pairs, (pairs[:, 0] + pairs[:, 1]) % p, n_classes=p, n_tokens=p)


def symmetric_group(n: int = 4) -> np.ndarray:
    """Elements of ``S_n`` as rows ``(g(0), ..., g(n-1))``, in lexicographic order.

    Returns
    -------
    numpy.ndarray
        ``(n!, n)`` int64; row ``k`` is the element with index ``k`` in the ``s4`` task.
    """
    _check_positive("n", n, 1)
    return np.array(list(itertools.permutations(range(n))), dtype=np.int64).reshape(-1, n)


def permutation_composition(n: int = 4) -> TaskData:
    """Composition in ``S_n``: ``(g, h) -> g ∘ h`` with ``(g ∘ h)(i) = g(h(i))``."""
    elements = symmetric_group(n)
    size = math.factorial(n)
    index = {tuple(row): k for k, row in enumerate(elements.tolist())}
    pairs = _all_pairs(size)
    composed = np.take_along_axis(elements[pairs[:, 0]], elements[pairs[:, 1]], axis=1)
    labels = np.array([index[tuple(row)] for row in composed.tolist()], dtype=np.int64)
    return TaskData(pairs, labels, n_classes=size, n_tokens=size)


def bitwise_xor(n_bits: int = 5) -> TaskData:
    """Bitwise XOR of ``n_bits``-bit integers: ``(a, b) -> a ^ b``."""
    _check_positive("n_bits", n_bits, 1)
    size = 2**n_bits
    pairs = _all_pairs(size)
    return TaskData(pairs, pairs[:, 0] ^ pairs[:, 1], n_classes=size, n_tokens=size)


#: The paper's tasks' data by name (``reference_tasks.experiment.paper`` makes them tasks).
TASKS: dict[str, Callable[..., TaskData]] = {
    "modadd": modular_addition,
    "s4": permutation_composition,
    "xor": bitwise_xor,
}


def make_task(name: str, **options: int) -> TaskData:
    """The data of one of the paper's tasks by name (``modadd``, ``s4``, ``xor``) with its options."""
    try:
        factory = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
    return factory(**options)


def train_test_split(
    n_samples: int, *, train_fraction: float = DEFAULT_TRAIN_FRACTION, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of ``range(n_samples)`` into train and test indices.

    ``round(train_fraction * n_samples)`` indices go to train; both parts are sorted
    and non-empty. The same ``seed`` gives the same split on every machine
    (``numpy.random.default_rng``).

    Returns
    -------
    tuple of numpy.ndarray
        ``(train_indices, test_indices)``, int64, disjoint, covering ``range(n_samples)``.
    """
    n_train = round(train_fraction * n_samples)
    if not 0 < n_train < n_samples:
        raise ValueError(f"train_fraction {train_fraction} of {n_samples} samples leaves train or test empty")
    order = np.random.default_rng(seed).permutation(n_samples)
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def lmn_sample_indices(n_samples: int, *, size: int | None, seed: int) -> np.ndarray:
    """Indices of the samples the LMN is measured on: all (``size`` ``None`` or at least
    ``n_samples``), or ``size`` of them, seeded by the run's ``seed`` and sorted."""
    if size is None or size >= n_samples:
        return np.arange(n_samples)
    rng = np.random.default_rng([seed, 1])
    return np.sort(rng.choice(n_samples, size=size, replace=False))
