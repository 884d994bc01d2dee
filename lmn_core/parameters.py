"""The parameters' L2 norm and their movement from initialisation (docs/design.md, section 6.2).

Barak et al. (2022) track both beside the Fourier gap of sparse parity. Parameters come as a
mapping of names to arrays (any framework's weights converted to NumPy); float64 sums.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def _checked_pairs(
    weights: Mapping[str, Any], initial: Mapping[str, Any] | None
) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError("the parameters must be a non-empty mapping of names to arrays")
    if initial is not None:
        missing, extra = sorted(set(weights) - set(initial)), sorted(set(initial) - set(weights))
        if missing or extra:
            raise ValueError(
                "the initial parameters must have the same names as the parameters: "
                f"missing {missing}, unexpected {extra}"
            )
    pairs = []
    for name, value in weights.items():
        array = np.asarray(value, dtype=np.float64)
        start = None if initial is None else np.asarray(initial[name], dtype=np.float64)
        if start is not None and start.shape != array.shape:
            raise ValueError(f"parameter {name!r} has shape {array.shape}, its initial value {start.shape}")
        for what, values in ((name, array), (f"{name} at initialisation", start)):
            if values is not None and not np.isfinite(values).all():
                raise ValueError(f"parameter {what!r} holds NaN or infinity")
        pairs.append((name, array, start))
    return pairs


def l2(weights: Mapping[str, Any]) -> float:
    """The L2 norm of all parameters together: ``sqrt(sum over every entry of w**2)``.

    Raises
    ------
    ValueError
        If ``weights`` is empty or holds NaN or infinity (named).
    """
    return float(np.sqrt(sum(np.sum(array**2) for _, array, _ in _checked_pairs(weights, None))))


def weight_movement(weights: Mapping[str, Any], initial_weights: Mapping[str, Any]) -> float:
    """The L2 distance of the parameters from their initial values: ``sqrt(sum (w - w0)**2)``.

    Raises
    ------
    ValueError
        If the names differ between the two mappings (both lists are given), a parameter's
        shape differs from its initial value's, or a value is not finite (named).
    """
    pairs = _checked_pairs(weights, initial_weights)
    return float(np.sqrt(sum(np.sum((array - start) ** 2) for _, array, start in pairs)))
