"""Phases of a run, Pearson coefficients, and the run summary, from metrics rows alone.

Phases (DESIGN.md section 2): *memorizing* until the first evaluated step with train
accuracy 100% (the memorization step), *generalizing* from there until the first
evaluated step with test accuracy 100% (the generalization step; ``None`` if it never
comes, and then the phase lasts to the end of the run), *finalizing* after it.

The LMN at a phase point is the value at the first step at or after the phase step
where that LMN was measured (checkpoints are sparser than evaluations); ``init`` is
the first measured value, ``end`` the last one. The Pearson coefficients and the
least-squares lines (LMN against test loss, L2 norm against test loss) are taken over
the rows of the generalizing phase, both ends included, where ``lmn_hidden1`` was
measured (the same rows for LMN and for the L2 norm, so they compare).

The *rebound* of the LMN after generalization (the paper's XOR "double descent": LMN
falls, rises briefly, then falls again) is the largest rise of ``lmn_hidden1`` over the
checkpoints from the generalization point on: see :func:`rebound`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference_tasks.runs import METRICS_FILE, SUMMARY_FILE, Row, read_metrics, write_json

logger = logging.getLogger(__name__)

HEADLINE_COLUMN = "lmn_hidden1"


@dataclass(frozen=True)
class Phases:
    """Steps where the training phases end; ``None`` where a phase never ends."""

    memorization_step: int | None
    generalization_step: int | None


def _first_step(rows: Sequence[Row], column: str) -> int | None:
    return next((int(row["step"]) for row in rows if row[column] == 1.0), None)


def phases(rows: Sequence[Row]) -> Phases:
    """Memorization step (train accuracy first 100%) and generalization step (test accuracy)."""
    return Phases(_first_step(rows, "train_acc"), _first_step(rows, "test_acc"))


def measured(rows: Sequence[Row], column: str) -> list[Row]:
    """The rows where ``column`` holds a finite value."""
    return [row for row in rows if row[column] is not None and math.isfinite(row[column])]


def row_at_or_after(rows: Sequence[Row], column: str, step: int | None) -> Row | None:
    """The first row at a step ``>= step`` where ``column`` was measured (``None`` if none)."""
    if step is None:
        return None
    return next((row for row in measured(rows, column) if row["step"] >= step), None)


def generalizing_rows(rows: Sequence[Row], column: str = HEADLINE_COLUMN) -> list[Row]:
    """Rows of the generalizing phase (ends included) where ``column`` and test loss were measured."""
    phase = phases(rows)
    if phase.memorization_step is None:
        return []
    stop = phase.generalization_step if phase.generalization_step is not None else math.inf
    return [
        row
        for row in measured(measured(rows, column), "test_loss")
        if phase.memorization_step <= row["step"] <= stop
    ]


def _paired(x: Sequence[float], y: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``x`` and ``y`` as float64 arrays; ``None`` with fewer than 3 points or no spread in either."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.size != b.size:
        raise ValueError(f"{name} needs equally long sequences, got {a.size} and {b.size}")
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return a, b


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation of ``x`` and ``y``; ``None`` with fewer than 3 points or no spread."""
    pair = _paired(x, y, "pearson")
    if pair is None:
        return None
    a, b = pair
    a = a - a.mean()
    b = b - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    if denominator == 0.0:
        return None
    return float(np.clip((a @ b) / denominator, -1.0, 1.0))


@dataclass(frozen=True)
class LinearFit:
    """Least-squares line ``y = slope * x + intercept`` and its coefficient of determination."""

    slope: float
    intercept: float
    r2: float

    def as_dict(self) -> dict[str, float]:
        """``{"slope", "intercept", "r2"}``."""
        return {"slope": self.slope, "intercept": self.intercept, "r2": self.r2}


