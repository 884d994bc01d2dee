"""Progress measures compared with the LMN over seeds (docs/design.md, section 6.7).

Pure functions of series of numbers; reading them from run folders is the caller's part.
For one task, each seed gives a :class:`SeedSeries`: its test loss and every measure's column
(``lmn_hidden1``, ``l2``, ``effective_rank_hidden1``, ...) against the step, and its
memorization and generalization steps (section 2.4). Per column:

- :func:`compression_r2`: the R² of the least-squares line of the column against the test
  loss over the compression (generalizing) phase, both ends included, on the steps where
  both were measured (the paper's statistic, :func:`reference_tasks.analysis.fits.linear_fit`);
- over seeds, the paired difference ``R²(LMN) - R²(measure)`` with its bootstrap interval and
  Wilcoxon p-value (:func:`reference_tasks.analysis.claims.paired_difference`), and a verdict
  under the claims' rule (an interval clear of zero and ``p < SIGNIFICANCE``);
- :func:`lead`: the generalization step minus the first step at or after memorization where
  the column has gone half of the way from its memorization value to its final value;
  positive when it moves before the test accuracy reaches 100%. Median and range over seeds.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from reference_tasks.analysis.claims import (
    SIGNIFICANCE,
    PairedDifference,
    aggregate_values,
    paired_difference,
)
from reference_tasks.analysis.fits import linear_fit

#: The column every measure is compared with.
REFERENCE_COLUMN = "lmn_hidden1"


@dataclass(frozen=True, eq=False)
class Series:
    """A quantity against the step; NaN where it was not measured."""

    steps: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        steps = np.asarray(self.steps, dtype=np.int64)
        values = np.asarray(self.values, dtype=np.float64)
        if steps.ndim != 1 or steps.shape != values.shape:
            raise ValueError(f"a series needs as many steps as values, got {steps.shape} and {values.shape}")
        if np.any(np.diff(steps) <= 0):
            raise ValueError("a series' steps must increase")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "values", values)

    def measured(self) -> Series:
        """The points with a finite value."""
        keep = np.isfinite(self.values)
        return Series(self.steps[keep], self.values[keep])


@dataclass(frozen=True, eq=False)
class SeedSeries:
    """One seed of a task: its test loss, its measures' columns and its phase steps."""

    seed: int
    test_loss: Series
    columns: Mapping[str, Series]
    memorization_step: int | None
    generalization_step: int | None

    def __post_init__(self) -> None:
        for name, series in {"test_loss": self.test_loss, **self.columns}.items():
            if not isinstance(series, Series):
                raise TypeError(f"seed {self.seed}: {name!r} must be a Series, got {type(series).__name__}")


def _compression_points(run: SeedSeries, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``(test loss, column)`` on the compression phase's steps where both were measured."""
    if run.memorization_step is None or column not in run.columns:
        return np.empty(0), np.empty(0)
    stop = math.inf if run.generalization_step is None else run.generalization_step
    series, loss = run.columns[column].measured(), run.test_loss.measured()
    steps, in_series, in_loss = np.intersect1d(series.steps, loss.steps, return_indices=True)
    keep = (steps >= run.memorization_step) & (steps <= stop)
    return loss.values[in_loss][keep], series.values[in_series][keep]


def compression_r2(run: SeedSeries, column: str) -> float | None:
    """R² of ``column`` against the test loss over the compression phase.

    ``None`` with fewer than 3 common points or no spread (:func:`linear_fit`).
    """
    loss, values = _compression_points(run, column)
    fit = linear_fit(loss, values)
    return None if fit is None else fit.r2


def lead(run: SeedSeries, column: str) -> float | None:
    """Generalization step minus the step where ``column`` is first half-way to its final value.

    The memorization value is the first measured at or after the memorization step, the
    final value the last one measured; half-way is reached at the first measured step where
    the value is at or beyond their midpoint (in the direction of the final value). ``None``
    when the seed did not generalize, the column was not measured after memorization, or its
    memorization and final values are equal.
    """
    if run.memorization_step is None or run.generalization_step is None or column not in run.columns:
        return None
    series = run.columns[column].measured()
    after = series.steps >= run.memorization_step
    steps, values = series.steps[after], series.values[after]
    if values.size < 2 or values[0] == values[-1]:
        return None
    direction = np.sign(values[-1] - values[0])
    reached = direction * (values - (values[0] + values[-1]) / 2) >= 0
    return float(run.generalization_step - steps[int(np.argmax(reached))])


@dataclass(frozen=True)
class MeasureComparison:
    """One column over the seeds of a task.

    Attributes
    ----------
    column : str
    r2 : dict of int to float or None
        Each seed's :func:`compression_r2`.
    difference : PairedDifference
        ``R²(reference) - R²(column)`` over the seeds where both are defined.
    verdict : str
        ``"lmn better"``, ``"measure better"`` or ``"not shown"`` (the claims' rule).
    leads : dict of int to float or None
        Each seed's :func:`lead`.
    lead_median, lead_min, lead_max : float or None
        Over the seeds with a lead.
    """

    column: str
    r2: dict[int, float | None]
    difference: PairedDifference
    verdict: str
    leads: dict[int, float | None]
    lead_median: float | None
    lead_min: float | None
    lead_max: float | None

    @property
    def r2_stats(self) -> dict[str, float | int | None]:
        """``{"mean", "std", "n"}`` of the seeds' R²."""
        return aggregate_values(self.r2.values())


def verdict(difference: PairedDifference) -> str:
    """``"lmn better"`` / ``"measure better"`` where the interval clears zero and ``p < SIGNIFICANCE``."""
    if difference.low is None or difference.p_value is None or difference.p_value >= SIGNIFICANCE:
        return "not shown"
    if difference.low > 0:
        return "lmn better"
    if difference.high < 0:
        return "measure better"
    return "not shown"


def compare_measure(
    runs: Sequence[SeedSeries], column: str, *, reference: str = REFERENCE_COLUMN, seed: int = 0
) -> MeasureComparison:
    """``column`` against ``reference`` over the seeds ``runs`` (bootstrap from ``seed``)."""
    r2 = {run.seed: compression_r2(run, column) for run in runs}
    base = {run.seed: compression_r2(run, reference) for run in runs}
    paired = [s for s in r2 if r2[s] is not None and base[s] is not None]
    difference = paired_difference([base[s] for s in paired], [r2[s] for s in paired], seed=seed)
    leads = {run.seed: lead(run, column) for run in runs}
    present = [value for value in leads.values() if value is not None]
    return MeasureComparison(
        column,
        r2,
        difference,
        verdict(difference),
        leads,
        statistics.median(present) if present else None,
        min(present, default=None),
        max(present, default=None),
    )


def compare_measures(
    runs: Sequence[SeedSeries], columns: Sequence[str], *, reference: str = REFERENCE_COLUMN, seed: int = 0
) -> list[MeasureComparison]:
    """:func:`compare_measure` for every column, the reference included (its difference is 0)."""
    if not runs:
        raise ValueError("compare_measures needs at least one seed")
    return [compare_measure(runs, column, reference=reference, seed=seed) for column in columns]
