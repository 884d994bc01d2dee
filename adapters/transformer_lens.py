"""The LMN of TransformerLens models at hook points: ``layer_lmn``, ``LayerLMN``, ``cut_points``, a monitor.

A TransformerLens model (``TransformerBridge`` of TransformerLens 4, built offline with
``TransformerBridge.boot_native({...})`` or around a Hugging Face model with
``boot_transformers``; the older ``HookedTransformer`` as well) names its activations by
hook points, ``"blocks.0.hook_resid_post"`` and the like (``model.hook_dict``, the names
``run_with_cache`` lists). The samples are token sequences ``(N, n_ctx)``: the body runs
the model up to the hook point, the interpolation happens in the hook's activation space,
and the head is the rest of the model run with that activation replaced, returning the
logits. This is the PyTorch backend's cut by forward hooks (:mod:`adapters.torch.hooks`)
on the hook point's module, so ``head(body(x))`` equals the model's logits on every
example row, checked when the measure is made.

Which hook points are cuts. A hook point is a cut when the logits depend on the tokens
only through it: the residual stream between blocks (``hook_embed``, with the positional
embedding beside it, which depends on the positions only; ``blocks.k.hook_resid_pre`` and
``blocks.k.hook_resid_post``) and what follows the last block (``ln_final``'s output,
``hook_unembed``). An activation inside a block (``attn.hook_z``, ``hook_attn_out``,
``mlp.hook_post``, ``ln1.hook_normalized``) is not: the residual stream bypasses it, so
with it held fixed the logits still change with the tokens. In ``TransformerBridge``
(TransformerLens 4.3) ``blocks.k.hook_resid_mid`` is the input of ``ln2`` only, which the
residual stream also bypasses, so it is not a cut there either; hook points a forward does
not call and integer token ids are refused too. :func:`cut_points` lists the cuts,
:func:`refusals` says why each other hook point is not one.

Nothing here imports TransformerLens: a model is recognised by its ``hook_dict``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

import lmn_core
from adapters import layer as shared
from adapters.options import LMN_KEYWORDS
from adapters.torch import layer as torch_layer
from adapters.torch import monitor as torch_monitor
from adapters.torch.layer import LayerOptions, TorchBackend
from lmn_core.measure import DEFAULT_N_POINTS

#: The ``forward`` argument the tokens go to.
TOKENS_INPUT = "input"


def hook_names(model: nn.Module) -> list[str]:
    """The model's hook point names, in the order of ``model.hook_dict``."""
    hook_dict = getattr(model, "hook_dict", None)
    if not isinstance(hook_dict, dict):
        raise TypeError(
            f"{type(model).__name__} is not a TransformerLens model: it has no hook_dict (a "
            "TransformerBridge or a HookedTransformer has one); measure other PyTorch models with "
            "adapters.torch"
        )
    return list(hook_dict)


def module_name(model: nn.Module, hook: str) -> str:
    """The name in ``model.named_modules()`` of the hook point ``hook`` (an alias resolved)."""
    names = hook_names(model)
    if hook not in names:
        raise ValueError(f"no hook point {hook!r} in {type(model).__name__}; its hook points are {names}")
    module = model.hook_dict[hook]
    return next(name for name, candidate in model.named_modules() if candidate is module)


class TransformerLensBackend(TorchBackend):
    """The PyTorch backend at hook points: candidates are hook names, the cut is by forward hooks."""

    lister = "adapters.transformer_lens.cut_points"

    def candidates(self, model: nn.Module, options: LayerOptions) -> list[str]:
        """The hook point names, in the order of ``model.hook_dict``."""
        return hook_names(model)

    def cut(
        self, model: nn.Module, layer: str, options: LayerOptions, example_inputs: Any
    ) -> tuple[Any, Any]:
        """The PyTorch cut by forward hooks at the hook point's module, the tokens in ``input``."""
        options = dataclasses.replace(
            options, input=options.input or TOKENS_INPUT, fold=False, cut_by=("hooks",)
        )
        return super().cut(model, module_name(model, layer), options, example_inputs)


