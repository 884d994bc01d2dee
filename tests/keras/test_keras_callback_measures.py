"""adapters.keras.LMNCallback(measures=[...]): progress measures beside the LMN in the epoch logs."""

import math

import keras
import numpy as np
import pytest

import lmn_core
from adapters.keras import LMNCallback

MEASURES = ["effective_rank", "weight_movement", "local_complexity", "l2"]
COLUMNS = ["effective_rank_h1", "weight_movement", "local_complexity_h1", "l2"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def compiled_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu", name="h1"),
            keras.layers.Dense(12, name="h2"),
            keras.layers.ReLU(name="r2"),
            keras.layers.Dense(2, name="out"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def weights_now(model):
    return {w.path: keras.ops.convert_to_numpy(w).astype(np.float64) for w in model.trainable_weights}


def by_hand(model, initial, x):
    hidden = np.asarray(keras.Model(model.inputs, model.get_layer("h1").output).predict_on_batch(x))
    kernel, bias = (keras.ops.convert_to_numpy(w).astype(np.float64) for w in model.get_layer("h2").weights)
    weights = weights_now(model)
    return {
        "effective_rank_h1": lmn_core.effective_rank(hidden),
        "weight_movement": lmn_core.weight_movement(weights, initial),
        "local_complexity_h1": float(lmn_core.local_complexity(hidden, lambda z: [z @ kernel + bias])),
        "l2": lmn_core.l2(weights),
    }


def test_the_callback_logs_the_measures_equal_to_the_cores_by_hand(data):
    x, y = data
    model = compiled_model()
    initial = weights_now(model)
    callback = LMNCallback(x[:30], "h1", every_n_epochs=2, measures=MEASURES, n_points=5)
    history = model.fit(x, y, batch_size=len(x), epochs=4, verbose=0, callbacks=[callback])
    expected = by_hand(model, initial, x[:30])
    for column in COLUMNS:
        values = history.history[column]
        assert math.isnan(values[0]) and math.isnan(values[2])
        assert values[3] == pytest.approx(expected[column], rel=1e-5)
    assert expected["weight_movement"] > 1e-3
    assert callback.measurements[-1]["step"] == 4
    assert set(callback.measurements[-1]) == {"step", "epoch", "lmn_h1", "lmn_n_samples", *COLUMNS}


def test_no_measures_keeps_the_keys_of_before(data):
    x, y = data
    callback = LMNCallback(x[:20], "h1", n_points=5)
    history = compiled_model().fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert set(history.history) == {"loss", "lmn_h1", "lmn_n_samples"}


def test_a_measure_the_head_cannot_supply_is_refused_when_training_starts(data):
    x, y = data
    callback = LMNCallback(x[:20], "r2", measures=["local_complexity"])
    with pytest.raises(lmn_core.MeasureError, match=r"local_complexity.*layer 'r2'"):
        compiled_model().fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    with pytest.raises(lmn_core.MeasureError, match="unknown measure"):
        LMNCallback(x[:20], "h1", measures=["no_such_measure"])
