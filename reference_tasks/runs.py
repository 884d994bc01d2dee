"""The run folder: one metrics schema for every framework, appended row by row.

A run folder holds ``config.json`` (written first), ``metrics.csv`` (one row per
evaluated step, appended and flushed as training goes, so an interrupted run keeps
what it measured), ``summary.json`` (written at the end) and the framework's weights.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

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
