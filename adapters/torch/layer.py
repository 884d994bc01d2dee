"""The PyTorch backend of the measurement at a layer, and its options.

:class:`LayerOptions` is the one home of the keyword options that every PyTorch entry point
(``layer_lmn``, ``LayerLMN``, ``LayerRegions``, ``LMNMonitor``, the Lightning and Hugging
Face callbacks) passes down to the cut and to the callables it measures; the rest of their
keywords go to :func:`lmn_core.lmn`. :class:`TorchBackend` is what PyTorch gives
:mod:`adapters.layer`, where :class:`LayerLMN` and :class:`LayerRegions` are written once.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

import lmn_core
from adapters import layer as shared
from adapters.options import Options
from adapters.torch import graph as graphs
from adapters.torch.activations import head_pre_activations
from adapters.torch.cut import CUT_STRATEGIES, graph_order, split_at
from adapters.torch.function import (
    NotOneTensorError,
    OutputChoice,
    OutputSelector,
    TorchFunction,
    floating_dtype,
    half_precision_rtol,
    module_device,
)
from adapters.torch.modules import changes_its_input
from adapters.torch.regions import piecewise_linear_head
from adapters.torch.threads import lane_threads
from adapters.torch.width import padded_once, widen_last_linear


@dataclasses.dataclass(frozen=True)
class LayerOptions(Options):
    """How a model is cut at a layer and its parts run: the options of every PyTorch entry point.

    Attributes
    ----------
    output : int, str or callable, optional
        What to measure when the model returns more than one tensor: an index (tuple),
        a key (dict, ``ModelOutput``) or a callable on what the head returns; see
        :class:`adapters.torch.OutputSelector`.
    input, fixed_inputs
        For a ``forward`` of several inputs: the one the samples replace and the fixed
        values of the others (see :func:`adapters.torch.split`).
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
    cut_by : tuple of str
        The ways to cut the model, tried in order (:data:`adapters.torch.cut.CUT_STRATEGIES`:
        a chain, its ``torch.fx`` graph, forward hooks).
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
    cut_by: tuple[str, ...] = CUT_STRATEGIES


class TorchBackend:
    """What PyTorch gives the measurement: cuts, ``TorchFunction`` parts, half precision, regions."""

    made_of = "modules"
    lister = "adapters.torch.cut_points"

    def candidates(self, model: nn.Module, options: LayerOptions) -> list[str]:
        """Every module called in the forward, in graph order (:func:`adapters.torch.cut.graph_order`)."""
        return graph_order(model, graphs.plan_inputs(model, options.input, options.fixed_inputs))

    def spelled(self, layer: str) -> str:
        """``layer`` itself: module names have one spelling."""
        return layer

    def cut(
        self, model: nn.Module, layer: str, options: LayerOptions, example_inputs: Any
    ) -> tuple[nn.Module, nn.Module]:
        """:func:`adapters.torch.cut.split_at`: the strategies of ``options.cut_by``, in their order."""
        return split_at(model, layer, options, example_inputs)

    def parts(
        self, model: nn.Module, layer: str, cut: tuple[nn.Module, nn.Module], options: LayerOptions
    ) -> tuple[TorchFunction, TorchFunction]:
        """The body and the head (with ``options.output`` picked) as :class:`TorchFunction` callables."""
        body, head = cut
        # a folded head may have no parameter left to tell the model's device and dtype
        device = options.device if options.device is not None else module_device(model)
        model_dtype = floating_dtype(model)
        body_function = TorchFunction(
            body,
            device=device,
            dtype=floating_dtype(body, model_dtype),
            batch_size=options.batch_size,
            name=f"the body of the cut at layer {layer!r}",
        )
        if options.widen_output:
            head = widen_last_linear(head, rows=body_function.batch_size)
        head_function = TorchFunction(
            OutputSelector(head, options.output),
            device=device,
            dtype=floating_dtype(head, model_dtype),
            batch_size=options.batch_size,
            reduction=options.reduction,
            copy_inputs=changes_its_input(head),
            compile_rule=options.compile_rule,
            name=f"the head of the cut at layer {layer!r}",
        )
        return body_function, head_function

    def half_rtol(self, head: TorchFunction, samples: np.ndarray) -> float | None:
        """The tolerance of the head's output dtype, read from one call, when it is half precision."""
        return half_precision_rtol(head.run(head.tensor(samples[:1])).dtype)

    @contextlib.contextmanager
    def measuring(self, model: nn.Module, head: TorchFunction, lmn_kwargs: dict[str, Any]) -> Iterator[None]:
        """The head in eval mode and a widened last layer padded, once rather than at every block;
        on one torch thread when the core chooses the lanes (:mod:`adapters.torch.threads`)."""
        with head.evaluating(), padded_once(head.module), lane_threads(head, lmn_kwargs):
            yield

    def piecewise_linear_head(self, head: TorchFunction) -> lmn_core.PiecewiseLinearHead:
        """The head's modules (narrowed to ``output``) as affine maps and hinges."""
        return piecewise_linear_head(head.module.module, head.module.output)

    def pre_activations(
        self, body: TorchFunction, head: TorchFunction
    ) -> Callable[[np.ndarray], list[np.ndarray]] | None:
        """The inputs of the head's activation modules (:mod:`adapters.torch.activations`)."""
        return head_pre_activations(head.module, head)


