"""Cut a model's ``torch.fx`` graph at the node that produces a layer's output.

The model is traced with :class:`torch.fx.Tracer` (public API only), in eval mode (the
mode the LMN is measured in), with ``layer`` kept as one leaf call so that its output is
one node, ``cut``. The modules above ``layer`` are traced through; the rest follows
torch.fx's default (the ``torch.nn`` layers are leaves). Every node then falls into one
of three sets:

- **through the cut**: ``cut`` and the nodes that depend on it;
- **beside the cut**: nodes that depend on the samples' input by another way;
- **constant**: nodes that depend on no sample (parameters, fixed inputs).

``cut`` is a cut when no node beside it feeds a node through it (nor the output): every
path from the samples to the outputs passes through ``cut``. Otherwise the first such
edge is a skip connection and is named in the refusal. The body computes everything but
the nodes through the cut and returns ``cut``; the head takes ``cut``'s value and
computes the nodes through it, with the constants they need, and returns what the model
returns (a tuple stays a tuple; a dict, a ``ModelOutput`` included, comes back as a
dict with the same keys, since torch.fx rebuilds mappings as plain dicts).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from adapters.refusals import NotACutError
from adapters.torch.function import as_tensor, eval_mode, floating_dtype, module_device
from adapters.torch.modules import acts_as_linear


class _CutTracer(fx.Tracer):
    """torch.fx's tracer, with ``layer`` a leaf and the modules above it traced through."""

    def __init__(self, layer: str) -> None:
        super().__init__()
        self.layer = layer

    def is_leaf_module(self, module: nn.Module, module_qualified_name: str) -> bool:
        """``layer`` is a leaf; its ancestors are not; other modules as torch.fx decides."""
        if module_qualified_name == self.layer:
            return True
        if self.layer.startswith(module_qualified_name + "."):
            return False
        return super().is_leaf_module(module, module_qualified_name)


@dataclass(frozen=True)
class Inputs:
    """How a model's ``forward`` inputs are given: the samples' input, fixed ones, defaults."""

    sample: str
    fixed: dict[str, Any]
    defaults: dict[str, Any]


class BoundInputs(nn.Module):
    """A graph module of several inputs called with one: the others are fixed.

    Parameters
    ----------
    graph_module : torch.fx.GraphModule
        Body or head; its first input takes the samples (or the cut's value).
    fixed : dict
        The other inputs, by name, passed to every call.
    """

    def __init__(self, graph_module: fx.GraphModule, fixed: dict[str, Any]) -> None:
        super().__init__()
        self.graph_module = graph_module
        names = {node.target for node in graph_module.graph.nodes if node.op == "placeholder"}
        self.fixed = {key: value for key, value in fixed.items() if key in names}

    def forward(self, inputs: Any) -> Any:
        """``graph_module(inputs, **fixed)``."""
        return self.graph_module(inputs, **self.fixed)


