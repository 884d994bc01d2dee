"""Exact linear regions of a PyTorch model at a layer: its head as affine maps and hinges.

:func:`piecewise_linear_head` reads a head that :func:`adapters.torch.split.split` cut
(folded prefix included) as a :class:`lmn_core.PiecewiseLinearHead`: a chain of
``nn.Linear``, ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.PReLU`` and ``nn.Identity`` modules
(in ``nn.Sequential`` containers, or a ``torch.fx`` graph of them and of
``torch.relu`` / ``functional.relu`` / ``functional.leaky_relu``). Any other module or
operation is refused by name. :class:`LayerRegions` cuts a model once and counts the
regions of its head on ``X = body(inputs)`` with :mod:`lmn_core.regions`, as
:class:`adapters.torch.LayerLMN` measures its LMN on the same samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional

import lmn_core
from adapters.torch.function import TorchFunction, floating_dtype, module_device
from adapters.torch.graph import acts_as_linear
from adapters.torch.split import split

MODULES = "nn.Linear, nn.ReLU, nn.LeakyReLU, nn.PReLU or nn.Identity"
RELU_FUNCTIONS = (torch.relu, functional.relu)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy()


def _from_module(module: nn.Module, where: str) -> lmn_core.Affine | lmn_core.Hinge | None:
    """One module as an affine map or a hinge (``None`` for the identity), or ``ValueError``."""
    kind = type(module)
    if kind is nn.Linear and acts_as_linear(module):
        bias = _numpy(module.bias) if module.bias is not None else np.zeros(module.out_features)
        return lmn_core.Affine(_numpy(module.weight), bias)
    if kind is nn.ReLU:
        return lmn_core.Hinge(0.0)
    if kind is nn.LeakyReLU:
        return lmn_core.Hinge(float(module.negative_slope))
    if kind is nn.PReLU:
        slopes = _numpy(module.weight)
        return lmn_core.Hinge(float(slopes[0]) if slopes.size == 1 else slopes)
    if kind is nn.Identity:
        return None
    raise ValueError(
        f"cannot count linear regions through {where} ({kind.__name__}): a piecewise-linear head is "
        f"made of {MODULES}"
    )


def _sequential_modules(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
        for name, child in module.named_children():
            yield from _sequential_modules(child, f"{prefix}{name}.")
    else:
        yield prefix.rstrip(".") or type(module).__name__, module


def _from_node(graph_module: fx.GraphModule, node: fx.Node) -> lmn_core.Affine | lmn_core.Hinge | None:
    """One node of a chain graph as an affine map or a hinge, or ``ValueError`` naming it."""
    if node.op == "call_module":
        return _from_module(graph_module.get_submodule(str(node.target)), f"module {node.target!r}")
    if node.op == "call_function" and node.target in RELU_FUNCTIONS:
        return lmn_core.Hinge(0.0)
    if node.op == "call_function" and node.target is functional.leaky_relu:
        slope = node.kwargs.get("negative_slope", node.args[1] if len(node.args) > 1 else 0.01)
        return lmn_core.Hinge(float(slope))
    if node.op == "call_method" and node.target == "relu":
        return lmn_core.Hinge(0.0)
    target = getattr(node.target, "__name__", node.target)
    raise ValueError(
        f"cannot count linear regions through node {node.name!r} ({node.op} {target}): a "
        f"piecewise-linear head is a chain of {MODULES} and relu / leaky_relu calls"
    )


def _graph_layers(graph_module: fx.GraphModule) -> list[lmn_core.Affine | lmn_core.Hinge | None]:
    nodes = list(graph_module.graph.nodes)
    placeholders = [node for node in nodes if node.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError(f"a piecewise-linear head takes one input, this graph takes {len(placeholders)}")
    layers, previous = [], placeholders[0]
    for node in nodes:
        if node.op in ("placeholder", "output"):
            if node.op == "output" and node.args[0] is not previous:
                raise ValueError("a piecewise-linear head returns one tensor, the end of its chain")
            continue
        layers.append(_from_node(graph_module, node))
        inputs = node.all_input_nodes
        if inputs != [previous]:
            raise ValueError(
                f"node {node.name!r} takes {[n.name for n in inputs]}, not only {previous.name!r}: "
                "a piecewise-linear head is a chain"
            )
        previous = node
    return layers


def piecewise_linear_head(head: nn.Module) -> lmn_core.PiecewiseLinearHead:
    """The head as affine maps and hinges, in float64 (the module's weights of now).

    Raises
    ------
    ValueError
        Naming the first module or operation that is not one of the chain's.
    """
    if isinstance(head, fx.GraphModule):
        layers = _graph_layers(head)
    else:
        layers = [_from_module(module, f"module {name!r}") for name, module in _sequential_modules(head)]
    return lmn_core.PiecewiseLinearHead([layer for layer in layers if layer is not None])


class LayerRegions:
    """The linear regions of ``model``'s head after ``layer``, cut once, counted many times.

    The cut is :func:`adapters.torch.split.split` with ``fold=True``: the samples are the
    leading ``nn.Linear`` layers' outputs, as :class:`adapters.torch.LayerLMN` measures
    them. Body and head share the model's parameters, so the head is read again at
    every count and follows training.

    Parameters
    ----------
    model : torch.nn.Module
        The model, on the device it runs on.
    layer : str
        Layer name as ``model.named_modules()`` gives it.
    device, batch_size
        Passed to :class:`TorchFunction` for the body.
    """

    def __init__(
        self, model: nn.Module, layer: str, *, device: Any = None, batch_size: int | None = None
    ) -> None:
        self.layer = layer
        body, head = split(model, layer, fold=True)
        piecewise_linear_head(head)  # refuse a head that is not piecewise linear at once
        device = device if device is not None else module_device(model)
        model_dtype = floating_dtype(model)
        self.body = TorchFunction(
            body, device=device, dtype=floating_dtype(body, model_dtype), batch_size=batch_size
        )
        self.head = TorchFunction(
            head, device=device, dtype=floating_dtype(head, model_dtype), batch_size=batch_size
        )

    def __call__(self, inputs: Any, *, progress: bool = False) -> lmn_core.RegionSummary:
        """Regions and pieces of the head on ``X = body(inputs)`` (see :func:`lmn_core.linear_regions`)."""
        samples = self.body(inputs)
        extracted = piecewise_linear_head(self.head.module)
        if not extracted.agrees_with(self.head, samples):
            raise ValueError(
                f"the head after {self.layer!r} does not compute what its modules say (a hook, or work "
                "outside them): its linear regions cannot be read from its weights"
            )
        return lmn_core.linear_regions(extracted, samples, progress=progress)


def layer_regions(
    model: nn.Module, inputs: Any, layer: str, *, progress: bool = False
) -> lmn_core.RegionSummary:
    """The linear regions of ``model`` "between ``layer`` and the output" on ``inputs``.

    See :class:`LayerRegions`.
    """
    return LayerRegions(model, layer)(inputs, progress=progress)