class LayerLMN(torch_layer.LayerLMN):
    """The LMN "between the hook point ``layer`` and the logits" of a TransformerLens model.

    Parameters
    ----------
    model : torch.nn.Module
        A ``TransformerBridge`` (or ``HookedTransformer``), on its device.
    layer : str
        A hook point name (``"blocks.0.hook_resid_post"``); :func:`cut_points` lists the cuts.
    options : adapters.torch.LayerOptions, optional
        ``output``, ``batch_size``, ``reduction``, ``device``, ``fixed_inputs``, ...; the
        cut is always by hooks, not folded, with the tokens in ``input``.
    example_inputs : array_like or torch.Tensor
        Token ids ``(N, n_ctx)`` the cut is checked on (every row); the first row is the
        head's placeholder.
    **option_keywords
        Any :class:`adapters.torch.LayerOptions` field, over ``options``.
    """

    backend = TransformerLensBackend()


class LayerProbe(torch_layer.LayerProbe):
    """What a TransformerLens model gives the progress measures at the hook point ``layer``.

    See :class:`adapters.torch.LayerProbe`: the representations are the hook point's
    activations ``(N, n_ctx * d)``, the head the rest of the model (cut as :class:`LayerLMN`'s).
    """

    backend = TransformerLensBackend()


def layer_lmn(
    model: nn.Module,
    tokens: Any,
    layer: str,
    *,
    options: LayerOptions | None = None,
    n_points: int = DEFAULT_N_POINTS,
    memory_budget: int | None = None,
    block_pairs: int | None = None,
    const_rtol: float | None = None,
    const_atol: float = 0.0,
    progress: bool = False,
    overlap: bool | None = None,
    threads: int | None = None,
) -> lmn_core.LMNResult:
    """LMN "between the hook point ``layer`` and the logits" of ``model`` on tokens ``(N, n_ctx)``.

    ``options`` are :class:`LayerLMN`'s; ``n_points``, ``memory_budget``, ``block_pairs``,
    ``const_rtol``, ``const_atol``, ``progress``, ``overlap`` and ``threads`` go to
    :func:`lmn_core.lmn`, with its defaults.
    """
    given = locals()
    lmn_kwargs = {name: given[name] for name in LMN_KEYWORDS}
    return LayerLMN(model, layer, options, example_inputs=tokens)(tokens, **lmn_kwargs)


def refusals(model: nn.Module, example_inputs: Any) -> dict[str, str]:
    """Every hook point of ``model``, each with why it is not a cut (``""`` where it is one)."""
    backend, options, reasons = LayerLMN.backend, LayerOptions(), {}
    for hook in hook_names(model):
        try:
            backend.cut(model, hook, options, example_inputs)
        except ValueError as error:
            reasons[hook] = str(error)
        else:
            reasons[hook] = ""
    return reasons


def cut_points(model: nn.Module, example_inputs: Any) -> list[str]:
    """The hook points of ``model`` at which a cut holds on ``example_inputs``, in ``hook_dict`` order."""
    return shared.backend_cut_points(LayerLMN.backend, model, LayerOptions(), example_inputs)


class LMNMonitor(torch_monitor.LMNMonitor):
    """:class:`adapters.torch.LMNMonitor` at hook points: ``monitor.step(step)`` in a training loop.

    Parameters
    ----------
    model : torch.nn.Module
        The TransformerLens model being trained.
    inputs : array_like or torch.Tensor
        Token ids ``(N, n_ctx)`` to measure on.
    layers : str or sequence of str
        Hook point names.
    every_n_steps, csv_path, writer, measures, **keywords
        As for :class:`adapters.torch.LMNMonitor`: CSV columns ``lmn_<hook>`` (and
        ``<measure>_<hook>`` for a measure of the hook point's activations).
    """

    layer_type = LayerLMN
    probe_type = LayerProbe
