"""Phases of a run (memorization, generalization, the LMN rebound), from metrics rows alone.

Phases (docs/design.md, section 2.4): *memorizing* until the first evaluated step whose train
accuracy reaches the task's criterion (100% for the paper's tasks: the memorization step),
*generalizing* from there until the first evaluated step whose test accuracy reaches it (the
generalization step; ``None`` if it never comes, and then the phase lasts to the end of the
run), *finalizing* after it. Every function takes the task's
:class:`~reference_tasks.experiment.Criterion` (the paper's by default).

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

import math
from collections.abc import Sequence
from dataclasses import dataclass

from reference_tasks.experiment import Criterion
from reference_tasks.runfolder.schema import HEADLINE_COLUMN, Row

PAPER_CRITERION = Criterion()


@dataclass(frozen=True)
class Phases:
    """Steps where the training phases end; ``None`` where a phase never ends."""

    memorization_step: int | None
    generalization_step: int | None


def _first_step(rows: Sequence[Row], column: str, threshold: float) -> int | None:
    return next(
        (int(row["step"]) for row in rows if row[column] is not None and row[column] >= threshold), None
    )


def phases(rows: Sequence[Row], criterion: Criterion = PAPER_CRITERION) -> Phases:
    """Memorization step (train accuracy first at the criterion) and generalization step (test accuracy)."""
    return Phases(
        _first_step(rows, "train_acc", criterion.train_acc), _first_step(rows, "test_acc", criterion.test_acc)
    )


def measured(rows: Sequence[Row], column: str) -> list[Row]:
    """The rows where ``column`` holds a finite value."""
    return [row for row in rows if row[column] is not None and math.isfinite(row[column])]


def row_at_or_after(rows: Sequence[Row], column: str, step: int | None) -> Row | None:
    """The first row at a step ``>= step`` where ``column`` was measured (``None`` if none)."""
    if step is None:
        return None
    return next((row for row in measured(rows, column) if row["step"] >= step), None)


def generalizing_rows(
    rows: Sequence[Row], column: str = HEADLINE_COLUMN, criterion: Criterion = PAPER_CRITERION
) -> list[Row]:
    """Rows of the generalizing phase (ends included) where ``column`` and test loss were measured."""
    phase = phases(rows, criterion)
    if phase.memorization_step is None:
        return []
    stop = phase.generalization_step if phase.generalization_step is not None else math.inf
    return [
        row
        for row in measured(measured(rows, column), "test_loss")
        if phase.memorization_step <= row["step"] <= stop
    ]


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


def unstable_step(rows: Sequence[Row], criterion: Criterion = PAPER_CRITERION) -> int | None:
    """The first evaluated step after memorization where train accuracy falls below the criterion.

    After memorization that only happens when training blows up (in float32, once the
    train loss reaches about 1e-7: docs/design.md, section 2); ``None`` if it never happens.
    """
    memorization = phases(rows, criterion).memorization_step
    if memorization is None:
        return None
    return next(
        (
            int(row["step"])
            for row in measured(rows, "train_acc")
            if row["step"] > memorization and row["train_acc"] < criterion.train_acc
        ),
        None,
    )


def lowest_train_acc_after_memorization(
    rows: Sequence[Row], criterion: Criterion = PAPER_CRITERION
) -> float | None:
    """The lowest train accuracy from the memorization step on (``None`` before memorization)."""
    memorization = phases(rows, criterion).memorization_step
    if memorization is None:
        return None
    return min(row["train_acc"] for row in measured(rows, "train_acc") if row["step"] >= memorization)


def rebound(
    rows: Sequence[Row], column: str = HEADLINE_COLUMN, criterion: Criterion = PAPER_CRITERION
) -> Rebound | None:
    """The LMN's rise after generalization, while training is stable: its trough and peak.

    Over the checkpoints where ``column`` was measured from the generalization step up
    to (not including) :func:`unstable_step`, ``v_0, v_1, ...`` in step order, this is the
    pair ``i < j`` with the largest ``v_j - v_i`` (the earliest such pair on ties):
    ``v_i`` is the minimum *before* the peak and ``v_j`` the maximum *after* that minimum.
    The global maximum after generalization would mostly be the generalization point
    itself (LMN is still falling there) and the global minimum the end of the run, so
    neither marks the "rise then fall" turning points; the largest rise does. Steps from
    a float32 blow-up on are left out, so the recovery from it does not pass for a rise.
    On the committed PyTorch XOR run of seed 1 (``results/torch/xor-seed1``) it is 17.58
    at step 4490 to 41.24 at step 11020.

    Returns
    -------
    Rebound or None
        ``None`` if the run never generalized, or the LMN never rises in that window.
    """
    generalization = phases(rows, criterion).generalization_step
    if generalization is None:
        return None
    stop = unstable_step(rows, criterion)
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
