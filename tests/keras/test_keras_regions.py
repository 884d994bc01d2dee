"""adapters.keras.regions: Keras heads read as affine maps and hinges, and the regions of a run."""

from functools import partial

import keras
import numpy as np
import pytest
import quiet_training
from run_folder_checks import check_run_folder

import lmn_core
from adapters.keras import LayerRegions, layer_regions, split
from adapters.keras.regions import piecewise_linear_head
from reference_tasks.model.keras_model import build_model, snapshot_arrays
from reference_tasks.model.numpy_model import NumpyGrokMLP
from reference_tasks.model.spec import LEAKY_RELU_SLOPE
from reference_tasks.tasks import make_task
from reference_tasks.training.recipe import TrainConfig

train = partial(quiet_training.train, framework="keras")


def written_out_head(model: NumpyGrokMLP, probe: str, slope: float) -> lmn_core.PiecewiseLinearHead:
    """The reference MLP's head after ``probe``, written out from its weights."""
    layers = []
    for index in range(["embedding", "hidden1", "hidden2"].index(probe), 3):
        layers.append(lmn_core.Affine(model.weights[index], model.biases[index]))
        if index < 2:
            layers.append(lmn_core.Hinge(slope))
    return lmn_core.PiecewiseLinearHead(layers)


@pytest.mark.parametrize(("activation", "slope"), [("relu", 0.0), ("leaky_relu", LEAKY_RELU_SLOPE)])
def test_the_reference_mlp_gives_the_regions_of_its_written_out_head(activation, slope):
    model = build_model(31, 31, activation=activation, init_scale=2.0, seed=4)
    written = NumpyGrokMLP.from_snapshot(snapshot_arrays(model), activation)
    pairs = make_task("modadd").pairs[::9]
    for probe in ("embedding", "hidden1"):
        expected = lmn_core.linear_regions(
            written_out_head(written, probe, slope), written.activations(pairs, probe)
        )
        got = layer_regions(model, pairs, probe)
        assert got.n_regions == expected.n_regions, probe
        assert got.pieces_mean == pytest.approx(expected.pieces_mean, abs=0.02), probe
    _, folded = split(model, "hidden1", fold=True)
    assert [type(layer).__name__ for layer in piecewise_linear_head(folded).layers] == ["Hinge", "Affine"]


@pytest.mark.float64
def test_chains_of_every_layer_kind_are_read_exactly():
    inputs = keras.Input(shape=(3,), dtype="float64")
    x = keras.layers.Dense(6, activation="relu", dtype="float64")(inputs)
    x = keras.layers.Dense(5, dtype="float64")(x)
    x = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.3), dtype="float64")(x)
    x = keras.layers.Dense(5, activation="leaky_relu", use_bias=False, dtype="float64")(x)
    x = keras.layers.ReLU(negative_slope=0.1, dtype="float64")(x)
    x = keras.layers.LeakyReLU(negative_slope=0.05, dtype="float64")(x)
    x = keras.layers.Activation("relu", dtype="float64")(keras.layers.Identity(dtype="float64")(x))
    model = keras.Model(inputs, keras.layers.Dense(2, dtype="float64")(x))
    head = piecewise_linear_head(model)
    rows = np.random.default_rng(0).normal(size=(40, 3))
    np.testing.assert_allclose(head(rows), model.predict_on_batch(rows), rtol=1e-12, atol=1e-12)
    assert len(head.layers) == 10


@pytest.mark.parametrize(
    ("layer", "named"),
    [
        (keras.layers.Activation("silu"), r"its activation 'silu' is not linear, relu or leaky_relu"),
        (keras.layers.Dropout(0.5), r"\(Dropout\): a piecewise-linear head is made of Dense"),
        (keras.layers.ReLU(max_value=6.0), r"\(ReLU\): a piecewise-linear head"),
        (keras.layers.Dense(4, activation="tanh"), r"its activation 'tanh'"),
    ],
)
def test_other_layers_are_refused_by_name(layer, named):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(4, name="first"), layer])
    with pytest.raises(
        ValueError, match=rf"cannot count linear regions through layer '{layer.name}'.*{named}"
    ):
        piecewise_linear_head(model)
    with pytest.raises(ValueError, match=named):
        LayerRegions(model, "first")


def test_a_layer_used_twice_is_caught_on_the_samples():
    inputs = keras.Input(shape=(3,))
    shared = keras.layers.Dense(3, name="shared")
    x = keras.layers.ReLU(name="cut")(keras.layers.Dense(3, name="first")(inputs))
    outputs = shared(keras.layers.ReLU()(shared(x)))
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match=r"does not compute what its layers say"):
        layer_regions(model, np.random.default_rng(1).normal(size=(10, 3)), "cut")


def test_a_relu_run_records_region_columns(tmp_path):
    config = TrainConfig(task="xor", steps=30, lmn_samples=20, n_checkpoints=3, activation="leaky_relu")
    result = train(config, tmp_path)
    rows = check_run_folder(config, result, "keras", "model.keras")
    counted = [row for row in rows if row["pieces_mean_hidden1"] is not None]
    assert [row["step"] for row in counted] == [0, 1, 30]
    assert all(1 <= row["regions_hidden1"] <= 20 and row["pieces_mean_hidden1"] >= 1 for row in counted)
    assert set(result.summary.regions) == {"hidden1"}
