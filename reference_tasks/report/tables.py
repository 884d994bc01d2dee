"""The summary table of the reference runs: each quantity over seeds, as JSON and Markdown.

:data:`reference_tasks.runfolder.run_summary.TABLE_QUANTITIES` names what is read off each
run's summary; :func:`summary_table` aggregates one framework and task over its seeds (mean, sample
standard deviation, count) and :func:`report_summary_markdown` writes ``summary.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reference_tasks.analysis import population_claims
from reference_tasks.analysis.claims import aggregate_values, mean_std_text
from reference_tasks.report.claims_table import claims_markdown
from reference_tasks.report.run_data import RunData
from reference_tasks.runfolder.run_summary import TABLE_QUANTITIES
from reference_tasks.tasks import task_order, task_title


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
    """The aggregated row of one framework and task: seeds and each quantity's statistics."""
    return {
        "framework": runs[0].framework,
        "task": runs[0].task,
        "seeds": [run.seed for run in runs],
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
        "the largest rise of LMN (hidden1) after the generalization step: its minimum comes before its",
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
