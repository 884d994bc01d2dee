"""A Keras run's progress measures: from its snapshots, read back through the model's loader."""

import dataclasses
from functools import partial

import keras
import numpy as np
import pytest
import quiet_training

import lmn_core
from reference_tasks.cli import main
from reference_tasks.model import keras_model
from reference_tasks.runfolder import read_metrics
from reference_tasks.runfolder.schema import split_header
from reference_tasks.runfolder.weights import load_snapshot, snapshot_steps
from reference_tasks.training.engine import TrainingData
from reference_tasks.training.keras_engine import build_model
from reference_tasks.training.recipe import TrainConfig

train = partial(quiet_training.train, framework="keras")
CONFIG = TrainConfig(steps=40, lmn_samples=16, n_checkpoints=4, side_probe_every=1)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("keras_measured")
    train(CONFIG, run_dir)
    return run_dir


def test_the_measures_equal_lmn_core_on_the_snapshots(measured):
    rows = {row["step"]: row for row in read_metrics(measured / "metrics.csv")}
    assert {"weight_movement", "effective_rank_hidden1", "local_complexity_hidden1"} <= set(
        split_header(tuple(rows[0]))[2]
    )
    data = TrainingData.for_configs([CONFIG])
    model = build_model(CONFIG, data)
    for step in snapshot_steps(measured):
        weights = load_snapshot(measured, step)
        keras_model.load_arrays(model, weights)
        hidden = keras.Model(model.inputs, model.get_layer("hidden1").output)(
            data.lmn_inputs[0].astype(np.int32)
        )
        expected = lmn_core.effective_rank(keras.ops.convert_to_numpy(hidden))
        assert rows[step]["effective_rank_hidden1"] == pytest.approx(expected, rel=1e-5)
        movement = lmn_core.weight_movement(weights, load_snapshot(measured, 0))
        assert rows[step]["weight_movement"] == pytest.approx(movement, rel=1e-12)


def test_lmn_measure_reads_keras_snapshots_back(measured, tmp_path):
    result = train(dataclasses.replace(CONFIG, measures=()), tmp_path)
    final = keras_model.snapshot_arrays(result.model)
    assert main(["measure", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "metrics.csv").read_text() == (measured / "metrics.csv").read_text()
    for name, value in keras_model.snapshot_arrays(result.model).items():  # the model keeps its weights
        np.testing.assert_array_equal(value, final[name])
