"""The summary table of the reference runs: each quantity over seeds, as JSON and Markdown.

:data:`QUANTITIES` names what is read off each run's ``summary.json``;
:func:`summary_table` aggregates one framework and task over its seeds (mean, sample
standard deviation, count) and :func:`report_summary_markdown` writes ``summary.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reference_tasks.analysis import fit_r2, population_claims
from reference_tasks.analysis.claims import aggregate_values, mean_std_text
from reference_tasks.report.claims_table import claims_markdown
from reference_tasks.report.run_data import RunData
from reference_tasks.tasks import task_order, task_title


def _fit_r2(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda summary: fit_r2(summary, name)


def _entry(key: str, inner: str | None = None) -> Callable[[dict[str, Any]], Any]:
    def getter(summary: dict[str, Any]) -> Any:
        value = summary.get(key)
        return value.get(inner) if inner is not None and isinstance(value, dict) else value

    return getter


# (key in summary.json's tables, description, how to read it off a run summary, format)
QUANTITIES: tuple[tuple[str, str, Callable[[dict[str, Any]], Any], str], ...] = (
    ("memorization_step", "memorization step (train acc 100%)", _entry("memorization_step"), ".0f"),
    ("generalization_step", "generalization step (test acc 100%)", _entry("generalization_step"), ".0f"),
    ("max_test_acc", "max test accuracy", _entry("max_test_acc"), ".4f"),
    ("lmn_n_samples", "N of the LMN", _entry("lmn_n_samples"), ".0f"),
    ("lmn_hidden1_init", "LMN hidden1 at initialization", _entry("lmn_hidden1_init"), ".2f"),
    ("lmn_hidden1_memorization", "LMN hidden1 at memorization", _entry("lmn_hidden1_memorization"), ".2f"),
    (
        "lmn_hidden1_generalization",
        "LMN hidden1 at generalization",
        _entry("lmn_hidden1_generalization"),
        ".2f",
    ),
    ("lmn_hidden1_end", "LMN hidden1 at the last step", _entry("lmn_hidden1_end"), ".2f"),
    ("pearson_n_points", "checkpoints in the generalizing phase", _entry("pearson_n_points"), ".0f"),
    ("pearson_lmn_test_loss", "Pearson r, LMN vs test loss", _entry("pearson_lmn_test_loss"), ".3f"),
    ("r2_lmn_test_loss", "linear-fit R², LMN vs test loss", _fit_r2("lmn"), ".3f"),
    ("pearson_l2_test_loss", "Pearson r, L2 norm vs test loss", _entry("pearson_l2_test_loss"), ".3f"),
    ("r2_l2_test_loss", "linear-fit R², L2 norm vs test loss", _fit_r2("l2"), ".3f"),
    (
        "rebound_min_step",
        "LMN rebound: step of the minimum",
        _entry("lmn_hidden1_rebound_steps", "min"),
        ".0f",
    ),
    ("rebound_min", "LMN rebound: minimum", _entry("lmn_hidden1_rebound_min"), ".2f"),
    (
        "rebound_max_step",
        "LMN rebound: step of the maximum",
        _entry("lmn_hidden1_rebound_steps", "max"),
        ".0f",
    ),
    ("rebound_max", "LMN rebound: maximum", _entry("lmn_hidden1_rebound_max"), ".2f"),
)


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
            key: aggregate_values(getter(run.summary) for run in runs) for key, _, getter, _ in QUANTITIES
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
    specs = {key: (description, spec) for key, description, _, spec in QUANTITIES}
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
