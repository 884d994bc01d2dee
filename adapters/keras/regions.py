"""Exact linear regions of a Keras model at a layer: its head as affine maps and hinges.

:func:`piecewise_linear_head` reads a head that :func:`adapters.keras.split` cut
(folded prefix included) as a :class:`lmn_core.PiecewiseLinearHead`: a chain of
``Dense`` layers with a linear, ``relu`` or ``leaky_relu`` activation, ``Activation``
layers of those, ``ReLU`` (without a cap or threshold), ``LeakyReLU``, ``PReLU`` (one
slope per unit) and ``Identity`` layers. Any other layer is refused by name.
:class:`adapters.keras.LayerRegions` reads it to count the regions of the head on
``X = body(inputs)`` with :mod:`lmn_core.regions`.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import numpy as np

import lmn_core

LAYERS = "Dense, Activation, ReLU, LeakyReLU, PReLU or Identity"


def _default(function: Any, argument: str) -> float:
    return float(inspect.signature(function).parameters[argument].default)


def _hinge_of_activation(activation: Any, where: str) -> lmn_core.Hinge | None:
    """A Keras activation function as a hinge (``None`` for the linear one), or ``ValueError``."""
    if activation is keras.activations.linear:
        return None
    if activation is keras.activations.relu:
        return lmn_core.Hinge(0.0)
    if activation is keras.activations.leaky_relu:
        return lmn_core.Hinge(_default(keras.activations.leaky_relu, "negative_slope"))
    name = getattr(activation, "__name__", type(activation).__name__)
    raise ValueError(
        f"cannot count linear regions through {where}: its activation {name!r} is not linear, "
        "relu or leaky_relu"
    )


def _from_layer(layer: keras.layers.Layer) -> list[lmn_core.Affine | lmn_core.Hinge]:
    """One layer as affine maps and hinges, or ``ValueError`` naming it."""
    where = f"layer {layer.name!r} ({type(layer).__name__})"
    kind = type(layer)
    if kind is keras.layers.InputLayer or kind is keras.layers.Identity:
        return []
    if kind is keras.layers.Dense and layer.quantization_mode is None:
        kernel = np.asarray(layer.kernel.numpy(), dtype=np.float64)
        bias = np.asarray(layer.bias.numpy(), dtype=np.float64) if layer.use_bias else np.zeros(layer.units)
        hinge = _hinge_of_activation(layer.activation, where)
        return [lmn_core.Affine(kernel.T, bias)] + ([hinge] if hinge is not None else [])
    if kind is keras.layers.Activation:
        hinge = _hinge_of_activation(layer.activation, where)
        return [hinge] if hinge is not None else []
    if kind is keras.layers.ReLU and layer.max_value is None and float(layer.threshold) == 0.0:
        return [lmn_core.Hinge(float(layer.negative_slope))]
    if kind is keras.layers.LeakyReLU:
        return [lmn_core.Hinge(float(layer.negative_slope))]
    if kind is keras.layers.PReLU and not layer.shared_axes:
        return [lmn_core.Hinge(np.asarray(layer.alpha.numpy(), dtype=np.float64).reshape(-1))]
    raise ValueError(
        f"cannot count linear regions through {where}: a piecewise-linear head is made of {LAYERS}"
    )


def piecewise_linear_head(head: keras.Model) -> lmn_core.PiecewiseLinearHead:
    """The head's layers in order as affine maps and hinges, in float64 (its weights of now).

    Raises
    ------
    ValueError
        Naming the first layer that is not one of the chain's.
    """
    return lmn_core.PiecewiseLinearHead([part for layer in head.layers for part in _from_layer(layer)])
