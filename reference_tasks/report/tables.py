"""The summary table of the reference runs: each quantity over seeds, as JSON and Markdown.

:data:`reference_tasks.runfolder.run_summary.TABLE_QUANTITIES` names what is read off each
run's summary; :func:`summary_table` aggregates one framework and task over its seeds (mean, sample
standard deviation, count) and :func:`report_summary_markdown` writes ``summary.md``.
For piecewise-linear runs, :func:`region_section` gives the LMN against their exact linear
regions over seeds (the ``regions`` entry of each run summary,
``reference_tasks.analysis.regions``, and :func:`reference_tasks.analysis.claims.region_claims`),
as a Markdown section and JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reference_tasks.analysis import population_claims
from reference_tasks.analysis.claims import (
    BOOTSTRAP_RESAMPLES,
    aggregate_values,
    mean_std_text,
    region_claims,
)
from reference_tasks.analysis.regions import value_at
from reference_tasks.experiment import task_order, task_title
from reference_tasks.report.claims_table import claims_markdown
from reference_tasks.report.region_figures import region_probes
from reference_tasks.report.run_data import RunData
from reference_tasks.runfolder.run_summary import PHASE_POINTS, TABLE_QUANTITIES


def group_runs(runs: Sequence[RunData]) -> dict[str, dict[str, list[RunData]]]:
    """Runs by framework, then task (each list sorted by seed)."""
    groups: dict[str, dict[str, list[RunData]]] = {}
    for run in runs:
        groups.setdefault(run.framework, {}).setdefault(run.task, []).append(run)
    for by_task in groups.values():
        for task_runs in by_task.values():
            task_runs.sort(key=lambda run: run.seed)
    return groups


def summary_table(runs: Sequence[RunData]) -> dict[str, Any]:
    """The aggregated row of one framework and task: seeds, headline probe and each quantity's statistics."""
    return {
        "framework": runs[0].framework,
        "task": runs[0].task,
        "seeds": [run.seed for run in runs],
        "headline_probe": runs[0].summary.headline_probe,
        "n_runs": len(runs),
        "quantities": {
            quantity.key: aggregate_values(quantity.read(run.summary) for run in runs)
            for quantity in TABLE_QUANTITIES
        },
        "claims": population_claims([run.summary for run in runs]),
    }


