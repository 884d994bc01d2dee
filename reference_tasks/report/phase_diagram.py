"""Phase diagrams of a sweep over one or two fields, in the manner of Omnigrok (Liu et al., 2023).

Per task: the fraction of seeds that grokked (test accuracy reached 100%) and the median
generalization step over those that did, as two heatmaps over the swept fields.
Cells are annotated with their values; "none" marks a cell where no run grokked (or
none finished).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from reference_tasks.experiment import task_title
from reference_tasks.report.figures import DPI


def _grid(
    cells: Mapping[tuple[Any, Any], Mapping[str, Any]], rows: Sequence[Any], columns: Sequence[Any], key: str
) -> np.ndarray:
    values = np.full((len(rows), len(columns)), np.nan)
    for (column_value, row_value), stats in cells.items():
        value = stats.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            values[rows.index(row_value), columns.index(column_value)] = value
    return values


def _heatmap(
    figure: Figure,
    ax: Any,
    values: np.ndarray,
    labels: tuple[Sequence[Any], Sequence[Any]],
    *,
    fmt: str,
    limits: tuple[float, float] | None,
) -> None:
    rows, columns = labels
    low, high = limits if limits is not None else (None, None)
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis", vmin=low, vmax=high)
    figure.colorbar(image, ax=ax)
    ax.set_xticks(range(len(columns)), [str(value) for value in columns])
    ax.set_yticks(range(len(rows)), [str(value) for value in rows])
    for (i, j), value in np.ndenumerate(values):
        text = "none" if np.isnan(value) else format(value, fmt)
        ax.text(
            j, i, text, ha="center", va="center", color="grey" if np.isnan(value) else "white", fontsize=8
        )


def figure_phase_diagram(
    cells_by_task: Mapping[str, Mapping[tuple[Any, Any], Mapping[str, Any]]],
    fields: tuple[str, str],
    path: str | Path,
    *,
    framework: str,
) -> Path:
    """Draw, per task, grokked fraction and median generalization step over the swept fields.

    ``cells_by_task[task][(x_value, y_value)]`` holds ``grokked_fraction`` and
    ``generalization_median`` (``None`` when no seed grokked); ``fields`` names the x
    (columns) and y (rows) fields; an empty y field (and y values ``""``) draws one row.
    """
    x_field, y_field = fields
    tasks = list(cells_by_task)
    figure = Figure(figsize=(11, 4.2 * len(tasks)))
    axes = figure.subplots(len(tasks), 2, squeeze=False)
    for row, task in enumerate(tasks):
        cells = cells_by_task[task]
        columns = sorted({x for x, _ in cells})
        rows = sorted({y for _, y in cells})
        for ax, key, title, fmt, limits in (
            (axes[row, 0], "grokked_fraction", "grokked fraction", ".2f", (0.0, 1.0)),
            (axes[row, 1], "generalization_median", "median generalization step", ".0f", None),
        ):
            values = _grid(cells, rows, columns, key)
            _heatmap(figure, ax, values, (rows, columns), fmt=fmt, limits=limits)
            ax.set_title(f"{task_title(task)} ({framework}): {title}")
            ax.set_xlabel(x_field)
            ax.set_ylabel(y_field)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path
