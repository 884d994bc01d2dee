"""The run folder: one metrics schema for every framework, appended row by row.

A run folder holds ``config.json`` (written first), ``metrics.csv`` (one row per
evaluated step, appended and flushed as training goes, so an interrupted run keeps
what it measured), weight snapshots at the LMN checkpoints (``reference_tasks.snapshots``),
a resume checkpoint (the framework's ``checkpoint.*``: the training state at the last LMN
checkpoint, replaced atomically), ``summary.json`` (written at the end: its presence
marks a finished run) and the framework's final weights.

Resuming a run from its checkpoint at step ``s`` drops the rows and snapshots of steps
``>= s`` and measures them again from the restored state, so nothing is lost or
written twice.

In ``metrics.csv`` an empty cell means "not measured at this step" (LMN is measured
only at checkpoints); a measured value that is not a number is written as ``nan``.
Accuracies are fractions in ``[0, 1]``. ``lmn_n_samples`` is the ``N`` the LMN values
of that row were measured on.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from reference_tasks.snapshots import SNAPSHOT_DIR, remove_snapshots_from

PROBES = ("embedding", "hidden1", "hidden2")
LMN_COLUMNS = tuple(f"lmn_{probe}" for probe in PROBES)
METRIC_COLUMNS = (
    "step",
    "train_loss",
    "test_loss",
    "train_acc",
    "test_acc",
    "l2_norm",
    *LMN_COLUMNS,
    "lmn_n_samples",
)
INTEGER_COLUMNS = frozenset({"step", "lmn_n_samples"})

METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
CHECKPOINT_STEM = "checkpoint"
# config.json entries that may differ between a run and its resumption.
VOLATILE_CONFIG_KEYS = frozenset({"progress", "torch_version", "keras_version"})

Row = dict[str, float | int | None]


def lmn_column(probe: str) -> str:
    """The metrics column holding the LMN measured at ``probe``."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; the metrics schema has {', '.join(PROBES)}")
    return f"lmn_{probe}"


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in INTEGER_COLUMNS:
        return str(int(value))
    return repr(float(value))


def _parse(column: str, text: str) -> float | int | None:
    if text == "":
        return None
    return int(text) if column in INTEGER_COLUMNS else float(text)


class MetricsWriter:
    """Append rows of the metrics schema to a CSV file, flushing after each row.

    Parameters
    ----------
    path : str or Path
        The ``metrics.csv`` file.
    append : bool
        Keep the rows already in the file (to resume a run); its header must be the
        schema's. Otherwise the file is started afresh.
    """

    def __init__(self, path: str | Path, *, append: bool = False) -> None:
        self.path = Path(path)
        keep = append and self.path.exists() and self.path.stat().st_size > 0
        if keep:
            with self.path.open(newline="") as existing:
                header = next(csv.reader(existing), [])
            if tuple(header) != METRIC_COLUMNS:
                raise ValueError(f"{self.path} has columns {header}, expected {list(METRIC_COLUMNS)}")
        self._file: TextIO = self.path.open("a" if keep else "w", newline="")
        self._writer = csv.writer(self._file)
        if not keep:
            self._write(METRIC_COLUMNS)

    def _write(self, cells: Any) -> None:
        self._writer.writerow(cells)
        self._file.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row; missing columns stay empty, unknown columns are an error."""
        unknown = set(row) - set(METRIC_COLUMNS)
        if unknown:
            raise ValueError(f"columns {sorted(unknown)} are not in the metrics schema")
        if row.get("step") is None:
            raise ValueError("every metrics row needs a step")
        self._write([_cell(column, row.get(column)) for column in METRIC_COLUMNS])

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_metrics(path: str | Path) -> list[Row]:
    """Read ``metrics.csv`` back as rows: ints for integer columns, floats, ``None`` for empty."""
    with Path(path).open(newline="") as file:
        reader = csv.DictReader(file)
        if tuple(reader.fieldnames or ()) != METRIC_COLUMNS:
            raise ValueError(f"{path} has columns {reader.fieldnames}, expected {list(METRIC_COLUMNS)}")
        return [{column: _parse(column, row[column]) for column in METRIC_COLUMNS} for row in reader]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def write_json(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON atomically (non-finite floats become ``null``)."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON file of the run folder."""
    return json.loads(Path(path).read_text())


def truncate_metrics(path: str | Path, before_step: int) -> None:
    """Keep only the complete rows of ``metrics.csv`` with ``step < before_step`` (atomically).

    Raises
    ------
    ValueError
        If the file's header is not the metrics schema.
    """
    path = Path(path)
    with path.open(newline="") as file:
        reader = csv.reader(file)
        header = next(reader, [])
        if tuple(header) != METRIC_COLUMNS:
            raise ValueError(f"{path} has columns {header}, expected {list(METRIC_COLUMNS)}")
        # A row cut short by a kill has too few cells (or a cut step): dropped with the rest.
        complete = (cells for cells in reader if len(cells) == len(METRIC_COLUMNS))
        kept = [cells for cells in complete if int(cells[0]) < before_step]
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(METRIC_COLUMNS)
        writer.writerows(kept)
    os.replace(temporary, path)


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The ``config.json`` entries on which two runs differ (volatile entries ignored).

    Both are compared as JSON would store them (tuples as lists).
    """
    saved_json = json.loads(json.dumps(_json_safe(dict(saved))))
    current_json = json.loads(json.dumps(_json_safe(dict(current))))
    keys = (set(saved_json) | set(current_json)) - VOLATILE_CONFIG_KEYS
    return sorted(
        f"{key}: saved {saved_json.get(key)!r}, now {current_json.get(key)!r}"
        for key in keys
        if saved_json.get(key) != current_json.get(key)
    )


def is_finished(run_dir: str | Path) -> bool:
    """Whether the run in ``run_dir`` ran to its end (its ``summary.json`` exists)."""
    return (Path(run_dir) / SUMMARY_FILE).exists()


def start_run(run_dir: str | Path, record: Mapping[str, Any], *, checkpoint: str, resume: bool) -> bool:
    """Prepare ``run_dir`` for a trainer; return whether to resume from ``checkpoint``.

    With ``resume`` and a checkpoint file present, the saved ``config.json`` must
    describe the same run as ``record``. Otherwise the files a trainer writes (config,
    metrics, summary, snapshots, checkpoint, final weights ``model.*``) are removed,
    nothing else in the folder is touched, and ``record`` is written as ``config.json``.

    Raises
    ------
    ValueError
        If resuming a run whose saved config differs from ``record`` (the message lists
        the differences).
    """
    run_dir = Path(run_dir)
    if resume and (run_dir / checkpoint).exists():
        differences = config_differences(read_json(run_dir / CONFIG_FILE), record)
        if differences:
            raise ValueError(
                f"cannot resume {run_dir}: it holds a different run ({'; '.join(differences)}); "
                "start it afresh or choose another folder"
            )
        return True
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (METRICS_FILE, SUMMARY_FILE, CONFIG_FILE, checkpoint):
        (run_dir / name).unlink(missing_ok=True)
    for weights in run_dir.glob("model.*"):
        weights.unlink()
    shutil.rmtree(run_dir / SNAPSHOT_DIR, ignore_errors=True)
    write_json(run_dir / CONFIG_FILE, record)
    return False


def rewind_run(run_dir: str | Path, step: int) -> None:
    """Drop the metrics rows and snapshots of steps ``>= step``: a resumed run redoes them."""
    run_dir = Path(run_dir)
    truncate_metrics(run_dir / METRICS_FILE, step)
    remove_snapshots_from(run_dir, step)
