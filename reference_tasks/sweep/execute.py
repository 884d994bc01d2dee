"""Where the runs of ``lmn reproduce`` and ``lmn sweep`` train: the one way in, :func:`train_runs`.

The command line decides what to train (:mod:`.plan`) and hands it here with an
:class:`Execution`: the runs left to train are found (a finished run is skipped, a folder
of another run refused), and they train as Dask tasks (:mod:`.cluster`: one worker
process per CPU, or per GPU for ``--device cuda``) or, batched, in this process: runs that
differ only in their seed stacked as one (:func:`reference_tasks.training.train_batched`).
Either way each run ends as an :class:`Outcome`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reference_tasks.runfolder import forget_progress, is_finished
from reference_tasks.sweep.cluster import (
    Outcome,
    check_workers_can_write,
    connect,
    finished_run_differences,
    run_all,
)
from reference_tasks.sweep.installation import check_workers_have_own_adapters
from reference_tasks.sweep.plan import Run
from reference_tasks.sweep.security import TLSFiles
from reference_tasks.training.loop import engine_class, train_batched
from reference_tasks.training.recipe import RunOptions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Execution:
    """How the runs train, not what they are (the command line's choice).

    Attributes
    ----------
    options : RunOptions
        Device and the like, for every run.
    batched : bool
        Train in this process, the seeds of a recipe stacked (PyTorch), not on Dask.
    fresh : bool
        Start every run over (only the trainer's own files are replaced).
    workers : int, optional
        Processes of the local Dask cluster (default: one per CPU, or per GPU).
    scheduler : str, optional
        The address of a running Dask cluster, instead of a local one.
    threads : int, optional
        The framework's threads per process.
    progress : bool
        Show a bar of finished runs (on Dask) or the training bars (batched).
    tls : TLSFiles, optional
        The certificate files for a TLS cluster at ``scheduler``.
    dashboard_address : str, optional
        Where the local cluster's dashboard listens (default: the loopback interface).
    """

    options: RunOptions
    batched: bool = False
    fresh: bool = False
    workers: int | None = None
    scheduler: str | None = None
    threads: int | None = 1
    progress: bool = True
    tls: TLSFiles | None = None
    dashboard_address: str | None = None


def train_runs(
    runs: Sequence[Run], execution: Execution, *, figure4: Callable[[Path], object] | None = None
) -> list[Outcome]:
    """Train the runs of ``runs`` that are not finished; their outcomes (none for the skipped).

    ``figure4(run.out_dir)`` runs on a free Dask worker after the lowest seed of each task
    has trained (:func:`lowest_seeds`: the runs Figure 4 draws; see
    :func:`reference_tasks.sweep.cluster.run_all`).

    Raises
    ------
    ValueError
        If a folder holds a finished run of another config.
    PermissionError
        If a Dask worker cannot write to the runs' folder.
    FileNotFoundError
        If a certificate file of ``execution.tls`` does not exist.
    ImportError
        If a Dask worker's ``adapters`` is not this project's.
    """
    pending = pending_runs(runs, fresh=execution.fresh)
    if not pending:
        return []
    engine = engine_class(pending[0].framework)
    if execution.batched:
        engine.use_threads(execution.threads or 1)
        return train_in_batches(pending, dataclasses.replace(execution.options, progress=execution.progress))
    wanted = [run for run in lowest_seeds(runs) if run in pending] if figure4 is not None else []
    devices = worker_devices(engine, execution.options.device, execution.scheduler)
    return _train_on_dask(pending, execution, devices, figure4 if wanted else None, wanted)


def pending_runs(runs: Sequence[Run], *, fresh: bool = False, announce: bool = True) -> list[Run]:
    """The runs left to train: all with ``fresh`` (started over), else those not finished
    (each finished one logged as skipped when ``announce``).

    Raises
    ------
    ValueError
        If a folder holds a finished run of another config.
    """
    pending = []
    for run in runs:
        if fresh:
            forget_progress(run.out_dir)
        elif is_finished(run.out_dir):
            differences = finished_run_differences(run)
            if differences:
                raise ValueError(
                    f"{run.out_dir} holds a finished run of another config ({'; '.join(differences)}); "
                    "use --fresh (lmn reproduce) to replace it or --out for another folder"
                )
            if announce:
                logger.info("%s is finished: skipped", run.out_dir)
            continue
        pending.append(run)
    return pending


def _train_on_dask(
    runs: Sequence[Run],
    execution: Execution,
    devices: list[str] | None,
    follow_up: Callable[[Path], object] | None,
    follow_up_runs: Sequence[Run],
) -> list[Outcome]:
    """Every run a Dask task, with one bar of finished runs on this side."""
    workers = len(devices) if devices and execution.workers is None else execution.workers
    cluster = connect(
        execution.scheduler, workers, tls=execution.tls, dashboard_address=execution.dashboard_address
    )
    with cluster as client:
        logger.info("Dask dashboard: %s", client.dashboard_link)
        check_workers_can_write(client, runs[0].out_dir.parents[1])
        check_workers_have_own_adapters(client)
        bar = None
        if execution.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(runs), desc="runs", unit="run")
        outcomes = run_all(
            client,
            runs,
            execution.options,
            threads=execution.threads,
            devices=devices,
            on_done=bar and (lambda _: bar.update()),
            follow_up=follow_up,
            follow_up_runs=follow_up_runs,
        )
        if bar is not None:
            bar.close()
    return outcomes


def worker_devices(engine: type, device: str, scheduler: str | None) -> list[str] | None:
    """One device per worker process when the runs train off the CPU (every GPU), else ``None``.

    Raises
    ------
    ValueError
        For a device the framework (its ``engine``) does not see.
    """
    if device == "cpu":
        return None
    devices = engine.devices(device)
    if devices and scheduler is None:
        names = ", ".join(devices)
        logger.info("--device %s: one worker process per device (%d: %s)", device, len(devices), names)
    return devices


def seed_batches(runs: Sequence[Run]) -> list[list[Run]]:
    """``runs`` grouped by framework and recipe: the runs of a group differ only in their seed."""
    batches: list[list[Run]] = []
    for run in runs:
        recipe = (run.framework, dataclasses.replace(run.config, seed=0))
        for batch in batches:
            if (batch[0].framework, dataclasses.replace(batch[0].config, seed=0)) == recipe:
                batch.append(run)
                break
        else:
            batches.append([run])
    return batches


def train_in_batches(runs: Sequence[Run], options: RunOptions) -> list[Outcome]:
    """Train every batch of :func:`seed_batches` in turn; the outcomes in the order of ``runs``.

    A batch that fails is reported for each of its runs, as a failed Dask task is, and the
    other batches go on.
    """
    outcomes: dict[int, Outcome] = {}
    index = {id(run): position for position, run in enumerate(runs)}
    for batch in seed_batches(runs):
        configs, out_dirs = [run.config for run in batch], [run.out_dir for run in batch]
        framework = batch[0].framework
        try:
            results = train_batched(configs, out_dirs, framework=framework, options=options, resume=True)
        except Exception as error:  # reported with the batch's runs; the other batches go on
            message = f"{type(error).__name__}: {error}"
            logger.error("the batch of %s failed: %s", ", ".join(run.name for run in batch), message)
            outcomes.update({index[id(run)]: Outcome(run, error=message) for run in batch})
            continue
        for run, result in zip(batch, results, strict=True):
            outcomes[index[id(run)]] = Outcome(run, summary=result.summary)
    return [outcomes[position] for position in range(len(runs))]


def lowest_seeds(runs: Sequence[Run]) -> list[Run]:
    """The run of the lowest seed of each framework and task: the ones Figure 4 draws."""
    lowest: dict[tuple[str, str], Run] = {}
    for run in runs:
        key = (run.framework, run.config.task)
        if key not in lowest or run.config.seed < lowest[key].config.seed:
            lowest[key] = run
    return list(lowest.values())
