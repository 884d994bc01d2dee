"""A sweep's tables: ``summary.csv`` (one row per run) and ``summary.md`` (one line per config).

A config is a task with one value of every swept field; its runs are its seeds. A run
*grokked* when its test accuracy reached 100% (its generalization step exists).
"""

from __future__ import annotations

import csv
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reference_tasks.analysis.claims import aggregate_values, mean_std_text
from reference_tasks.runfolder.run_summary import CSV_COLUMNS, FITTED
from reference_tasks.sweep.cluster import Outcome
from reference_tasks.sweep.plan import format_value


def summary_row(outcome: Outcome, fields: Sequence[str], out: Path | None = None) -> dict[str, Any]:
    """One ``summary.csv`` row: the run's identity, swept values, status and results.

    ``run_dir`` is relative to the sweep's ``out`` folder when given (the table moves with it).
    """
    run, summary = outcome.run, outcome.summary
    row: dict[str, Any] = {"framework": run.framework, "task": run.config.task, "seed": run.config.seed}
    row.update({field: getattr(run.config, field) for field in fields})
    row["status"] = "failed" if outcome.error is not None else "finished"
    row.update(dict.fromkeys(CSV_COLUMNS) if summary is None else summary.csv_row())
    row["error"] = outcome.error
    row["run_dir"] = str(run.out_dir if out is None else Path(os.path.relpath(run.out_dir, out)))
    return row


def write_summary_csv(path: Path, outcomes: Sequence[Outcome], fields: Sequence[str]) -> Path:
    """Write one row per run (empty cells for values a run does not have) to ``OUT/sweep/summary.csv``."""
    rows = [summary_row(outcome, fields, path.parent.parent) for outcome in outcomes]
    columns = ["framework", "task", "seed", *fields, "status", *CSV_COLUMNS, "error", "run_dir"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return path


def group_configs(outcomes: Sequence[Outcome], fields: Sequence[str]) -> dict[tuple[Any, ...], list[Outcome]]:
    """Outcomes by ``(framework, task, *swept values)``, in the order first met."""
    groups: dict[tuple[Any, ...], list[Outcome]] = {}
    for outcome in outcomes:
        config = outcome.run.config
        key = (outcome.run.framework, config.task, *(getattr(config, field) for field in fields))
        groups.setdefault(key, []).append(outcome)
    return groups


def config_statistics(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Over one config's seeds: runs, failures, grokked fraction, generalization steps, R²."""
    finished = [outcome.summary for outcome in outcomes if outcome.summary is not None]
    steps = [s.generalization_step for s in finished if s.grokked]
    stats: dict[str, Any] = {
        "n_runs": len(outcomes),
        "n_failed": len(outcomes) - len(finished),
        "grokked_fraction": len(steps) / len(finished) if finished else math.nan,
        "generalization_median": statistics.median(steps) if steps else None,
        "generalization_range": (min(steps), max(steps)) if steps else None,
    }
    for name in FITTED:
        values = [r2 for r2 in (s.fit_r2(name) for s in finished) if r2 is not None]
        stats[f"r2_{name}"] = values
    return stats


def sweep_summary_markdown(outcomes: Sequence[Outcome], fields: Sequence[str]) -> str:
    """``summary.md``: per config, the grokked fraction, generalization steps and mean ± std R²."""
    header = ["framework", "task", *fields, "runs", "grokked", "generalization step: median [range]"]
    header += ["R² LMN vs test loss", "R² L2 vs test loss"]
    lines = [
        "# Sweep summary",
        "",
        "One line per config; its runs are its seeds. Grokked: runs whose test accuracy reached 100%,",
        "over the finished runs. R²: the least-squares line against test loss over the generalizing",
        "phase, mean ± sample standard deviation over the runs that have one.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    for key, members in group_configs(outcomes, fields).items():
        stats = config_statistics(members)
        finished = stats["n_runs"] - stats["n_failed"]
        grokked = round(stats["grokked_fraction"] * finished) if finished else 0
        steps = "–"
        if stats["generalization_range"] is not None:
            low, high = stats["generalization_range"]
            steps = f"{stats['generalization_median']:g} [{low}, {high}]"
        runs = f"{stats['n_runs']}" + (f" ({stats['n_failed']} failed)" if stats["n_failed"] else "")
        cells = [*(format_value(value) for value in key), runs, f"{grokked}/{finished}", steps]
        cells += [mean_std_text(aggregate_values(stats[key]), ".3f") for key in ("r2_lmn", "r2_l2")]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"- `{outcome.run.out_dir}`: {outcome.error}" for outcome in failed]
    return "\n".join(lines) + "\n"
