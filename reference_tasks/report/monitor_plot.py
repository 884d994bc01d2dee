"""A picture of the LMN a monitor measured: each layer's LMN against the step, beside the losses.

Reads any CSV with a ``step`` column (empty cells are "not measured at this step"):
the CSV of :class:`adapters.torch.LMNMonitor`, the ``metrics.csv`` of a run folder, or
the ``metrics.csv`` of Lightning's ``CSVLogger`` with the Lightning callback's values.
LMN columns are ``lmn_<layer>`` and ``lmn/<layer>`` (``lmn_n_samples`` aside); loss
columns are those whose name holds ``loss``. Each line is one column, drawn at the rows
where it has a value, exactly as the file holds it; with ``log_steps`` the step axis is
logarithmic and the steps are drawn as ``step + 1`` (so step 0 shows), as in the
report's figures. Needs matplotlib only (``lmn plot`` is this module's command line).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from adapters.schedule import LMN_KEY_PREFIX, LOGGER_KEY_PREFIX, N_SAMPLES_KEY, read_monitor_csv
from reference_tasks.report.figures import DPI, STEP_LABEL
from reference_tasks.runfolder.schema import METRICS_FILE

PLOT_FILE = "lmn.png"
# Lines with more points than this are drawn without a marker at each point.
MAX_MARKED_POINTS = 200


def monitor_table(source: str | Path) -> tuple[Path, dict[str, np.ndarray]]:
    """The CSV that ``source`` names (a file, or a run folder's ``metrics.csv``) and its columns."""
    path = Path(source)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{source}: no such CSV file or run folder with a {METRICS_FILE}")
    table = read_monitor_csv(path)
    if "step" not in table:
        raise ValueError(f"{path} has no 'step' column; its columns are {list(table)}")
    return path, table


def lmn_columns(table: dict[str, np.ndarray]) -> dict[str, str]:
    """``{column: layer}`` of the LMN columns, in the file's order."""
    found = {}
    for column in table:
        for prefix in (LMN_KEY_PREFIX, LOGGER_KEY_PREFIX):
            if column.startswith(prefix) and column != N_SAMPLES_KEY:
                found[column] = column[len(prefix) :]
    return found


def _draw(axes: Axes, table: dict[str, np.ndarray], columns: dict[str, str], log_steps: bool) -> None:
    steps = table["step"].astype(np.float64)
    for column, label in columns.items():
        measured = np.isfinite(table[column])
        x = steps[measured] + 1.0 if log_steps else steps[measured]
        marker = "." if x.size <= MAX_MARKED_POINTS else None
        axes.plot(x, table[column][measured], marker=marker, label=label)
    if log_steps:
        axes.set_xscale("log")
    axes.set_xlabel(STEP_LABEL if log_steps else "step")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")


def monitor_figure(source: str | Path, *, log_steps: bool = False) -> Figure:
    """The figure: LMN per layer against the step, and the loss columns beside it if the file has any."""
    path, table = monitor_table(source)
    lmn = lmn_columns(table)
    if not lmn:
        raise ValueError(
            f"{path} has no LMN column (lmn_<layer> or lmn/<layer>); its columns are {list(table)}"
        )
    losses = {column: column for column in table if "loss" in column}
    figure = Figure(figsize=(6.0 * (2 if losses else 1), 4.2))
    panels = figure.subplots(1, 2 if losses else 1, squeeze=False)[0]
    _draw(panels[0], table, lmn, log_steps)
    panels[0].set_ylabel("LMN")
    panels[0].set_title("LMN")
    if losses:
        _draw(panels[1], table, losses, log_steps)
        panels[1].set_ylabel("loss")
        panels[1].set_title("loss")
    figure.suptitle(str(path))
    figure.tight_layout()
    return figure


def plot_monitor(source: str | Path, out: str | Path | None = None, *, log_steps: bool = False) -> Path:
    """Draw :func:`monitor_figure` into a PNG; by default ``lmn.png`` beside the CSV. Returns its path."""
    figure = monitor_figure(source, log_steps=log_steps)
    path, _ = monitor_table(source)
    target = Path(out) if out is not None else path.parent / PLOT_FILE
    figure.savefig(target, dpi=DPI)
    return target
