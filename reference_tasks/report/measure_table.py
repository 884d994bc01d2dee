"""Every progress measure of a task against the LMN, from its run folders (docs/design.md, section 6.7).

Per framework and task, :func:`measure_comparison` reads each seed's ``metrics.csv`` into a
:class:`~reference_tasks.analysis.progress.SeedSeries` (:func:`seed_series`) and compares every
column of :func:`comparison_columns` with the LMN at the run's headline probe
(:func:`reference_tasks.analysis.progress.compare_measures`): its R² against the test loss over
the compression phase, the paired difference ``R²(LMN) − R²(measure)`` with its bootstrap
interval, Wilcoxon's p and the verdict, and its lead. :func:`measures_markdown` writes the
section of ``summary.md``; :func:`measure_drawing` the figure of every measure normalised to
``[0, 1]`` (:func:`reference_tasks.report.measure_figures.figure_measures`).

The phases are each seed's run summary's, by the task's criterion (``config.json``), as the
claims take them. Every column is read at the checkpoints of the headline LMN (the rows where it
was measured), the rows on which the claims compare the L2 norm with the LMN; R² is compared
over the seeds that generalized, as in the claims, and the figure shows every seed.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from reference_tasks.analysis.claims import BOOTSTRAP_RESAMPLES, SIGNIFICANCE
from reference_tasks.analysis.progress import MeasureComparison, SeedSeries, Series, compare_measures
from reference_tasks.experiment import task_title
from reference_tasks.report.measure_figures import figure_measures
from reference_tasks.report.run_data import RunData
from reference_tasks.runfolder.schema import lmn_column, measure_of_column, region_column, split_header

MEASURES_FIGURE = "fig_measures_{framework}_{task}.png"


def headline_column(runs: Sequence[RunData]) -> str:
    """The LMN column at the runs' headline probe (``config.json``'s ``headline_probe``).

    Raises
    ------
    ValueError
        If the seeds of one task name different headline probes.
    """
    probes = sorted({run.config.headline_probe for run in runs})
    if len(probes) != 1:
        raise ValueError(f"the seeds of task {runs[0].task!r} name different headline probes: {probes}")
    return lmn_column(probes[0])


def _header(run: RunData) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
    """The probes, whether there are region columns, and the measure columns of the run's metrics."""
    found = split_header(tuple(run.rows[0]))
    if found is None:
        raise ValueError(f"{run.path}: metrics.csv's columns are not the schema's (schema.metric_columns)")
    return found


def _run_columns(run: RunData) -> list[str]:
    """The LMN at every probe, the L2 norm, the mean pieces (piecewise-linear runs), the measures."""
    probes, regions, measures = _header(run)
    pieces = [region_column("pieces_mean", probe) for probe in probes] if regions else []
    return [*(lmn_column(probe) for probe in probes), "l2_norm", *pieces, *measures]


def _finite(value: float | int | None) -> bool:
    return value is not None and math.isfinite(value)


def comparison_columns(runs: Sequence[RunData]) -> list[str]:
    """The headline LMN, then every other column any seed measured at a headline checkpoint.

    In the order of :func:`_run_columns` over the seeds; a column no seed measured there (a
    measure at a probe the run did not measure) is left out.
    """
    headline = headline_column(runs)
    columns = dict.fromkeys(column for run in runs for column in _run_columns(run))
    columns.pop(headline, None)
    measured = [
        column
        for column in columns
        if any(_finite(row.get(column)) for run in runs for row in run.rows if _finite(row.get(headline)))
    ]
    return [headline, *measured]


def seed_series(run: RunData, columns: Sequence[str], headline: str) -> SeedSeries:
    """One seed: its test loss at every evaluated step, each column at the headline checkpoints."""
    steps = np.array([row["step"] for row in run.rows])
    at_checkpoint = np.array([_finite(row.get(headline)) for row in run.rows])

    def values(column: str) -> np.ndarray:
        read = [row.get(column) for row in run.rows]
        return np.array([value if value is not None else np.nan for value in read], dtype=float)

    series = {
        column: Series(steps, np.where(at_checkpoint, values(column), np.nan))
        for column in columns
        if column in run.rows[0]
    }
    return SeedSeries(
        run.seed,
        Series(steps, values("test_loss")),
        series,
        run.summary.memorization_step,
        run.summary.generalization_step,
    )


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _entry(comparison: MeasureComparison, probes: Sequence[str]) -> dict[str, Any]:
    measure, probe = measure_of_column(comparison.column, probes)
    r2 = list(comparison.r2.values())
    return {
        "column": comparison.column,
        "measure": measure,
        "probe": probe,
        "seeds": list(comparison.r2),
        "r2": r2,
        "r2_median": _median(r2),
        "r2_min": min((value for value in r2 if value is not None), default=None),
        "r2_max": max((value for value in r2 if value is not None), default=None),
        "difference": asdict(comparison.difference),
        "verdict": comparison.verdict,
        "leads": list(comparison.leads.values()),
        "lead_median": comparison.lead_median,
        "lead_min": comparison.lead_min,
        "lead_max": comparison.lead_max,
    }


