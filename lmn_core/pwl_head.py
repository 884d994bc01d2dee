"""A piecewise-linear head: affine maps and elementwise hinges, as plain arrays.

The head is what :mod:`lmn_core.regions` counts the linear regions of: a chain of
:class:`Affine` maps ``y = W x + b`` (``W`` as ``(out, in)``, PyTorch's layout) and
:class:`Hinge` activations ``x if x > 0 else s x`` (ReLU: ``s = 0``; LeakyReLU: its
slope; PReLU: one slope per unit; the identity: ``s = 1``). The adapters extract one
from a PyTorch or Keras model cut at a layer (``adapters.torch.LayerRegions``,
``adapters.keras.LayerRegions``). Everything is float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: How closely an extracted head must give the model's outputs (relative to their largest
#: magnitude: the float32 rounding of a small head), checked on its first rows.
AGREEMENT_RTOL = 1e-4
AGREEMENT_ROWS = 64


def _float_array(value: object, what: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{what} holds NaN or infinity")
    return array


@dataclass(frozen=True, eq=False)
class Affine:
    """``y = x @ weight.T + bias``.

    Attributes
    ----------
    weight : numpy.ndarray
        ``(out, in)``.
    bias : numpy.ndarray
        ``(out,)``.
    """

    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        weight, bias = _float_array(self.weight, "Affine weight"), _float_array(self.bias, "Affine bias")
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise ValueError(
                f"Affine needs a weight (out, in) and a bias (out,), got {weight.shape} and {bias.shape}"
            )
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", bias)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The map applied to rows ``(M, in)``."""
        return x @ self.weight.T + self.bias


@dataclass(frozen=True, eq=False)
class Hinge:
    """``x if x > 0 else negative_slope * x``, elementwise.

    Attributes
    ----------
    negative_slope : float or numpy.ndarray
        One slope for every unit, or one per unit (PReLU); a unit of slope 1 is linear.
    """

    negative_slope: float | np.ndarray = 0.0

    def __post_init__(self) -> None:
        slope = _float_array(self.negative_slope, "Hinge negative_slope")
        if slope.ndim > 1:
            raise ValueError(
                f"Hinge negative_slope must be a number or one per unit, got shape {slope.shape}"
            )
        object.__setattr__(self, "negative_slope", slope)

    def slopes(self, width: int) -> np.ndarray:
        """The slope of each of ``width`` units."""
        slope = np.asarray(self.negative_slope)
        if slope.ndim == 1 and slope.shape[0] != width:
            raise ValueError(f"Hinge has {slope.shape[0]} slopes but its input has {width} units")
        return np.broadcast_to(slope, (width,)).astype(np.float64)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The hinge applied to rows ``(M, width)``."""
        return np.where(x > 0, x, self.slopes(x.shape[1]) * x)


@dataclass(frozen=True, eq=False)
class Stage:
    """One hinge layer with the affine map in front of it (``None``: the identity).

    Attributes
    ----------
    weight, bias : numpy.ndarray or None
        The composed affine maps since the previous hinge (or the samples).
    slopes : numpy.ndarray
        Each unit's negative slope.
    kinked : numpy.ndarray
        Units whose slope is not 1: the ones that bend the head.
    """

    weight: np.ndarray | None
    bias: np.ndarray | None
    slopes: np.ndarray
    kinked: np.ndarray

    def pre_activations(self, x: np.ndarray) -> np.ndarray:
        """The hinge's inputs for rows ``x`` (outputs of the previous hinge, or samples)."""
        return x if self.weight is None else x @ self.weight.T + self.bias

    def magnitudes(self, x: np.ndarray) -> np.ndarray:
        """Per unit, the largest sum of absolute terms of its pre-activation over rows ``x``."""
        if self.weight is None:
            return np.abs(x).max(axis=0)
        return (np.abs(x) @ np.abs(self.weight).T + np.abs(self.bias)).max(axis=0)

    def activate(self, z: np.ndarray) -> np.ndarray:
        """The hinge applied to pre-activations ``z``."""
        return np.where(z > 0, z, self.slopes * z)


def _composed(first: tuple[np.ndarray, np.ndarray] | None, then: Affine) -> tuple[np.ndarray, np.ndarray]:
    if first is None:
        return then.weight, then.bias
    return then.weight @ first[0], then.weight @ first[1] + then.bias


class PiecewiseLinearHead:
    """A chain of :class:`Affine` maps and :class:`Hinge` activations, from samples to outputs.

    Parameters
    ----------
    layers : sequence of Affine or Hinge
        In the order they apply; empty is the identity.

    Raises
    ------
    TypeError
        If a layer is neither.
    ValueError
        If consecutive affine maps do not chain, or a hinge's slopes do not fit its input.
    """

    def __init__(self, layers: Sequence[Affine | Hinge]) -> None:
        self.layers = tuple(layers)
        width = None
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Affine):
                if width is not None and layer.weight.shape[1] != width:
                    raise ValueError(
                        f"layer {index}: Affine takes {layer.weight.shape[1]} inputs, "
                        f"the layers before it give {width}"
                    )
                width = layer.weight.shape[0]
            elif isinstance(layer, Hinge):
                if width is not None:
                    layer.slopes(width)
            else:
                raise TypeError(f"layer {index} is a {type(layer).__name__}, not an Affine or a Hinge")

    def __repr__(self) -> str:
        return f"PiecewiseLinearHead({', '.join(type(layer).__name__ for layer in self.layers)})"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The head on rows ``(M, D)`` (trailing axes flattened), in float64."""
        y = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        for layer in self.layers:
            y = layer(y)
        return y

    def agrees_with(self, head: Callable[[np.ndarray], np.ndarray], samples: np.ndarray) -> bool:
        """Whether this head gives ``head``'s outputs on the first rows of ``samples``.

        An extracted head that does not (a branch, a layer used twice, work outside the
        layers read) cannot be counted from its weights.
        """
        rows = samples[:AGREEMENT_ROWS]
        expected, got = np.asarray(head(rows), dtype=np.float64), self(rows)
        scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
        return (
            got.shape == expected.shape and np.abs(got - expected).max(initial=0.0) <= AGREEMENT_RTOL * scale
        )

    def stages(self, width: int) -> tuple[Stage, ...]:
        """The hinge layers that bend the head, each with the affine map composed in front of it.

        ``width`` is the samples' width. Hinges whose every slope is 1 are identities and
        merge into the affine maps around them; affine maps after the last hinge bend
        nothing and are left out.
        """
        stages, pending = [], None
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Affine):
                if layer.weight.shape[1] != width:
                    raise ValueError(
                        f"layer {index}: Affine takes {layer.weight.shape[1]} inputs, it is given {width}"
                    )
                pending, width = _composed(pending, layer), layer.weight.shape[0]
                continue
            slopes = layer.slopes(width)
            if np.all(slopes == 1.0):
                continue
            weight, bias = pending if pending is not None else (None, None)
            stages.append(Stage(weight, bias, slopes, slopes != 1.0))
            pending = None
        return tuple(stages)
