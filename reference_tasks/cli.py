"""The ``lmn`` command: ``lmn reproduce`` runs the paper's experiment, ``lmn report`` redraws it.

``lmn reproduce`` trains the reference tasks (docs/design.md, section 2) into
``OUT/{framework}/{task}-seed{seed}/``, measuring LMN as it goes, then writes the figures
and summary tables into ``OUT/report/``. Running it again resumes unfinished runs from their
last checkpoint and skips finished ones; ``--fresh`` starts them over. ``lmn report RUNS_DIR``
rebuilds the figures and tables from the saved run folders alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import multiprocessing
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from reference_tasks.runfolder import CONFIG_FILE, config_differences, is_finished, read_json
from reference_tasks.tasks import TASKS
from reference_tasks.training.loop import FRAMEWORKS, train, train_batched
from reference_tasks.training.recipe import RunOptions, TrainConfig

logger = logging.getLogger("lmn")

# --quick: a first look in a few minutes (all three tasks memorize; addition mod 31 generalizes).
QUICK = {"steps": 8000, "lmn_samples": 256, "n_checkpoints": 40}


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of ``lmn reproduce``: its framework, config and folder."""

    framework: str
    config: TrainConfig
    out_dir: Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmn", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    reproduce = commands.add_parser(
        "reproduce",
        help="train the reference tasks, measure LMN, write figures and tables",
        description="Train the reference tasks with the paper's recipe (PyTorch, seed 0, all three "
        "tasks by default), then write the report. Re-running resumes unfinished runs and skips "
        "finished ones.",
    )
    reproduce.add_argument(
        "--task", nargs="+", choices=sorted(TASKS), default=["modadd", "s4", "xor"], help="default: all three"
    )
    reproduce.add_argument("--framework", choices=FRAMEWORKS, default="torch", help="default: torch")
    reproduce.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED", help="default: 0")
    reproduce.add_argument("--steps", type=int, help="optimizer steps (20000, or 8000 with --quick)")
    reproduce.add_argument(
        "--lmn-samples", type=int, help="N, the samples the LMN is measured on (all, or 256 with --quick)"
    )
    reproduce.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="default: float32"
    )
    reproduce.add_argument("--device", default="cpu", help="the framework's device name (cpu, cuda, ...)")
    reproduce.add_argument("--out", type=Path, default=Path("runs"), help="runs folder (default: runs)")
    reproduce.add_argument(
        "--quick", action="store_true", help="a short run for a first look (a few minutes on a laptop CPU)"
    )
    reproduce.add_argument("--fresh", action="store_true", help="start every run over")
    reproduce.add_argument(
        "--jobs", type=int, default=1, help="runs trained at once in separate processes (default 1)"
    )
    reproduce.add_argument(
        "--threads",
        type=int,
        help="PyTorch threads per process (default: PyTorch's own, or 1 with --jobs; on a machine "
        "shared with other work, 1 avoids threads spinning against each other)",
    )
    reproduce.add_argument(
        "--batched",
        action="store_true",
        help="PyTorch: train all seeds of a task at once in one process (stacked parameters)",
    )
    reproduce.add_argument("--no-report", action="store_true", help="train only; skip the report")
    reproduce.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")

    report = commands.add_parser(
        "report",
        help="rebuild the figures and tables from saved runs",
        description="Rebuild every figure and summary table from the run folders under RUNS_DIR, "
        "without training.",
    )
    report.add_argument("runs_dir", type=Path, metavar="RUNS_DIR")
    report.add_argument("--out", type=Path, help="where to write them (default: RUNS_DIR/report)")
    report.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return parser