def _best(measures: Sequence[Mapping[str, Any]], values: str) -> str | None:
    """The column with the highest median of ``values`` (``"r2"`` or ``"leads"``; the first on ties).

    Ranked over the columns with that value in as many seeds as the reference (the first
    column) at least: a probe measured at few checkpoints, with an R² in one seed, is not
    ranked against the LMN's eight. ``None`` when none is ranked.
    """

    def count(entry: Mapping[str, Any]) -> int:
        return sum(value is not None for value in entry[values])

    median = {"r2": "r2_median", "leads": "lead_median"}[values]
    ranked = [e for e in measures if e[median] is not None and count(e) >= count(measures[0])]
    return max(ranked, key=lambda entry: entry[median])["column"] if ranked else None


def measure_comparison(runs: Sequence[RunData]) -> dict[str, Any]:
    """The comparison of one framework and task as JSON: every column against the headline LMN.

    ``{"framework", "task", "reference", "seeds", "grokked_seeds", "figure", "columns",
    "measures": [...], "best_r2", "most_lead"}``; each measure's entry (one per column, the
    reference first) holds the R² and lead of each seed that generalized, the median and range of
    each, and the paired difference with its verdict; ``measures`` is empty when no seed
    generalized.
    """
    headline = headline_column(runs)
    columns = comparison_columns(runs)
    probes = sorted({probe for run in runs for probe in _header(run)[0]})
    grokked = [seed_series(run, columns, headline) for run in runs if run.summary.grokked]
    comparisons = compare_measures(grokked, columns, reference=headline) if grokked else []
    measures = [_entry(comparison, probes) for comparison in comparisons]
    return {
        "framework": runs[0].framework,
        "task": runs[0].task,
        "reference": headline,
        "seeds": [run.seed for run in runs],
        "grokked_seeds": [series.seed for series in grokked],
        "figure": MEASURES_FIGURE.format(framework=runs[0].framework, task=runs[0].task),
        "columns": columns,
        "measures": measures,
        "best_r2": _best(measures, "r2") if measures else None,
        "most_lead": _best(measures, "leads") if measures else None,
    }


def measure_drawing(runs: Sequence[RunData], out_dir: Path) -> Callable[[], Path]:
    """The figure of every column of :func:`comparison_columns` over all the seeds, to draw."""
    headline = headline_column(runs)
    columns = comparison_columns(runs)
    series = [seed_series(run, columns, headline) for run in runs]
    name = MEASURES_FIGURE.format(framework=runs[0].framework, task=runs[0].task)
    title = f"{task_title(runs[0].task)}, {runs[0].framework}: progress measures"
    return functools.partial(figure_measures, series, columns, out_dir / name, title=title)


PREAMBLE = (
    "Every progress measure the runs recorded, against the LMN at the headline probe (the MLP's "
    "hidden1; docs/design.md, section 6.7). Each column is read at the headline LMN's checkpoints "
    "(for the L2 norm, the rows the claims above use). *R²*: of the least-squares line of the "
    "column against test loss over the compression phase (memorization to generalization step, "
    "both included), per seed that grokked: median [range]. *R²(LMN) − R²(measure)*: the mean "
    "over those seeds of the paired difference, its 95% bias-corrected bootstrap interval "
    f"({BOOTSTRAP_RESAMPLES} resamples) and the two-sided Wilcoxon signed-rank p-value; the "
    "verdict is *lmn better* or *measure better* only when the interval is clear of zero and "
    f"p < {SIGNIFICANCE}, else *not shown*. *Seeds*: the seeds with both R². *Lead*: the "
    "generalization step minus the first checkpoint after memorization where the column is half "
    "way from its memorization value to its final value (positive: it moves before the test "
    "accuracy reaches the criterion), in steps: median [range]. Phases come from each task's "
    "criterion. The sentences under a table rank the columns with an R² (a lead) in as many seeds "
    "as the LMN (a probe measured at few checkpoints may have one in a single seed). The figure "
    "draws every column of every seed normalised to [0, 1], phases shaded."
)


def _steps(value: float) -> str:
    """A number of steps: whole, or to a half step (a median of an even number of seeds)."""
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _r2(value: float) -> str:
    return f"{value:.3f}"


