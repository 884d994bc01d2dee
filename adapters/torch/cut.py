"""Cut a PyTorch model after a layer into ``(body, head)`` with ``head(body(x)) == model(x)``.

Three ways, one rule (``layer`` is a name from ``model.named_modules()``, nested as in
``"layer2.1"``; it is a cut when every path from the samples' input to the outputs
passes through its output), tried in this order (:data:`CUT_STRATEGIES`; ``cut_by=``
narrows them):

- **Chains.** When the model and every module above ``layer`` are plain
  ``nn.Sequential`` containers, the body is every module up to and including ``layer``
  and the head every one after it, as ``nn.Sequential`` containers of the model's own
  modules. Nothing is traced.
- **Graphs.** Anything else that ``torch.fx`` can trace (custom ``forward`` methods with
  ``flatten``, ``permute``, residual blocks, several inputs, tuples or dicts returned) is
  cut in its graph (:mod:`adapters.torch.graph`): body and head are
  ``torch.fx.GraphModule`` objects sharing the model's modules. A skip connection over
  ``layer`` is refused naming its source and target nodes. When some of ``forward``'s
  inputs are fixed (``fixed_inputs``), body and head are :class:`BoundInputs` around the
  graph modules.
- **Forward hooks.** A model that ``torch.fx`` cannot trace (most Hugging Face models,
  ``nn.TransformerEncoder``) is cut with forward hooks (:mod:`adapters.torch.hooks`),
  checked on every row of the example inputs; without example inputs it is refused with
  the tracer's reason.

Affine prefix folding (docs/design.md, identity 3). ``fold=True`` (what
:func:`adapters.torch.layer_lmn` does by default) moves the ``nn.Linear`` calls that start
the head into the body: the samples become their output, computed once, and the head
left to interpolate through is shorter. The connectivity matrix is the same, up to
rounding, because an affine map sends segments to segments with the same λ. Only a plain
``nn.Linear`` whose call is its affine map folds (no subclass, no hook that changes it),
and in a graph only one that is the sole user of the cut's value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import fx, nn

from adapters.refusals import NotACutError
from adapters.torch import graph as graphs
from adapters.torch.function import eval_mode
from adapters.torch.hooks import hook_split
from adapters.torch.modules import acts_as_linear


def _is_plain_sequential(module: nn.Module) -> bool:
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _children(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The children of a Sequential in order, a module registered twice at each place."""
    named = module.named_modules(remove_duplicate=False)
    return [(name, child) for name, child in named if name and "." not in name]


def _checked_layer(model: nn.Module, layer: str) -> None:
    names = [name for name, _ in model.named_modules(remove_duplicate=False) if name]
    if layer == "" or layer not in names:
        raise ValueError(f"no layer {layer!r} in {type(model).__name__}; its layers are {names}")


def _is_chain(model: nn.Module, layer: str) -> bool:
    """Whether the model and every module above ``layer`` are plain ``nn.Sequential``."""
    module = model
    for part in layer.split(".")[:-1]:
        if not _is_plain_sequential(module):
            return False
        module = module.get_submodule(part)
    return _is_plain_sequential(module)


def _chain_cut(model: nn.Module, layer: str, fold: bool) -> tuple[nn.Sequential, nn.Sequential]:
    """Body and head of a chain of plain ``nn.Sequential`` containers."""
    body: list[nn.Module] = []
    head_parts: list[list[nn.Module]] = []
    module, prefix = model, ""
    while True:
        items = _children(module)
        relative = layer[len(prefix) :]
        index = next(k for k, (name, _) in enumerate(items) if relative.split(".")[0] == name)
        name, child = items[index]
        body.extend(item for _, item in items[:index])
        head_parts.append([item for _, item in items[index + 1 :]])
        if relative == name:
            body.append(child)
            break
        module, prefix = child, f"{prefix}{name}."
    head = [item for part in reversed(head_parts) for item in part]
    if fold:
        n_affine = next((k for k, item in enumerate(head) if not acts_as_linear(item)), len(head))
        body, head = body + head[:n_affine], head[n_affine:]
    return nn.Sequential(*body), nn.Sequential(*head)


