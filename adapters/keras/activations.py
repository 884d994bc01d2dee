"""The pre-activations of a Keras head: what ``lmn_core.local_complexity`` counts sign changes of.

:func:`head_pre_activations` finds the head's activation layers (``Activation`` of a
non-linear function, ``ReLU``, ``LeakyReLU``, ``PReLU``, ``ELU``) and the layers with a
non-linear ``activation`` of their own (``Dense(..., activation="relu")``, whose
pre-activation is ``x @ kernel + bias``), and returns a callable that runs the head on points
and returns their pre-activations as ``(M, units)`` float64 arrays, in graph order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

ACTIVATION_LAYERS = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.PReLU, keras.layers.ELU)


def _is_linear(activation: Any) -> bool:
    return activation is None or getattr(activation, "__name__", "") == "linear"


def _role(layer: keras.layers.Layer) -> str | None:
    """``"input"``: the layer's input is a pre-activation; ``"dense"``: ``x @ kernel + bias`` is."""
    if isinstance(layer, ACTIVATION_LAYERS):
        return "input"
    if isinstance(layer, keras.layers.Activation):
        return None if _is_linear(layer.activation) else "input"
    if isinstance(layer, keras.layers.Dense) and not _is_linear(layer.activation):
        return "dense"
    return None


def _rows(array: Any, layer: keras.layers.Layer, role: str) -> np.ndarray:
    array = np.asarray(keras.ops.convert_to_numpy(array), dtype=np.float64)
    if role == "dense":
        kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel), dtype=np.float64)
        array = array @ kernel
        if layer.bias is not None:
            array = array + np.asarray(keras.ops.convert_to_numpy(layer.bias), dtype=np.float64)
    return array.reshape(array.shape[0], -1)


def head_pre_activations(
    head: keras.Model, *, batch_size: int, dtype: str | None
) -> Callable[[np.ndarray], list[np.ndarray]] | None:
    """A callable ``points (M, ...) -> [pre-activations (M, units)]`` of ``head``'s activations.

    Points are cast to ``dtype`` (the head's input dtype) and run ``batch_size`` rows at a
    time. A ``Sequential`` head is run layer by layer; a functional head through a model
    that outputs the activations' inputs (a nested model counts as one layer and its own
    activations are not seen). ``None`` when the head has no activation.
    """
    roles = [(layer, _role(layer)) for layer in head.layers]
    roles = [(layer, role) for layer, role in roles if role is not None]
    if not roles:
        return None
    if isinstance(head, keras.Sequential):
        return _sequential(head, {id(layer): role for layer, role in roles}, batch_size, dtype)
    return _functional(head, {id(layer): role for layer, role in roles}, batch_size, dtype)


def _functional(
    head: keras.Model, roles: dict[int, str], batch_size: int, dtype: str | None
) -> Callable[[np.ndarray], list[np.ndarray]]:
    """A functional head's graph called again on its own layers, each activation's input an output.

    The head was cut from a larger graph, so its layers' ``input`` belong to that graph;
    ``keras.models.clone_model`` with the layers themselves (the same weights) calls every
    layer once more and records the input of each call, in graph order.
    """
    called: list[tuple[keras.layers.Layer, Any]] = []

    def call(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        if id(layer) in roles:
            called.append((layer, args[0]))
        return layer(*args, **kwargs)

    graph = keras.models.clone_model(head, clone_function=lambda layer: layer, call_function=call)
    probe = keras.Model(graph.inputs, [tensor for _, tensor in called])

    def pre_activations(points: np.ndarray) -> list[np.ndarray]:
        points = np.asarray(points, dtype=dtype)
        parts: list[list[np.ndarray]] = [[] for _ in called]
        for start in range(0, len(points), batch_size):
            outputs = probe.predict_on_batch(points[start : start + batch_size])
            outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
            for part, output, (layer, _) in zip(parts, outputs, called, strict=True):
                part.append(_rows(output, layer, roles[id(layer)]))
        return [np.concatenate(part) for part in parts]

    return pre_activations


def _sequential(
    head: keras.Sequential, roles: dict[int, str], batch_size: int, dtype: str | None
) -> Callable[[np.ndarray], list[np.ndarray]]:
    def pre_activations(points: np.ndarray) -> list[np.ndarray]:
        points = np.asarray(points, dtype=dtype)
        parts: dict[int, list[np.ndarray]] = {}
        for start in range(0, len(points), batch_size):
            x = keras.ops.convert_to_tensor(points[start : start + batch_size])
            for index, layer in enumerate(head.layers):
                if id(layer) in roles:
                    parts.setdefault(index, []).append(_rows(x, layer, roles[id(layer)]))
                x = layer(x, training=False)
        return [np.concatenate(parts[index]) for index in sorted(parts)]

    return pre_activations
