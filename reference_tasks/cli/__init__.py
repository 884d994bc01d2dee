"""The ``lmn`` command: ``lmn reproduce`` runs the paper's experiment, ``lmn sweep`` a grid of
runs, ``lmn report`` redraws either; ``lmn plot`` draws a monitor's CSV and ``lmn measure`` adds
progress measures to finished runs (:mod:`reference_tasks.cli.folders`).

``lmn reproduce`` trains the reference tasks (docs/design.md, section 2) into
``OUT/{framework}/{task}-seed{seed}/``, measuring LMN as it goes, then writes the figures
and summary tables into ``OUT/report/``. ``lmn sweep`` trains every combination of tasks,
seeds and ``--grid`` values into ``OUT/{framework}/{task}-{field}{value}-...-seed{seed}/``
and writes ``OUT/sweep/``. Both run each run as a Dask task, on a ``LocalCluster`` of one
process per CPU by default or on a running cluster (``--scheduler``). Running either again
resumes unfinished runs from their last checkpoint and skips finished ones; ``--fresh``
(reproduce) starts them over. ``lmn report OUT`` rebuilds the figures and tables from the
saved run folders alone.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmn_core import __version__
from reference_tasks.cli.folders import (
    add_measure_command,
    add_plot_command,
    measure_command,
    measure_option,
    plot_command,
)
from reference_tasks.experiment import PAPER_TASKS
from reference_tasks.sweep.cluster import Outcome, can_write
from reference_tasks.sweep.execute import Execution, pending_runs, train_runs
from reference_tasks.sweep.installation import DISTRIBUTION, require_own_adapters
from reference_tasks.sweep.plan import SWEEP_DIR, SWEEP_FILE, Run, Sweep, parse_grid, plan_sweep
from reference_tasks.sweep.security import LOCAL_DASHBOARD, TLSFiles
from reference_tasks.training.loop import FRAMEWORKS, check_experiment
from reference_tasks.training.recipe import RunOptions

logger = logging.getLogger("lmn")

# --quick: a first look in a few minutes (all three tasks memorize; addition mod 31 generalizes).
QUICK = {"steps": 8000, "lmn_samples": 256, "n_checkpoints": 40}
NO_PROBES = "none"
TASK_HELP = (
    "a registered name (the paper's modadd, s4, xor; entry-point group lmn.experiments), module:function "
    "or path/to/file.py:function returning a reference_tasks.experiment.Task (default: the paper's three)"
)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``reproduce`` and ``sweep`` share: what to train, and where."""
    parser.add_argument("--framework", choices=FRAMEWORKS, default="torch", help="default: torch")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED", help="default: 0")
    parser.add_argument("--steps", type=int, help="optimizer steps (default 20000)")
    parser.add_argument(
        "--lmn-samples", type=int, help="N, the samples the LMN is measured on (default: all)"
    )
    parser.add_argument(
        "--probes",
        nargs="+",
        metavar="PROBE",
        help="layers to measure, probes of the task's model (default: the task's recipe: every probe for "
        f"addition mod 31 as the paper's Figure 3, hidden1 for S4 and XOR); '{NO_PROBES}' trains without LMN",
    )
    parser.add_argument("--device", default="cpu", help="the framework's device name (cpu, cuda, ...)")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="runs folder (default: runs)")
    parser.add_argument(
        "--workers",
        "--jobs",
        type=int,
        help="processes of the local Dask cluster, one thread each (default: one per CPU, or one per "
        "GPU with --device cuda)",
    )
    parser.add_argument("--scheduler", metavar="ADDRESS", help="use the running Dask cluster at ADDRESS")
    parser.add_argument(
        "--threads", type=int, default=1, help="PyTorch threads per worker process (default 1)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    parser.add_argument(
        "--pause-at-step",
        type=int,
        metavar="STEP",
        help="wait at this LMN checkpoint step, its checkpoint written, until killed (to test kills)",
    )
    measure_option(parser)
    _add_cluster_arguments(parser)


def _add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """Who may reach the cluster: a TLS cluster's certificate files, the local dashboard's address."""
    tls = parser.add_argument_group(
        "TLS cluster", "certificate files for --scheduler tls://HOST:PORT (docs/guides/clusters.md)"
    )
    tls.add_argument(
        "--tls-ca-file", type=Path, metavar="FILE", help="the certificate authority's certificate"
    )
    tls.add_argument("--tls-cert", type=Path, metavar="FILE", help="this client's certificate")
    tls.add_argument("--tls-key", type=Path, metavar="FILE", help="this client's key (if not in --tls-cert)")
    parser.add_argument(
        "--dashboard-address",
        metavar="HOST:PORT",
        help=f"where the local cluster's dashboard listens (default {LOCAL_DASHBOARD}, this machine only)",
    )


