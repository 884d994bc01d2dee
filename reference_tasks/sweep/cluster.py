"""Runs as Dask tasks: a ``LocalCluster`` of one-thread workers, or a running cluster.

Each run is one task, :func:`train_run`, which trains the run into its folder and
returns its summary. Dask does the scheduling: a run whose worker dies is given to
another worker (up to ``distributed.scheduler.allowed-failures`` times) and resumes there
from its last checkpoint, since every attempt trains with ``resume=True``. A lock file in
the run folder (``fcntl.flock``, released by the kernel when its process dies) keeps two
attempts of one run from writing at once. Workers on other machines must see ``OUT`` on a
shared filesystem; :func:`check_workers_can_write` asks every worker before a run starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lmn_core import keep_freed_memory
from reference_tasks.analysis import run_summary
from reference_tasks.runfolder import CONFIG_FILE, config_differences, is_finished, read_json
from reference_tasks.runfolder.run_summary import RunSummary
from reference_tasks.sweep.plan import Run, estimated_cost
from reference_tasks.sweep.security import (
    LOCAL_DASHBOARD,
    LOOPBACK,
    TLSFiles,
    check_cluster_options,
    client_security,
    local_security,
)
from reference_tasks.training.loop import engine_class, train
from reference_tasks.training.recipe import RunOptions

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
#: The first part of every run's Dask key (``("lmn-run", "torch/modadd-seed0")``): all runs
#: form one task group, so the scheduler learns one duration for them and, with more runs
#: than twice its threads, queues them until a worker is free. Runs keyed apart (one group
#: each, of unknown duration) were all handed to one worker while the other idled.
RUN_KEY = "lmn-run"
#: What the local scheduler assumes a run takes before one has finished: long, so that it
#: spreads the first runs over the workers and moves queued ones to a worker that frees up.
ASSUMED_RUN_DURATION = "10 minutes"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How one run of a sweep ended: its summary, or the error that stopped it."""

    run: Run
    summary: RunSummary | None = None
    error: str | None = None


def finished_run_differences(run: Run) -> list[str]:
    """How the finished run in ``run.out_dir`` differs from ``run`` (empty: it is this run)."""
    current = {"framework": run.framework, **dataclasses.asdict(run.config)}
    saved = read_json(run.out_dir / CONFIG_FILE)
    # only what defines the run is compared (the trainer adds versions and the Keras backend)
    return config_differences({key: saved[key] for key in current if key in saved}, current)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock file while training into it (waits for another holder)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def worker_device(options: RunOptions, devices: Sequence[str] | None) -> RunOptions:
    """``options`` on this worker's own device: of ``devices`` (one per worker), the worker's by index."""
    if not devices:
        return options
    index = 0
    if len(devices) > 1:
        from distributed import get_worker

        name = get_worker().name  # 0, 1, ... on a LocalCluster
        index = name if isinstance(name, int) else 0
    return dataclasses.replace(options, device=devices[index % len(devices)])


def train_run(
    run: Run, options: RunOptions, threads: int | None = 1, devices: Sequence[str] | None = None
) -> RunSummary:
    """Train ``run`` (resuming it, or nothing if it is finished) and return its summary.

    This is the Dask task. ``threads`` sets the framework's thread count first; with ``devices``
    (one per worker process, every GPU of the machine), the run trains on its worker's.

    Raises
    ------
    ValueError
        If the folder holds a finished (or resumable) run of another config.
    """
    if threads is not None:
        engine_class(run.framework).use_threads(threads)
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536: 2.2x slower LMN here
    keep_freed_memory(over_environment=True)
    with run_lock(run.out_dir):
        if is_finished(run.out_dir):
            differences = finished_run_differences(run)
            if differences:
                raise ValueError(
                    f"{run.out_dir} holds a finished run of another config ({'; '.join(differences)})"
                )
            return run_summary(run.out_dir)
        options = worker_device(options, devices)
        return train(run.config, run.out_dir, framework=run.framework, options=options, resume=True).summary


