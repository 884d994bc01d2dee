"""The layers of a PyTorch model that are cuts (:func:`cut_points`), and :func:`split`, which names them.

In the spirit of torchvision's ``get_graph_node_names``: the names a user may pass to
:func:`adapters.torch.split`, ``layer_lmn``, ``LayerLMN`` and the monitors, listed
before anything is measured. The order is the graph's: each module is placed where its
output appears in the ``torch.fx`` trace of the model (the last node of its scope, from
the nodes' ``nn_module_stack`` metadata), a module before the module that contains it.
Whether a name is a cut is decided by :func:`adapters.torch.split` itself, so the list
and the refusals never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import fx, nn

from adapters.refusals import NotACutError, nearest_cut_points
from adapters.torch import graph as graphs
from adapters.torch.chain import split_at
from adapters.torch.function import eval_mode


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


def _is_cut(model: nn.Module, layer: str, example_inputs: Any, inputs: graphs.Inputs) -> bool:
    try:
        _cut(model, layer, example_inputs, inputs)
    except ValueError:
        return False
    return True


def _cut(model: nn.Module, layer: str, example_inputs: Any, inputs: graphs.Inputs) -> None:
    split_at(model, layer, example_inputs=example_inputs, input=inputs.sample, fixed_inputs=inputs.fixed)


def cut_points(
    model: nn.Module,
    example_inputs: Any = None,
    *,
    input: str | None = None,
    fixed_inputs: dict[str, Any] | None = None,
) -> list[str]:
    """The layer names of ``model`` at which :func:`adapters.torch.split` succeeds, in graph order.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    example_inputs : array_like or torch.Tensor, optional
        Samples' inputs; when given, each graph cut is also checked on their first rows,
        as ``split`` checks it.
    input, fixed_inputs
        As for :func:`adapters.torch.split`.

    Returns
    -------
    list of str
        Names as ``model.named_modules()`` gives them.
    """
    inputs = graphs.plan_inputs(model, input, fixed_inputs)
    return [name for name in graph_order(model, inputs) if _is_cut(model, name, example_inputs, inputs)]


def split(
    model: nn.Module,
    layer: str,
    *,
    example_inputs: Any = None,
    fold: bool = False,
    input: str | None = None,
    fixed_inputs: dict[str, Any] | None = None,
) -> tuple[nn.Module, nn.Module]:
    """Cut ``model`` after ``layer`` into ``(body, head)`` with ``head(body(x)) == model(x)``.

    See the module docstring for the rule. Body and head share the model's modules
    (no copies), so they follow its training. A graph is traced in eval mode, so a
    ``forward`` that branches on ``self.training`` is cut as it runs in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        The model to cut.
    layer : str
        A name as ``model.named_modules()`` gives it (``"1"`` is the second child of
        an ``nn.Sequential``, ``"layer2.1"`` a nested one); the body ends with its output.
    example_inputs : array_like or torch.Tensor, optional
        Samples' inputs; when given, a graph cut is also checked on their first rows:
        ``head(body(x))`` must equal ``model(x)`` exactly.
    fold : bool
        Move the ``nn.Linear`` calls that start the head into the body (affine prefix
        folding, see the module docstring).
    input : str, optional
        The ``forward`` input that the samples replace (by default the first).
    fixed_inputs : dict, optional
        Values of ``forward``'s other inputs, the same for every sample (an attention
        mask of shape ``(L, L)``, a flag). Inputs left out keep their defaults.

    Returns
    -------
    tuple of torch.nn.Module
        ``(body, head)``: ``nn.Sequential`` containers for a chain (``head`` empty, the
        identity, when ``layer`` is last), ``torch.fx.GraphModule`` objects otherwise.

    Raises
    ------
    ValueError
        If ``layer`` is not a layer of the model, is not a cut of it (the message
        names the nearest cut points before and after it), or the model cannot be
        traced.
    """
    try:
        return split_at(
            model, layer, example_inputs=example_inputs, fold=fold, input=input, fixed_inputs=fixed_inputs
        )
    except NotACutError as error:
        inputs = graphs.plan_inputs(model, input, fixed_inputs)
        nearest = nearest_cut_points(
            graph_order(model, inputs),
            layer,
            lambda name: _is_cut(model, name, example_inputs, inputs),
            "adapters.torch.cut_points",
        )
        raise NotACutError(f"{error}. {nearest}") from None
