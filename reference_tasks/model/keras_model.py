"""The paper's MLP in Keras 3, built so that its probe points are layer names.

:func:`build_model` returns a functional ``keras.Model`` whose layers are, in order::

    pairs      Input (B, 2) integer operand pairs
    embedding  PairEmbedding: (B, 2) -> (B, 2 * embedding_dim), [e(a), e(b)]
    linear1    Dense(hidden_dim)
    hidden1    Activation("silu")  <- probe "hidden1": the first hidden layer's activations
    linear2    Dense(hidden_dim)
    hidden2    Activation("silu")  <- probe "hidden2"
    output     Dense(n_classes): the logits

(``Activation("silu")``, or for ``activation="leaky_relu"`` a ``LeakyReLU`` layer with
PyTorch's slope 0.01, or ``Activation`` of ``relu``, ``gelu`` (exact, as PyTorch's) or ``tanh``)

the same names and shapes as ``reference_tasks.model.torch_model.GrokMLP``, so
``adapters.keras.split(model, "embedding" | "hidden1" | "hidden2")`` cuts it at the
probe points named in the metrics schema. The initial weights are drawn from
PyTorch's default distributions (embedding N(0, 1); Dense kernel and bias uniform in
``±1/sqrt(fan_in)``), not Keras's, so that both frameworks start from the same
distribution; each initializer gets its own seed derived from ``seed``, so the
weights are reproducible without touching any global random state.

``dtype="float64"`` needs Keras's TensorFlow backend: on its other backends Keras 3
promotes 64-bit floats to 32-bit in its ops (``keras.backend.result_type``), so a
float64 model there computes its matrix products in float32.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from reference_tasks.model.spec import (
    DEFAULT_ACTIVATION,
    EMBEDDING_LAYER,
    LEAKY_RELU_SLOPE,
    WeightSlot,
    check_activation,
    weight_layout,
)

N_SEEDS = 8


@keras.saving.register_keras_serializable(package="lmn")
class PairEmbedding(keras.layers.Layer):
    """Embed both operands of ``(a, b)`` pairs and concatenate the two vectors.

    Parameters
    ----------
    n_tokens : int
        Number of operand values.
    dim : int
        Embedding dimension of one operand.
    shared : bool
        One table for both operands (the default) or one table per operand.
    seeds : sequence of int, optional
        Seeds of the tables' N(0, 1) initializers (one per table).
    **kwargs
        Passed to ``keras.layers.Layer`` (``name``, ``dtype``, ...).
    """

    def __init__(
        self,
        n_tokens: int,
        dim: int,
        *,
        shared: bool = True,
        seeds: tuple[int, ...] | list[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.n_tokens = int(n_tokens)
        self.dim = int(dim)
        self.shared = bool(shared)
        n_tables = 1 if self.shared else 2
        self.seeds = tuple(seeds) if seeds is not None else (None,) * n_tables
        if len(self.seeds) != n_tables:
            raise ValueError(f"PairEmbedding with shared={shared} needs {n_tables} seeds, got {seeds}")

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Create the embedding tables."""
        self.tables = [
            self.add_weight(
                shape=(self.n_tokens, self.dim),
                initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=seed),
                name=f"table{index}",
            )
            for index, seed in enumerate(self.seeds)
        ]

    def call(self, pairs: Any) -> Any:
        """``(B, 2)`` integer pairs -> ``(B, 2 * dim)`` concatenated embeddings."""
        pairs = ops.cast(pairs, "int32")
        if self.shared:
            return ops.reshape(ops.take(self.tables[0], pairs, axis=0), (-1, 2 * self.dim))
        first = ops.take(self.tables[0], pairs[:, 0], axis=0)
        second = ops.take(self.tables[1], pairs[:, 1], axis=0)
        return ops.concatenate([first, second], axis=1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, int]:
        """``(B, 2)`` -> ``(B, 2 * dim)``."""
        return (input_shape[0], 2 * self.dim)

    def get_config(self) -> dict[str, Any]:
        """The layer's constructor arguments, for saving."""
        return {
            **super().get_config(),
            "n_tokens": self.n_tokens,
            "dim": self.dim,
            "shared": self.shared,
            "seeds": list(self.seeds),
        }


