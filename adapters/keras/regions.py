"""Exact linear regions of a Keras model at a layer: its head as affine maps and hinges.

:func:`piecewise_linear_head` reads a head that :func:`adapters.keras.split.split` cut
(folded prefix included) as a :class:`lmn_core.PiecewiseLinearHead`: a chain of
``Dense`` layers with a linear, ``relu`` or ``leaky_relu`` activation, ``Activation``
layers of those, ``ReLU`` (without a cap or threshold), ``LeakyReLU``, ``PReLU`` (one
slope per unit) and ``Identity`` layers. Any other layer is refused by name.
:class:`LayerRegions` cuts a model once and counts the regions of its head on
``X = body(inputs)`` with :mod:`lmn_core.regions`, as :class:`adapters.keras.LayerLMN`
measures its LMN on the same samples.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import numpy as np

import lmn_core
from adapters.keras.function import KerasFunction
from adapters.keras.split import split

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


class LayerRegions:
    """The linear regions of ``model``'s head after ``layer``, cut once, counted many times.

    The cut is :func:`adapters.keras.split.split` with ``fold=True``, as
    :class:`adapters.keras.LayerLMN` measures. The head shares the model's weights and
    is read again at every count. Its layers must form a chain: the extracted head is
    checked against the head itself on the first samples.

    Parameters
    ----------
    model : keras.Model
        A Sequential or functional model.
    layer : str
        Keras name of the layer (or a path into a nested model); see :func:`split`.
    batch_size : int, optional
        Passed to :class:`KerasFunction` for the body and the head.
    """

    def __init__(self, model: keras.Model, layer: str, *, batch_size: int | None = None) -> None:
        self.layer = layer
        body, head = split(model, layer, fold=True)
        piecewise_linear_head(head)  # refuse a head that is not piecewise linear at once
        self.body = KerasFunction(body, batch_size=batch_size)
        self.head = KerasFunction(head, batch_size=batch_size)

    def __call__(self, inputs: Any, *, progress: bool = False) -> lmn_core.RegionSummary:
        """Regions and pieces of the head on ``X = body(inputs)`` (see :func:`lmn_core.linear_regions`)."""
        samples = self.body(inputs)
        extracted = piecewise_linear_head(self.head.model)
        if not extracted.agrees_with(self.head, samples):
            raise ValueError(
                f"the head after {self.layer!r} does not compute what its layers say (a branch, or a "
                "layer used twice): its linear regions cannot be read from its weights"
            )
        return lmn_core.linear_regions(extracted, samples, progress=progress)


def layer_regions(
    model: keras.Model, inputs: Any, layer: str, *, progress: bool = False
) -> lmn_core.RegionSummary:
    """The linear regions of ``model`` "between ``layer`` and the output" on ``inputs``.

    See :class:`LayerRegions`.
    """
    return LayerRegions(model, layer)(inputs, progress=progress)
