"""reference_tasks.keras_trainer: short runs of the paper's recipe, in the common run-folder schema."""

import json

import keras
import numpy as np
import pytest
from run_folder_checks import REQUIRED_SUMMARY_KEYS, check_run_folder

from reference_tasks.keras_trainer import train
from reference_tasks.recipe import TrainConfig
from reference_tasks.runs import read_metrics

# The Keras trainer's summary: the required keys plus these run facts, and nothing else.
SUMMARY_KEYS = REQUIRED_SUMMARY_KEYS | {
    "final_train_acc",
    "final_test_acc",
    "lmn_n_samples",
    "lmn_hidden1_steps",
    "pearson_n_points",
    "task_options",
    "dtype",
    "n_train",
    "n_test",
    "lmn_checkpoints",
    "seconds_total",
    "seconds_lmn",
}


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    config = TrainConfig(steps=300, lmn_samples=16, n_checkpoints=6, progress=False)
    return config, train(config, tmp_path_factory.mktemp("modadd"))


def test_short_run_memorizes_addition_mod_31(short_run):
    _, result = short_run
    assert result.summary["memorization_step"] is not None and result.summary["memorization_step"] <= 300
    assert result.summary["final_train_acc"] == 1.0


def test_run_folder_has_the_common_schema(short_run):
    config, result = short_run
    rows = check_run_folder(config, result, "keras", "model.keras")
    for row in rows:  # accuracies are whole counts of the 769 training pairs
        assert row["train_acc"] * 769 == pytest.approx(round(row["train_acc"] * 769), abs=1e-9)
    summary = json.loads((result.out_dir / "summary.json").read_text())
    assert set(summary) == SUMMARY_KEYS
    assert (
        json.loads((result.out_dir / "config.json").read_text())["keras_backend"] == keras.backend.backend()
    )


def test_saved_model_reloads_with_the_same_outputs(short_run):
    _, result = short_run
    model = keras.saving.load_model(result.out_dir / "model.keras")
    pairs = np.stack([np.arange(31), np.arange(31)[::-1]], axis=1).astype(np.int32)
    np.testing.assert_array_equal(model.predict_on_batch(pairs), result.model.predict_on_batch(pairs))
    assert [layer.name for layer in model.layers] == [layer.name for layer in result.model.layers]


def test_same_seed_gives_identical_metrics(tmp_path):
    config = TrainConfig(steps=40, lmn_samples=8, n_checkpoints=3, progress=False)
    first = train(config, tmp_path / "a").out_dir / "metrics.csv"
    second = train(config, tmp_path / "b").out_dir / "metrics.csv"
    other = train(
        TrainConfig(steps=40, lmn_samples=8, n_checkpoints=3, progress=False, seed=1), tmp_path / "c"
    )
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != (other.out_dir / "metrics.csv").read_bytes()


@pytest.mark.parametrize(
    ("task", "options"),
    [
        pytest.param("s4", {"task": "s4", "dtype": "float64"}, marks=pytest.mark.float64),
        ("xor", {"task": "xor", "shared_embedding": False}),
    ],
)
def test_other_tasks_dtypes_and_embeddings(tmp_path, task, options):
    config = TrainConfig(
        steps=20, lmn_samples=6, checkpoint_steps=(0, 20), probes=("hidden1",), progress=False, **options
    )
    result = train(config, tmp_path)
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [row["step"] for row in rows if row["lmn_hidden1"] is not None] == [0, 20]
    assert all(row["lmn_embedding"] is None for row in rows)
    assert {str(weight.dtype) for weight in result.model.weights} >= {config.dtype}
    assert all(str(weight.dtype) == config.dtype for weight in result.model.trainable_weights)
    assert len(result.model.get_layer("embedding").tables) == (1 if config.shared_embedding else 2)
    assert result.summary["task"] == task
    assert np.isfinite(rows[-1]["train_loss"])