def plan_runs(args: argparse.Namespace) -> list[Run]:
    """The runs that ``lmn reproduce`` with these arguments stands for, one per task and seed."""
    settings = dict(QUICK) if args.quick else {}
    if args.steps is not None:
        settings["steps"] = args.steps
    if args.lmn_samples is not None:
        settings["lmn_samples"] = args.lmn_samples
    return [
        Run(
            args.framework,
            TrainConfig(task=task, seed=seed, dtype=args.dtype, **settings),
            args.out / args.framework / f"{task}-seed{seed}",
        )
        for task in dict.fromkeys(args.task)
        for seed in dict.fromkeys(args.seeds)
    ]


def _refuse_other_finished_run(run: Run) -> None:
    """Raise if ``run.out_dir`` holds a finished run of another config."""
    current = {"framework": run.framework, **dataclasses.asdict(run.config)}
    saved = read_json(run.out_dir / CONFIG_FILE)
    # only what the command sets is compared (the trainer adds versions and the Keras backend)
    differences = config_differences({key: saved.get(key) for key in current}, current)
    if differences:
        raise SystemExit(
            f"lmn: {run.out_dir} holds a finished run of another config ({'; '.join(differences)}); "
            "use --fresh to replace it or --out for another folder"
        )


def _set_torch_threads(framework: str, threads: int | None) -> None:
    if threads is not None and framework == "torch":
        import torch

        torch.set_num_threads(threads)


def _train_one(run: Run, options: RunOptions, resume: bool, threads: int | None) -> None:
    """Train one run (in this process or a spawned worker)."""
    _set_torch_threads(run.framework, threads)
    train(run.config, run.out_dir, framework=run.framework, options=options, resume=resume)


def _train_batched(runs: Sequence[Run], options: RunOptions, resume: bool, threads: int | None) -> None:
    _set_torch_threads("torch", threads)
    batches: dict[str, list[Run]] = {}
    for run in runs:  # runs that differ only in their seed train together
        batches.setdefault(repr(dataclasses.replace(run.config, seed=0)), []).append(run)
    for group in batches.values():
        configs, out_dirs = [run.config for run in group], [run.out_dir for run in group]
        train_batched(configs, out_dirs, framework="torch", options=options, resume=resume)


def reproduce(args: argparse.Namespace) -> int:
    """``lmn reproduce``: train what is not finished, then write the report."""
    if args.batched and args.framework != "torch":
        raise SystemExit("lmn: --batched trains PyTorch models only (use --framework torch)")
    if args.jobs < 1:
        raise SystemExit(f"lmn: --jobs must be at least 1, got {args.jobs}")
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"lmn: --threads must be at least 1, got {args.threads}")
    runs = plan_runs(args)
    pending = []
    for run in runs:
        if not args.fresh and is_finished(run.out_dir):
            _refuse_other_finished_run(run)
            logger.info("%s is finished: skipped (--fresh starts it over)", run.out_dir)
        else:
            pending.append(run)
    resume = not args.fresh
    options = RunOptions(device=args.device, progress=not args.quiet)
    if args.batched and pending:
        _train_batched(pending, options, resume, args.threads)
    elif args.jobs > 1 and len(pending) > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(args.jobs, len(pending)), mp_context=context) as pool:
            threads = 1 if args.threads is None else args.threads
            for future in [pool.submit(_train_one, run, options, resume, threads) for run in pending]:
                future.result()
    else:
        for run in pending:
            _train_one(run, options, resume, args.threads)
    if not args.no_report:
        return report_command(args.out, None, quiet=args.quiet)
    return 0


def report_command(runs_dir: Path, out: Path | None, *, quiet: bool) -> int:
    """``lmn report``: the figures and tables of every finished run under ``runs_dir``."""
    from reference_tasks.report.build import build_report

    if not runs_dir.is_dir():
        raise SystemExit(f"lmn: {runs_dir} is not a folder of runs")
    result = build_report(runs_dir, out, progress=not quiet)
    logger.info("report written to %s", result.out_dir)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lmn`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.command == "reproduce":
        return reproduce(args)
    return report_command(args.runs_dir, args.out, quiet=args.quiet)


if __name__ == "__main__":
    sys.exit(main())
