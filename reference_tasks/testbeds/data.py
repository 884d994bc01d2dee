"""The testbeds' datasets as seeded NumPy arrays, framework-free (docs/design.md, section 2.7).

- :func:`modular_addition_sequences`: every ``a b =`` token sequence modulo ``p``, labelled
  by its sum (Nanda et al. 2023).
- :func:`sparse_parity`: random ±1 bit vectors labelled by the parity of a hidden subset of
  ``k`` bits (Barak et al. 2022, Merrill et al. 2023).
- :func:`digits`: scikit-learn's bundled 8x8 handwritten digits (no download), pixels in
  ``[0, 1]`` (Omnigrok's MNIST, reduced to what ships with scikit-learn).

Each returns every sample as a :class:`reference_tasks.tasks.TaskData`; a run's seed splits
them (``reference_tasks.experiment``). The same arguments give the same arrays on every
machine (``numpy.random.default_rng``).
"""

from __future__ import annotations

import numpy as np

from reference_tasks.tasks import TaskData


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def modular_addition_sequences(p: int = 59) -> TaskData:
    """Addition modulo ``p`` as token sequences ``a b =``, labelled ``(a + b) mod p``.

    Tokens ``0 .. p-1`` are the operands and token ``p`` is ``=``, so the vocabulary has
    ``p + 1`` tokens and the ``p`` classes are the sums. All ``p²`` sequences are listed in
    row-major order of ``(a, b)``; a run's seed splits them.
    """
    _check_int("p", p, 2)
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    tokens = np.stack([a.ravel(), b.ravel(), np.full(p * p, p)], axis=1).astype(np.int64)
    return TaskData(tokens, (tokens[:, 0] + tokens[:, 1]) % p, n_classes=p, n_tokens=p + 1)


def parity_subset(n_bits: int, k: int, data_seed: int) -> np.ndarray:
    """The hidden subset of ``k`` of the ``n_bits`` bit positions, sorted, drawn from ``data_seed``."""
    return np.sort(np.random.default_rng([data_seed, 2]).choice(n_bits, size=k, replace=False))


def sparse_parity(n_bits: int = 40, k: int = 3, n_samples: int = 2000, data_seed: int = 0) -> TaskData:
    """Random ±1 bit vectors labelled by the parity of a hidden subset of ``k`` bits.

    A sample is ``n_bits`` independent uniform ±1 values (float32); its label is 1 when an
    odd number of the subset's bits are -1 (their product is -1), else 0. The subset
    (:func:`parity_subset`) and the ``n_samples`` vectors follow from ``data_seed``; a run's
    seed splits them into training and test vectors (distinct vectors: among ``2**40``
    drawn a few thousand times, a repeat is all but impossible).
    """
    _check_int("n_bits", n_bits, 1)
    _check_int("k", k, 1)
    _check_int("n_samples", n_samples, 2)
    if k > n_bits:
        raise ValueError(f"k must be at most n_bits = {n_bits}, got {k}")
    subset = parity_subset(n_bits, k, data_seed)
    rng = np.random.default_rng([data_seed, 3])
    bits = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(n_samples, n_bits))
    labels = (np.prod(bits[:, subset], axis=1) < 0).astype(np.int64)
    return TaskData(bits, labels, n_classes=2)


def digits() -> TaskData:
    """scikit-learn's 1797 bundled 8x8 handwritten digits: 64 pixels in ``[0, 1]``, ten classes.

    Raises
    ------
    ImportError
        If scikit-learn is not installed (the ``report`` extra installs it).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError("the digits testbed needs scikit-learn: pip install 'lmn[report]'") from error

    bunch = load_digits()
    return TaskData((bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64), n_classes=10)