def linear_fit(x: Sequence[float], y: Sequence[float]) -> LinearFit | None:
    """Least-squares line of ``y`` against ``x`` with ``R² = 1 - SS_res / SS_tot``.

    ``None`` in the cases :func:`pearson` gives ``None`` (fewer than 3 points, no spread
    in ``x`` or ``y``). For a line fitted by least squares ``R²`` equals ``pearson(x, y)²``.
    """
    pair = _paired(x, y, "linear_fit")
    if pair is None:
        return None
    a, b = pair
    da, db = a - a.mean(), b - b.mean()
    slope = float(da @ db) / float(da @ da)
    intercept = float(b.mean() - slope * a.mean())
    residual = b - (slope * a + intercept)
    r2 = 1.0 - float(residual @ residual) / float(db @ db)
    return LinearFit(slope, intercept, float(np.clip(r2, 0.0, 1.0)))


@dataclass(frozen=True)
class Rebound:
    """The largest rise of an LMN column after generalization: trough, then peak."""

    min_step: int
    min_value: float
    max_step: int
    max_value: float

    @property
    def rise(self) -> float:
        """``max_value - min_value`` (positive)."""
        return self.max_value - self.min_value


def unstable_step(rows: Sequence[Row]) -> int | None:
    """The first evaluated step after memorization where train accuracy falls below 100%.

    After memorization that only happens when training blows up (in float32, once the
    train loss reaches about 1e-7: DESIGN.md section 2); ``None`` if it never happens.
    """
    memorization = phases(rows).memorization_step
    if memorization is None:
        return None
    return next(
        (
            int(row["step"])
            for row in measured(rows, "train_acc")
            if row["step"] > memorization and row["train_acc"] < 1.0
        ),
        None,
    )


def rebound(rows: Sequence[Row], column: str = HEADLINE_COLUMN) -> Rebound | None:
    """The LMN's rise after generalization, while training is stable: its trough and peak.

    Over the checkpoints where ``column`` was measured from the generalization step up
    to (not including) :func:`unstable_step`, ``v_0, v_1, ...`` in step order, this is the
    pair ``i < j`` with the largest ``v_j - v_i`` (the earliest such pair on ties):
    ``v_i`` is the minimum *before* the peak and ``v_j`` the maximum *after* that minimum.
    The global maximum after generalization would mostly be the generalization point
    itself (LMN is still falling there) and the global minimum the end of the run, so
    neither marks the "rise then fall" turning points; the largest rise does. Steps from
    a float32 blow-up on are left out, so the recovery from it does not pass for a rise.
    On the committed PyTorch XOR run (``results/torch/xor-seed0``) it is 20.30 at step
    7755 to 21.14 at step 11653.

    Returns
    -------
    Rebound or None
        ``None`` if the run never generalized, or the LMN never rises in that window.
    """
    generalization = phases(rows).generalization_step
    if generalization is None:
        return None
    stop = unstable_step(rows)
    stop = math.inf if stop is None else stop
    after = [row for row in measured(rows, column) if generalization <= row["step"] < stop]
    best: tuple[float, int, int] | None = None
    low = 0
    for j, row in enumerate(after):
        if row[column] < after[low][column]:
            low = j
        rise = row[column] - after[low][column]
        if rise > 0 and (best is None or rise > best[0]):
            best = (rise, low, j)
    if best is None:
        return None
    _, i, j = best
    return Rebound(int(after[i]["step"]), after[i][column], int(after[j]["step"]), after[j][column])


