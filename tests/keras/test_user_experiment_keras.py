"""A task and a model from a user's own file, trained in Keras: its probes, mini-batches, the squared
error to one-hot labels, and the refusal of a probe that is not a layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from quiet_training import train

from reference_tasks.experiment import ExperimentError
from reference_tasks.runfolder import read_metrics
from reference_tasks.training.recipe import TrainConfig

BITS = Path(__file__).resolve().parents[1] / "experiments" / "bits_experiment.py"


def test_a_users_keras_model_trains_with_mini_batches_and_is_measured_at_its_probes(tmp_path):
    config = TrainConfig.for_task(f"{BITS}:task", steps=12, n_checkpoints=3, probes=("linear", "hidden"))
    result = train(config, tmp_path, framework="keras")
    rows = read_metrics(tmp_path / "metrics.csv")
    assert list(rows[0])[6:9] == ["lmn_linear", "lmn_hidden", "lmn_n_samples"]
    measured = [row for row in rows if row["lmn_linear"] is not None]
    assert [row["step"] for row in measured] == [0, 1, 12]
    assert all(1 < row["lmn_linear"] <= 12 and row["regions_linear"] >= 1 for row in measured)
    hidden = [row["lmn_hidden"] for row in measured if row["lmn_hidden"] is not None]  # a side probe
    assert len(hidden) == 2 and hidden == pytest.approx([1.0, 1.0], abs=1e-6)  # an affine head (identity 2)
    # with mini-batches a row's train metrics are the whole training set's (48 samples)
    assert all(round(row["train_acc"] * 48, 6).is_integer() for row in rows)
    assert result.summary.task == "bits" and sorted(np.load(tmp_path / "snapshots" / "step_000000.npz").files)


def test_a_keras_mse_task_runs_and_a_probe_that_is_not_a_layer_is_refused(tmp_path):
    config = TrainConfig.for_task(f"{BITS}:mse_task", steps=4, n_checkpoints=2)
    train(config, tmp_path / "mse", framework="keras")
    losses = [row["train_loss"] for row in read_metrics(tmp_path / "mse" / "metrics.csv")]
    assert all(0 < loss < 1 for loss in losses)  # squared errors to one-hot rows, not cross-entropies
    with pytest.raises(
        ExperimentError, match="task 'bad_probe': probe 'hiden' is not a cut of model 'bits MLP'"
    ):
        train(TrainConfig.for_task(f"{BITS}:probe_not_a_cut", steps=2), tmp_path / "bad", framework="keras")
    assert not (tmp_path / "bad").exists()
