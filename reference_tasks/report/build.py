"""Every figure and the summary table of the paper's experiments, from saved run folders alone.

:func:`build_report` reads the finished runs under ``RUNS_DIR/{framework}/{task}-seed{seed}/``
and writes into ``out_dir`` (``RUNS_DIR/report`` by default), for each framework:

- ``fig2_training_{framework}.png`` (and ``..._linear.png``, the same on a linear step
  axis), ``fig3_probes_{framework}.png`` (see ``reference_tasks.report.figures``),
  ``fig_claim_{framework}.png`` and ``fig_claim_r2_{framework}.png`` (see
  ``reference_tasks.report.claim_figures``); for piecewise-linear runs also
  ``fig_regions_{framework}.png`` and ``fig_regions_lmn_{framework}.png`` (see
  ``reference_tasks.report.region_figures``);
- ``fig4_connectivity_{framework}_{task}.png`` for the lowest seed of each task whose
  run folder holds weight snapshots: the ``hidden1`` connectivity matrix recomputed
  with NumPy from the snapshots at initialization, memorization and generalization
  (the last checkpoint if the run never generalized). The recomputed LMN is checked
  against ``metrics.csv`` (see ``reference_tasks.report.figure4``);
- ``fig_measures_{framework}_{task}.png`` for every task: each progress measure the runs
  recorded, the L2 norm and the LMN at every probe, normalised to [0, 1] against the step with
  the phases shaded (see ``reference_tasks.report.measure_table``);

and ``summary.md`` and ``summary.json``: per framework and task, the paper's claims over
its seeds (``reference_tasks.analysis.population_claims``), and each quantity of
:data:`reference_tasks.runfolder.run_summary.TABLE_QUANTITIES` as mean ± sample standard deviation over
seeds with the number of seeds that have it, and for piecewise-linear runs the LMN against
their exact linear regions (``reference_tasks.report.tables.region_section``), and every
progress measure against the LMN at the headline probe (R², the paired difference, the lead;
``reference_tasks.report.measure_table``, under ``progress_measures``). It needs NumPy,
matplotlib and ``lmn_core``; no deep-learning framework.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_tasks.experiment import task_order
from reference_tasks.report import claim_figures, figures, region_figures
from reference_tasks.report.figure4 import figure4_drawing
from reference_tasks.report.measure_table import measure_comparison, measure_drawing, measures_markdown
from reference_tasks.report.run_data import RunData, find_runs
from reference_tasks.report.tables import group_runs, region_section, report_summary_markdown, summary_table
from reference_tasks.runfolder import write_json

REPORT_DIR = "report"


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
        raise _no_runs_error(runs_dir, skipped)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawings: list[Callable[[], Path]] = []
    tables: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    measures: list[dict[str, Any]] = []
    groups = group_runs(runs)
    for framework in _progress(progress, "report")(sorted(groups)):
        by_task = groups[framework]
        drawings += _framework_figures(by_task, out_dir, framework)
        for task, task_runs in sorted(by_task.items(), key=lambda item: task_order(item[0])):
            tables.append(summary_table(task_runs))
            measures.append(measure_comparison(task_runs))
            drawings.append(measure_drawing(task_runs, out_dir))
            figure, run_checks = figure4_drawing(
                task_runs, out_dir, _progress(progress, f"Figure 4 {framework} {task}")
            )
            checks += run_checks
            drawings += [] if figure is None else [figure]
    written = draw(drawings)
    region_lines, region_entries = region_section(
        [
            (framework, task, task_runs)
            for framework in sorted(groups)
            for task, task_runs in sorted(groups[framework].items(), key=lambda item: task_order(item[0]))
        ]
    )
    summary_md = out_dir / "summary.md"
    summary_md.write_text(
        report_summary_markdown(tables, checks) + "\n".join(region_lines + measures_markdown(measures))
    )
    summary_json = out_dir / "summary.json"
    write_json(
        summary_json,
        {
            "runs_dir": str(runs_dir),
            "std": "sample standard deviation over seeds (ddof=1); null with fewer than 2 values",
            "tables": tables,
            "runs": [run.summary.to_json() | {"path": str(run.path)} for run in runs],
            "skipped": [str(path) for path in skipped],
            "connectivity_checks": checks,
            "regions": region_entries,
            "progress_measures": measures,
            "figures": [path.name for path in written],
        },
    )
    return ReportResult(out_dir, written, summary_md, summary_json, [run.path for run in runs], skipped)


def _no_runs_error(runs_dir: Path, skipped: Sequence[Path]) -> ValueError:
    hint = (
        f"; {runs_dir} itself looks like one framework's folder: pass its parent"
        if any(runs_dir.glob("*/config.json"))
        else ""
    )
    return ValueError(
        f"no finished runs under {runs_dir} (expected {runs_dir}/{{framework}}/{{task}}-seed{{seed}}/ "
        f"with config.json, metrics.csv and summary.json; {len(skipped)} unfinished){hint}"
    )


def draw(drawings: Sequence[Callable[[], Path]]) -> list[Path]:
    """Draw every figure (each a call that writes it and returns its path, picklable) and return
    their paths in order: in a process per CPU when there are several (matplotlib holds the
    GIL; the reproduction's report ran 22 s on one)."""
    n_processes = min(len(drawings), (os.cpu_count() or 1))
    if n_processes < 2:
        return [drawing() for drawing in drawings]
    with ProcessPoolExecutor(n_processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(drawing) for drawing in drawings]
        return [future.result() for future in futures]


#: Figures 2 (log and linear steps), 3 and the claim figures, drawn per framework.
FRAMEWORK_FIGURES = (
    (figures.figure_training, "fig2_training_{}.png", {}),
    (figures.figure_training, "fig2_training_{}_linear.png", {"log_steps": False}),
    (figures.figure_probes, "fig3_probes_{}.png", {}),
    (claim_figures.figure_claim, "fig_claim_{}.png", {}),
    (claim_figures.figure_claim_r2, "fig_claim_r2_{}.png", {}),
)


#: Drawn per framework when some runs recorded linear regions.
REGION_FIGURES = (
    (region_figures.figure_regions, "fig_regions_{}.png", {}),
    (region_figures.figure_lmn_pieces, "fig_regions_lmn_{}.png", {}),
)


def _framework_figures(
    by_task: Mapping[str, Sequence[RunData]], out_dir: Path, framework: str
) -> list[Callable[[], Path]]:
    """The :data:`FRAMEWORK_FIGURES` of one framework, to draw."""
    recorded_regions = any(run.summary.regions for runs in by_task.values() for run in runs)
    kinds = FRAMEWORK_FIGURES + (REGION_FIGURES if recorded_regions else ())
    return [
        functools.partial(function, by_task, out_dir / name.format(framework), framework=framework, **extra)
        for function, name, extra in kinds
    ]
