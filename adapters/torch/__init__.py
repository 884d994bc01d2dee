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
    import torch
    from torch import nn
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("adapters.torch needs PyTorch: pip install 'lmn[torch]'") from error

import lmn_core
from adapters.options import REDUCTIONS
from adapters.torch.cut import CUT_STRATEGIES
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
from lmn_core.measure import DEFAULT_N_POINTS

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


def layer_lmn(
    model: nn.Module,
    inputs: Any,
    layer: str,
    *,
    output: OutputChoice = None,
    input: str | None = None,
    fixed_inputs: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    fold: bool = True,
    reduction: str = "auto",
    widen_output: bool = True,
    compile_rule: bool | None = None,
    cut_by: tuple[str, ...] = CUT_STRATEGIES,
    n_points: int = DEFAULT_N_POINTS,
    memory_budget: int | None = None,
    block_pairs: int | None = None,
    const_rtol: float | None = None,
    const_atol: float = 0.0,
    progress: bool = False,
    overlap: bool | None = None,
    threads: int | None = None,
) -> lmn_core.LMNResult:
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
    output, input, fixed_inputs, device, batch_size, fold, reduction, widen_output, compile_rule, cut_by
        How the model is cut and run: the fields of :class:`LayerOptions`, with their defaults.
    n_points, memory_budget, block_pairs, const_rtol, const_atol, progress, overlap, threads
        Passed to :func:`lmn_core.lmn`, with its defaults (``const_rtol`` ``None``: the
        head's own tolerance, half precision's included).

    Returns
    -------
    lmn_core.LMNResult
    """
    options, lmn_kwargs = LayerOptions.split_call(locals())
    return LayerLMN(model, layer, options, example_inputs=inputs)(inputs, **lmn_kwargs)
