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

from typing import Any

from torch import nn

from adapters import layer as shared
from adapters.torch.cut import CUT_STRATEGIES
from adapters.torch.function import OutputChoice
from adapters.torch.layer import LayerOptions, TorchBackend


def cut_points(
    model: nn.Module,
    example_inputs: Any = None,
    *,
    input: str | None = None,
    fixed_inputs: dict[str, Any] | None = None,
    output: OutputChoice = None,
    cut_by: tuple[str, ...] = CUT_STRATEGIES,
) -> list[str]:
    """The layer names of ``model`` at which :func:`adapters.torch.split` succeeds, in graph order.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    example_inputs : array_like or torch.Tensor, optional
        Samples' inputs; when given, each graph cut is also checked on their first rows,
        as ``split`` checks it, and a model ``torch.fx`` cannot trace is cut with hooks.
    input, fixed_inputs, output, cut_by
        As for :func:`adapters.torch.split`.

    Returns
    -------
    list of str
        Names as ``model.named_modules()`` gives them.
    """
    options = LayerOptions(input=input, fixed_inputs=fixed_inputs, output=output, cut_by=cut_by)
    return shared.backend_cut_points(TorchBackend(), model, options, example_inputs)


def split(
    model: nn.Module,
    layer: str,
    *,
    example_inputs: Any = None,
    fold: bool = False,
    input: str | None = None,
    fixed_inputs: dict[str, Any] | None = None,
    output: OutputChoice = None,
    cut_by: tuple[str, ...] = CUT_STRATEGIES,
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
    output : int, str or callable, optional
        The output a hook cut is checked in (see :class:`adapters.torch.OutputSelector`).
    cut_by : tuple of str
        The ways to cut, tried in order (:data:`adapters.torch.cut.CUT_STRATEGIES`).

    Returns
    -------
    tuple of torch.nn.Module
        ``(body, head)``: ``nn.Sequential`` containers for a chain (``head`` empty, the
        identity, when ``layer`` is last), ``torch.fx.GraphModule`` objects for a graph,
        hook modules for a model cut with forward hooks.

    Raises
    ------
    ValueError
        If ``layer`` is not a layer of the model, is not a cut of it (the message
        names the nearest cut points before and after it), or the model cannot be
        traced.
    """
    options = LayerOptions(fold=fold, input=input, fixed_inputs=fixed_inputs, output=output, cut_by=cut_by)
    return shared.cut_with_nearest(TorchBackend(), model, layer, options, example_inputs)
