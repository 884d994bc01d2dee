"""Copy finished run folders into ``results/``, keeping only what ``lmn report`` reads.

Usage: ``python results/copy_runs.py RUNS_DIR [RESULTS_DIR]``. For every finished run
under ``RUNS_DIR/{framework}/`` it copies ``config.json``, ``metrics.csv`` and
``summary.json``; for the lowest seed of each framework and task (the run Figure 4 draws)
also the weight snapshots at its phase points (``RunSummary.lmn_steps``, read from its
``summary.json`` in either spelling of the headline LMN's keys).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from reference_tasks.runfolder.run_summary import RunSummary

KEPT_FILES = ("config.json", "metrics.csv", "summary.json")


def finished_runs(runs_dir: Path) -> list[Path]:
    """The run folders under ``runs_dir/{framework}/`` that hold a summary."""
    return sorted(path.parent for path in runs_dir.glob("*/*/summary.json"))


def read_summary(run: Path) -> RunSummary:
    """The summary a run folder saved (its ``summary.json``)."""
    return RunSummary.from_json(json.loads((run / "summary.json").read_text()))


def copy_run(run: Path, target: Path, *, with_snapshots: bool) -> None:
    """Copy one run's kept files (and its phase-point snapshots if asked) to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in KEPT_FILES:
        shutil.copy2(run / name, target / name)
    if not with_snapshots:
        return
    steps = read_summary(run).lmn_steps.values()
    (target / "snapshots").mkdir(exist_ok=True)
    for step in sorted({step for step in steps if step is not None}):
        name = f"step_{step:06d}.npz"
        shutil.copy2(run / "snapshots" / name, target / "snapshots" / name)


def main(runs_dir: Path, results_dir: Path) -> None:
    """Copy every finished run of ``runs_dir`` into ``results_dir``."""
    lowest: dict[tuple[str, str], tuple[int, Path]] = {}
    runs = finished_runs(runs_dir)
    for run in runs:
        summary = read_summary(run)
        key = (run.parent.name, summary.task)
        if key not in lowest or summary.seed < lowest[key][0]:
            lowest[key] = (summary.seed, run)
    figure4 = {path for _, path in lowest.values()}
    for run in runs:
        copy_run(run, results_dir / run.parent.name / run.name, with_snapshots=run in figure4)
    print(f"copied {len(runs)} runs into {results_dir} (snapshots of {len(figure4)})")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parent)