class LayerLMN(shared.LayerLMN):
    """The LMN "between ``layer`` and the output" of a PyTorch model, cut once, measured many times.

    See :class:`adapters.layer.LayerLMN`: the cut is :func:`adapters.torch.split`'s (a
    chain, a ``torch.fx`` graph, or forward hooks checked on ``example_inputs``); each
    measurement runs in eval mode without gradients and restores every submodule's mode.

    Parameters
    ----------
    model : torch.nn.Module
        The model, on the device it runs on.
    layer : str
        Layer name as ``model.named_modules()`` gives it.
    options : LayerOptions, optional
        How to cut and run (the defaults of :class:`LayerOptions` otherwise).
    example_inputs : array_like, optional
        Samples' inputs on which a graph or hook cut is checked once.
    **option_keywords
        Any :class:`LayerOptions` field (``output=``, ``fold=``, ``reduction=``, ...), over ``options``.
    """

    backend = TorchBackend()
    options_type = LayerOptions

    def samples(self, inputs: Any) -> Any:
        """``X = body(inputs)`` as a NumPy array (float16 and bfloat16 as float32)."""
        try:
            return self.body(inputs)
        except NotOneTensorError as error:
            raise ValueError(f"layer {self.layer!r} must output one tensor to measure at: {error}") from None


class LayerProbe(shared.LayerProbe):
    """What a PyTorch model gives the progress measures at ``layer``, cut once, read many times.

    See :class:`adapters.layer.LayerProbe`; the options are :class:`LayerOptions`' (``fold``
    and ``widen_output`` always false: the representations are the layer's outputs).
    """

    backend = TorchBackend()
    options_type = LayerOptions
    fixed_options: ClassVar[dict[str, Any]] = {"fold": False, "widen_output": False}


class LayerRegions(shared.LayerRegions):
    """The linear regions of a PyTorch model's head after ``layer``, cut once, counted many times.

    See :class:`adapters.layer.LayerRegions`; the options are :class:`LayerOptions`'
    (``fold`` always true, ``widen_output`` always false: the head is read from its modules).
    """

    backend = TorchBackend()
    options_type = LayerOptions
    fixed_options: ClassVar[dict[str, Any]] = {"fold": True, "widen_output": False}


def layer_regions(
    model: nn.Module, inputs: Any, layer: str, *, progress: bool = False, **option_keywords: Any
) -> lmn_core.RegionSummary:
    """The linear regions of ``model`` "between ``layer`` and the output" on ``inputs``.

    See :class:`LayerRegions`; ``option_keywords`` are :class:`LayerOptions` fields.
    """
    return LayerRegions(model, layer, example_inputs=inputs, **option_keywords)(inputs, progress=progress)
