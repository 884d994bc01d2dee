"""``lmn reproduce`` end to end on short PyTorch runs: killed and re-run, skipped when finished."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from run_folder_checks import without_timings

from reference_tasks.runfolder import CHECKPOINT_FILE, is_finished, load_checkpoint, read_metrics
from reference_tasks.runfolder.run_summary import RunSummary
from reference_tasks.runfolder.weights import snapshot_steps

pytestmark = pytest.mark.slow


def _reproduce(out, *extra):
    command = [sys.executable, "-m", "reference_tasks.cli", "reproduce", "--task", "modadd"]
    command += ["--steps", "3000", "--lmn-samples", "12", "--out", str(out), "--quiet", "--no-report"]
    return [*command, *extra]


def _environment():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _summary(run_dir):
    return without_timings(RunSummary.from_json(json.loads((run_dir / "summary.json").read_text())))


def test_a_killed_reproduce_finishes_as_if_never_killed(tmp_path):
    subprocess.run(_reproduce(tmp_path / "whole"), check=True, env=_environment())
    whole = tmp_path / "whole" / "torch" / "modadd-seed0"
    killed = tmp_path / "killed" / "torch" / "modadd-seed0"
    pause = int(snapshot_steps(whole)[60])  # an LMN checkpoint, about two thirds in

    paused = _reproduce(tmp_path / "killed", "--pause-at-step", str(pause))
    process = subprocess.Popen(paused, env=_environment(), start_new_session=True)
    deadline = time.monotonic() + 300
    while not ((killed / CHECKPOINT_FILE).exists() and load_checkpoint(killed).step == pause):
        assert process.poll() is None and time.monotonic() < deadline, "the run did not reach its pause"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the command and its local cluster's workers
    process.wait()
    assert not is_finished(killed)
    assert read_metrics(killed / "metrics.csv")[-1]["step"] < pause

    subprocess.run(_reproduce(tmp_path / "killed"), check=True, env=_environment())
    assert (killed / "metrics.csv").read_bytes() == (whole / "metrics.csv").read_bytes()
    assert _summary(killed) == _summary(whole)
    assert snapshot_steps(killed) == snapshot_steps(whole)

    again = [arg for arg in _reproduce(tmp_path / "killed") if arg != "--quiet"]
    log = subprocess.run(again, check=True, env=_environment(), capture_output=True, text=True).stderr
    assert f"{killed} is finished: skipped" in log


def test_fresh_starts_a_finished_run_over(tmp_path):
    arguments = ["--steps", "20", "--lmn-samples", "6", "--out", str(tmp_path), "--quiet", "--no-report"]
    arguments += ["--threads", "1"]
    command = [sys.executable, "-m", "reference_tasks.cli", "reproduce", "--task", "xor", *arguments]
    subprocess.run(command, check=True, env=_environment())
    run_dir = tmp_path / "torch" / "xor-seed0"
    first = (run_dir / "metrics.csv").read_bytes()
    (run_dir / "notes.txt").write_text("mine")
    subprocess.run([*command, "--fresh"], check=True, env=_environment())
    assert (run_dir / "metrics.csv").read_bytes() == first
    assert (run_dir / "notes.txt").read_text() == "mine"  # only the trainer's own files are replaced


def test_seeds_in_parallel_processes_equal_sequential_runs(tmp_path):
    arguments = ["--task", "s4", "--seeds", "0", "1", "--steps", "30", "--lmn-samples", "6", "--quiet"]
    base = [sys.executable, "-m", "reference_tasks.cli", "reproduce", *arguments, "--no-report"]
    subprocess.run([*base, "--out", str(tmp_path / "serial")], check=True, env=_environment())
    parallel_run = [*base, "--out", str(tmp_path / "parallel"), "--jobs", "2"]
    subprocess.run(parallel_run, check=True, env=_environment())
    for seed in (0, 1):
        serial = tmp_path / "serial" / "torch" / f"s4-seed{seed}" / "metrics.csv"
        parallel = tmp_path / "parallel" / "torch" / f"s4-seed{seed}" / "metrics.csv"
        assert parallel.read_bytes() == serial.read_bytes()
    assert (tmp_path / "serial" / "torch" / "s4-seed0" / "metrics.csv").read_bytes() != (
        tmp_path / "serial" / "torch" / "s4-seed1" / "metrics.csv"
    ).read_bytes()


def test_batched_seeds_match_sequential_runs(tmp_path):
    arguments = ["--task", "xor", "--seeds", "0", "1", "--steps", "40", "--lmn-samples", "6", "--quiet"]
    base = [sys.executable, "-m", "reference_tasks.cli", "reproduce", *arguments, "--no-report"]
    subprocess.run([*base, "--out", str(tmp_path / "serial")], check=True, env=_environment())
    subprocess.run([*base, "--out", str(tmp_path / "batched"), "--batched"], check=True, env=_environment())
    for seed in (0, 1):
        serial = read_metrics(tmp_path / "serial" / "torch" / f"xor-seed{seed}" / "metrics.csv")
        batched = read_metrics(tmp_path / "batched" / "torch" / f"xor-seed{seed}" / "metrics.csv")
        assert [row["step"] for row in batched] == [row["step"] for row in serial]
        for serial_row, batched_row in zip(serial, batched, strict=True):
            for column, value in serial_row.items():
                if value is None:
                    assert batched_row[column] is None
                else:
                    assert batched_row[column] == pytest.approx(value, rel=1e-4, abs=1e-6), column


def test_a_failed_batch_sets_the_exit_status(tmp_path):
    from reference_tasks.cli import main
    from reference_tasks.training import RunOptions, TrainConfig, train

    other = tmp_path / "torch" / "xor-seed1"  # a resumable run of another config where seed 1 goes
    train(
        TrainConfig(task="xor", seed=1, steps=20, lmn_samples=6, weight_decay=0.5),
        other,
        options=RunOptions(progress=False),
    )
    (other / "summary.json").unlink()
    (other / "checkpoint.npz").write_bytes(b"")
    arguments = ["--task", "xor", "--seeds", "0", "1", "--steps", "20", "--lmn-samples", "6", "--quiet"]
    assert main(["reproduce", *arguments, "--batched", "--no-report", "--out", str(tmp_path)]) == 1
