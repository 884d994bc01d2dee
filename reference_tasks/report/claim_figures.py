"""The figures of the paper's claim that LMN, not the L2 norm, is linear in test loss.

- :func:`figure_claim`: per task, LMN and L2 norm against test loss over the
  generalizing phase, every seed with its least-squares line and ``R²``.
- :func:`figure_claim_r2`: per task, each seed's ``R²`` of LMN beside its ``R²`` of the
  L2 norm, joined, with the mean paired difference and its 95% bootstrap interval
  (:func:`reference_tasks.analysis.population_claims`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from reference_tasks.analysis import generalizing_rows, linear_fit, population_claims
from reference_tasks.experiment import task_title
from reference_tasks.report.figures import n_note, ordered_tasks, save_figure
from reference_tasks.report.run_data import RunData
from reference_tasks.runfolder.schema import lmn_column


def figure_claim(runs_by_task: Mapping[str, Sequence[RunData]], path: str | Path, *, framework: str) -> Path:
    """LMN (at the headline probe) and L2 norm against test loss over the generalizing phase, with fits.

    One column per task; each seed is a scatter, joined in step order by a thin line,
    with its least-squares line and ``R²`` in the legend (the rows of
    ``analysis.generalizing_rows``, as for the summary; for a run that never
    generalized they run to its end).
    """
    items = ordered_tasks(runs_by_task)
    figure = Figure(figsize=(5.2 * len(items), 8))
    axes = figure.subplots(2, len(items), squeeze=False)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for column, (task, runs) in enumerate(items):
        headline = runs[0].config.headline_probe
        for row, (name, quantity) in enumerate(
            ((lmn_column(headline), f"LMN ({headline} → logits)"), ("l2_norm", "L2 norm"))
        ):
            ax = axes[row, column]
            for index, run in enumerate(runs):
                window = generalizing_rows(
                    run.rows, name if row == 0 else lmn_column(headline), run.config.criterion
                )
                x = np.array([r["test_loss"] for r in window])
                y = np.array([r[name] for r in window])
                color = colors[index % len(colors)]
                fit = linear_fit(x, y)
                r2 = "R² n/a" if fit is None else f"R² = {fit.r2:.3f}"
                ax.plot(x, y, color=color, lw=0.5, alpha=0.5)  # the trajectory, in step order
                ax.scatter(x, y, s=10, color=color, label=f"seed {run.seed}: {r2} ({x.size} points)")
                if fit is not None:
                    line = np.linspace(x.min(), x.max(), 2)
                    ax.plot(line, fit.slope * line + fit.intercept, color=color, lw=1)
            ax.set_xlabel("test loss")
            ax.set_ylabel(quantity + (f", {n_note(runs)}" if row == 0 else ""))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            ax.set_title(f"{task_title(task)} ({framework}): {quantity} vs test loss", fontsize=9)
    figure.suptitle("Generalizing phase (memorization to generalization step): linear fits against test loss")
    figure.tight_layout()
    return save_figure(figure, path)


def figure_claim_r2(
    runs_by_task: Mapping[str, Sequence[RunData]], path: str | Path, *, framework: str
) -> Path:
    """Per task, each grokked seed's R² of LMN and of the L2 norm against test loss, paired."""
    items = ordered_tasks(runs_by_task)
    figure = Figure(figsize=(3.6 * len(items), 4.2))
    axes = figure.subplots(1, len(items), squeeze=False)
    for ax, (task, runs) in zip(axes[0], items, strict=True):
        claims = population_claims([run.summary for run in runs])
        for seed, r2_l2, r2_lmn in zip(claims["r2_seeds"], claims["r2_l2"], claims["r2_lmn"], strict=True):
            ax.plot([0, 1], [r2_l2, r2_lmn], color="0.5", lw=0.8, marker="o", ms=4)
            ax.annotate(f"{seed}", (1, r2_lmn), xytext=(4, 0), textcoords="offset points", fontsize=6)
        ax.set_xticks([0, 1], ["L2 norm", f"LMN ({runs[0].config.headline_probe})"])
        ax.set_xlim(-0.4, 1.4)
        ax.set_ylabel("R² of the line against test loss (generalizing phase)")
        ax.grid(alpha=0.3, axis="y")
        difference = claims["r2_difference"]
        if difference["low"] is not None:
            note = (
                f"R²(LMN) − R²(L2) = {difference['mean']:+.3f}\n"
                f"95% interval [{difference['low']:+.3f}, {difference['high']:+.3f}]"
            )
        else:
            note = "too few grokked seeds for an interval"
        ax.set_title(
            f"{task_title(task)} ({framework})\n{difference['n']} of {len(runs)} seeds grokked; {note}",
            fontsize=8,
        )
    figure.suptitle("Is LMN more linear in test loss than the L2 norm? One line per seed")
    figure.tight_layout()
    return save_figure(figure, path)
