"""The ``lmn`` commands that read saved folders and train nothing: ``lmn plot`` and ``lmn measure``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("lmn")


def add_plot_command(commands: Any) -> None:
    """``lmn plot``: its arguments."""
    plot = commands.add_parser(
        "plot",
        help="draw the LMN of each layer against the step from a monitor's CSV or a run folder",
        description="Draw the LMN columns (lmn_<layer>, lmn/<layer>) of a CSV (LMNMonitor's, Lightning's "
        "CSVLogger's) or of a run folder's metrics.csv against the step, beside its loss columns, "
        "into a PNG.",
    )
    plot.add_argument("source", type=Path, metavar="FILE.csv|RUN_DIR")
    plot.add_argument("--out", type=Path, help="the PNG to write (default: lmn.png beside the CSV)")
    plot.add_argument("--log-steps", action="store_true", help="a log step axis (steps drawn as step + 1)")
    plot.add_argument("--quiet", action="store_true", help="warnings only")


def plot_command(source: Path, out: Path | None, *, log_steps: bool) -> int:
    """``lmn plot``: the LMN columns of a CSV or run folder against the step, into a PNG."""
    from reference_tasks.report.monitor_plot import plot_monitor

    try:
        target = plot_monitor(source, out, log_steps=log_steps)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"lmn plot: {error}") from None
    logger.info("plot written to %s", target)
    return 0


def add_measure_command(commands: Any) -> None:
    """``lmn measure``: its arguments."""
    measure = commands.add_parser(
        "measure",
        help="compute progress measures of finished runs from their snapshots",
        description="Compute progress measures (docs/design.md, section 6) at every LMN checkpoint of "
        "finished runs, from the weight snapshots their folders keep, and write them into their "
        "metrics.csv (other columns unchanged). Then `lmn report` compares them with the LMN.",
    )
    measure.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    measure.add_argument(
        "--measures",
        nargs="+",
        metavar="MEASURE",
        help="built-in names, entry points of lmn.measures, module:function or path/to/file.py:function "
        "(default: every measure the run can supply)",
    )
    measure.add_argument("--device", default="cpu", help="the framework's device name (cpu, cuda, ...)")
    measure.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")


def measure_command(
    run_dirs: Sequence[Path], measures: Sequence[str] | None, *, device: str, quiet: bool
) -> int:
    """``lmn measure``: fill the measure columns of each run folder; refuse the first that cannot be."""
    from lmn_core import MeasureError
    from reference_tasks.training.remeasure import measure_folder

    for run_dir in run_dirs:
        try:
            columns = measure_folder(run_dir, measures, device=device, progress=not quiet)
        except (FileNotFoundError, ValueError, MeasureError) as error:
            raise SystemExit(f"lmn measure: {error}") from None
        logger.info("%s: %d measure columns written", run_dir, len(columns))
    return 0


def measure_option(parser: argparse.ArgumentParser) -> None:
    """``--measures`` of ``lmn reproduce`` and ``lmn sweep``."""
    parser.add_argument(
        "--measures",
        nargs="+",
        metavar="MEASURE",
        help="progress measures written beside the LMN (built-in names, entry points of lmn.measures, "
        "module:function, path/to/file.py:function; 'none' for none; default: every measure the run "
        "can supply)",
    )
