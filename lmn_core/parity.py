"""The Fourier gap of sparse parity (Barak et al. 2022; docs/design.md, section 6.5).

On inputs ``x`` in ``{-1, +1}^n`` the label is the parity ``chi_S(x) = prod_{i in S} x_i`` of a
hidden subset ``S`` of size ``k``. A network's scalar output ``f`` has the Fourier coefficient
``f^(A) = mean_x f(x) chi_A(x)`` on a subset ``A``, computed exactly over the sample set. Here it
is normalised by ``sqrt(mean_x f(x)^2)``, so it is the correlation of ``f`` with ``chi_A`` over the
samples (in ``[-1, 1]``; on the whole cube the squares sum to 1), whatever the output's scale.
The Fourier gap is ``|f^(S)|`` minus the largest ``|f^(A)|`` over the other subsets of size
``k``: 1 for ``f = chi_S`` on the whole cube (its coefficient is 1 on ``S`` and 0 elsewhere),
near 0 or below before the network has found ``S``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Subsets whose characters are built at once.
SUBSET_BLOCK = 1024


@dataclass(frozen=True)
class FourierGap:
    """The normalised Fourier coefficients that make the gap.

    Attributes
    ----------
    coefficient : float
        ``f^(S)`` on the true subset.
    largest_other : float
        The largest ``|f^(A)|`` over the other subsets of the same size (0 where there is none).
    largest_other_subset : tuple of int or None
        Where it is.
    gap : float
        ``|coefficient| - largest_other``.
    """

    coefficient: float
    largest_other: float
    largest_other_subset: tuple[int, ...] | None
    gap: float


def _checked(scores: Any, signs: Any, subset: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    x = np.asarray(signs)
    if x.ndim != 2 or x.shape[0] == 0 or not np.isin(x, (-1, 1)).all():
        raise ValueError(
            "the parity inputs must be a matrix (N, n) of -1 and +1 (map bits b to 1 - 2 b), "
            f"got shape {x.shape}"
        )
    f = np.asarray(scores, dtype=np.float64)
    if f.ndim == 2 and f.shape[1] == 1:
        f = f[:, 0]
    if f.shape != (x.shape[0],):
        raise ValueError(
            f"the network's outputs must be one score per sample ({x.shape[0]},), got shape {f.shape}"
        )
    if not np.isfinite(f).all():
        raise ValueError("the network's outputs hold NaN or infinity")
    if not np.any(f):
        raise ValueError("the network's outputs are all zero: their Fourier coefficients are undefined")
    chosen = tuple(sorted(int(i) for i in subset))
    if not chosen or len(set(chosen)) != len(chosen) or chosen[0] < 0 or chosen[-1] >= x.shape[1]:
        raise ValueError(
            f"the parity subset must be distinct indices in 0 … {x.shape[1] - 1}, got {tuple(subset)}"
        )
    return f, x.astype(np.float64), chosen


def fourier_coefficient(scores: Any, signs: Any, subset: Any) -> float:
    """``mean_x f(x) chi_A(x) / sqrt(mean_x f(x)^2)`` over the samples."""
    f, x, chosen = _checked(scores, signs, subset)
    return float(np.mean(f * np.prod(x[:, list(chosen)], axis=1)) / np.sqrt(np.mean(f**2)))


def fourier_gap(scores: Any, signs: Any, subset: Any) -> FourierGap:
    """The Fourier gap of ``f`` (``scores``) on the true ``subset``, over every subset of its size.

    Costs ``C(n, k)`` products over the samples: 9880 for ``n = 40, k = 3``.

    Parameters
    ----------
    scores : array_like
        ``(N,)`` the network's scalar output per sample (for two logits, their difference).
    signs : array_like
        ``(N, n)`` the inputs as -1 and +1.
    subset : sequence of int
        The true subset ``S``.
    """
    f, x, chosen = _checked(scores, signs, subset)
    f = f / np.sqrt(np.mean(f**2))
    best, where = 0.0, None
    candidates = itertools.combinations(range(x.shape[1]), len(chosen))
    for _ in range(math.ceil(math.comb(x.shape[1], len(chosen)) / SUBSET_BLOCK)):
        block = np.array(list(itertools.islice(candidates, SUBSET_BLOCK)), dtype=np.int64)
        coefficients = np.abs(f @ np.prod(x[:, block], axis=2)) / f.size
        coefficients[np.all(block == np.array(chosen), axis=1)] = -1.0
        top = int(np.argmax(coefficients))
        if coefficients[top] > best:
            best, where = float(coefficients[top]), tuple(int(i) for i in block[top])
    coefficient = float(np.mean(f * np.prod(x[:, list(chosen)], axis=1)))
    return FourierGap(coefficient, best, where, abs(coefficient) - best)
