"""PyTorch adapter: modules as NumPy callables, models cut at a layer, LMN at a layer.

The public names live here; the work is done in one module per purpose:

- :mod:`adapters.torch.function`: :class:`TorchFunction` (a module as a callable for
  ``lmn_core``, in eval mode, without gradients, measured on its own device off the
  CPU), :class:`OutputSelector` (``output=``), half precision;
- :mod:`adapters.torch.cut`: the cut strategies, tried in order: chains of
  ``nn.Sequential``, any graph ``torch.fx`` can trace (:mod:`adapters.torch.graph`),
  forward hooks (:mod:`adapters.torch.hooks`), with affine prefix folding;
- :mod:`adapters.torch.layer`: :class:`LayerOptions`, the PyTorch backend of
  :mod:`adapters.layer`, :class:`LayerLMN`, :class:`LayerRegions` and :class:`LayerProbe`
  (cut once, measure many times; the head's pre-activations: :mod:`adapters.torch.activations`);
- :mod:`adapters.torch.split`: :func:`split` and :func:`cut_points`, the layers it cuts at;
- :mod:`adapters.torch.width`: the head's last ``nn.Linear`` run at the output width its
  matrix product is fastest at; :mod:`adapters.torch.threads`: one torch thread for the
  core's lanes;
- :mod:`adapters.torch.monitor`: :class:`LMNMonitor` for hand-written training loops.
"""

from __future__ import annotations

from typing import Any

try:
    from torch import nn
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("adapters.torch needs PyTorch: pip install 'lmn[torch]'") from error

import lmn_core
from adapters.options import REDUCTIONS
from adapters.torch.function import (
    DEFAULT_BATCH_SIZE,
    OutputChoice,
    OutputSelector,
    TorchFunction,
    eval_mode,
    select_output,
)
from adapters.torch.graph import BoundInputs
from adapters.torch.layer import LayerLMN, LayerOptions, LayerProbe, LayerRegions, layer_regions
from adapters.torch.monitor import LMNMonitor, lmn_key, read_monitor_csv
from adapters.torch.split import cut_points, split

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "REDUCTIONS",
    "BoundInputs",
    "LMNMonitor",
    "LayerLMN",
    "LayerOptions",
    "LayerProbe",
    "LayerRegions",
    "OutputChoice",
    "OutputSelector",
    "TorchFunction",
    "cut_points",
    "eval_mode",
    "layer_lmn",
    "layer_regions",
    "lmn_key",
    "read_monitor_csv",
    "select_output",
    "split",
]


def layer_lmn(model: nn.Module, inputs: Any, layer: str, **keywords: Any) -> lmn_core.LMNResult:
    """LMN "between ``layer`` and the output" of ``model`` on ``inputs``.

    The samples are ``X = body(inputs)``, the function is the head: see :func:`split`
    (a graph cut is checked on the first rows of ``inputs``). By default the
    ``nn.Linear`` layers that start the head are folded into the body (the same ``L``
    up to rounding, in less time).

    Parameters
    ----------
    model : torch.nn.Module
        The model, on the device it runs on.
    inputs : array_like or torch.Tensor
        The samples' inputs ``(N, ...)``.
    layer : str
        Layer name as ``model.named_modules()`` gives it.
    **keywords
        Any :class:`LayerOptions` field (``output``, ``input``, ``fixed_inputs``,
        ``device``, ``batch_size``, ``fold``, ``reduction``, ``widen_output``,
        ``compile_rule``), and any keyword of :func:`lmn_core.lmn` (``n_points``,
        ``memory_budget``, ``progress``, ...).

    Returns
    -------
    lmn_core.LMNResult
    """
    options, lmn_kwargs = LayerOptions.taken_from(keywords)
    return LayerLMN(model, layer, options, example_inputs=inputs)(inputs, **lmn_kwargs)
