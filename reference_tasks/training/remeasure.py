"""``lmn measure``: the progress measures of finished runs, from their snapshots, without training.

The pass is the one a run makes when it ends (:mod:`reference_tasks.training.measures`),
on a run folder that kept the snapshot of every LMN checkpoint. It adds or replaces the
selected measures' columns in ``metrics.csv`` and leaves every other column, and
``config.json`` (which says what the run was asked to measure when it trained), as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from reference_tasks.runfolder.folder import is_finished, read_json
from reference_tasks.runfolder.schema import CONFIG_FILE
from reference_tasks.training.engine import TrainingData
from reference_tasks.training.loop import engine_class
from reference_tasks.training.measures import measure_run, plan_measures
from reference_tasks.training.recipe import train_config_from_json


def measure_folder(
    run_dir: str | Path, measures: Sequence[str] | None = None, *, device: str = "cpu", progress: bool = False
) -> tuple[str, ...]:
    """Compute ``measures`` (``None``: every measure the run can supply) for the finished run in
    ``run_dir``; return the columns written.

    Raises
    ------
    ValueError
        If the run is not finished.
    FileNotFoundError
        If the folder lacks the snapshot of an LMN checkpoint.
    lmn_core.MeasureError
        For a measure that is unknown or needs what the run cannot supply.
    """
    run_dir = Path(run_dir)
    if not is_finished(run_dir):
        raise ValueError(f"{run_dir} holds no finished run (no summary.json): train it first")
    record = read_json(run_dir / CONFIG_FILE)
    config = train_config_from_json(record)
    config = dataclasses.replace(config, measures=None if measures is None else tuple(measures))
    engine = engine_class(record["framework"])([config], TrainingData.for_configs([config]), device)
    plan = plan_measures(config, engine, engine.data.task.model.is_piecewise_linear(config))
    measure_run(plan, config, engine, 0, run_dir, progress=progress)
    return plan.columns
