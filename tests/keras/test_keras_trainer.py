"""training with framework="keras": short runs of the paper's recipe, in the common run-folder schema."""

import json
from functools import partial

import keras
import numpy as np
import pytest
import quiet_training
from run_folder_checks import check_run_folder, without_timings

from reference_tasks.runfolder import read_metrics
from reference_tasks.runfolder.weights import load_snapshot, snapshot_steps
from reference_tasks.training import keras_engine, loop
from reference_tasks.training.engine import TrainingData
from reference_tasks.training.recipe import TrainConfig

train = partial(quiet_training.train, framework="keras")


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    config = TrainConfig(steps=300, lmn_samples=16, n_checkpoints=6)
    return config, train(config, tmp_path_factory.mktemp("modadd"))


def test_short_run_memorizes_addition_mod_31(short_run):
    _, result = short_run
    assert result.summary.memorization_step is not None and result.summary.memorization_step <= 300
    assert result.summary.final_train_acc == 1.0


def test_run_folder_has_the_common_schema(short_run):
    config, result = short_run
    rows = check_run_folder(config, result, "keras", "model.keras")
    for row in rows:  # accuracies are whole counts of the 769 training pairs
        assert row["train_acc"] * 769 == pytest.approx(round(row["train_acc"] * 769), abs=1e-9)
    record = json.loads((result.out_dir / "summary.json").read_text())
    assert record == result.summary.to_json()  # the same record for every framework
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
    config = TrainConfig(steps=40, lmn_samples=8, n_checkpoints=3)
    first = train(config, tmp_path / "a").out_dir / "metrics.csv"
    second = train(config, tmp_path / "b").out_dir / "metrics.csv"
    other = train(TrainConfig(steps=40, lmn_samples=8, n_checkpoints=3, seed=1), tmp_path / "c")
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
    config = TrainConfig(steps=20, lmn_samples=6, checkpoint_steps=(0, 20), probes=("hidden1",), **options)
    result = train(config, tmp_path)
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [row["step"] for row in rows if row["lmn_hidden1"] is not None] == [0, 20]
    assert all(row["lmn_embedding"] is None for row in rows)
    assert {str(weight.dtype) for weight in result.model.weights} >= {config.dtype}
    assert all(str(weight.dtype) == config.dtype for weight in result.model.trainable_weights)
    assert len(result.model.get_layer("embedding").tables) == (1 if config.shared_embedding else 2)
    assert result.summary.task == task
    assert np.isfinite(rows[-1]["train_loss"])


class KilledError(Exception):
    """Stands in for a kill in the middle of a run."""


def _interrupt_at(monkeypatch, stop_step):
    """Make the trainer die when it reaches the LMN checkpoint at ``stop_step``."""
    real_save = loop.save_snapshot

    def save_or_die(run_dir, step, arrays):
        if step == stop_step:
            raise KilledError
        return real_save(run_dir, step, arrays)

    monkeypatch.setattr(loop, "save_snapshot", save_or_die)


def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    config = TrainConfig(steps=120, lmn_samples=10, checkpoint_steps=(0, 30, 60, 90, 120))
    whole = train(config, tmp_path / "whole")
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 90)
        with pytest.raises(KilledError):
            train(config, tmp_path / "resumed")
    interrupted_rows = read_metrics(tmp_path / "resumed" / "metrics.csv")
    assert interrupted_rows[-1]["step"] == 89  # rows after the step-60 checkpoint were written
    assert snapshot_steps(tmp_path / "resumed") == [0, 30, 60]
    resumed = train(config, tmp_path / "resumed", resume=True)
    assert (tmp_path / "resumed" / "metrics.csv").read_bytes() == (
        tmp_path / "whole" / "metrics.csv"
    ).read_bytes()
    assert snapshot_steps(tmp_path / "resumed") == [0, 30, 60, 90, 120]
    np.testing.assert_array_equal(
        load_snapshot(tmp_path / "resumed", 120)["output.weight"],
        load_snapshot(tmp_path / "whole", 120)["output.weight"],
    )
    assert without_timings(resumed.summary) == without_timings(whole.summary)
    assert not (tmp_path / "resumed" / "checkpoint.npz").exists()


def test_resuming_another_config_is_refused(tmp_path, monkeypatch):
    config = TrainConfig(steps=40, lmn_samples=6, checkpoint_steps=(0, 20, 40))
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 20)
        with pytest.raises(KilledError):
            train(config, tmp_path)
    with pytest.raises(ValueError, match=r"learning_rate: saved 0\.001, now 0\.002"):
        train(TrainConfig(**{**config.__dict__, "learning_rate": 2e-3}), tmp_path, resume=True)
    fresh = train(config, tmp_path)  # resume=False starts over
    assert [row["step"] for row in read_metrics(tmp_path / "metrics.csv")][-1] == 40
    assert fresh.summary.steps == 40


def test_snapshots_hold_the_model_weights_in_pytorch_layout(short_run):
    _, result = short_run
    snapshot = load_snapshot(result.out_dir, 300)
    dense = result.model.get_layer("linear2")
    np.testing.assert_array_equal(snapshot["linear2.weight"], dense.kernel.numpy().T)
    np.testing.assert_array_equal(snapshot["linear2.bias"], dense.bias.numpy())
    np.testing.assert_array_equal(
        snapshot["embedding.tables.0.weight"], result.model.get_layer("embedding").tables[0].numpy()
    )


@pytest.mark.parametrize(
    ("loss_dtype", "saturated_loss_is_zero"),
    [pytest.param("float64", False, marks=pytest.mark.x64), (None, True)],
)
def test_the_loss_is_computed_in_its_own_dtype(loss_dtype, saturated_loss_is_zero):
    """Logits 20 apart: float32 rounds the softmax to exactly 1 (loss 0, no gradient), float64 does not."""
    config = TrainConfig(task="xor", loss_dtype=loss_dtype)
    model = keras_engine.build_model(config, TrainingData.for_configs([config]))
    logits = np.zeros((4, 32), dtype=np.float32)
    logits[:, 0] = 20.0
    loss = float(model.loss(np.zeros(4, dtype=np.int32), logits))
    assert (loss == 0.0) is saturated_loss_is_zero
    if not saturated_loss_is_zero:
        assert loss == pytest.approx(31 * np.exp(-20.0), rel=1e-6)
