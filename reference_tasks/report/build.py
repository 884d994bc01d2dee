"""Every figure and the summary table of the paper's experiments, from saved run folders alone.

:func:`build_report` reads the finished runs under ``RUNS_DIR/{framework}/{task}-seed{seed}/``
and writes into ``out_dir`` (``RUNS_DIR/report`` by default), for each framework:

- ``fig2_training_{framework}.png`` (and ``..._linear.png``, the same on a linear step
  axis), ``fig3_probes_{framework}.png``,
  ``fig_claim_{framework}.png`` (see ``reference_tasks.report.figures``);
- ``fig4_connectivity_{framework}_{task}.png`` for the lowest seed of each task whose
  run folder holds weight snapshots: the ``hidden1`` connectivity matrix recomputed
  with NumPy from the snapshots at initialization, memorization and generalization
  (the last checkpoint if the run never generalized). The recomputed LMN is checked
  against ``metrics.csv``; a relative difference over ``LMN_RTOL`` is logged as a warning;

and ``summary.md`` and ``summary.json``: per framework and task, each quantity of
:data:`QUANTITIES` as mean ± sample standard deviation over seeds with the number of
seeds that have it. It needs NumPy, matplotlib and ``lmn_core``; no deep-learning framework.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference_tasks.report import figures
from reference_tasks.report.run_data import RunData, checkpoint_lmn, find_runs, recorded_lmn
from reference_tasks.runfolder import write_json

logger = logging.getLogger(__name__)

LMN_RTOL = 1e-4
REPORT_DIR = "report"
PHASE_POINTS = (
    ("init", "initialization"),
    ("memorization", "memorization"),
    ("generalization", "generalization"),
)


def _fit_r2(name: str) -> Callable[[dict[str, Any]], Any]:
    def getter(summary: dict[str, Any]) -> Any:
        fit = summary.get(f"linear_fit_{name}_test_loss")
        return None if fit is None else fit["r2"]

    return getter


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


@dataclass(frozen=True)
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    out_dir : Path
        The report folder.
    figures : list of Path
        The PNG files, in the order they were written.
    summary_md, summary_json : Path
        The summary table as Markdown and as JSON.
    runs : list of Path
        The run folders the report used.
    skipped : list of Path
        Run folders left out because they are not finished.
    """

    out_dir: Path
    figures: list[Path]
    summary_md: Path
    summary_json: Path
    runs: list[Path]
    skipped: list[Path]


def aggregate_values(values: Iterable[Any]) -> dict[str, float | int | None]:
    """``{"mean", "std", "n"}`` of the values that are not ``None`` or NaN.

    ``std`` is the sample standard deviation (``ddof=1``), ``None`` with fewer than 2
    values; ``mean`` is ``None`` with none.
    """
    present = np.array([float(v) for v in values if v is not None and math.isfinite(float(v))])
    return {
        "mean": float(present.mean()) if present.size else None,
        "std": float(present.std(ddof=1)) if present.size > 1 else None,
        "n": int(present.size),
    }


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
    }


def _format(stats: dict[str, Any], spec: str) -> str:
    if stats["mean"] is None:
        return "–"
    text = format(stats["mean"], spec)
    return text if stats["std"] is None else f"{text} ± {format(stats['std'], spec)}"


