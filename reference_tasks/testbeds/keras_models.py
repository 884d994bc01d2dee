"""The testbeds' models in Keras 3, functional, with the layer names of their PyTorch twins.

- :func:`transformer`: layers ``embed`` (token and position embedding), ``attn`` (the
  residual stream at ``=`` after attention), ``mlp_inner``, ``mlp_hidden`` (ReLU: the
  MLP's hidden activation, not a cut), ``mlp_outer``, ``mlp`` (``Add``: the residual
  stream after the MLP), ``unembed``; the same function as
  :class:`reference_tasks.testbeds.torch_models.OneLayerTransformer`.
- :func:`mlp`: ``linear1, hidden1, ..., output`` as the PyTorch ``mlp``.

The initial weights follow the PyTorch builders' distributions (Nanda et al.'s normal
initialisation; ``torch.nn.Linear``'s uniform one, times ``init_scale``), each
initializer seeded from ``seed``. :func:`copy_torch_weights` gives a Keras model the
weights of its PyTorch twin, so that equal weights can be checked to give equal logits;
:func:`torch_named_weights` reads them back under the PyTorch names, the layout of a Keras
run's snapshots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from keras import ops


def _seeds(seed: int, count: int) -> list[int]:
    return [int(value) for value in np.random.SeedSequence([seed, 6]).generate_state(count)]


@keras.saving.register_keras_serializable(package="lmn_testbeds")
class TokenPositionEmbedding(keras.layers.Layer):
    """``W_E[tokens] + W_pos``: ``(B, n_ctx)`` int tokens -> ``(B, n_ctx, d_model)``."""

    def __init__(
        self,
        n_vocab: int,
        n_ctx: int,
        d_model: int,
        seeds: list | None = None,
        std: float | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.n_vocab, self.n_ctx, self.d_model = int(n_vocab), int(n_ctx), int(d_model)
        self.seeds = list(seeds) if seeds is not None else [None, None]
        self.std = float(std) if std is not None else 1.0 / math.sqrt(d_model)

    def build(self, input_shape: Any) -> None:
        """Create the token table and the position embedding."""
        self.tokens = self.add_weight(
            shape=(self.n_vocab, self.d_model),
            initializer=keras.initializers.RandomNormal(0.0, self.std, seed=self.seeds[0]),
            name="tokens",
        )
        self.positions = self.add_weight(
            shape=(self.n_ctx, self.d_model),
            initializer=keras.initializers.RandomNormal(0.0, self.std, seed=self.seeds[1]),
            name="positions",
        )

    def call(self, tokens: Any) -> Any:
        """The embedded sequence."""
        return ops.take(self.tokens, ops.cast(tokens, "int32"), axis=0) + self.positions

    def compute_output_shape(self, input_shape: Any) -> tuple:
        """``(B, n_ctx)`` -> ``(B, n_ctx, d_model)``."""
        return (input_shape[0], self.n_ctx, self.d_model)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, for saving."""
        config = {"n_vocab": self.n_vocab, "n_ctx": self.n_ctx, "d_model": self.d_model}
        config |= {"seeds": self.seeds, "std": self.std}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="lmn_testbeds")
