"""Exact linear regions of a PyTorch model at a layer: its head as affine maps and hinges.

:func:`piecewise_linear_head` reads a head that :func:`adapters.torch.split` cut
(folded prefix included) as a :class:`lmn_core.PiecewiseLinearHead`: a chain of
``nn.Linear``, ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.PReLU`` and ``nn.Identity`` modules
(in ``nn.Sequential`` containers, or a ``torch.fx`` graph of them and of
``torch.relu`` / ``functional.relu`` / ``functional.leaky_relu``). Any other module or
operation is refused by name. :class:`adapters.torch.LayerRegions` reads it to
count the regions of the head on ``X = body(inputs)`` with :mod:`lmn_core.regions`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional

import lmn_core
from adapters.torch.function import OutputChoice, picked_output
from adapters.torch.graph import BoundInputs
from adapters.torch.modules import acts_as_linear

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


def _narrowed(graph_module: fx.GraphModule, output: OutputChoice) -> fx.GraphModule:
    """The graph returning only the output ``output`` picks (an index or a key), dead nodes dropped."""
    if output is None:
        return graph_module
    if callable(output):
        raise ValueError(
            "cannot count linear regions of the output a callable picks: choose it with an index or a key"
        )
    graph = fx.Graph()
    returned = graph.graph_copy(graph_module.graph, {})
    graph.output(picked_output(returned, output))
    narrowed = fx.GraphModule(graph_module, graph)
    narrowed.graph.eliminate_dead_code()
    narrowed.recompile()
    return narrowed


def piecewise_linear_head(head: nn.Module, output: OutputChoice = None) -> lmn_core.PiecewiseLinearHead:
    """The head (narrowed to ``output``) as affine maps and hinges, in float64 (the module's weights of now).

    Raises
    ------
    ValueError
        Naming the first module or operation that is not one of the chain's.
    """
    if isinstance(head, BoundInputs):
        head = head.graph_module
    if isinstance(head, fx.GraphModule):
        layers = _graph_layers(_narrowed(head, output))
    else:
        layers = [_from_module(module, f"module {name!r}") for name, module in _sequential_modules(head)]
    return lmn_core.PiecewiseLinearHead([layer for layer in layers if layer is not None])
