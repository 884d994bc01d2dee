"""``metrics.csv``: rows of the metrics schema, appended and flushed one by one, read back; the
progress measures written into it once a run has ended."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from reference_tasks.runfolder.schema import (
    METRIC_COLUMNS,
    Row,
    header_probes,
    is_integer_column,
    split_header,
)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if is_integer_column(column):
        return str(int(value))
    return repr(float(value))


def _parse(column: str, text: str) -> float | int | None:
    if text == "":
        return None
    return int(text) if is_integer_column(column) else float(text)


class MetricsWriter:
    """Append rows of the metrics schema to a CSV file, flushing after each row.

    Parameters
    ----------
    path : str or Path
        The ``metrics.csv`` file.
    append : bool
        Keep the rows already in the file (to resume a run); its header must be
        ``columns``. Otherwise the file is started afresh.
    columns : tuple of str
        The schema's columns for the model's probes, with the region columns or without
        (:func:`~reference_tasks.runfolder.schema.metric_columns`).
    """

    def __init__(
        self, path: str | Path, *, append: bool = False, columns: tuple[str, ...] = METRIC_COLUMNS
    ) -> None:
        self.path = Path(path)
        if header_probes(columns) is None:
            raise ValueError(f"columns {list(columns)} are not a metrics schema's (schema.metric_columns)")
        self.columns = columns
        keep = append and self.path.exists() and self.path.stat().st_size > 0
        if keep:
            with self.path.open(newline="") as existing:
                header = next(csv.reader(existing), [])
            if tuple(header) != columns:
                raise ValueError(f"{self.path} has columns {header}, expected {list(columns)}")
        self._file: TextIO = self.path.open("a" if keep else "w", newline="")
        self._writer = csv.writer(self._file)
        if not keep:
            self._write(columns)

    def _write(self, cells: Any) -> None:
        self._writer.writerow(cells)
        self._file.flush()

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row; missing columns stay empty, unknown columns are an error."""
        unknown = set(row) - set(self.columns)
        if unknown:
            region_columns = {c for c in unknown if c.split("_")[0] in ("regions", "region", "pieces")}
            regions = " of a model without linear regions" if unknown == region_columns else ""
            raise ValueError(f"columns {sorted(unknown)} are not in the metrics schema{regions}")
        if row.get("step") is None:
            raise ValueError("every metrics row needs a step")
        self._write([_cell(column, row.get(column)) for column in self.columns])

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _checked_header(path: str | Path, header: Any) -> tuple[str, ...]:
    header = tuple(header or ())
    if header_probes(header) is None:
        raise ValueError(
            f"{path} has columns {list(header)}, expected the metrics schema's, as "
            f"{list(METRIC_COLUMNS)} for the reference MLP (and region columns for a piecewise-linear model)"
        )
    return header


def read_metrics(path: str | Path) -> list[Row]:
    """Read ``metrics.csv`` back as rows: ints for integer columns, floats, ``None`` for empty.

    Rows hold the file's columns: the region columns only for a piecewise-linear model.
    """
    with Path(path).open(newline="") as file:
        reader = csv.DictReader(file)
        header = _checked_header(path, reader.fieldnames)
        return [{column: _parse(column, row[column]) for column in header} for row in reader]


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
        header = _checked_header(path, next(reader, []))
        # A row cut short by a kill has too few cells (or a cut step): dropped with the rest.
        complete = (cells for cells in reader if len(cells) == len(header))
        kept = [cells for cells in complete if int(cells[0]) < before_step]
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(kept)
    os.replace(temporary, path)


def write_measures(
    path: str | Path, columns: Sequence[str], values: Mapping[int, Mapping[str, float]]
) -> None:
    """Write progress measures into ``metrics.csv`` (atomically): ``values[step][column]``.

    The file keeps its columns and cells; ``columns`` it lacks are added after its own
    measure columns; the cells of ``columns`` are replaced, at every row, by ``values`` (empty
    where a step or column has none).

    Raises
    ------
    ValueError
        If the file's header is not the metrics schema, or a column is not a measure column.
    """
    path = Path(path)
    with path.open(newline="") as file:
        reader = csv.reader(file)
        header = _checked_header(path, next(reader, []))
        rows = [cells for cells in reader if len(cells) == len(header)]
    new_header = (*header, *(column for column in columns if column not in header))
    if split_header(new_header) is None:
        raise ValueError(f"{path}: {list(columns)} cannot be measure columns after {list(header)}")
    position = {column: index for index, column in enumerate(new_header)}
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(new_header)
        for cells in rows:
            cells = cells + [""] * (len(new_header) - len(cells))
            measured = values.get(int(cells[0]), {})
            for column in columns:
                cells[position[column]] = _cell(column, measured.get(column))
            writer.writerow(cells)
    os.replace(temporary, path)
