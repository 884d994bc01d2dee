"""The LMN of a PyTorch model at a layer: :class:`LayerLMN` cuts once and measures many times.

:class:`LayerOptions` is the one home of the keyword options that every PyTorch entry point
(``layer_lmn``, ``LayerLMN``, ``LMNMonitor``, the Lightning callback) passes down to the cut
and to the callables it measures; the rest of their keywords go to :func:`lmn_core.lmn`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

import lmn_core
from adapters.options import Options
from adapters.torch.function import (
    NotOneTensorError,
    OutputChoice,
    OutputSelector,
    TorchFunction,
    eval_mode,
    floating_dtype,
    half_precision_rtol,
    module_device,
)
from adapters.torch.graph import changes_its_input
from adapters.torch.split import split
from adapters.torch.width import padded_once, widen_last_linear


@dataclasses.dataclass(frozen=True)
class LayerOptions(Options):
    """How a model is cut at a layer and its parts run: the options of every PyTorch entry point.

    Attributes
    ----------
    output : int, str or callable, optional
        What to measure when the model returns more than one tensor: an index (tuple),
        a key (dict, ``ModelOutput``) or a callable on what the head returns; see
        :class:`adapters.torch.function.OutputSelector`.
    input, fixed_inputs
        For a ``forward`` of several inputs: the one the samples replace and the fixed
        values of the others (see :func:`adapters.torch.split.split`).
    device, batch_size
        Passed to :class:`TorchFunction` for the body and the head.
    fold : bool
        Fold the head's leading ``nn.Linear`` layers into the samples (the same ``L`` up
        to rounding, in less time).
    reduction : {"auto", "device", "host"}
        Where to reduce to r² (see :class:`TorchFunction`).
    widen_output : bool
        Run the head's last ``nn.Linear`` at the output width its matrix product is
        fastest at, on the CPU, when that is measurably wider than its own (the same
        outputs bit for bit; :mod:`adapters.torch.width`).
    compile_rule : bool, optional
        On the device path, compile the core's r² rule with ``torch.compile`` (see
        :class:`TorchFunction`; off unless true).
    """

    output: OutputChoice = None
    input: str | None = None
    fixed_inputs: dict[str, Any] | None = None
    device: str | torch.device | None = None
    batch_size: int | None = None
    fold: bool = True
    reduction: str = "auto"
    widen_output: bool = True
    compile_rule: bool | None = None


class LayerLMN:
    """The LMN "between ``layer`` and the output" of ``model``, split once, measured many times.

    The samples are ``X = body(inputs)``, the function is the head, followed by the
    choice of ``output``; see :func:`adapters.torch.split.split`. Body and head share
    the model's parameters, so a ``LayerLMN`` built once follows training. Each
    measurement runs in eval mode without gradients and restores every submodule's
    mode. A float16 or bfloat16 head is measured on float32 copies of its outputs with
    the constant tolerance of its own dtype (docs/design.md, section 1.2.1) unless
    ``const_rtol`` is passed.

    Parameters
    ----------
    model : torch.nn.Module
        The model, on the device it runs on.
    layer : str
        Layer name as ``model.named_modules()`` gives it.
    options : LayerOptions, optional
        How to cut and run (the defaults of :class:`LayerOptions` otherwise).
    example_inputs : array_like, optional
        Samples' inputs on which a graph cut is checked once (see ``split``).
    **option_keywords
        Any :class:`LayerOptions` field (``output=``, ``fold=``, ``reduction=``, ...), over
        ``options``.
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str,
        options: LayerOptions | None = None,
        *,
        example_inputs: Any = None,
        **option_keywords: Any,
    ) -> None:
        options = LayerOptions.with_keywords(options, option_keywords, "LayerLMN")
        self.layer, self.options = layer, options
        body, head = split(
            model,
            layer,
            example_inputs=example_inputs,
            fold=options.fold,
            input=options.input,
            fixed_inputs=options.fixed_inputs,
        )
        # a folded head may have no parameter left to tell the model's device and dtype
        device = options.device if options.device is not None else module_device(model)
        model_dtype = floating_dtype(model)
        self.body = TorchFunction(
            body,
            device=device,
            dtype=floating_dtype(body, model_dtype),
            batch_size=options.batch_size,
            name=f"the body of the cut at layer {layer!r}",
        )
        if options.widen_output:
            head = widen_last_linear(head, rows=self.body.batch_size)
        self.head = TorchFunction(
            OutputSelector(head, options.output),
            device=device,
            dtype=floating_dtype(head, model_dtype),
            batch_size=options.batch_size,
            reduction=options.reduction,
            copy_inputs=changes_its_input(head),
            compile_rule=options.compile_rule,
            name=f"the head of the cut at layer {layer!r}",
        )

    def samples(self, inputs: Any) -> Any:
        """``X = body(inputs)`` as a NumPy array (float16 and bfloat16 as float32)."""
        try:
            return self.body(inputs)
        except NotOneTensorError as error:
            raise ValueError(f"layer {self.layer!r} must output one tensor to measure at: {error}") from None

    def __call__(self, inputs: Any, **lmn_kwargs: Any) -> lmn_core.LMNResult:
        """LMN of the head on ``X = body(inputs)``; ``lmn_kwargs`` go to :func:`lmn_core.lmn`."""
        samples = self.samples(inputs)
        # on the device the core reads the output dtype itself; the host sees float32 copies
        if "const_rtol" not in lmn_kwargs and len(samples) and not self.head.measures_on_device:
            dtype = self.head.run(self.head.tensor(samples[:1])).dtype
            rtol = half_precision_rtol(dtype)
            if rtol is not None:
                lmn_kwargs = {**lmn_kwargs, "const_rtol": rtol}
        # once, rather than at every block of pairs
        with eval_mode(self.head.module), padded_once(self.head.module):
            return lmn_core.lmn(self.head, samples, **lmn_kwargs)
