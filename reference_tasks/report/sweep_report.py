"""A sweep's report: its tables, a phase diagram over the swept fields, Figure 2 over seeds.

Written into ``OUT/sweep/``: ``summary.csv`` and ``summary.md``
(:mod:`reference_tasks.sweep.aggregate`); with one or two swept fields,
``phase_diagram_{framework}.png`` over the fields swept over several values (a field given
one value is a setting of every run); with seeds alone (no such field), the report of
:func:`reference_tasks.report.build.build_report`, whose Figure 2 shows the mean over
seeds and its band, into ``OUT/report/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reference_tasks.analysis import run_summary
from reference_tasks.report.build import build_report
from reference_tasks.report.phase_diagram import figure_phase_diagram
from reference_tasks.runfolder import is_finished
from reference_tasks.sweep.aggregate import (
    config_statistics,
    group_configs,
    sweep_summary_markdown,
    write_summary_csv,
)
from reference_tasks.sweep.cluster import Outcome
from reference_tasks.sweep.plan import SWEEP_DIR, Sweep

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    """What :func:`write_sweep_report` wrote."""

    summary_csv: Path
    summary_md: Path
    figures: list[Path] = field(default_factory=list)


def outcomes_on_disk(sweep: Sweep, out: Path) -> list[Outcome]:
    """Each run of ``sweep`` as its folder holds it: finished with its summary, or not finished."""
    return [
        Outcome(run, summary=run_summary(run.out_dir))
        if is_finished(run.out_dir)
        else Outcome(run, error="not finished")
        for run in sweep.runs(out)
    ]


def write_sweep_report(
    sweep: Sweep, out: Path, *, known: Sequence[Outcome] = (), progress: bool = False
) -> SweepReport:
    """Write the tables and figures of ``sweep`` under ``out``.

    Each run's outcome is read from its folder, unless ``known`` holds it (the errors of
    the runs that failed in this session).
    """
    given = {outcome.run.out_dir: outcome for outcome in known}
    outcomes = [given.get(outcome.run.out_dir, outcome) for outcome in outcomes_on_disk(sweep, out)]
    folder = out / SWEEP_DIR
    report = SweepReport(
        write_summary_csv(folder / "summary.csv", outcomes, sweep.fields),
        folder / "summary.md",
    )
    report.summary_md.write_text(sweep_summary_markdown(outcomes, sweep.fields))
    if len(sweep.axes) in (1, 2):
        report.figures.append(_phase_diagram(sweep, outcomes, folder))
    elif not sweep.axes and any(outcome.summary is not None for outcome in outcomes):
        report.figures.extend(build_report(out, progress=progress).figures)
    else:
        logger.info(
            "a phase diagram needs one or two fields swept over several values; %s has %d",
            out,
            len(sweep.axes),
        )
    return report


def _phase_diagram(sweep: Sweep, outcomes: Sequence[Outcome], folder: Path) -> Path:
    """Heatmaps over the sweep's axes (one axis: a single row, its seeds pooled per value)."""
    cells: dict[str, dict[tuple, dict]] = {}
    for (_, task, *values), members in group_configs(outcomes, sweep.axes).items():
        cells.setdefault(task, {})[(values[0], values[1] if len(values) > 1 else "")] = config_statistics(
            members
        )
    fields = (sweep.axes[0], sweep.axes[1] if len(sweep.axes) > 1 else "")
    path = folder / f"phase_diagram_{sweep.framework}.png"
    return figure_phase_diagram(cells, fields, path, framework=sweep.framework)
