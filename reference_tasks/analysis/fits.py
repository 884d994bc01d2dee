"""Straight-line fits and correlations of one metric against another (scipy.stats)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class LinearFit:
    """Least-squares line ``y = slope * x + intercept``, its Pearson ``r`` and ``r2 = r**2``."""

    slope: float
    intercept: float
    r: float

    @property
    def r2(self) -> float:
        """The coefficient of determination of the line (``r**2`` for a least-squares fit)."""
        return self.r**2

    def as_dict(self) -> dict[str, float]:
        """``{"slope", "intercept", "r2"}``."""
        return {"slope": self.slope, "intercept": self.intercept, "r2": self.r2}


def linear_fit(x: Sequence[float], y: Sequence[float]) -> LinearFit | None:
    """Least-squares line of ``y`` against ``x`` (``scipy.stats.linregress``).

    ``None`` with fewer than 3 points or no spread in ``x`` or ``y`` (no line to speak of).

    Raises
    ------
    ValueError
        If ``x`` and ``y`` differ in length.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.size != b.size:
        raise ValueError(f"linear_fit needs equally long sequences, got {a.size} and {b.size}")
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    result = stats.linregress(a, b)
    return LinearFit(float(result.slope), float(result.intercept), float(np.clip(result.rvalue, -1.0, 1.0)))


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation of ``x`` and ``y``; ``None`` where :func:`linear_fit` is ``None``."""
    fit = linear_fit(x, y)
    return None if fit is None else fit.r
