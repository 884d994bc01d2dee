"""reference_tasks.model.keras_model: the torch model's layers, shapes and initial distributions."""

import keras
import numpy as np
import pytest

from reference_tasks.model.keras_model import build_model


def test_layers_shapes_and_initial_distributions():
    model = build_model(31, 29, shared_embedding=False, seed=0)
    assert [layer.name for layer in model.layers] == [
        "pairs",
        "embedding",
        "linear1",
        "hidden1",
        "linear2",
        "hidden2",
        "output",
    ]
    table0, table1, k1, b1, k2, b2, k3, b3 = model.get_weights()
    assert table0.shape == table1.shape == (31, 32)
    assert (k1.shape, k2.shape, k3.shape, b3.shape) == ((64, 100), (100, 100), (100, 29), (29,))
    embedding = np.concatenate([table0, table1]).ravel()
    assert abs(embedding.mean()) < 0.1 and abs(embedding.std() - 1.0) < 0.1  # N(0, 1) like torch
    for kernel, bias in [(k1, b1), (k2, b2), (k3, b3)]:
        bound = 1.0 / np.sqrt(kernel.shape[0])  # U(±1/sqrt(fan_in)) like torch.nn.Linear
        assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.9 * bound
        assert np.abs(bias).max() <= bound
    assert not np.array_equal(table0, table1)
    again = build_model(31, 29, shared_embedding=False, seed=0).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(again, model.get_weights(), strict=True))
    other = build_model(31, 29, shared_embedding=False, seed=1).get_weights()
    assert not np.array_equal(other[0], table0)


def test_float64_is_refused_on_a_backend_that_computes_it_in_float32(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    build_model(31, 31)
    with pytest.raises(
        ValueError, match="dtype='float64' needs the TensorFlow backend of Keras: on the 'torch'"
    ):
        build_model(31, 31, dtype="float64")
