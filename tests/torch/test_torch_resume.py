"""Resuming an interrupted PyTorch run (train and train_batched) from its last checkpoint."""

import json

import numpy as np
import pytest
import torch
from quiet_training import train, train_batched
from run_folder_checks import without_timings
from torch_threads import one_thread  # noqa: F401 (an autouse fixture)

from reference_tasks import training
from reference_tasks.runfolder import CHECKPOINT_FILE, load_checkpoint, read_metrics
from reference_tasks.runfolder.weights import load_snapshot, snapshot_steps
from reference_tasks.training import RunOptions
from reference_tasks.training.recipe import TrainConfig, lmn_checkpoints
from reference_tasks.training.torch_engine import TorchEngine

# LMN checkpoints at steps 0, 1, 7, 45, 150 and 300.
CONFIG = TrainConfig(steps=300, lmn_samples=8, n_checkpoints=6, probes=("hidden1",))
INTERRUPT_AT = 200


def interrupt_at(monkeypatch, step):
    """Make the update of ``step`` raise KeyboardInterrupt, as Ctrl-C would."""
    original = TorchEngine.update
    calls = {"n": 0}

    def step_or_stop(self, *args, **kwargs):
        if calls["n"] == step:
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TorchEngine, "update", step_or_stop)


def assert_rows_close(path, expected_path, rtol=1e-4):
    """Two metrics.csv files with the same steps and cells, numbers equal to ``rtol``."""
    rows, expected = read_metrics(path), read_metrics(expected_path)
    assert [row["step"] for row in rows] == [row["step"] for row in expected]
    for row, other in zip(rows, expected, strict=True):
        assert [key for key, value in row.items() if value is None] == [
            key for key, value in other.items() if value is None
        ]
        for key, value in row.items():
            if value is not None:
                assert value == pytest.approx(other[key], rel=rtol, abs=1e-12), (row["step"], key)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train(CONFIG, tmp_path_factory.mktemp("whole"))


def test_interrupted_run_keeps_its_last_checkpoint(tmp_path, monkeypatch):
    interrupt_at(monkeypatch, INTERRUPT_AT)
    with pytest.raises(KeyboardInterrupt):
        train(CONFIG, tmp_path)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.step == 150
    assert snapshot_steps(tmp_path) == [0, 1, 7, 45, 150]
    assert read_metrics(tmp_path / "metrics.csv")[-1]["step"] == 190  # rows every 10 steps after 100
    assert not (tmp_path / "summary.json").exists()
    snapshot = load_snapshot(tmp_path, 150)
    assert snapshot.keys() <= checkpoint.state.keys()
    assert all(np.array_equal(value, checkpoint.state[name]) for name, value in snapshot.items())
    assert any(name.startswith("optimizer.") for name in checkpoint.state)


def test_resumed_run_equals_the_uninterrupted_one(tmp_path, monkeypatch, uninterrupted):
    with monkeypatch.context() as patch:
        interrupt_at(patch, INTERRUPT_AT)
        with pytest.raises(KeyboardInterrupt):
            train(CONFIG, tmp_path)
    resumed = train(CONFIG, tmp_path, resume=True)
    whole = uninterrupted.out_dir
    assert (tmp_path / "metrics.csv").read_bytes() == (whole / "metrics.csv").read_bytes()
    assert without_timings(resumed.summary) == without_timings(uninterrupted.summary)
    assert resumed.summary.facts.seconds_total > 0
    assert snapshot_steps(tmp_path) == snapshot_steps(whole) == [0, 1, 7, 45, 150, 300]
    for step in (45, 300):
        assert all(
            np.array_equal(value, load_snapshot(whole, step)[name])
            for name, value in load_snapshot(tmp_path, step).items()
        )
    assert not (tmp_path / CHECKPOINT_FILE).exists()
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, uninterrupted.model.state_dict()[name])


def test_a_folder_written_before_activations_existed_resumes_as_silu(tmp_path, monkeypatch, uninterrupted):
    with monkeypatch.context() as patch:
        interrupt_at(patch, INTERRUPT_AT)
        with pytest.raises(KeyboardInterrupt):
            train(CONFIG, tmp_path)
    record = json.loads((tmp_path / "config.json").read_text())
    assert record.pop("activation") == "silu"
    (tmp_path / "config.json").write_text(json.dumps(record))
    train(CONFIG, tmp_path, resume=True)
    assert (tmp_path / "metrics.csv").read_bytes() == (uninterrupted.out_dir / "metrics.csv").read_bytes()
    relu = TrainConfig(**{**CONFIG.__dict__, "activation": "relu"})
    with monkeypatch.context() as patch:
        interrupt_at(patch, INTERRUPT_AT)
        with pytest.raises(KeyboardInterrupt):
            train(relu, tmp_path / "relu")
    record = json.loads((tmp_path / "relu" / "config.json").read_text())
    del record["activation"]
    (tmp_path / "relu" / "config.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"different run \(activation: saved 'silu', now 'relu'\)"):
        train(relu, tmp_path / "relu", resume=True)


def test_a_piecewise_linear_run_resumes_with_its_region_columns(tmp_path, monkeypatch):
    relu = TrainConfig(**{**CONFIG.__dict__, "activation": "relu", "probes": ("embedding", "hidden1")})
    whole = train(relu, tmp_path / "whole")
    with monkeypatch.context() as patch:
        interrupt_at(patch, INTERRUPT_AT)
        with pytest.raises(KeyboardInterrupt):
            train(relu, tmp_path / "resumed")
    assert "pieces_mean_hidden1" in read_metrics(tmp_path / "resumed" / "metrics.csv")[0]
    resumed = train(relu, tmp_path / "resumed", resume=True)
    assert (tmp_path / "resumed" / "metrics.csv").read_bytes() == (whole.out_dir / "metrics.csv").read_bytes()
    assert without_timings(resumed.summary) == without_timings(whole.summary)
    assert set(resumed.summary.regions) == {"embedding", "hidden1"}


def test_resume_refuses_another_config_and_leaves_the_folder_alone(tmp_path, monkeypatch):
    interrupt_at(monkeypatch, 20)
    with pytest.raises(KeyboardInterrupt):
        train(CONFIG, tmp_path)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    other = TrainConfig(**{**CONFIG.__dict__, "weight_decay": 0.1})
    with pytest.raises(ValueError, match=r"different run \(weight_decay: saved 0.2, now 0.1\)"):
        train(other, tmp_path, resume=True)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()} == before


