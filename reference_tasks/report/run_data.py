"""Finished run folders read back for the report: config, metrics, summary, snapshots.

Runs live at ``RUNS_DIR/{framework}/{task}-seed{seed}/``. A run is *finished* when its
``summary.json`` exists; unfinished runs are skipped with a warning. Its summary is
:func:`reference_tasks.analysis.run_summary`'s: computed from ``metrics.csv`` (so analyses
added since the run was trained apply to it too), with the saved facts (sizes, timings).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from reference_tasks.analysis import run_summary
from reference_tasks.runfolder import (
    CONFIG_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    Row,
    read_json,
    read_metrics,
)
from reference_tasks.runfolder.run_summary import RunSummary
from reference_tasks.runfolder.weights import snapshot_steps
from reference_tasks.training.recipe import TrainConfig, train_config_from_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class RunData:
    """One finished run, read back.

    Attributes
    ----------
    path : Path
        The run folder.
    framework : str
        ``"torch"`` or ``"keras"`` (from ``config.json``).
    config : TrainConfig
        The run's config, rebuilt from ``config.json``.
    rows : list of dict
        ``metrics.csv`` rows.
    summary : RunSummary
        The run's summary (:func:`reference_tasks.analysis.run_summary`).
    """

    path: Path
    framework: str
    config: TrainConfig
    rows: list[Row]
    summary: RunSummary

    @property
    def task(self) -> str:
        """The task's registry name."""
        return self.config.task

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self.config.seed

    @property
    def snapshot_steps(self) -> list[int]:
        """Steps with a weight snapshot in the run folder."""
        return snapshot_steps(self.path)


def load_run(run_dir: str | Path) -> RunData | None:
    """Read a run folder; ``None`` (with a warning) if the run is not finished.

    Raises
    ------
    FileNotFoundError
        If the folder lacks ``config.json`` or ``metrics.csv``.
    ValueError
        If its config or metrics do not follow the schema (the message names the folder).
    """
    run_dir = Path(run_dir)
    for name in (CONFIG_FILE, METRICS_FILE):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"run folder {run_dir} has no {name}")
    if not (run_dir / SUMMARY_FILE).exists():
        logger.warning("skipping %s: the run is not finished (no %s)", run_dir, SUMMARY_FILE)
        return None
    record = read_json(run_dir / CONFIG_FILE)
    try:
        config = train_config_from_json(record)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{run_dir / CONFIG_FILE}: {error}") from error
    framework = str(record.get("framework", run_dir.parent.name))
    rows = read_metrics(run_dir / METRICS_FILE)
    if not rows:
        raise ValueError(f"{run_dir / METRICS_FILE} has no rows")
    return RunData(run_dir, framework, config, rows, run_summary(run_dir))


def find_runs(runs_dir: str | Path) -> tuple[list[RunData], list[Path]]:
    """The finished runs under ``runs_dir/{framework}/{task}-seed{seed}/`` and the skipped folders.

    A folder counts as a run folder if it holds ``config.json``. Runs come sorted by
    framework, task and seed.

    Raises
    ------
    FileNotFoundError
        If ``runs_dir`` is not a folder.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"runs folder {runs_dir} does not exist")
    runs, skipped = [], []
    for config_path in sorted(runs_dir.glob(f"*/*/{CONFIG_FILE}")):
        run = load_run(config_path.parent)
        if run is None:
            skipped.append(config_path.parent)
        else:
            runs.append(run)
    runs.sort(key=lambda run: (run.framework, run.task, run.seed, str(run.path)))
    return runs, skipped
