"""Keras 3 adapter: models as NumPy callables, models cut at a layer, LMN at a layer and during fit.

Works with whichever Keras backend is active (TensorFlow, PyTorch, JAX), on that
backend's default device: every forward pass goes through ``model.predict_on_batch``,
Keras's compiled inference step (a ``tf.function`` on TensorFlow, ``jax.jit`` on JAX,
``torch.no_grad`` on PyTorch), in inference mode (``training=False``). Only the
TensorFlow backend computes float64 models in float64: Keras 3 promotes 64-bit floats
to 32-bit in the ops of its other backends, so there a float64 model's matrix products
run in float32.

The public names live here; the work is done in one module per purpose, as in PyTorch's
adapter: the callable (half precision, the device plans of :mod:`adapters.keras.device`):
:mod:`adapters.keras.function`; cutting Sequential and functional models (nested ones by
path) and affine prefix folding: :mod:`adapters.keras.graph`; the Keras backend of
:mod:`adapters.layer`, :class:`LayerLMN`, :class:`LayerRegions` and :class:`LayerProbe`
(the pre-activations: :mod:`adapters.keras.activations`):
:mod:`adapters.keras.layer`; :func:`split` and :func:`cut_points`:
:mod:`adapters.keras.split`; the callback for ``model.fit``: :mod:`adapters.keras.callback`;
the float64 warning: :mod:`adapters.keras.precision`.
"""

from __future__ import annotations

import warnings
from typing import Any

try:
    import keras
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("adapters.keras needs Keras 3: pip install 'lmn[keras]'") from error

if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover - depends on the environment
    raise ImportError(f"adapters.keras needs Keras 3, found {keras.__version__}: pip install 'lmn[keras]'")

from adapters.keras.callback import LMNCallback
from adapters.keras.function import KerasFunction
from adapters.keras.graph import narrow_output
from adapters.keras.layer import LayerLMN, LayerOptions, LayerProbe, LayerRegions, layer_lmn, layer_regions
from adapters.keras.split import cut_points, split
from adapters.schedule import lmn_key

__all__ = [
    "KerasFunction",
    "LMNCallback",
    "LayerLMN",
    "LayerOptions",
    "LayerProbe",
    "LayerRegions",
    "cut_points",
    "layer_lmn",
    "layer_regions",
    "lmn_key",
    "narrow_output",
    "split",
]


def __getattr__(name: str) -> Any:
    """``select_output``, the old name of :func:`narrow_output`, for one release, with a warning.

    It was renamed because ``adapters.torch.select_output`` picks a tensor from outputs, while
    this narrows a head model to one output: one public name, one contract.
    """
    if name != "select_output":
        raise AttributeError(f"module 'adapters.keras' has no attribute {name!r}")
    warnings.warn(
        "adapters.keras.select_output is renamed adapters.keras.narrow_output",
        DeprecationWarning,
        stacklevel=2,
    )
    return narrow_output