def _overview(tables: Sequence[dict[str, Any]], specs: dict[str, tuple[str, str]]) -> list[str]:
    """One column per task and framework, side by side (the per-table sections give the n)."""
    if not tables:
        return []
    tables = sorted(tables, key=lambda table: (task_order(table["task"]), table["framework"] != "torch"))
    columns = [f"{table['task']} {table['framework']}" for table in tables]
    lines = [
        "## Overview",
        "",
        "| quantity | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for key, (description, spec) in specs.items():
        cells = [mean_std_text(table["quantities"][key], spec) for table in tables]
        lines.append(f"| {description} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def report_summary_markdown(tables: Sequence[dict[str, Any]], checks: Sequence[dict[str, Any]]) -> str:
    """``summary.md``: the claims over seeds, one table per task and framework, the Figure 4 checks."""
    lines = [
        "# Summary of the reference runs",
        "",
        "Mean ± sample standard deviation over seeds (± omitted for one seed); n: seeds that have the value",
        "(a run that never generalized has no generalization step). Pearson r and R² are taken over the",
        "LMN checkpoints of the generalizing phase (memorization to generalization step, both included);",
        "R² is that of the least-squares line of LMN (resp. L2 norm) against test loss. The LMN rebound is",
        "the largest rise of the headline LMN after the generalization step: its minimum comes before its",
        "maximum (the paper's XOR double descent), searched only while training is stable: up to the",
        "first step after memorization where train accuracy falls below 100% (a float32 blow-up).",
        "",
    ]
    specs = {quantity.key: (quantity.description, quantity.spec) for quantity in TABLE_QUANTITIES}
    ordered = sorted(tables, key=lambda table: (table["framework"] != "torch", task_order(table["task"])))
    lines += claims_markdown([(table["framework"], table["claims"]) for table in ordered])
    lines += _overview(tables, specs)
    for table in tables:
        seeds = ", ".join(str(seed) for seed in table["seeds"])
        lines += [
            f"## {task_title(table['task'])}, {table['framework']} (seeds {seeds})",
            "",
            f"The LMN is that at the headline probe, `{table['headline_probe']}`.",
            "",
            "| quantity | mean ± std | n |",
            "| --- | --- | --- |",
        ]
        for key, stats in table["quantities"].items():
            description, spec = specs[key]
            lines.append(f"| {description} | {mean_std_text(stats, spec)} | {stats['n']} |")
        lines.append("")
    if checks:
        lines += [
            "## Figure 4: LMN recomputed from the snapshots against metrics.csv",
            "",
            "| framework | task | seed | point | step | recomputed | metrics.csv | relative difference |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for check in checks:
            recorded = "–" if check["recorded_lmn"] is None else f"{check['recorded_lmn']:.6g}"
            difference = (
                "–" if check["relative_difference"] is None else f"{check['relative_difference']:.1e}"
            )
            lines.append(
                f"| {check['framework']} | {check['task']} | {check['seed']} | {check['point']} "
                f"| {check['step']} | {check['lmn']:.6g} | {recorded} | {difference} |"
            )
        lines.append("")
    return "\n".join(lines)


REGION_PREAMBLE = (
    "Piecewise-linear runs only. *r*: Pearson correlation over training of the LMN with a region "
    "quantity at the same probe, per seed, over the checkpoints of the generalizing phase "
    "(memorization to generalization step, seeds that grokked) or of the whole run; the cell gives its "
    f"mean over seeds, the 95% bias-corrected bootstrap interval of that mean ({BOOTSTRAP_RESAMPLES} "
    "resamples) and the two-sided Wilcoxon signed-rank p-value of r against zero. A seed whose region "
    "quantity (or LMN) did not move over the span has no r: it is counted as *undefined* (for example "
    "when every sample lies in a region of its own at every checkpoint). *Pieces*: linear pieces along a "
    "segment between two samples, mean over all N(N-1)/2 pairs; *regions*: distinct activation patterns "
    "of the N samples; *perplexity*: 2^H of their occupancy (the LMN of the region connectivity matrix). "
    "A span with fewer than 3 checkpoints in a seed (the embedding's generalizing phase, measured at "
    "about one checkpoint in 10) gives that seed no r and is left out."
)
# The region quantities in the order the table gives them.
REGION_QUANTITY_NAMES = {
    "pieces_mean": "mean pieces",
    "region_perplexity": "region perplexity",
    "regions": "occupied regions",
    "pieces_median": "median pieces",
}


def _cell(entry: Mapping[str, Any] | None) -> str:
    if entry is None or (entry["mean"] is None and not entry["undefined_seeds"]):
        return "–"
    text = "undefined" if entry["mean"] is None else f"{entry['mean']:+.2f}"
    if entry["low"] is not None:
        text += f" [{entry['low']:+.2f}, {entry['high']:+.2f}]"
    if entry["p_value"] is not None:
        text += f", p = {entry['p_value']:.2g}"
    if entry["undefined_seeds"]:
        text += f" ({len(entry['undefined_seeds'])} undefined)"
    return text


def _per_seed(entry: Mapping[str, Any]) -> str:
    values = [f"{seed}: {r:+.3f}" for seed, r in zip(entry["seeds"], entry["r"], strict=True)]
    values += [f"{seed}: undefined" for seed in entry["undefined_seeds"]]
    return ", ".join(values) or "–"


def _phase_values(runs: Sequence[RunData], probe: str, quantity: str) -> str:
    """Mean over seeds of a quantity at each phase point, ``init → memorization → generalization → end``."""
    values = []
    for point in PHASE_POINTS:
        at = [value_at(run.summary.regions[probe], point) for run in runs if probe in run.summary.regions]
        mean = aggregate_values([entry[quantity] for entry in at if entry is not None])["mean"]
        values.append("–" if mean is None else f"{mean:.1f}")
    return " → ".join(values)


def region_section(
    runs_by_group: Sequence[tuple[str, str, Sequence[RunData]]],
) -> tuple[list[str], list[dict]]:
    """The Markdown lines and the JSON entries for every framework and task with region runs."""
    groups = [
        (framework, task, [run for run in runs if run.summary.regions])
        for framework, task, runs in runs_by_group
    ]
    groups = [(framework, task, runs) for framework, task, runs in groups if runs]
    if not groups:
        return [], []
    lines = ["", "## The LMN and the exact linear regions", "", REGION_PREAMBLE, ""]
    header = "| task | framework | seeds | grokked | generalization step: median [range] | probe | span | "
    lines += [
        header + " | ".join(REGION_QUANTITY_NAMES.values()) + " |",
        "| --- " * (7 + len(REGION_QUANTITY_NAMES)) + "|",
    ]
    entries = []
    for framework, task, runs in groups:
        summaries = [run.summary for run in runs]
        claims, population = region_claims(summaries), population_claims(summaries)
        steps = population["generalization_steps"]
        step = "–" if steps["median"] is None else f"{steps['median']:.0f} [{steps['min']}, {steps['max']}]"
        for probe, spans in claims.items():
            for span, by_quantity in spans.items():
                cells = " | ".join(_cell(by_quantity.get(q)) for q in REGION_QUANTITY_NAMES)
                lines.append(
                    f"| {task_title(task)} | {framework} | {len(runs)} | {population['grokked']}/{len(runs)} "
                    f"| {step} | {probe} | {span} | {cells} |"
                )
        entries.append(
            {
                "framework": framework,
                "task": task,
                "seeds": population["seeds"],
                "headline_probe": runs[0].config.headline_probe,
                "claims": claims,
            }
        )
    lines += ["", "Per seed, at the headline probe, generalizing phase (seed: r):", ""]
    for entry in entries:
        spans = entry["claims"].get(entry["headline_probe"], {}).get("generalizing", {})
        for quantity in ("pieces_mean", "region_perplexity"):
            if quantity in spans:
                where = f"{task_title(entry['task'])}, {entry['framework']}, {entry['headline_probe']}"
                what = f"{where}, {REGION_QUANTITY_NAMES[quantity]}"
                lines.append(f"- {what}: {_per_seed(spans[quantity])}")
    lines += ["", "Mean over seeds at initialization → memorization → generalization → the last step:", ""]
    lines += ["| task | framework | probe | LMN | mean pieces | occupied regions | region perplexity |"]
    lines += ["| --- | --- | --- | --- | --- | --- | --- |"]
    for framework, task, runs in groups:
        for probe in region_probes(runs):
            if any(probe in (run.summary.regions or {}) for run in runs):
                cells = " | ".join(
                    _phase_values(runs, probe, quantity)
                    for quantity in ("lmn", "pieces_mean", "regions", "region_perplexity")
                )
                lines.append(f"| {task_title(task)} | {framework} | {probe} | {cells} |")
    return [*lines, ""], entries