class LastPositionAttention(keras.layers.Layer):
    """Multi-head attention read at the last position, plus the residual stream there."""

    def __init__(
        self, d_model: int, n_heads: int, seeds: list | None = None, std: float | None = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        if d_model % n_heads:
            raise ValueError(f"d_model = {d_model} must be a multiple of n_heads = {n_heads}")
        self.d_model, self.n_heads, self.d_head = int(d_model), int(n_heads), d_model // n_heads
        self.seeds = list(seeds) if seeds is not None else [None] * 4
        self.std = float(std) if std is not None else 1.0 / math.sqrt(d_model)

    def build(self, input_shape: Any) -> None:
        """Create ``W_Q, W_K, W_V, W_O`` as ``(d_in, d_out)`` kernels."""
        self.kernels = [
            self.add_weight(
                shape=(self.d_model, self.d_model),
                initializer=keras.initializers.RandomNormal(0.0, self.std, seed=seed),
                name=name,
            )
            for name, seed in zip(("query", "key", "value", "out"), self.seeds, strict=True)
        ]

    def call(self, x: Any) -> Any:
        """``(B, n_ctx, d_model)`` -> ``(B, d_model)``."""
        query, key, value, out = self.kernels
        n_ctx = ops.shape(x)[1]
        last = x[:, -1]
        q = ops.reshape(ops.matmul(last, query), (-1, self.n_heads, self.d_head))
        k = ops.reshape(ops.matmul(x, key), (-1, n_ctx, self.n_heads, self.d_head))
        v = ops.reshape(ops.matmul(x, value), (-1, n_ctx, self.n_heads, self.d_head))
        scores = ops.einsum("bhd,bphd->bhp", q, k) / math.sqrt(self.d_head)
        pattern = ops.softmax(scores, axis=-1)
        z = ops.reshape(ops.einsum("bhp,bphd->bhd", pattern, v), (-1, self.d_model))
        return last + ops.matmul(z, out)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        """``(B, n_ctx, d_model)`` -> ``(B, d_model)``."""
        return (input_shape[0], self.d_model)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, for saving."""
        config = {"d_model": self.d_model, "n_heads": self.n_heads, "seeds": self.seeds, "std": self.std}
        return {**super().get_config(), **config}


def _normal_dense(
    units: int, std: float, seed: int, name: str, dtype: str, use_bias: bool = True
) -> keras.layers.Dense:
    return keras.layers.Dense(
        units,
        use_bias=use_bias,
        dtype=dtype,
        kernel_initializer=keras.initializers.RandomNormal(0.0, std, seed=seed),
        bias_initializer="zeros",
        name=name,
    )


def transformer(
    p: int,
    d_model: int,
    n_heads: int,
    d_mlp: int,
    *,
    seed: int,
    init_scale: float = 1.0,
    dtype: str = "float32",
) -> keras.Model:
    """Nanda et al.'s one-layer transformer for addition mod ``p``, initialised from ``seed``.

    Every initial weight is multiplied by ``init_scale``.
    """
    seeds = _seeds(seed, 9)
    std = init_scale / math.sqrt(d_model)
    tokens = keras.Input((3,), dtype="int32", name="tokens")
    x = TokenPositionEmbedding(p + 1, 3, d_model, seeds[:2], std=std, name="embed", dtype=dtype)(tokens)
    x = LastPositionAttention(d_model, n_heads, seeds[2:6], std=std, name="attn", dtype=dtype)(x)
    hidden = _normal_dense(d_mlp, std, seeds[6], "mlp_inner", dtype)(x)
    hidden = keras.layers.ReLU(name="mlp_hidden", dtype=dtype)(hidden)
    outer = _normal_dense(d_model, std, seeds[7], "mlp_outer", dtype)(hidden)
    x = keras.layers.Add(name="mlp", dtype=dtype)([x, outer])
    logits = _normal_dense(p, init_scale / math.sqrt(p), seeds[8], "unembed", dtype, use_bias=False)(x)
    return keras.Model(tokens, logits, name="one_layer_transformer")


def mlp(
    n_inputs: int,
    width: int,
    depth: int,
    n_classes: int,
    *,
    seed: int,
    init_scale: float = 1.0,
    dtype: str = "float32",
) -> keras.Model:
    """A ReLU MLP of ``depth`` Dense layers, as the PyTorch ``mlp`` (its init times ``init_scale``)."""
    if depth < 2:
        raise ValueError(f"depth must be at least 2 (one hidden layer), got {depth}")
    seeds = iter(_seeds(seed, 2 * depth))
    inputs = keras.Input((n_inputs,), name="inputs", dtype=dtype)
    x, fan_in = inputs, n_inputs
    for index in range(1, depth + 1):
        bound = init_scale / math.sqrt(fan_in)
        units = width if index < depth else n_classes
        x = keras.layers.Dense(
            units,
            kernel_initializer=keras.initializers.RandomUniform(-bound, bound, seed=next(seeds)),
            bias_initializer=keras.initializers.RandomUniform(-bound, bound, seed=next(seeds)),
            name=f"linear{index}" if index < depth else "output",
            dtype=dtype,
        )(x)
        if index < depth:
            x = keras.layers.ReLU(name=f"hidden{index}", dtype=dtype)(x)
        fan_in = width
    return keras.Model(inputs, x, name="relu_mlp")


def _torch_names(layer: keras.layers.Layer) -> list[tuple[str, bool]]:
    """The PyTorch twin's name of each of ``layer``'s weights, and whether Keras holds it transposed."""
    if isinstance(layer, TokenPositionEmbedding):
        return [("embed.tokens.weight", False), ("embed.positions", False)]
    if isinstance(layer, LastPositionAttention):
        return [(f"attn.{name}.weight", True) for name in ("query", "key", "value", "out")]
    if not isinstance(layer, keras.layers.Dense):
        return []
    prefix = {"mlp_inner": "mlp.inner", "mlp_outer": "mlp.outer"}.get(layer.name, layer.name)
    return [(f"{prefix}.weight", True)] + ([(f"{prefix}.bias", False)] if layer.use_bias else [])


def copy_torch_weights(keras_model: keras.Model, torch_model: Any) -> None:
    """Give ``keras_model`` the weights of its PyTorch twin (same builder, same sizes)."""
    state = {name: value.detach().cpu().numpy() for name, value in torch_model.state_dict().items()}
    for layer in keras_model.layers:
        names = _torch_names(layer)
        if names:
            layer.set_weights([state[name].T if transposed else state[name] for name, transposed in names])


def load_torch_named_weights(keras_model: keras.Model, arrays: Mapping[str, np.ndarray]) -> None:
    """Assign ``keras_model``'s weights from its PyTorch twin's names and shapes (the inverse of
    :func:`torch_named_weights`).

    Raises
    ------
    ValueError
        If a weight is missing or has another shape than the model's.
    """
    for layer in keras_model.layers:
        names = _torch_names(layer)
        missing = [name for name, _ in names if name not in arrays]
        if missing:
            raise ValueError(f"the weights hold no {missing} for layer {layer.name!r}")
        values = [
            np.asarray(arrays[name]).T if transposed else np.asarray(arrays[name])
            for name, transposed in names
        ]
        for (name, _), value, weight in zip(names, values, layer.weights, strict=True):
            if tuple(value.shape) != tuple(weight.shape):
                raise ValueError(
                    f"{name}: got shape {value.shape}, layer {layer.name!r} holds {tuple(weight.shape)}"
                )
        if names:
            layer.set_weights(values)


def torch_named_weights(keras_model: keras.Model) -> dict[str, np.ndarray]:
    """The weights of ``keras_model`` under its PyTorch twin's names and shapes (its snapshots' layout)."""
    arrays = {}
    for layer in keras_model.layers:
        for (name, transposed), value in zip(_torch_names(layer), layer.get_weights(), strict=True):
            arrays[name] = value.T if transposed else value
    return arrays