def _tls_files(args: argparse.Namespace) -> TLSFiles | None:
    """The ``--tls-*`` files, or ``None`` if none is given; a CA file and a certificate go together."""
    if args.tls_ca_file is None and args.tls_cert is None and args.tls_key is None:
        return None
    if args.tls_ca_file is None or args.tls_cert is None:
        raise SystemExit(
            "lmn: a TLS cluster needs --tls-ca-file and --tls-cert (and --tls-key unless in the cert)"
        )
    return TLSFiles(args.tls_ca_file, args.tls_cert, args.tls_key)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmn", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} ({DISTRIBUTION})")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_reproduce_command(commands)
    _add_sweep_command(commands)
    _add_report_command(commands)
    add_plot_command(commands)
    add_measure_command(commands)
    return parser


def _add_reproduce_command(commands: Any) -> None:
    reproduce = commands.add_parser(
        "reproduce",
        help="train the reference tasks, measure LMN, write figures and tables",
        description="Train the reference tasks with the paper's recipe (PyTorch, seed 0, all three "
        "tasks by default), then write the report. Re-running resumes unfinished runs and skips "
        "finished ones.",
    )
    reproduce.add_argument(
        "--task",
        nargs="+",
        default=list(PAPER_TASKS),
        metavar="TASK",
        help=TASK_HELP,
    )
    _add_run_arguments(reproduce)
    reproduce.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="default: float32"
    )
    reproduce.add_argument(
        "--quick", action="store_true", help="a short run for a first look (a few minutes on a laptop CPU)"
    )
    reproduce.add_argument("--fresh", action="store_true", help="start every run over")
    reproduce.add_argument(
        "--batched",
        action="store_true",
        help="PyTorch: train all seeds of a task at once in this process (stacked parameters)",
    )
    reproduce.add_argument("--no-report", action="store_true", help="train only; skip the report")


def _add_sweep_command(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="train a grid of runs on Dask, then write the sweep's tables and phase diagram",
        description="Train every combination of --tasks, --seeds and --grid values as Dask tasks. "
        "Re-running skips finished runs and resumes unfinished ones.",
    )
    sweep.add_argument("--tasks", nargs="+", default=list(PAPER_TASKS), metavar="TASK", help=TASK_HELP)
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2,...",
        help="values of a TrainConfig field (weight_decay, learning_rate, train_fraction, init_scale, "
        "dtype, loss_dtype, shared_embedding, ...); repeat for more fields",
    )
    _add_run_arguments(sweep)