def can_write(folder: str) -> str | None:
    """``None`` if this process can create files in ``folder`` (made if needed), else why not."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as error:
        return f"{error.strerror or error} ({os.uname().nodename})"
    return None


def check_workers_can_write(client: Any, folder: Path) -> None:
    """Raise ``PermissionError`` naming every worker that cannot write to ``folder``."""
    answers = client.run(can_write, str(folder.resolve()))
    refused = {worker: why for worker, why in answers.items() if why is not None}
    if refused:
        lines = "; ".join(f"{worker}: {why}" for worker, why in sorted(refused.items()))
        raise PermissionError(
            f"these Dask workers cannot write to {folder.resolve()}: {lines}. Runs are written by "
            "the workers, so OUT must be on a filesystem they all share (docs/design.md, 3.5)"
        )


@contextlib.contextmanager
def connect(
    scheduler: str | None,
    workers: int | None,
    *,
    tls: TLSFiles | None = None,
    dashboard_address: str | None = None,
) -> Iterator[Any]:
    """A Dask client: of the cluster at ``scheduler``, or of a new ``LocalCluster``.

    A running cluster is reached with ``tls``'s certificate files, or without them as Dask's
    configuration says. The local cluster has ``workers`` processes (default: one per CPU)
    with one thread each, started with ``spawn``, so that forked state of numba or torch
    never reaches them; it listens on the loopback interface only, its dashboard at
    ``dashboard_address`` (default :data:`.security.LOCAL_DASHBOARD`), and speaks TLS with
    certificates made for it (:mod:`.security`). Dask starts its workers with one BLAS and
    OpenMP thread and a glibc trim threshold of 64 KiB; :func:`train_run` raises the latter
    (see :mod:`lmn_core.memory`).

    Raises
    ------
    ValueError
        For options that do not fit where the runs go (:func:`.security.check_cluster_options`).
    FileNotFoundError
        If a file of ``tls`` does not exist.
    """
    import dask
    from distributed import Client, LocalCluster

    check_cluster_options(scheduler, tls, dashboard_address)
    if scheduler is not None:
        with Client(scheduler, security=client_security(scheduler, tls)) as client:
            yield client
        return
    n_workers = workers or os.cpu_count() or 1
    settings = {
        "distributed.worker.multiprocessing-method": "spawn",
        "distributed.scheduler.default-task-durations": {RUN_KEY: ASSUMED_RUN_DURATION},
    }
    with (
        dask.config.set(settings),
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host=LOOPBACK,
            dashboard_address=dashboard_address or LOCAL_DASHBOARD,
            security=local_security(),
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def submit_runs(
    client: Any,
    runs: Sequence[Run],
    options: RunOptions,
    *,
    threads: int | None = 1,
    devices: Sequence[str] | None = None,
) -> dict[Any, int]:
    """Submit every run as a Dask task of the :data:`RUN_KEY` group; the futures, by run index.

    The longest runs go first (submitted first, and first in the scheduler's queue): the last
    to start then ends soonest.
    """
    costs = [estimated_cost(run) for run in runs]
    return {
        client.submit(
            train_run,
            runs[index],
            options,
            threads,
            devices,
            key=(RUN_KEY, f"{runs[index].framework}/{runs[index].name}"),
            pure=False,
            priority=costs[index],
        ): index
        for index in sorted(range(len(runs)), key=lambda index: -costs[index])
    }


def run_all(
    client: Any,
    runs: Sequence[Run],
    options: RunOptions,
    *,
    threads: int | None = 1,
    devices: Sequence[str] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    follow_up: Callable[[Path], object] | None = None,
    follow_up_runs: Sequence[Run] = (),
) -> list[Outcome]:
    """Train ``runs`` on ``client``'s cluster; return their outcomes in the order of ``runs``.

    A run that fails does not stop the others: its outcome holds the error. With
    ``devices`` (one per worker process), each run trains on its worker's device.
    ``follow_up(run.out_dir)`` runs as a Dask task after each of ``follow_up_runs``
    trains, once no run is left waiting for a worker (so on a worker that would otherwise
    idle while the last runs train, never before a waiting run); it is waited for before
    returning, and a failure of it is logged, not raised (the report does the same work
    again).
    """
    from distributed import as_completed, wait

    futures = submit_runs(client, runs, options, threads=threads, devices=devices)
    wanted = {run.out_dir for run in follow_up_runs} if follow_up is not None else set()
    slots = sum(client.nthreads().values())
    trained: list[Path] = []
    follow_ups = []
    outcomes: dict[int, Outcome] = {}
    for future in as_completed(futures):
        run = runs[futures[future]]
        if future.status == "finished":
            outcome = Outcome(run, summary=future.result())
            if run.out_dir in wanted:
                trained.append(run.out_dir)
        else:
            error = future.exception()
            outcome = Outcome(run, error=f"{type(error).__name__}: {error}")
            logger.error("%s failed: %s", run.out_dir, outcome.error)
        outcomes[futures[future]] = outcome
        if on_done is not None:
            on_done(outcome)
        # a follow-up queued while runs wait would take a worker before them (it is ready, they are queued)
        if len(runs) - len(outcomes) < max(slots, 1):
            follow_ups += [client.submit(follow_up, out_dir, pure=False, priority=-1) for out_dir in trained]
            trained.clear()
    wait(follow_ups)
    for future in follow_ups:
        if future.status != "finished":
            logger.warning("a follow-up task failed (the report will redo it): %s", future.exception())
    return [outcomes[index] for index in range(len(runs))]
