"""``lmn sweep`` on Dask: a grid of short runs on a LocalCluster and on a cluster started with
Dask's own command-line tools, a killed worker, a killed client, failures, refusals."""

import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from distributed import Client, LocalCluster, get_task_stream

from reference_tasks import cli
from reference_tasks.analysis.summary import run_summary
from reference_tasks.report import build
from reference_tasks.report.figure4 import CACHE_DIR, figure4_steps, prepare_figure4
from reference_tasks.report.run_data import load_run
from reference_tasks.runfolder import CHECKPOINT_FILE, is_finished, load_checkpoint
from reference_tasks.runfolder.run_summary import CSV_COLUMNS
from reference_tasks.sweep.cluster import (
    RUN_KEY,
    check_workers_can_write,
    connect,
    run_all,
    submit_runs,
    train_run,
)
from reference_tasks.sweep.plan import Run
from reference_tasks.training import RunOptions, TrainConfig, train
from reference_tasks.training.recipe import lmn_checkpoints

pytestmark = pytest.mark.slow

GRID = ["--tasks", "xor", "--seeds", "0", "1", "--grid", "weight_decay=0.1,0.2", "--grid", "init_scale=1,2"]
SHORT = ["--steps", "60", "--lmn-samples", "8", "--quiet"]
ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "DASK_LOGGING__DISTRIBUTED": "error"}


