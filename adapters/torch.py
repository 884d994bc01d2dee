"""PyTorch adapter: modules as NumPy callables, models cut at a layer, LMN at a layer.

The public names live here; the work is done in one module per purpose:

- :mod:`adapters.torch_function`: :class:`TorchFunction` (a module as a callable for
  ``lmn_core``, in eval mode, without gradients, measured on its own device off the
  CPU), :class:`OutputSelector` (``output=``), half precision;
- :mod:`adapters.torch_split`: :func:`split`, the cut of a model after a layer, on
  chains of ``nn.Sequential`` or on any graph ``torch.fx`` can trace
  (:mod:`adapters.torch_graph`), with affine prefix folding;
- :mod:`adapters.torch_cuts`: :func:`cut_points`, the layers ``split`` can cut at;
- :mod:`adapters.torch_layer`: :class:`LayerLMN`, cut once and measure many times;
- :mod:`adapters.torch_width`: the head's last ``nn.Linear`` run at the output width its
  matrix product is fastest at;
- :mod:`adapters.torch_monitor`: :class:`LMNMonitor` for hand-written training loops.
"""

from __future__ import annotations

from typing import Any

try:
    import torch
    from torch import nn
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("adapters.torch needs PyTorch: pip install 'lmn[torch]'") from error

import lmn_core
from adapters.torch_cuts import cut_points
from adapters.torch_function import (
    DEFAULT_BATCH_SIZE,
    REDUCTIONS,
    OutputChoice,
    OutputSelector,
    TorchFunction,
    eval_mode,
    select_output,
)
from adapters.torch_layer import LayerLMN
from adapters.torch_monitor import LMNMonitor, lmn_key, read_monitor_csv
from adapters.torch_split import BoundInputs, split

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "REDUCTIONS",
    "BoundInputs",
    "LMNMonitor",
    "LayerLMN",
    "OutputChoice",
    "OutputSelector",
    "TorchFunction",
    "cut_points",
    "eval_mode",
    "layer_lmn",
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
    **lmn_kwargs: Any,
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
    output : int, str or callable, optional
        For a model that returns a tuple, a dict or a ``ModelOutput``: an index, a key,
        or a callable on what the head returns, giving the tensor ``(M, d2)`` to
        measure. Without it a model must return one tensor.
    input : str, optional
        The ``forward`` input that ``inputs`` goes to (by default the first).
    fixed_inputs : dict, optional
        The other inputs of ``forward``, one value for all samples.
    device, batch_size
        Passed to :class:`TorchFunction` for the body and the head.
    fold : bool
        Fold the head's leading ``nn.Linear`` layers into the samples.
    reduction : {"auto", "device", "host"}
        Where to reduce to r² (see :class:`TorchFunction`).
    widen_output : bool
        Run the head's last ``nn.Linear`` at a wider output width when that measured
        faster (see :class:`LayerLMN`).
    **lmn_kwargs
        Passed to :func:`lmn_core.lmn` (``n_points``, ``memory_budget``, ``progress``, ...).

    Returns
    -------
    lmn_core.LMNResult
    """
    measure = LayerLMN(
        model,
        layer,
        output=output,
        input=input,
        fixed_inputs=fixed_inputs,
        device=device,
        batch_size=batch_size,
        fold=fold,
        reduction=reduction,
        widen_output=widen_output,
        example_inputs=inputs,
    )
    return measure(inputs, **lmn_kwargs)
