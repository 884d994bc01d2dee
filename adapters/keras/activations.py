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
    body: keras.Model, head: keras.Model, *, batch_size: int, dtype: str | None
) -> Callable[[np.ndarray], list[np.ndarray]] | None:
    """A callable ``points (M, ...) -> [pre-activations (M, units)]`` of ``head``'s activations.

    Points are cast to ``dtype`` (the head's input dtype) and run ``batch_size`` rows at a
    time. A ``Sequential`` head is run layer by layer. A functional head's layers belong to
    the model's graph, where the cut is the body's output: a model from that tensor to the
    activations' inputs reads them. ``None`` when the head has no activation, or when its
    activations are not reachable from the body's output in one graph (a nested model's cut).
    """
    roles = [(layer, _role(layer)) for layer in head.layers]
    roles = [(layer, role) for layer, role in roles if role is not None]
    if not roles:
        return None
    if isinstance(head, keras.Sequential):
        return _sequential(head, {id(layer): role for layer, role in roles}, batch_size, dtype)
    cut = body.outputs[0]
    inside = [layer.input for layer, _ in roles if layer.input is not cut]  # the others read the cut itself
    try:
        probe = keras.Model(body.outputs, inside) if inside else None
    except ValueError:  # the activations' inputs are not computed from the cut in one graph
        return None

    def pre_activations(points: np.ndarray) -> list[np.ndarray]:
        points = np.asarray(points, dtype=dtype)
        parts: list[list[np.ndarray]] = [[] for _ in roles]
        for start in range(0, len(points), batch_size):
            block = points[start : start + batch_size]
            computed = iter(keras.tree.flatten(probe.predict_on_batch(block)) if probe is not None else ())
            for part, (layer, role) in zip(parts, roles, strict=True):
                part.append(_rows(block if layer.input is cut else next(computed), layer, role))
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