def build_summary(
    rows: Sequence[Row],
    *,
    task: str,
    framework: str,
    seed: int,
    steps: int,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run summary (``summary.json``) from its metrics rows.

    Keys: ``task, framework, seed, steps, memorization_step, generalization_step,
    max_test_acc, final_train_acc, final_test_acc, lmn_n_samples``,
    ``lmn_hidden1_{init,memorization,generalization,end}`` with the steps they were
    read at in ``lmn_hidden1_steps``, ``pearson_lmn_test_loss``,
    ``pearson_l2_test_loss`` and ``pearson_n_points``, the least-squares lines
    ``linear_fit_lmn_test_loss`` and ``linear_fit_l2_test_loss`` (``{"slope",
    "intercept", "r2"}`` of LMN, resp. L2 norm, against test loss over the same rows as
    Pearson, or ``None``), the rebound after generalization ``lmn_hidden1_rebound_min``,
    ``lmn_hidden1_rebound_max`` with their steps in ``lmn_hidden1_rebound_steps``
    (``{"min", "max"}``; all ``None`` without a rebound, see :func:`rebound`), then
    ``extra``'s items.
    """
    phase = phases(rows)
    lmn_rows = measured(rows, HEADLINE_COLUMN)
    points = {
        "init": row_at_or_after(lmn_rows, HEADLINE_COLUMN, 0),
        "memorization": row_at_or_after(lmn_rows, HEADLINE_COLUMN, phase.memorization_step),
        "generalization": row_at_or_after(lmn_rows, HEADLINE_COLUMN, phase.generalization_step),
        "end": lmn_rows[-1] if lmn_rows else None,
    }
    window = generalizing_rows(rows)
    test_loss = [row["test_loss"] for row in window]
    test_accuracies = [row["test_acc"] for row in measured(rows, "test_acc")]
    summary: dict[str, Any] = {
        "task": task,
        "framework": framework,
        "seed": seed,
        "steps": steps,
        "memorization_step": phase.memorization_step,
        "generalization_step": phase.generalization_step,
        "max_test_acc": max(test_accuracies, default=None),
        "final_train_acc": rows[-1]["train_acc"] if rows else None,
        "final_test_acc": rows[-1]["test_acc"] if rows else None,
        "lmn_n_samples": lmn_rows[-1]["lmn_n_samples"] if lmn_rows else None,
    }
    for name, row in points.items():
        summary[f"{HEADLINE_COLUMN}_{name}"] = None if row is None else row[HEADLINE_COLUMN]
    summary[f"{HEADLINE_COLUMN}_steps"] = {
        name: None if row is None else row["step"] for name, row in points.items()
    }
    summary["pearson_lmn_test_loss"] = pearson([row[HEADLINE_COLUMN] for row in window], test_loss)
    summary["pearson_l2_test_loss"] = pearson([row["l2_norm"] for row in window], test_loss)
    summary["pearson_n_points"] = len(window)
    for name, column in (("lmn", HEADLINE_COLUMN), ("l2", "l2_norm")):
        fit = linear_fit(test_loss, [row[column] for row in window])
        summary[f"linear_fit_{name}_test_loss"] = None if fit is None else fit.as_dict()
    turn = rebound(rows)
    summary[f"{HEADLINE_COLUMN}_rebound_min"] = None if turn is None else turn.min_value
    summary[f"{HEADLINE_COLUMN}_rebound_max"] = None if turn is None else turn.max_value
    summary[f"{HEADLINE_COLUMN}_rebound_steps"] = {
        "min": None if turn is None else turn.min_step,
        "max": None if turn is None else turn.max_step,
    }
    summary.update(extra or {})
    return summary


def write_run_summary(
    out_dir: Path, *, config: Any, framework: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Build a finished run's summary from its ``metrics.csv``, write ``summary.json``, return it.

    ``config`` is the run's ``TrainConfig``; ``extra`` adds run facts (sizes, timings).
    """
    summary = build_summary(
        read_metrics(out_dir / METRICS_FILE),
        task=config.task,
        framework=framework,
        seed=config.seed,
        steps=config.steps,
        extra={"task_options": dict(config.task_options), "dtype": config.dtype, **extra},
    )
    write_json(out_dir / SUMMARY_FILE, summary)
    logger.info(
        "%s %s seed %d: memorized at %s, generalized at %s, max test acc %.4f",
        framework,
        config.task,
        config.seed,
        summary["memorization_step"],
        summary["generalization_step"],
        summary["max_test_acc"],
    )
    return summary
