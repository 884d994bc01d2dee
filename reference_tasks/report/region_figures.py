"""The LMN beside the exact linear regions of piecewise-linear runs (docs/design.md, section 1.6).

- :func:`figure_regions`: per task, against the step, the LMN, the mean linear pieces per
  segment, and the occupied regions with their perplexity, at ``hidden1`` (every
  checkpoint) and ``embedding`` (where measured).
- :func:`figure_lmn_pieces`: per task, the LMN at ``hidden1`` against its mean pieces per
  segment and against its region perplexity over the generalizing phase, every seed with
  its Pearson r.

Both draw the runs of one framework that recorded regions (a ReLU or LeakyReLU model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reference_tasks.analysis import generalizing_rows, measured, pearson
from reference_tasks.report.figures import (
    PROBE_COLORS,
    STEP_LABEL,
    aggregate,
    model_probes,
    n_note,
    ordered_tasks,
    save_figure,
    shade_phases,
    task_title,
)
from reference_tasks.report.run_data import RunData
from reference_tasks.runfolder.schema import lmn_column, region_column


def region_probes(runs: Sequence[RunData]) -> list[str]:
    """The probes the region figures draw: the headline probe, then those before it, nearest first
    (for the reference MLP ``hidden1``, ``embedding``; after the headline the head has fewer hinges)."""
    probes = model_probes(runs)
    headline = runs[0].config.headline_probe
    before = probes[: probes.index(headline)] if headline in probes else []
    return [headline, *reversed(before)]


def region_runs(runs_by_task: Mapping[str, Sequence[RunData]]) -> dict[str, list[RunData]]:
    """The runs that recorded linear regions, by task (tasks without any left out)."""
    found = {task: [run for run in runs if run.summary.regions] for task, runs in runs_by_task.items()}
    return {task: runs for task, runs in found.items() if runs}


def _curve(ax: Axes, runs: Sequence[RunData], column: str, color: str, label: str, style: str = "-") -> None:
    """Mean over seeds and min-max band of ``column`` on the steps every seed measured."""
    if not all(measured(run.rows, column) for run in runs):
        return
    curve = aggregate(runs, column)
    ax.plot(curve.steps + 1, curve.mean, style, color=color, lw=1.2, marker="o", ms=2, label=label)
    if curve.n_runs > 1:
        ax.fill_between(curve.steps + 1, curve.low, curve.high, color=color, alpha=0.2, lw=0)


def figure_regions(
    runs_by_task: Mapping[str, Sequence[RunData]], path: str | Path, *, framework: str
) -> Path:
    """LMN, mean pieces per segment, occupied regions and their perplexity against the step."""
    items = ordered_tasks(region_runs(runs_by_task))
    figure = Figure(figsize=(5.2 * len(items), 10.5))
    axes = figure.subplots(3, len(items), squeeze=False)
    for column, (task, runs) in enumerate(items):
        lmn_ax, pieces_ax, regions_ax = axes[:, column]
        for ax in (lmn_ax, pieces_ax, regions_ax):
            shade_phases(ax, runs, label=ax is lmn_ax)
            ax.set_xscale("log")
            ax.set_xlabel(STEP_LABEL)
            ax.grid(alpha=0.3)
        for index, probe in enumerate(region_probes(runs)):
            color = PROBE_COLORS.get(probe, f"C{index}")
            _curve(lmn_ax, runs, lmn_column(probe), color, f"LMN {probe}")
            _curve(pieces_ax, runs, region_column("pieces_mean", probe), color, f"mean pieces {probe}")
            _curve(regions_ax, runs, region_column("regions", probe), color, f"occupied regions {probe}")
            _curve(
                regions_ax,
                runs,
                region_column("region_perplexity", probe),
                color,
                f"perplexity {probe}",
                "--",
            )
        lmn_ax.set_ylabel(f"LMN (to the logits), {n_note(runs)}")
        pieces_ax.set_ylabel("linear pieces per segment (mean over pairs)")
        regions_ax.set_ylabel("regions of the N samples")
        seeds = f"mean of {len(runs)} seeds, band: min-max"
        lmn_ax.set_title(f"{task_title(task)} ({framework}), {seeds}", fontsize=9)
        for ax in (lmn_ax, pieces_ax, regions_ax):
            ax.legend(fontsize=7)
    figure.suptitle("LMN and exact linear regions against the step", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def figure_lmn_pieces(
    runs_by_task: Mapping[str, Sequence[RunData]], path: str | Path, *, framework: str
) -> Path:
    """LMN (headline probe) against mean pieces per segment and region perplexity, generalizing phase."""
    items = ordered_tasks(region_runs(runs_by_task))
    figure = Figure(figsize=(5.2 * len(items), 8))
    axes = figure.subplots(2, len(items), squeeze=False)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for column, (task, runs) in enumerate(items):
        headline = runs[0].config.headline_probe
        lmn = lmn_column(headline)
        for row, quantity in enumerate(("pieces_mean", "region_perplexity")):
            ax, name = axes[row, column], region_column(quantity, headline)
            for index, run in enumerate(runs):
                window = measured(generalizing_rows(run.rows, lmn, run.config.criterion), name)
                x = np.array([r[name] for r in window])
                y = np.array([r[lmn] for r in window])
                r = pearson(x, y)
                label = f"seed {run.seed}: r = " + ("n/a" if r is None else f"{r:+.3f}") + f" ({x.size})"
                color = colors[index % len(colors)]
                ax.plot(x, y, color=color, lw=0.5, alpha=0.5)
                ax.scatter(x, y, s=10, color=color, label=label)
            what = "mean pieces per segment" if quantity == "pieces_mean" else "region perplexity"
            ax.set_xlabel(f"{what} ({headline})")
            ax.set_ylabel(f"LMN ({headline}), {n_note(runs)}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            ax.set_title(f"{task_title(task)} ({framework}): LMN vs {what}", fontsize=9)
    figure.suptitle("Generalizing phase: LMN against the exact regions", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)
