"""Deprecated: the linear regions of a PyTorch model are in ``adapters.torch`` (``layer_regions``,
``LayerRegions``).

Kept for one release; importing a name from here warns with a ``DeprecationWarning`` naming the new place.
"""

from __future__ import annotations

import warnings
from typing import Any

_MOVED = ("LayerRegions", "layer_regions", "piecewise_linear_head")


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = "adapters.torch.regions" if name == "piecewise_linear_head" else "adapters.torch"
    warnings.warn(
        f"adapters.torch_regions.{name} moved: import it from {home}",
        DeprecationWarning,
        stacklevel=2,
    )
    from adapters.torch import layer, regions

    return getattr(regions if name == "piecewise_linear_head" else layer, name)
