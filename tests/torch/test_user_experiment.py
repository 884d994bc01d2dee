"""A task and a model from a user's own file, and from an installed entry point, through ``lmn
reproduce``: run folder, LMN at the model's probes, report; refusals of broken ones (PyTorch)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from quiet_training import train
from torch_threads import one_thread  # noqa: F401 (an autouse fixture)

from reference_tasks import cli
from reference_tasks.experiment import ENTRY_POINT_GROUP, Criterion, resolve_task
from reference_tasks.runfolder import read_metrics
from reference_tasks.training.recipe import TrainConfig, lmn_checkpoints
from reference_tasks.training.torch_engine import TorchEngine

ROOT = Path(__file__).resolve().parents[2]
BITS = ROOT / "tests" / "experiments" / "bits_experiment.py"
REGION_COLUMNS = ["regions_linear", "region_perplexity_linear", "pieces_mean_linear", "pieces_median_linear"]
HEADER = [
    *("step", "train_loss", "test_loss", "train_acc", "test_acc", "l2_norm", "lmn_linear", "lmn_hidden"),
    "lmn_n_samples",
    *REGION_COLUMNS,
    *(column.replace("linear", "hidden") for column in REGION_COLUMNS),
    # every progress measure the run supplies (the regions' pieces_mean is a column above);
    # local complexity at "linear" only: the head after "hidden" is one affine layer
    *("weight_movement", "effective_rank_linear", "effective_rank_hidden", "local_complexity_linear"),
]


def reproduce(source: str, out: Path, *more: str) -> None:
    cli.main(["reproduce", "--task", source, "--batched", "--quiet", "--out", str(out), *more])


@pytest.mark.slow
def test_a_task_in_a_users_file_runs_through_lmn_reproduce_and_its_report_is_drawn(tmp_path):
    reproduce(f"{BITS}:task", tmp_path, "--probes", "linear", "hidden")
    run = tmp_path / "torch" / "bits-seed0"
    config = json.loads((run / "config.json").read_text())
    assert (config["task"], config["task_source"], config["loss"]) == (
        "bits",
        f"{BITS}:task",
        "cross_entropy",
    )
    assert (config["optimizer"], config["batch_size"], config["criterion"]) == (
        "sgd",
        8,
        {"train_acc": 1.0, "test_acc": 0.9},
    )
    assert (run / "metrics.csv").read_text().splitlines()[0].split(",") == HEADER
    rows = read_metrics(run / "metrics.csv")
    checkpoints = lmn_checkpoints(TrainConfig.for_task(f"{BITS}:task")).tolist()
    measured = [row["step"] for row in rows if row["lmn_linear"] is not None]
    assert measured == checkpoints == [0, 1, 6, 40]
    for row in rows:
        if row["lmn_linear"] is not None:
            assert 1.0 <= row["lmn_linear"] <= 12 and row["lmn_n_samples"] == 12
            assert 1 <= row["regions_linear"] <= 12
    # at "hidden" only the output layer is left: an affine head, LMN 1 (identity 2), one region
    hidden = [row for row in rows if row["lmn_hidden"] is not None]
    assert hidden and all(row["lmn_hidden"] == pytest.approx(1.0, abs=1e-8) for row in hidden)
    assert all(row["regions_hidden"] == 1 for row in hidden)
    report = tmp_path / "report"
    for figure in ("fig2_training_torch.png", "fig3_probes_torch.png", "fig_regions_torch.png"):
        assert (report / figure).stat().st_size > 10_000
    assert not list(report.glob("fig4_*"))  # Figure 4 recomputes the reference MLP only
    assert "| bits | torch | 1 | 12 |" in (report / "summary.md").read_text()


def test_a_task_registered_by_an_installed_distribution_runs_by_its_name(tmp_path, monkeypatch):
    site = tmp_path / "site"
    info = site / "bits_experiments-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bits-experiments\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbits-parity = bits_experiment:task\n")
    for folder in (site, BITS.parent):
        monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(site), str(BITS.parent), os.environ.get("PYTHONPATH", "")])
    )
    reproduce("bits-parity", tmp_path / "runs", "--seeds", "1", "--steps", "8", "--no-report")
    run = tmp_path / "runs" / "torch" / "bits-seed1"
    config = json.loads((run / "config.json").read_text())
    assert (config["task"], config["task_source"], config["steps"]) == ("bits", "bits-parity", 8)
    steps = [row["step"] for row in read_metrics(run / "metrics.csv") if row["lmn_linear"] is not None]
    assert steps == [0, 1, 3, 8]


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("labels_out_of_range", r"^lmn: task 'bad_labels': label 2 of sample 5 is out of range 0..1$"),
        (
            "probe_not_a_cut",
            r"^lmn: task 'bad_probe': probe 'hiden' is not a cut of model 'bits MLP': .*hiden",
        ),
        ("unknown_loss", r"task 'bad_loss': loss 'hinge' is not known; choose one of cross_entropy, mse$"),
        (
            "wrongly_piecewise_linear",
            r"^lmn: task 'bad_regions': model 'bits MLP' says it is piecewise linear, but its regions after "
            r"probe 'linear' cannot be counted: .*Tanh",
        ),
        ("not_a_task", r"not_a_task\(\) returned dict, not a reference_tasks.experiment.Task$"),
    ],
)
def test_broken_tasks_and_models_are_refused_before_training(tmp_path, function, message):
    with pytest.raises(SystemExit, match=message):
        reproduce(f"{BITS}:{function}", tmp_path)
    assert not list(tmp_path.rglob("config.json"))


def test_a_mini_batch_run_resumes_to_the_same_bytes(tmp_path, monkeypatch):
    config = TrainConfig.for_task(f"{BITS}:task", steps=30, n_checkpoints=5)
    train(config, tmp_path / "whole")
    original, calls = TorchEngine.update, {"n": 0}

    def update_or_stop(self, *args, **kwargs):
        if calls["n"] == 20:
            raise KeyboardInterrupt
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TorchEngine, "update", update_or_stop)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut")
    monkeypatch.setattr(TorchEngine, "update", original)
    train(config, tmp_path / "cut", resume=True)
    whole, cut = ((tmp_path / name / "metrics.csv").read_bytes() for name in ("whole", "cut"))
    assert whole == cut


def test_the_squared_error_to_one_hot_labels_is_the_loss_of_an_mse_task(tmp_path):
    config = TrainConfig.for_task(f"{BITS}:mse_task", steps=3, n_checkpoints=2)
    assert (config.loss, config.optimizer, config.batch_size) == ("mse", "adamw", None)
    result = train(config, tmp_path)
    first = read_metrics(tmp_path / "metrics.csv")[0]
    task = resolve_task(f"{BITS}:mse_task")
    data = task.make_data()
    model = task.model.torch(config, data)
    order = np.random.default_rng(config.seed).permutation(64)
    test = np.sort(order[48:])
    outputs = model(torch.from_numpy(data.inputs[test])).double()
    expected = (outputs - torch.nn.functional.one_hot(torch.from_numpy(data.labels[test]), 2)).square().mean()
    assert first["test_loss"] == pytest.approx(float(expected), rel=1e-6)
    assert result.summary.task == "bits_mse" and config.criterion == Criterion(1.0, 0.9)