def _add_report_command(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="rebuild the figures and tables from saved runs",
        description="Rebuild every figure and summary table from the run folders under RUNS_DIR "
        "(a sweep's tables and phase diagram too), without training.",
    )
    report.add_argument("runs_dir", type=Path, metavar="RUNS_DIR")
    report.add_argument("--out", type=Path, help="where to write them (default: RUNS_DIR/report)")
    report.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``TrainConfig`` values the command line fixes for every run."""
    settings: dict[str, Any] = dict(QUICK) if getattr(args, "quick", False) else {}
    if getattr(args, "dtype", None) is not None:
        settings["dtype"] = args.dtype
    if args.steps is not None:
        settings["steps"] = args.steps
    if args.lmn_samples is not None:
        settings["lmn_samples"] = args.lmn_samples
    if args.probes is not None:
        if NO_PROBES in args.probes and len(args.probes) > 1:
            raise SystemExit(
                f"lmn: --probes {NO_PROBES} cannot be given with layers: {' '.join(args.probes)}"
            )
        settings["probes"] = tuple(p for p in dict.fromkeys(args.probes) if p != NO_PROBES)
    if args.measures is not None:
        if NO_PROBES in args.measures and len(args.measures) > 1:
            raise SystemExit(
                f"lmn: --measures {NO_PROBES} cannot be given with measures: {' '.join(args.measures)}"
            )
        settings["measures"] = tuple(m for m in dict.fromkeys(args.measures) if m != NO_PROBES)
    return settings


def plan_runs(args: argparse.Namespace) -> list[Run]:
    """The runs that ``lmn reproduce`` with these arguments stands for, one per task and seed."""
    settings = _settings(args)
    try:
        return plan_sweep(
            tasks=args.task, seeds=args.seeds, framework=args.framework, out=args.out, settings=settings
        )
    except ValueError as error:
        raise SystemExit(f"lmn: {error}") from None


def _check_counts(args: argparse.Namespace) -> None:
    for option in ("workers", "threads"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise SystemExit(f"lmn: --{option} must be at least 1, got {value}")


def _execution(args: argparse.Namespace) -> Execution:
    """How the runs train, as the command line says."""
    options = RunOptions(device=args.device, progress=False, pause_at_step=args.pause_at_step)
    return Execution(
        options,
        batched=getattr(args, "batched", False),
        fresh=getattr(args, "fresh", False),
        workers=args.workers,
        scheduler=args.scheduler,
        threads=args.threads,
        progress=not args.quiet,
        tls=_tls_files(args),
        dashboard_address=args.dashboard_address,
    )


def exit_status(outcomes: Sequence[Outcome]) -> int:
    """1 when a run failed (each named in the log), else 0: one rule for runs on Dask and batched."""
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    for outcome in failed:
        logger.error("run %s failed: %s", outcome.run.out_dir, outcome.error)
    return 1 if failed else 0


def _train(runs: Sequence[Run], execution: Execution, figure4: bool) -> list[Outcome]:
    """:func:`train_runs`, Figure 4's matrices computed once their run has trained; refusals exit.

    Before any run starts, and before ``--fresh`` forgets anything: a finished run of another
    config is refused, then each task and model that breaks the protocol.
    """
    from reference_tasks.report.figure4 import prepare_figure4

    # OSError: a worker that cannot write, a cluster that refuses; ImportError: a framework not
    # installed, or a worker's adapters; ValueError: a finished run of another config, a broken task
    try:
        _check_experiments(runs if execution.fresh else pending_runs(runs, announce=False))
        return train_runs(runs, execution, figure4=prepare_figure4 if figure4 else None)
    except (ValueError, OSError, ImportError) as error:
        raise SystemExit(f"lmn: {error}") from None


def _check_experiments(runs: Sequence[Run]) -> None:
    """Each task and model of ``runs`` refused here, once, if it breaks the protocol."""
    checked = set()
    for run in runs:
        key = (run.framework, run.config.task_source or run.config.task)
        if key not in checked:
            checked.add(key)
            check_experiment(run.config, run.framework)


def reproduce(args: argparse.Namespace) -> int:
    """``lmn reproduce``: train what is not finished, then write the report."""
    if args.batched and args.framework != "torch":
        raise SystemExit("lmn: --batched trains PyTorch models only (use --framework torch)")
    _check_counts(args)
    execution = _execution(args)
    outcomes = _train(plan_runs(args), execution, figure4=not args.no_report)
    status = exit_status(outcomes)
    if not args.no_report:
        _write_report(args.out, None, quiet=args.quiet)
    return status


def sweep_command(args: argparse.Namespace) -> int:
    """``lmn sweep``: plan and check every run, train the pending ones, write the sweep's report."""
    from reference_tasks.report.sweep_report import write_sweep_report

    _check_counts(args)
    try:
        sweep = Sweep(
            tuple(args.tasks), tuple(args.seeds), args.framework, parse_grid(args.grid), _settings(args)
        )
        runs = sweep.runs(args.out)
    except ValueError as error:
        raise SystemExit(f"lmn sweep: {error}") from None
    refused = can_write(str(args.out))
    if refused is not None:
        raise SystemExit(f"lmn sweep: cannot write to {args.out}: {refused}")
    sweep.save(args.out)
    # a sweep without axes (seeds alone, or fields of one value) draws Figure 4 (write_sweep_report)
    outcomes = _train(runs, _execution(args), figure4=not sweep.axes)
    report = write_sweep_report(sweep, args.out, known=outcomes, progress=not args.quiet)
    logger.info("sweep summary written to %s", report.summary_csv.parent)
    return exit_status(outcomes)


def report_command(runs_dir: Path, out: Path | None, *, quiet: bool) -> int:
    """``lmn report``: the figures and tables of every finished run under ``runs_dir``."""
    from reference_tasks.report.sweep_report import write_sweep_report

    if not runs_dir.is_dir():
        raise SystemExit(f"lmn: {runs_dir} is not a folder of runs")
    if (runs_dir / SWEEP_DIR / SWEEP_FILE).exists():
        if out is not None:
            where = runs_dir / SWEEP_DIR
            raise SystemExit(f"lmn report: a sweep's tables go to {where}; --out is for lmn reproduce's runs")
        report = write_sweep_report(Sweep.load(runs_dir), runs_dir, progress=not quiet)
        logger.info("sweep summary written to %s", report.summary_csv.parent)
        return 0
    _write_report(runs_dir, out, quiet=quiet)
    return 0


def _write_report(runs_dir: Path, out: Path | None, *, quiet: bool) -> None:
    """The figures and tables of the reproduction's runs under ``runs_dir``."""
    from reference_tasks.report.build import build_report

    try:
        result = build_report(runs_dir, out, progress=not quiet)
    except ValueError as error:  # no finished run under runs_dir
        raise SystemExit(f"lmn: {error}") from None
    logger.info("report written to %s", result.out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lmn`` console script."""
    args = _parser().parse_args(argv)
    try:
        require_own_adapters()
    except ImportError as error:
        raise SystemExit(f"lmn: {error}") from None
    # Dask's own INFO lines (scheduler, nannies, workers) would bury ours; workers inherit it.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.command == "reproduce":
        return reproduce(args)
    if args.command == "sweep":
        return sweep_command(args)
    if args.command == "plot":
        return plot_command(args.source, args.out, log_steps=args.log_steps)
    if args.command == "measure":
        return measure_command(args.run_dirs, args.measures, device=args.device, quiet=args.quiet)
    return report_command(args.runs_dir, args.out, quiet=args.quiet)


if __name__ == "__main__":
    sys.exit(main())