#: The ways to cut a model, in the order they are tried: a chain of ``nn.Sequential``
#: containers (nothing traced), its ``torch.fx`` graph, forward hooks (any model, checked on
#: the example inputs; only when the graph cannot be traced).
CUT_STRATEGIES = ("chain", "graph", "hooks")


def checked_strategies(cut_by: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``cut_by`` as a tuple of :data:`CUT_STRATEGIES`, else a ``ValueError`` naming them."""
    strategies = tuple(cut_by)
    if not strategies or any(strategy not in CUT_STRATEGIES for strategy in strategies):
        raise ValueError(f"cut_by must name some of {CUT_STRATEGIES}, got {cut_by!r}")
    return strategies


def split_at(
    model: nn.Module, layer: str, options: Any, example_inputs: Any = None
) -> tuple[nn.Module, nn.Module]:
    """:func:`adapters.torch.split` without the nearest cut points in its refusal (a ``NotACutError``).

    ``options`` is an :class:`adapters.torch.LayerOptions` (``fold``, ``input``,
    ``fixed_inputs``, ``output``, ``cut_by`` are read). The strategies of ``cut_by`` are
    tried in :data:`CUT_STRATEGIES`' order: the chain where the model is one, else the
    graph, else (the graph untraceable, or not allowed) forward hooks, which need
    ``example_inputs``.
    """
    fold, input, fixed_inputs, cut_by = options.fold, options.input, options.fixed_inputs, options.cut_by
    strategies = checked_strategies(cut_by)
    _checked_layer(model, layer)
    chain_inputs = not fixed_inputs and input in (None, "input")
    if "chain" in strategies and chain_inputs and _is_chain(model, layer):
        return _chain_cut(model, layer, fold)
    inputs = graphs.plan_inputs(model, input, fixed_inputs)
    if "graph" in strategies:
        try:
            return graphs.graph_cut(model, layer, inputs, fold, example_inputs)
        except graphs.UntraceableError:
            if "hooks" not in strategies or example_inputs is None:
                raise
    if "hooks" not in strategies:
        raise NotACutError(
            f"layer {layer!r} of {type(model).__name__} is not a chain cut (cut_by={cut_by!r})"
        )
    if example_inputs is None:
        raise ValueError(
            f"cutting {type(model).__name__} at {layer!r} with forward hooks needs example_inputs"
        )
    return hook_split(
        model, layer, example_inputs, input=inputs.sample, fixed_inputs=inputs.fixed, output=options.output
    )


def _scope_names(node: fx.Node) -> list[str]:
    stack = node.meta.get("nn_module_stack") or {}
    return [value[0] if isinstance(value, tuple) else key for key, value in stack.items()]


def _post_order(module: nn.Module, prefix: str = "") -> Iterator[str]:
    """Module names, each after the modules it contains."""
    for name, child in module.named_children():
        yield from _post_order(child, f"{prefix}{name}.")
        yield f"{prefix}{name}"


def graph_order(model: nn.Module, inputs: graphs.Inputs) -> list[str]:
    """Every module called in ``model``'s forward, in the order its output appears in the graph.

    A model that ``torch.fx`` cannot trace falls back to ``named_modules()`` in
    post-order (children before their container), the order of a chain.
    """
    try:
        with eval_mode(model):
            graph = fx.Tracer().trace(model, concrete_args=inputs.defaults or None)
    except Exception:  # untraceable: only chains can be cut, and their order is this one
        return list(_post_order(model))
    last: dict[str, tuple[int, int]] = {}
    for position, node in enumerate(graph.nodes):
        for name in _scope_names(node):
            last[name] = (position, -name.count("."))
    return sorted(last, key=last.__getitem__)
