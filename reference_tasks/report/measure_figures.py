"""Every progress measure of a task on one axis, normalised to [0, 1] (docs/design.md, section 6.7).

:func:`figure_measures` draws, against ``step + 1`` on a log axis, each column of the seeds'
:class:`~reference_tasks.analysis.progress.SeedSeries` (the LMN, the L2 norm, the effective
rank, ...), each seed's curve normalised to ``[0, 1]`` by its own minimum and maximum over the
run (:func:`normalised`), then the mean over seeds on the steps every seed measured, with the
min-max band. The phases are shaded from the mean phase steps of the seeds that reached them.
The test loss is drawn too, normalised the same way, in black, so a reader sees which measure
follows it and which moves first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reference_tasks.analysis.progress import SeedSeries, Series
from reference_tasks.report.figures import PHASE_COLORS, STEP_LABEL, save_figure


@dataclass(frozen=True, eq=False)
class NormalisedCurve:
    """A column over seeds, each normalised to [0, 1]: mean and min-max band on the common steps."""

    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_seeds: int


def normalised(series: Series) -> Series:
    """``(v - min) / (max - min)`` over the measured points; a constant series is all 0."""
    measured = series.measured()
    if measured.values.size == 0:
        return measured
    low, span = measured.values.min(), np.ptp(measured.values)
    scaled = (measured.values - low) / span if span > 0 else np.zeros_like(measured.values)
    return Series(measured.steps, scaled)


def normalised_curve(runs: Sequence[SeedSeries], column: str) -> NormalisedCurve | None:
    """The column's normalised curve over the seeds that recorded it (``None``: no common step).

    ``"test_loss"`` names the seeds' test loss.
    """
    found = [run.test_loss if column == "test_loss" else run.columns.get(column) for run in runs]
    curves = [normalised(series) for series in found if series is not None]
    curves = [curve for curve in curves if curve.steps.size]
    if not curves:
        return None
    steps = curves[0].steps
    for curve in curves[1:]:
        steps = np.intersect1d(steps, curve.steps)
    if steps.size == 0:
        return None
    values = np.array([curve.values[np.searchsorted(curve.steps, steps)] for curve in curves])
    return NormalisedCurve(steps, values.mean(axis=0), values.min(axis=0), values.max(axis=0), len(curves))


def _mean_step(steps: Sequence[int | None]) -> float | None:
    present = [step for step in steps if step is not None]
    return float(np.mean(present)) if present else None


def shade_phases(ax: Axes, runs: Sequence[SeedSeries], end: int) -> None:
    """Memorizing, generalizing and finalizing phases from the mean phase steps, on a ``step + 1`` axis."""
    memorization = _mean_step([run.memorization_step for run in runs])
    generalization = _mean_step([run.generalization_step for run in runs])
    bounds = [0.0, memorization, generalization, float(end)]
    for index, phase in enumerate(PHASE_COLORS):
        start, stop = bounds[index], bounds[index + 1]
        if start is None:
            break
        stop = float(end) if stop is None else stop
        ax.axvspan(start + 1, stop + 1, color=PHASE_COLORS[phase], alpha=0.6, lw=0, label=phase)
        if stop == end:
            break


def measures_figure(runs: Sequence[SeedSeries], columns: Sequence[str], *, title: str) -> Figure:
    """The figure of :func:`figure_measures`."""
    if not runs:
        raise ValueError("no seeds to draw")
    figure = Figure(figsize=(8.5, 4.8))
    ax = figure.subplots()
    end = max(int(run.test_loss.steps[-1]) for run in runs if run.test_loss.steps.size)
    shade_phases(ax, runs, end)
    cycle = [f"C{index % 10}" for index in range(len(columns))]
    for column, color in zip(["test_loss", *columns], ["black", *cycle], strict=True):
        curve = normalised_curve(runs, column)
        if curve is None:
            continue
        loss = column == "test_loss"
        ax.plot(
            curve.steps + 1,
            curve.mean,
            "--" if loss else "-",
            color=color,
            lw=1.3,
            zorder=5 if loss else 3,  # the test loss on top of a measure that follows it
            label=column.replace("_", " "),
        )
        if curve.n_seeds > 1:
            ax.fill_between(curve.steps + 1, curve.low, curve.high, color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel(STEP_LABEL)
    ax.set_ylabel("normalised to [0, 1] per seed")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    seeds = f"mean of {len(runs)} seeds, band: min-max" if len(runs) > 1 else f"seed {runs[0].seed}"
    ax.set_title(f"{title} ({seeds})", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    return figure


def figure_measures(
    runs: Sequence[SeedSeries], columns: Sequence[str], path: str | Path, *, title: str
) -> Path:
    """Write the normalised measures of one task against the step, phases shaded, to ``path`` (PNG)."""
    return save_figure(measures_figure(runs, columns, title=title), path)