def _dense(units: int, fan_in: int, seeds: list[int], name: str, dtype: str) -> keras.layers.Dense:
    """A Dense layer initialised like ``torch.nn.Linear``: kernel and bias in ``±1/sqrt(fan_in)``."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.layers.Dense(
        units,
        kernel_initializer=keras.initializers.RandomUniform(-bound, bound, seed=seeds[0]),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound, seed=seeds[1]),
        name=name,
        dtype=dtype,
    )


def activation_layer(activation: str, name: str, dtype: str) -> keras.layers.Layer:
    """The hidden activation layer ``name`` for ``activation`` (one of ``model.spec.ACTIVATIONS``)."""
    if check_activation(activation) == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE, name=name, dtype=dtype)
    return keras.layers.Activation(activation, name=name, dtype=dtype)


def build_model(
    n_tokens: int,
    n_classes: int,
    *,
    embedding_dim: int = 32,
    hidden_dim: int = 100,
    shared_embedding: bool = True,
    init_scale: float = 1.0,
    activation: str = DEFAULT_ACTIVATION,
    dtype: str = "float32",
    seed: int = 0,
) -> keras.Model:
    """The paper's MLP as a functional Keras model (see the module docstring for its layers).

    Parameters
    ----------
    n_tokens, n_classes : int
        Operand values (embedding rows) and classes (logits).
    embedding_dim, hidden_dim : int
        Embedding dimension of one operand; width of both hidden layers.
    shared_embedding : bool
        One embedding table for both operands, or one each.
    init_scale : float
        Factor on every initial weight.
    activation : str
        The hidden activation, one of ``model.spec.ACTIVATIONS``.
    dtype : str
        ``"float32"`` or ``"float64"``: the dtype of every weight and activation.
    seed : int
        Seeds the initial weights (the same seed gives the same weights).

    Returns
    -------
    keras.Model
        Not compiled; input ``(B, 2)`` int32 pairs, output ``(B, n_classes)`` logits.

    Raises
    ------
    ValueError
        For ``dtype="float64"`` on a Keras backend other than TensorFlow.
    """
    check_activation(activation)
    if dtype == "float64" and keras.backend.backend() != "tensorflow":
        raise ValueError(
            f"dtype='float64' needs the TensorFlow backend of Keras: on the {keras.backend.backend()!r} "
            "backend Keras 3 computes float64 matrix products in float32 (KERAS_BACKEND=tensorflow)"
        )
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(N_SEEDS) >> 1]
    pairs = keras.Input(shape=(2,), dtype="int32", name="pairs")
    embedded = PairEmbedding(
        n_tokens,
        embedding_dim,
        shared=shared_embedding,
        seeds=seeds[:1] if shared_embedding else seeds[:2],
        name="embedding",
        dtype=dtype,
    )(pairs)
    x = _dense(hidden_dim, 2 * embedding_dim, seeds[2:4], "linear1", dtype)(embedded)
    x = activation_layer(activation, "hidden1", dtype)(x)
    x = _dense(hidden_dim, hidden_dim, seeds[4:6], "linear2", dtype)(x)
    x = activation_layer(activation, "hidden2", dtype)(x)
    logits = _dense(n_classes, hidden_dim, seeds[6:8], "output", dtype)(x)
    model = keras.Model(pairs, logits, name="grok_mlp")
    if init_scale != 1.0:
        for weight in model.weights:
            weight.assign(weight * init_scale)
    return model


def _variable(model: keras.Model, slot: WeightSlot) -> keras.Variable:
    layer = model.get_layer(slot.layer)
    if slot.part == "table":
        return layer.tables[slot.index]
    return layer.kernel if slot.part == "weight" else layer.bias


def _slots(model: keras.Model) -> tuple[WeightSlot, ...]:
    return weight_layout(len(model.get_layer(EMBEDDING_LAYER).tables))


def snapshot_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """The model's weights in the snapshot layout (PyTorch names and shapes, ``model.spec``)."""
    arrays = {}
    for slot in _slots(model):
        values = _variable(model, slot).numpy()
        arrays[slot.name] = np.ascontiguousarray(values.T) if slot.transposed else values
    return arrays


def load_arrays(model: keras.Model, arrays: dict[str, np.ndarray]) -> None:
    """Assign weights given in the snapshot layout (cast to each variable's dtype).

    Raises
    ------
    ValueError
        If a weight is missing, unexpected or of another shape than the model's.
    """
    slots = _slots(model)
    missing, unknown = {s.name for s in slots} - set(arrays), set(arrays) - {s.name for s in slots}
    if missing or unknown:
        raise ValueError(
            f"the weights do not fit this model (one table per operand on one side and a shared "
            f"table on the other?): missing {sorted(missing)}, unexpected {sorted(unknown)}"
        )
    for slot in slots:
        variable = _variable(model, slot)
        values = np.asarray(arrays[slot.name])
        values = values.T if slot.transposed else values
        if tuple(values.shape) != tuple(variable.shape):
            expected = tuple(reversed(variable.shape)) if slot.transposed else tuple(variable.shape)
            raise ValueError(
                f"{slot.name}: got shape {np.shape(arrays[slot.name])}, the model's is {expected}: "
                "build both models with the same sizes"
            )
        variable.assign(np.ascontiguousarray(values).astype(variable.dtype))