def plan_inputs(model: nn.Module, input: str | None, fixed_inputs: dict[str, Any] | None) -> Inputs:
    """Which ``forward`` input the samples replace, which are fixed, which keep their defaults."""
    name = type(model).__name__
    fixed = dict(fixed_inputs or {})
    parameters = {
        key: value
        for key, value in inspect.signature(model.forward).parameters.items()
        if value.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    names = list(parameters)
    if not names:
        raise ValueError(f"{name}.forward takes no named input to put the samples into")
    sample = names[0] if input is None else input
    unknown = [key for key in [sample, *fixed] if key not in parameters]
    if unknown:
        raise ValueError(f"{name}.forward has no input {unknown[0]!r}; its inputs are {names}")
    if sample in fixed:
        raise ValueError(f"input {sample!r} takes the samples; it cannot also be in fixed_inputs")
    others = [key for key in names if key != sample and key not in fixed]
    missing = [key for key in others if parameters[key].default is inspect.Parameter.empty]
    if missing:
        raise ValueError(
            f"{name}.forward({', '.join(names)}) needs {missing} besides {sample!r}, the input the samples "
            f"replace: give {'them' if len(missing) > 1 else 'it'} with fixed_inputs={{{missing[0]!r}: ...}} "
            "(one value for all samples, such as an attention mask of shape (L, L); a per-sample input "
            "cannot follow the samples along their segments), or choose another input with input="
        )
    defaults = {key: parameters[key].default for key in others}
    return Inputs(sample, fixed, defaults)


#: Rows of the example inputs a graph cut is checked on.
N_EXAMPLE_ROWS = 8


class UntraceableError(ValueError):
    """``torch.fx`` cannot trace the model: the cut falls back to forward hooks when it may."""


def trace(model: nn.Module, layer: str, inputs: Inputs) -> fx.Graph:
    """The graph of ``model`` in eval mode with ``layer`` as one call; refused with the tracer's reason."""
    try:
        with eval_mode(model):
            return _CutTracer(layer).trace(model, concrete_args=inputs.defaults or None)
    except Exception as error:
        raise UntraceableError(
            f"cannot cut {type(model).__name__} at {layer!r}: torch.fx cannot trace it "
            f"({type(error).__name__}: {error}). The ways out: give example_inputs, and the model is cut "
            "with forward hooks (checked on them); or measure without split, computing the samples "
            "X = the layer's outputs yourself and passing the rest of the network as a callable to "
            "lmn_core.lmn(f, X) (adapters.torch.TorchFunction(head_module) makes one from a module)"
        ) from error


def layer_node(graph: fx.Graph, model: nn.Module, layer: str) -> fx.Node:
    """The one ``call_module`` node of ``layer``; refused if it runs never or more than once."""
    module = model.get_submodule(layer)
    nodes = [
        node
        for node in graph.nodes
        if node.op == "call_module" and model.get_submodule(node.target) is module
    ]
    if len(nodes) == 1:
        return nodes[0]
    kind, model_name = type(module).__name__, type(model).__name__
    if not nodes and isinstance(module, nn.ModuleList | nn.ModuleDict):
        raise NotACutError(f"layer {layer!r} is a container ({kind}) with no output of its own")
    if not nodes:
        raise NotACutError(f"layer {layer!r} ({kind}) is never called in {model_name}'s forward")
    names = ", ".join(repr(node.name) for node in nodes)
    raise NotACutError(
        f"layer {layer!r} is called {len(nodes)} times in {model_name}'s forward (nodes {names}), so its "
        "output is not one tensor: cut at a module that contains every call, or give each call a module"
    )


def describe(node: fx.Node) -> str:
    """A node as the messages name it: its name and what it computes."""
    if node.op == "output":
        return "the model's output"
    if node.op == "call_module":
        what = f"module {node.target}"
    elif node.op == "call_function":
        what = f"function {getattr(node.target, '__name__', node.target)}"
    elif node.op == "call_method":
        what = f"method .{node.target}()"
    elif node.op == "placeholder":
        what = f"input {node.target}"
    else:
        what = f"attribute {node.target}"
    return f"node {node.name!r} ({what})"


def _sides(graph: fx.Graph, cut: fx.Node, sample: fx.Node) -> tuple[set[fx.Node], set[fx.Node]]:
    """The nodes beside the cut (on the samples, not through it) and through it (after it)."""
    beside, through = {sample}, set()
    for node in graph.nodes:  # topological order
        if node is cut:
            continue
        inputs = node.all_input_nodes
        if any(source is cut or source in through for source in inputs):
            through.add(node)
        elif any(source in beside for source in inputs):
            beside.add(node)
    return beside, through


def check_cut(graph: fx.Graph, cut: fx.Node, sample: fx.Node, layer: str, model_name: str) -> set[fx.Node]:
    """The nodes through ``cut``; refused naming the skip connection if ``cut`` is not a cut."""
    beside, through = _sides(graph, cut, sample)
    output = next(node for node in graph.nodes if node.op == "output")
    if output not in through:
        raise NotACutError(
            f"layer {layer!r} is not a cut of {model_name}: the model's output does not depend on it"
        )
    for node in graph.nodes:
        if node not in through:
            continue
        source = next((source for source in node.all_input_nodes if source in beside), None)
        if source is not None:
            raise NotACutError(
                f"layer {layer!r} is not a cut of {model_name}: a skip connection jumps over it, from "
                f"{describe(source)} to {describe(node)}; every path from the input {sample.target!r} to "
                "the outputs must pass through the layer (in a residual network, cut between blocks)"
            )
    return through


def _needed_constants(through: set[fx.Node], cut: fx.Node) -> set[fx.Node]:
    """The nodes outside ``through`` (constants, after a checked cut) that ``through`` reads."""
    needed: set[fx.Node] = set()
    stack = [source for node in through for source in node.all_input_nodes]
    while stack:
        node = stack.pop()
        if node is cut or node in through or node in needed:
            continue
        needed.add(node)
        stack.extend(node.all_input_nodes)
    return needed


def _placeholders_first(nodes: list[fx.Node]) -> list[fx.Node]:
    """Placeholders without a default, then those with one (a valid signature)."""
    return sorted(nodes, key=lambda node: bool(node.args))


def _subgraph(
    graph: fx.Graph, nodes: set[fx.Node], leading: Callable[[fx.Graph, dict], None], result: Callable
) -> fx.Graph:
    """A graph of ``nodes`` in their order, after ``leading``'s placeholders, returning ``result``."""
    new, env = fx.Graph(), {}
    leading(new, env)
    placeholders = [node for node in graph.nodes if node in nodes and node.op == "placeholder"]
    for node in _placeholders_first([node for node in placeholders if node not in env]):
        env[node] = new.node_copy(node, env.__getitem__)
    for node in graph.nodes:
        if node in nodes and node.op not in ("placeholder", "output"):
            env[node] = new.node_copy(node, env.__getitem__)
    new.output(fx.map_arg(result(), env.__getitem__))
    new.lint()
    return new


def cut_graph(
    model: nn.Module, graph: fx.Graph, cut: fx.Node, sample: fx.Node, through: set[fx.Node]
) -> tuple[fx.GraphModule, fx.GraphModule]:
    """``(body, head)`` graph modules of a checked cut; both share ``model``'s submodules."""
    name = type(model).__name__
    output = next(node for node in graph.nodes if node.op == "output")
    body_nodes = {node for node in graph.nodes if node not in through}

    def body_inputs(new: fx.Graph, env: dict) -> None:
        env[sample] = new.node_copy(sample)

    def head_inputs(new: fx.Graph, env: dict) -> None:
        env[cut] = new.placeholder(cut.name)

    head_nodes = (through - {output}) | _needed_constants(through, cut)
    body = _subgraph(graph, body_nodes, body_inputs, lambda: cut)
    head = _subgraph(graph, head_nodes, head_inputs, lambda: output.args[0])
    return fx.GraphModule(model, body, f"{name}Body"), fx.GraphModule(model, head, f"{name}Head")


def sample_placeholder(graph: fx.Graph, inputs: Inputs) -> fx.Node:
    """The placeholder node of the samples' input."""
    return next(node for node in graph.nodes if node.op == "placeholder" and node.target == inputs.sample)


def first_linear_user(
    model: nn.Module, node: fx.Node, is_linear: Callable[[nn.Module], bool]
) -> fx.Node | None:
    """The node's only user when it is a call of an affine ``nn.Linear`` on the node alone."""
    users = list(node.users)
    if len(users) != 1:
        return None
    user = users[0]
    if user.op != "call_module" or user.args != (node,) or user.kwargs:
        return None
    return user if is_linear(model.get_submodule(user.target)) else None


def graph_cut(
    model: nn.Module, layer: str, inputs: Inputs, fold: bool, example_inputs: Any = None
) -> tuple[nn.Module, nn.Module]:
    """Body and head graph modules of any model torch.fx can trace, checked on ``example_inputs`` if given."""
    graph = trace(model, layer, inputs)
    sample = sample_placeholder(graph, inputs)
    cut = layer_node(graph, model, layer)
    through = check_cut(graph, cut, sample, layer, type(model).__name__)
    while fold:
        linear = first_linear_user(model, cut, acts_as_linear)
        if linear is None:
            break
        cut = linear
        through.discard(cut)
    body, head = cut_graph(model, graph, cut, sample, through)
    if inputs.fixed:
        body, head = BoundInputs(body, inputs.fixed), BoundInputs(head, inputs.fixed)
    if example_inputs is not None:
        _check_on_examples(model, layer, body, head, inputs, example_inputs)
    return body, head


def same_outputs(first: Any, second: Any) -> bool:
    """Whether two model outputs hold equal tensors in the same places (a mapping's type aside)."""
    if isinstance(first, torch.Tensor) or isinstance(second, torch.Tensor):
        both = isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor)
        return both and torch.equal(first, second)
    if isinstance(first, Mapping) and isinstance(second, Mapping):
        return list(first) == list(second) and all(same_outputs(first[key], second[key]) for key in first)
    if isinstance(first, tuple | list) and isinstance(second, tuple | list):
        return len(first) == len(second) and all(map(same_outputs, first, second))
    return type(first) is type(second) and first == second


def _check_on_examples(
    model: nn.Module, layer: str, body: nn.Module, head: nn.Module, inputs: Inputs, examples: Any
) -> None:
    """Refuse the cut if ``head(body(x))`` differs from ``model(x)`` on the first example rows."""
    rows = as_tensor(examples[:N_EXAMPLE_ROWS], module_device(model), floating_dtype(model))
    with torch.no_grad(), eval_mode(model):
        expected = model(**{inputs.sample: rows}, **inputs.fixed)
        cut = head(body(rows))
    if not same_outputs(cut, expected):
        raise NotACutError(
            f"layer {layer!r} is not a cut of {type(model).__name__}: head(body(x)) differs from model(x) on "
            "the example inputs (work in forward that tracing does not capture: in-place changes, "
            "Python state, randomness)"
        )