def _range_cell(median: float | None, low: float | None, high: float | None, text: Callable) -> str:
    if median is None:
        return "–"
    return f"{text(median)} [{text(low)}, {text(high)}]"


def _signed(value: float) -> str:
    """A difference of R²: three decimals, or two significant digits below 0.001 (not a bare 0.000)."""
    return f"{value:+.3f}" if value == 0 or abs(value) >= 1e-3 else f"{value:+.1e}"


def _difference_cell(difference: Mapping[str, Any]) -> str:
    if difference["mean"] is None:
        return "–"
    text = _signed(difference["mean"])
    if difference["low"] is not None:
        text += f" [{_signed(difference['low'])}, {_signed(difference['high'])}]"
    if difference["p_value"] is not None:
        text += f", p = {difference['p_value']:.2g}"
    return text


def _row(measure: Mapping[str, Any], reference: str) -> str:
    own = measure["column"] == reference
    paired = not own and measure["difference"]["n"] > 0
    cells = [
        f"`{measure['column']}`" + (" (reference)" if own else ""),
        measure["probe"] or "whole network",
        str(measure["difference"]["n"]),
        _range_cell(measure["r2_median"], measure["r2_min"], measure["r2_max"], _r2),
        _difference_cell(measure["difference"]) if paired else "–",
        measure["verdict"] if paired else "–",
        _range_cell(measure["lead_median"], measure["lead_min"], measure["lead_max"], _steps),
    ]
    return "| " + " | ".join(cells) + " |"


def _named(entry: Mapping[str, Any], column: str) -> str:
    """A column as the sentences name it: the reference as "the LMN at <probe>"."""
    if column == entry["reference"]:
        return f"the LMN at {entry['reference'][len('lmn_') :]}"
    return f"`{column}`"


def _versus_lmn(entry: Mapping[str, Any], best: str, value: float | None, text: Callable) -> str:
    """``"; the LMN at the headline probe: <value>"``, or nothing when the best is the LMN."""
    if best == entry["reference"]:
        return ""
    return "; the LMN at the headline probe: " + ("–" if value is None else text(value))


def _findings(entry: Mapping[str, Any]) -> list[str]:
    """What the table says, in plain sentences: best R², largest lead, where the LMN loses or wins."""
    by_column = {measure["column"]: measure for measure in entry["measures"]}
    reference = by_column[entry["reference"]]
    lines = []
    if entry["best_r2"] is not None:
        best = by_column[entry["best_r2"]]
        versus = _versus_lmn(entry, best["column"], reference["r2_median"], lambda value: f"{value:.4f}")
        lines.append(
            f"- Tracks test loss best (highest median R²): {_named(entry, best['column'])}, "
            f"{best['r2_median']:.4f}{versus}."
        )
    if entry["most_lead"] is not None:
        most = by_column[entry["most_lead"]]
        steps = _range_cell(most["lead_median"], most["lead_min"], most["lead_max"], _steps)
        versus = _versus_lmn(
            entry, most["column"], reference["lead_median"], lambda value: _steps(value) + " steps"
        )
        lines.append(
            f"- Leads most (largest median lead): {_named(entry, most['column'])}, {steps} steps{versus}."
        )
    for verdict, sentence in (
        ("measure better", "The LMN loses: these are more linear in test loss than it"),
        ("lmn better", "The LMN wins: it is more linear in test loss than these"),
    ):
        found = [
            m for m in entry["measures"] if m["verdict"] == verdict and m["column"] != entry["reference"]
        ]
        if found:
            listed = "; ".join(f"`{m['column']}` ({_difference_cell(m['difference'])})" for m in found)
            lines.append(f"- {sentence}: {listed}.")
    return lines


def measures_markdown(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``summary.md`` section: per framework and task, its figure, the table and the findings."""
    if not entries:
        return []
    lines = ["", "## Progress measures against the LMN", "", PREAMBLE, ""]
    for entry in entries:
        seeds = ", ".join(str(seed) for seed in entry["seeds"])
        lines += [
            f"### {task_title(entry['task'])}, {entry['framework']} (seeds {seeds}; "
            f"{len(entry['grokked_seeds'])} grokked)",
            "",
            f"![every measure normalised to [0, 1]]({entry['figure']})",
            "",
        ]
        if not entry["measures"]:
            lines += ["No seed grokked: no compression phase to fit and no lead.", ""]
            continue
        lines += [
            "| column | probe | seeds | R²: median [range] | R²(LMN) − R²(measure) [95%], p "
            "| verdict | lead, steps: median [range] |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *(_row(measure, entry["reference"]) for measure in entry["measures"]),
            "",
            *_findings(entry),
            "",
        ]
    return lines
