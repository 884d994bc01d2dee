"""The testbeds' Keras models: twins of the PyTorch ones (equal weights, equal logits), cut alike."""

import keras
import numpy as np
import pytest
import torch

import adapters.keras as adapters_keras
import adapters.torch as adapters_torch
import lmn_core
from reference_tasks.testbeds import keras_models, torch_models
from reference_tasks.testbeds.data import digits, modular_addition_sequences, sparse_parity


def twins(name, seed=0):
    """A PyTorch model, its Keras twin built from another seed, and samples' inputs."""
    if name == "transformer":
        inputs = modular_addition_sequences(17).inputs
        return (
            torch_models.transformer(17, 32, 4, 64, seed=seed),
            keras_models.transformer(17, 32, 4, 64, seed=seed + 1),
            inputs,
        )
    if name == "parity":
        inputs = sparse_parity(40, 3, n_samples=200).inputs
        return (
            torch_models.mlp(40, 50, 2, 2, seed=seed),
            keras_models.mlp(40, 50, 2, 2, seed=seed + 1),
            inputs,
        )
    inputs = digits().inputs[:300]
    return (
        torch_models.mlp(64, 30, 3, 10, seed=seed, init_scale=8.0),
        keras_models.mlp(64, 30, 3, 10, seed=seed + 1, init_scale=8.0),
        inputs,
    )


def torch_logits(model, inputs):
    with torch.no_grad():
        return model(torch.as_tensor(inputs)).numpy()


@pytest.mark.parametrize("name", ["transformer", "parity", "digits"])
def test_equal_weights_give_equal_logits(name):
    source, target, inputs = twins(name)
    expected = torch_logits(source, inputs)
    assert (
        np.abs(keras.ops.convert_to_numpy(target(inputs)) - expected).max() > 1e-2
    )  # other weights, other logits
    keras_models.copy_torch_weights(target, source)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(target(inputs)), expected, rtol=0, atol=2e-6 * scale
    )


@pytest.mark.parametrize("name", ["transformer", "digits"])
def test_keras_weights_read_back_under_the_pytorch_names_and_shapes(name):
    source, target, _ = twins(name)
    keras_models.copy_torch_weights(target, source)
    arrays = keras_models.torch_named_weights(target)
    state = source.state_dict()
    assert sorted(arrays) == sorted(state)
    for key, value in state.items():
        np.testing.assert_array_equal(arrays[key], value.numpy())


def test_keras_initial_weights_follow_the_pytorch_distributions():
    source, target, _ = twins("transformer")
    torch_std = {name: value.std().item() for name, value in source.state_dict().items()}
    query = keras.ops.convert_to_numpy(target.get_layer("attn").kernels[0])
    assert query.std() == pytest.approx(torch_std["attn.query.weight"], rel=0.1)
    unembed = keras.ops.convert_to_numpy(target.get_layer("unembed").kernel)
    assert unembed.std() == pytest.approx(torch_std["unembed.weight"], rel=0.1)
    _, keras_mlp, _ = twins("digits")
    assert np.abs(keras.ops.convert_to_numpy(keras_mlp.get_layer("linear1").kernel)).max() == pytest.approx(
        1.0, rel=0.05
    )


def test_the_transformers_probes_are_cuts_and_the_mlps_hidden_activation_is_not():
    _, model, inputs = twins("transformer")
    cuts = adapters_keras.cut_points(model)
    assert {"embed", "attn", "mlp"} <= set(cuts) and "mlp_hidden" not in cuts
    expected = keras.ops.convert_to_numpy(model(inputs))
    for probe in ("embed", "attn", "mlp"):
        body, head = adapters_keras.split(model, probe)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(head(body(inputs))), expected, rtol=0, atol=1e-6
        )
    with pytest.raises(ValueError, match="'attn' before it and 'mlp' after it"):
        adapters_keras.split(model, "mlp_hidden")


@pytest.mark.parametrize(
    ("name", "probe"), [("transformer", "attn"), ("transformer", "embed"), ("digits", "hidden1")]
)
def test_equal_weights_give_equal_lmn(name, probe):
    source, target, inputs = twins(name)
    keras_models.copy_torch_weights(target, source)
    inputs = inputs[:48]
    expected = adapters_torch.layer_lmn(source, torch.as_tensor(inputs), probe).lmn
    assert adapters_keras.layer_lmn(target, inputs, probe).lmn == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("name", ["transformer", "parity", "digits"])
def test_snapshots_load_back_into_the_keras_twin(name):
    source, target, inputs = twins(name)
    state = {key: value.numpy() for key, value in source.state_dict().items()}
    keras_models.load_torch_named_weights(target, state)
    expected = torch_logits(source, inputs)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(target(inputs)), expected, rtol=0, atol=2e-6 * np.abs(expected).max()
    )
    with pytest.raises(ValueError, match="the weights hold no"):
        keras_models.load_torch_named_weights(target, {key: state[key] for key in list(state)[1:]})


@pytest.mark.parametrize(("name", "probe"), [("transformer", "attn"), ("digits", "hidden1")])
def test_equal_weights_give_equal_progress_measures(name, probe):
    source, target, inputs = twins(name)
    keras_models.copy_torch_weights(target, source)
    parts = [
        adapters_torch.LayerProbe(source, probe, example_inputs=inputs[:4]).measure_inputs(inputs[:64]),
        adapters_keras.LayerProbe(target, probe).measure_inputs(inputs[:64]),
    ]
    for measure in ("effective_rank", "local_complexity"):
        values = [lmn_core.compute_measure(lmn_core.BUILTIN_MEASURES[measure], part) for part in parts]
        assert values[1] == pytest.approx(values[0], rel=1e-4), measure
    points = parts[0].representations[:8]
    for torch_layer, keras_layer in zip(
        parts[0].pre_activations(points), parts[1].pre_activations(points), strict=True
    ):
        np.testing.assert_allclose(keras_layer, torch_layer, rtol=0, atol=1e-5 * np.abs(torch_layer).max())
