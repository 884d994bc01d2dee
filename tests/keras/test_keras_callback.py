"""adapters.keras.LMNCallback: LMN during model.fit, in the epoch logs, History and CSVLogger."""

import csv
import math

import keras
import numpy as np
import pytest

from adapters.keras import LMNCallback, layer_lmn, lmn_key
from reference_tasks.model.keras_model import build_model
from reference_tasks.tasks import make_task

LAYERS = ("embedding", "hidden1")


@pytest.fixture(scope="module")
def data():
    task = make_task("modadd", p=11)
    return task.pairs.astype(np.int32), task.labels.astype(np.int32)


def compiled_model(seed=0):
    model = build_model(11, 11, hidden_dim=16, seed=seed)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_values_appear_in_history_under_the_documented_keys(data, tmp_path):
    pairs, labels = data
    model = compiled_model()
    inputs = pairs[::5]
    callback = LMNCallback(inputs, LAYERS, every_n_epochs=2, n_points=7)
    log = tmp_path / "log.csv"
    history = model.fit(
        pairs,
        labels,
        batch_size=len(pairs),
        epochs=4,
        verbose=0,
        callbacks=[callback, keras.callbacks.CSVLogger(str(log))],
    )
    assert lmn_key("hidden1") == "lmn_hidden1"
    keys = [lmn_key(layer) for layer in LAYERS]
    assert set(history.history) >= {*keys, "lmn_n_samples", "loss"}
    for key in keys:
        values = history.history[key]
        assert len(values) == 4
        assert math.isnan(values[0]) and math.isnan(values[2])
        assert all(1.0 <= value <= len(inputs) for value in values[1::2])
    assert history.history["lmn_n_samples"][1::2] == [len(inputs)] * 2
    for layer in LAYERS:  # the last value is the model's LMN after the last epoch
        expected = layer_lmn(model, inputs, layer, n_points=7).lmn
        assert history.history[lmn_key(layer)][-1] == pytest.approx(expected, rel=1e-12)
        assert callback.last_results[layer].lmn == history.history[lmn_key(layer)][-1]
    with log.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [float(row["lmn_hidden1"]) for row in rows][1::2] == history.history["lmn_hidden1"][1::2]


def test_schedule_as_epoch_numbers_and_no_fill(data):
    pairs, labels = data
    callback = LMNCallback(pairs[::7], "hidden1", every_n_epochs=[1, 3], fill_value=None, n_points=5)
    assert [callback.scheduled(epoch) for epoch in range(4)] == [True, False, True, False]
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append("lmn_hidden1" in logs)

    compiled_model().fit(
        pairs, labels, batch_size=len(pairs), epochs=4, verbose=0, callbacks=[callback, Spy()]
    )
    assert seen == [True, False, True, False]


def test_bad_arguments_fail_early(data):
    pairs, labels = data
    with pytest.raises(ValueError, match="every_n_epochs must be at least 1"):
        LMNCallback(pairs, "hidden1", every_n_epochs=0)
    with pytest.raises(ValueError, match="collection of epoch numbers"):
        LMNCallback(pairs, "hidden1", every_n_epochs=[0, 2])
    with pytest.raises(ValueError, match="at least one layer"):
        LMNCallback(pairs, [])
    with pytest.raises(ValueError, match="no layer 'hidden3'"):
        compiled_model().fit(
            pairs, labels, epochs=1, verbose=0, callbacks=[LMNCallback(pairs, ["hidden1", "hidden3"])]
        )


def test_step_zero_and_a_schedule_of_batches(data):
    pairs, labels = data
    model = compiled_model()
    inputs = pairs[::7]
    initial = layer_lmn(model, inputs, "hidden1", n_points=5).lmn
    callback = LMNCallback(inputs, "hidden1", every_n_epochs=[2], at_start=True, every_n_steps=3, n_points=5)
    model.fit(pairs, labels, batch_size=len(pairs) // 4 + 1, epochs=2, verbose=0, callbacks=[callback])
    assert [(row["step"], row["epoch"]) for row in callback.measurements] == [
        (0, None),
        (3, None),
        (6, None),
        (8, 1),
    ]
    assert callback.measurements[0]["lmn_hidden1"] == pytest.approx(initial, rel=1e-12)
    assert callback.measurements[-1]["lmn_hidden1"] == callback.last_results["hidden1"].lmn
    assert all(row["lmn_n_samples"] == len(inputs) for row in callback.measurements)
    with pytest.raises(ValueError, match="every_n_steps must be at least 1"):
        LMNCallback(inputs, "hidden1", every_n_steps=0)


def test_the_old_schedule_names_warn_naming_the_new_ones_and_still_work(data):
    pairs, labels = data
    inputs = pairs[::7]
    with pytest.warns(
        DeprecationWarning, match=r"LMNCallback\(every=\.\.\.\) is deprecated.*use every_n_epochs="
    ):
        old = LMNCallback(inputs, "hidden1", every=[2], n_points=5)
    with pytest.warns(DeprecationWarning, match=r"every_batches=\.\.\.\) is deprecated.*use every_n_steps="):
        old_steps = LMNCallback(inputs, "hidden1", every_batches=3, n_points=5)
    new = LMNCallback(inputs, "hidden1", every_n_epochs=[2], n_points=5)
    assert old.every_n_epochs == new.every_n_epochs == frozenset({2}) and old_steps.every_n_steps == 3
    with pytest.warns(
        DeprecationWarning, match=r"LMNCallback\.every_batches is deprecated.*use \.every_n_steps"
    ):
        assert old_steps.every_batches == 3
    for callback in (old, new):
        compiled_model().fit(pairs, labels, batch_size=len(pairs), epochs=2, verbose=0, callbacks=[callback])
    assert [row["epoch"] for row in old.measurements] == [row["epoch"] for row in new.measurements] == [1]
    # two fits of a fresh model: the same training, up to TensorFlow's float32 summation order
    assert old.measurements[0]["lmn_hidden1"] == pytest.approx(new.measurements[0]["lmn_hidden1"], rel=1e-5)
    with (
        pytest.raises(
            TypeError, match=r"got every_n_epochs= and its old name every=: give every_n_epochs= only"
        ),
        pytest.warns(DeprecationWarning),
    ):
        LMNCallback(inputs, "hidden1", every=2, every_n_epochs=3)