def _overview(tables: Sequence[dict[str, Any]], specs: dict[str, tuple[str, str]]) -> list[str]:
    """One column per task and framework, side by side (the per-table sections give the n)."""
    if not tables:
        return []
    tables = sorted(tables, key=lambda table: (_task_order(table["task"]), table["framework"] != "torch"))
    columns = [f"{table['task']} {table['framework']}" for table in tables]
    lines = [
        "## Overview",
        "",
        "| quantity | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for key, (description, spec) in specs.items():
        cells = [_format(table["quantities"][key], spec) for table in tables]
        lines.append(f"| {description} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def summary_markdown(tables: Sequence[dict[str, Any]], checks: Sequence[dict[str, Any]]) -> str:
    """``summary.md``: one table per task and framework, then the Figure 4 LMN checks."""
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
    lines += _overview(tables, specs)
    for table in tables:
        seeds = ", ".join(str(seed) for seed in table["seeds"])
        lines += [
            f"## {figures.task_title(table['task'])}, {table['framework']} (seeds {seeds})",
            "",
            "| quantity | mean ± std | n |",
            "| --- | --- | --- |",
        ]
        for key, stats in table["quantities"].items():
            description, spec = specs[key]
            lines.append(f"| {description} | {_format(stats, spec)} | {stats['n']} |")
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


def _panel_steps(run: RunData) -> list[tuple[str, str, int]]:
    """``(point, label, step)`` of the Figure 4 rows that have a snapshot (warns about the rest)."""
    available = run.snapshot_steps
    steps = run.summary["lmn_hidden1_steps"]
    chosen = []
    for point, label in PHASE_POINTS:
        step = steps.get(point)
        if step is None and point == "generalization":
            generalized = run.summary["generalization_step"]
            label = (
                "never generalized: last checkpoint"
                if generalized is None
                else f"no LMN checkpoint after generalization (step {generalized}): last checkpoint"
            )
            later = [s for s in available if s >= (steps.get("memorization") or 0)]
            step = later[-1] if later else None
            if step is None:
                logger.warning("%s: %s; but no snapshot after memorization", run.path, label)
                continue
        if step is None:
            logger.warning(
                "%s: no %s point (no LMN measured there); its Figure 4 row is left out", run.path, point
            )
        elif step not in available:
            logger.warning(
                "%s: no weight snapshot at the %s step %d; its Figure 4 row is left out",
                run.path,
                point,
                step,
            )
        else:
            chosen.append((point, label, step))
    return chosen


def _connectivity_panels(
    run: RunData, bar: Callable[[Iterable[Any]], Iterable[Any]]
) -> tuple[list[figures.ConnectivityPanel], list[dict[str, Any]]]:
    panels, checks = [], []
    for point, label, step in bar(_panel_steps(run)):
        result = checkpoint_lmn(run, step)
        recorded = recorded_lmn(run, step)
        difference = None if recorded is None else abs(result.lmn - recorded) / abs(recorded)
        if difference is None or difference > LMN_RTOL:
            logger.warning(
                "%s step %d: the LMN recomputed from the snapshot is %.6g but metrics.csv records %s "
                "(relative tolerance %g)",
                run.path,
                step,
                result.lmn,
                recorded,
                LMN_RTOL,
            )
        panels.append(
            figures.ConnectivityPanel(
                label, step, result.connectivity, result.eigenvalues, result.lmn, recorded
            )
        )
        checks.append(
            {
                "framework": run.framework,
                "task": run.task,
                "seed": run.seed,
                "point": point,
                "step": step,
                "lmn": result.lmn,
                "recorded_lmn": recorded,
                "relative_difference": difference,
                "n_samples": result.n_samples,
                "negative_mass": result.negative_mass,
            }
        )
    return panels, checks


def _progress(enabled: bool, desc: str) -> Callable[[Iterable[Any]], Iterable[Any]]:
    if not enabled:
        return lambda items: items
    try:
        from tqdm.auto import tqdm
    except ImportError as error:
        raise ImportError("progress=True needs tqdm: pip install 'lmn[progress]'") from error
    return lambda items: tqdm(list(items), desc=desc, leave=False)


def build_report(
    runs_dir: str | Path, out_dir: str | Path | None = None, *, progress: bool = False
) -> ReportResult:
    """Write every figure and the summary table of the finished runs under ``runs_dir``.

    Parameters
    ----------
    runs_dir : str or Path
        Folder holding ``{framework}/{task}-seed{seed}/`` run folders.
    out_dir : str or Path, optional
        Where to write; ``runs_dir/report`` by default (created if needed).
    progress : bool
        Show progress bars (needs tqdm).

    Returns
    -------
    ReportResult

    Raises
    ------
    ValueError
        If ``runs_dir`` holds no finished run.
    """
    runs_dir = Path(runs_dir)
    out_dir = runs_dir / REPORT_DIR if out_dir is None else Path(out_dir)
    runs, skipped = find_runs(runs_dir)
    if not runs:
        hint = (
            f"; {runs_dir} itself looks like one framework's folder: pass its parent"
            if any(runs_dir.glob("*/config.json"))
            else ""
        )
        raise ValueError(
            f"no finished runs under {runs_dir} (expected {runs_dir}/{{framework}}/{{task}}-seed{{seed}}/ "
            f"with config.json, metrics.csv and summary.json; {len(skipped)} unfinished){hint}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tables: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    groups = group_runs(runs)
    for framework in _progress(progress, "report")(sorted(groups)):
        by_task = groups[framework]
        written.append(
            figures.figure_training(by_task, out_dir / f"fig2_training_{framework}.png", framework=framework)
        )
        written.append(
            figures.figure_training(
                by_task,
                out_dir / f"fig2_training_{framework}_linear.png",
                framework=framework,
                log_steps=False,
            )
        )
        written.append(
            figures.figure_probes(by_task, out_dir / f"fig3_probes_{framework}.png", framework=framework)
        )
        written.append(
            figures.figure_claim(by_task, out_dir / f"fig_claim_{framework}.png", framework=framework)
        )
        for task, task_runs in sorted(by_task.items(), key=lambda item: _task_order(item[0])):
            tables.append(summary_table(task_runs))
            with_snapshots = [run for run in task_runs if run.snapshot_steps]
            if not with_snapshots:
                logger.warning(
                    "Figure 4 of %s %s is skipped: no run folder has weight snapshots (%s)",
                    framework,
                    task,
                    ", ".join(str(run.path) for run in task_runs),
                )
                continue
            run = with_snapshots[0]
            panels, run_checks = _connectivity_panels(
                run, _progress(progress, f"Figure 4 {framework} {task}")
            )
            checks.extend(run_checks)
            if not panels:
                logger.warning(
                    "Figure 4 of %s %s is skipped: no snapshot at any phase point", framework, task
                )
                continue
            title = (
                f"Figure 4: {figures.task_title(task)} ({framework}, seed {run.seed}): hidden1 connectivity "
                "matrix and its eigenvalues"
            )
            written.append(
                figures.figure_connectivity(
                    panels, out_dir / f"fig4_connectivity_{framework}_{task}.png", title=title, seed=run.seed
                )
            )
    summary_md = out_dir / "summary.md"
    summary_md.write_text(summary_markdown(tables, checks))
    summary_json = out_dir / "summary.json"
    write_json(
        summary_json,
        {
            "runs_dir": str(runs_dir),
            "std": "sample standard deviation over seeds (ddof=1); null with fewer than 2 values",
            "tables": tables,
            "runs": [run.summary | {"path": str(run.path)} for run in runs],
            "skipped": [str(path) for path in skipped],
            "connectivity_checks": checks,
            "figures": [path.name for path in written],
        },
    )
    return ReportResult(out_dir, written, summary_md, summary_json, [run.path for run in runs], skipped)


def _task_order(task: str) -> tuple[int, str]:
    order = list(figures.TASK_TITLES)
    return (order.index(task) if task in order else len(order), task)