def test_without_resume_a_folder_starts_over(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        interrupt_at(patch, INTERRUPT_AT)
        with pytest.raises(KeyboardInterrupt):
            train(CONFIG, tmp_path / "run")
    (tmp_path / "run" / "notes.txt").write_text("kept")
    config = TrainConfig(**{**CONFIG.__dict__, "steps": 50, "n_checkpoints": 3})
    result = train(config, tmp_path / "run")
    fresh = train(config, tmp_path / "fresh")
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == (
        tmp_path / "fresh" / "metrics.csv"
    ).read_bytes()
    assert snapshot_steps(tmp_path / "run") == lmn_checkpoints(config).tolist() == [0, 1, 50]
    assert without_timings(result.summary) == without_timings(fresh.summary)
    assert (tmp_path / "run" / "notes.txt").read_text() == "kept"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 50


def test_resume_without_a_checkpoint_starts_afresh(tmp_path, uninterrupted):
    resumed = train(CONFIG, tmp_path, resume=True)
    assert (tmp_path / "metrics.csv").read_bytes() == (uninterrupted.out_dir / "metrics.csv").read_bytes()
    assert without_timings(resumed.summary) == without_timings(uninterrupted.summary)


@pytest.fixture(scope="module")
def batched_whole(tmp_path_factory):
    configs = [TrainConfig(**{**CONFIG.__dict__, "seed": seed}) for seed in (0, 1)]
    folder = tmp_path_factory.mktemp("batched")
    return configs, train_batched(configs, [folder / "seed-0", folder / "seed-1"])


def interrupted_batch(monkeypatch, configs, folders):
    with monkeypatch.context() as patch:
        interrupt_at(patch, INTERRUPT_AT)
        with pytest.raises(KeyboardInterrupt):
            train_batched(configs, folders)
    assert [load_checkpoint(f).step for f in folders] == [150, 150]


def test_batched_run_resumed_batched_equals_the_uninterrupted_one(tmp_path, monkeypatch, batched_whole):
    configs, whole = batched_whole
    folders = [tmp_path / "seed-0", tmp_path / "seed-1"]
    interrupted_batch(monkeypatch, configs, folders)
    resumed = train_batched(configs, folders, resume=True)
    for k in (0, 1):
        assert (folders[k] / "metrics.csv").read_bytes() == (whole[k].out_dir / "metrics.csv").read_bytes()
        assert without_timings(resumed[k].summary) == without_timings(whole[k].summary)
        assert resumed[k].summary.facts.batched_runs == 2


def test_batched_run_resumes_alone_and_beside_a_fresh_run(tmp_path, monkeypatch, batched_whole):
    configs, whole = batched_whole
    folders = [tmp_path / "seed-0", tmp_path / "seed-1"]
    interrupted_batch(monkeypatch, configs, folders)
    train(configs[1], folders[1], resume=True)
    # Seed 0 from step 150 and a fresh seed 2 from step 0: two stacks of one run each.
    seed_2 = TrainConfig(**{**CONFIG.__dict__, "seed": 2})
    resumed = train_batched([configs[0], seed_2], [folders[0], tmp_path / "seed-2"], resume=True)
    assert [result.summary.facts.batched_runs for result in resumed] == [1, 1]
    # Stacks of another size may round the batched products differently.
    for k in (0, 1):
        assert_rows_close(folders[k] / "metrics.csv", whole[k].out_dir / "metrics.csv")
    alone = train(seed_2, tmp_path / "seed-2-alone")
    assert (tmp_path / "seed-2" / "metrics.csv").read_bytes() == (alone.out_dir / "metrics.csv").read_bytes()


def test_runtime_options_are_not_the_run(tmp_path, monkeypatch, uninterrupted):
    """Progress bars and the device are how a run is run: a resume may change them."""
    with monkeypatch.context() as patch:
        interrupt_at(patch, INTERRUPT_AT)
        with pytest.raises(KeyboardInterrupt):
            training.train(CONFIG, tmp_path, options=RunOptions(device="cpu", progress=True))
    saved = json.loads((tmp_path / "config.json").read_text())
    assert "device" not in saved and "progress" not in saved
    # A folder written before the split recorded both; they do not block its resume.
    (tmp_path / "config.json").write_text(json.dumps({**saved, "device": "cuda:0", "progress": True}))
    training.train(CONFIG, tmp_path, options=RunOptions(device="cpu", progress=False), resume=True)
    assert (tmp_path / "metrics.csv").read_bytes() == (uninterrupted.out_dir / "metrics.csv").read_bytes()