def uninterrupted(config: TrainConfig, folder: Path) -> bytes:
    """``metrics.csv`` of ``config`` trained here, in one go, on one torch thread (as a worker)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(config, folder, options=RunOptions(progress=False))
    finally:
        torch.set_num_threads(threads)
    return (folder / "metrics.csv").read_bytes()


def sweep_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "sweep" / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_grid_on_a_local_cluster(tmp_path, caplog):
    assert cli.main(["sweep", *GRID, *SHORT, "--workers", "2", "--out", str(tmp_path)]) == 0
    folders = sorted(path.name for path in (tmp_path / "torch").iterdir())
    assert len(folders) == 8 and "xor-weight_decay0.2-init_scale2.0-seed1" in folders
    rows = sweep_rows(tmp_path)
    assert [(row["weight_decay"], row["init_scale"], row["seed"]) for row in rows][:3] == [
        ("0.1", "1.0", "0"),
        ("0.1", "1.0", "1"),
        ("0.1", "2.0", "0"),
    ]
    assert {row["status"] for row in rows} == {"finished"}
    assert rows[0]["run_dir"] == "torch/xor-weight_decay0.1-init_scale1.0-seed0"  # relative to OUT
    for row in rows:
        summary = run_summary(tmp_path / row["run_dir"])
        assert summary.lmn["init"] > 1
        assert {key: row[key] for key in CSV_COLUMNS} == {
            key: "" if value is None else str(value) for key, value in summary.csv_row().items()
        }
    assert (tmp_path / "sweep" / "phase_diagram_torch.png").stat().st_size > 10_000
    markdown = (tmp_path / "sweep" / "summary.md").read_text()
    assert markdown.count("| torch | xor |") == 4
    config = TrainConfig(task="xor", seed=1, steps=60, lmn_samples=8, weight_decay=0.2, init_scale=2.0)
    run = tmp_path / "torch" / "xor-weight_decay0.2-init_scale2.0-seed1"
    assert (run / "metrics.csv").read_bytes() == uninterrupted(config, tmp_path / "here")
    # run again: every run is finished, nothing is trained again
    caplog.set_level(logging.INFO, logger="reference_tasks.sweep.execute")
    assert cli.main(["sweep", *GRID, *SHORT, "--workers", "2", "--out", str(tmp_path)]) == 0
    skipped = [record.message for record in caplog.records if record.message.endswith("is finished: skipped")]
    assert len(skipped) == 8
    with pytest.raises(SystemExit, match=r"a sweep's tables go to .*--out is for lmn reproduce"):
        cli.main(["report", str(tmp_path), "--out", str(tmp_path / "elsewhere")])


def wait_for(condition, seconds, message):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.02)


def test_a_cluster_started_with_dasks_own_tools(tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    scheduler = [*dask, "scheduler", "--scheduler-file", str(scheduler_file), "--port", "0"]
    processes = [subprocess.Popen([*scheduler, "--dashboard-address", ":0"], env=ENVIRONMENT)]
    try:
        wait_for(scheduler_file.exists, 60, "the scheduler did not start")
        worker = [*dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1"]
        processes += [subprocess.Popen(worker, env=ENVIRONMENT) for _ in range(2)]
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address) as client:
            client.wait_for_workers(2, timeout=60)
        out = tmp_path / "runs"
        grid = ["--tasks", "xor", "--seeds", "0", "1", "--grid", "weight_decay=0.1,0.2"]
        assert cli.main(["sweep", *grid, *SHORT, "--scheduler", address, "--out", str(out)]) == 0
        assert len(sweep_rows(out)) == 4
        assert (out / "sweep" / "phase_diagram_torch.png").stat().st_size > 10_000  # one field: one row
        config = TrainConfig(task="xor", seed=0, steps=60, lmn_samples=8, weight_decay=0.1)
        run = out / "torch" / "xor-weight_decay0.1-seed0"
        assert (run / "metrics.csv").read_bytes() == uninterrupted(config, tmp_path / "here")
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)


LONG = TrainConfig(task="xor", seed=0, steps=2000, lmn_samples=48, n_checkpoints=40)
# an LMN checkpoint step of LONG and of the CLI's 2000-step runs, about halfway
PAUSE = min(
    set(lmn_checkpoints(LONG).tolist()) & set(lmn_checkpoints(TrainConfig(task="xor", steps=2000)).tolist()),
    key=lambda step: abs(step - 1000),
)


def paused(run_dir: Path) -> bool:
    """Whether a run waits at step :data:`PAUSE` (its checkpoint there is written, then it waits)."""
    return (run_dir / CHECKPOINT_FILE).exists() and load_checkpoint(run_dir).step == PAUSE


def test_a_killed_worker_loses_nothing(tmp_path):
    run = Run("torch", LONG, tmp_path / "torch" / "xor-seed0")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        options = RunOptions(progress=False, pause_at_step=PAUSE)
        future = client.submit(train_run, run, options, key="the-run", pure=False)
        wait_for(lambda: paused(run.out_dir), 300, "the run did not reach its pause")
        (holder,) = [worker for worker, keys in client.processing().items() if "the-run" in keys]
        os.kill(pids[holder], signal.SIGKILL)
        summary = future.result(timeout=300)  # another worker resumes it from step PAUSE, and goes on
    assert summary.memorization_step is not None and is_finished(run.out_dir)
    assert (run.out_dir / "metrics.csv").read_bytes() == uninterrupted(LONG, tmp_path / "here")


def test_a_killed_client_resumes_where_it_stopped(tmp_path):
    command = [sys.executable, "-m", "reference_tasks.cli", "sweep", "--tasks", "xor", "--seeds", "0"]
    command += ["--steps", "2000", "--lmn-samples", "48", "--workers", "1", "--quiet", "--out", str(tmp_path)]
    run_dir = tmp_path / "torch" / "xor-seed0"
    # n_checkpoints is not an option: the default 100 checkpoints of 2000 steps
    config = TrainConfig(task="xor", seed=0, steps=2000, lmn_samples=48)
    client = subprocess.Popen(
        [*command, "--pause-at-step", str(PAUSE)], env=ENVIRONMENT, start_new_session=True
    )
    wait_for(lambda: paused(run_dir), 300, "the run did not reach its pause")
    os.killpg(client.pid, signal.SIGKILL)  # the client and its local cluster's workers
    client.wait()
    assert not is_finished(run_dir)
    subprocess.run(command, env=ENVIRONMENT, check=True)
    assert (run_dir / "metrics.csv").read_bytes() == uninterrupted(config, tmp_path / "here")


def test_runs_beyond_the_workers_wait_in_the_schedulers_queue(tmp_path):
    # six runs on two one-thread workers, each pausing at step PAUSE: a worker holds a running run
    # and one more (Dask's worker saturation), and the last two wait in the scheduler's queue, free
    # to go to whichever worker frees up first; keyed apart (one task group each, of unknown
    # duration) all six were handed to the workers at once, and a worker's own queue could hold
    # the last runs while the other idled
    runs = [Run("torch", replace(LONG, seed=seed), tmp_path / f"seed{seed}") for seed in range(6)]
    with connect(None, 2) as client:
        futures = submit_runs(client, runs, RunOptions(progress=False, pause_at_step=PAUSE))
        wait_for(lambda: sum(paused(run.out_dir) for run in runs) == 2, 300, "two runs did not pause")
        held = sorted(len(keys) for keys in client.processing().values())
        queued = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.queued))
        client.cancel(list(futures))
    assert held == [2, 2] and queued == 2


def test_a_follow_up_never_takes_a_worker_from_a_waiting_run(tmp_path):
    # a long run and two short ones on two workers: the first short run's follow-up is ready
    # while the second waits for a worker, and must not take it first
    lengths = {0: 600, 1: 60, 2: 60}
    runs = [
        Run("torch", TrainConfig(task="xor", seed=seed, steps=steps, lmn_samples=8), tmp_path / f"seed{seed}")
        for seed, steps in lengths.items()
    ]
    with connect(None, 2) as client, get_task_stream(client) as stream:
        outcomes = run_all(
            client, runs, RunOptions(progress=False), follow_up=prepare_figure4, follow_up_runs=runs
        )
    assert all(outcome.error is None for outcome in outcomes)
    began = {}
    for task in stream.data:
        compute = [part["start"] for part in task["startstops"] if part["action"] == "compute"]
        kind = "run" if task["key"][0] == RUN_KEY else "follow-up"
        began.setdefault(kind, []).extend(compute)
    assert len(began["run"]) == 3 and len(began["follow-up"]) == 3
    assert min(began["follow-up"]) > max(began["run"])
    assert all((run.out_dir / CACHE_DIR).is_dir() for run in runs)


def test_a_failed_run_is_named_and_the_others_finish(tmp_path, caplog):
    # a checkpoint of another run in one folder: that run cannot resume, the other trains
    other = tmp_path / "torch" / "xor-seed1"
    train(
        TrainConfig(task="xor", seed=1, steps=60, lmn_samples=8, weight_decay=0.5),
        other,
        options=RunOptions(progress=False),
    )
    (other / "summary.json").unlink()
    (other / CHECKPOINT_FILE).write_bytes(b"")  # a checkpoint file is what marks a run resumable
    status = cli.main(
        ["sweep", "--tasks", "xor", "--seeds", "0", "1", *SHORT, "--workers", "2", "--out", str(tmp_path)]
    )
    assert status == 1
    rows = {row["seed"]: row for row in sweep_rows(tmp_path)}
    assert rows["0"]["status"] == "finished" and rows["1"]["status"] == "failed"
    assert "cannot resume" in rows["1"]["error"] and "weight_decay" in rows["1"]["error"]
    assert "xor-seed1" in (tmp_path / "sweep" / "summary.md").read_text().split("## Failed runs")[1]
    assert any("xor-seed1" in record.message and "failed" in record.message for record in caplog.records)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("wd=0.1,0.2", "'wd' is not a TrainConfig field"),
        ("seed=1,2", "'seed' is set by its own option"),
        ("weight_decay=0.1,heavy", "weight_decay: 'heavy' is not of type float"),
        ("steps=100,1.5", "steps: '1.5' is not of type int"),
        ("shared_embedding=maybe", "shared_embedding: 'maybe' is not of type bool"),
        ("dtype=float16", "dtype must be one of"),
        ("weight_decay", "expected FIELD=V1,V2"),
    ],
)
def test_a_bad_grid_is_refused_before_any_run_starts(tmp_path, grid, message):
    with pytest.raises(SystemExit, match=message):
        cli.main(["sweep", "--tasks", "xor", "--grid", grid, *SHORT, "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_workers_that_cannot_write_are_named(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
    ):
        with pytest.raises(PermissionError, match=r"cannot write to .*a-file/runs: .*all share"):
            check_workers_can_write(client, tmp_path / "a-file" / "runs")
        check_workers_can_write(client, tmp_path / "runs")
    with pytest.raises(SystemExit, match=r"lmn sweep: cannot write to .*a-file/runs"):
        cli.main(["sweep", "--tasks", "xor", *SHORT, "--out", str(tmp_path / "a-file" / "runs")])


def test_reproduce_computes_figure4_on_a_worker_as_soon_as_its_run_ends(tmp_path, monkeypatch):
    seed0 = tmp_path / "torch" / "xor-seed0"
    cached_when_the_report_began = []
    report = build.build_report

    def noting_the_cache(*args, **kwargs):
        cached_when_the_report_began.extend(sorted(path.name for path in (seed0 / CACHE_DIR).iterdir()))
        return report(*args, **kwargs)

    monkeypatch.setattr(build, "build_report", noting_the_cache)
    arguments = ["reproduce", "--task", "xor", "--seeds", "0", "1", *SHORT, "--workers", "2"]
    assert cli.main([*arguments, "--out", str(tmp_path)]) == 0
    cached = sorted(path.name for path in (seed0 / CACHE_DIR).iterdir())
    panels = [step for _, _, step in figure4_steps(load_run(seed0))]
    assert len(panels) >= 2 and cached == [f"hidden1_step_{step:06d}.npz" for step in sorted(set(panels))]
    assert not (tmp_path / "torch" / "xor-seed1" / CACHE_DIR).exists()  # Figure 4 draws the lowest seed
    # computed before the report began, so by the Dask follow-up, not by the report
    assert cached_when_the_report_began == cached
    assert (tmp_path / "report" / "fig4_connectivity_torch_xor.png").stat().st_size > 10_000
