"""PyTorch adapter: modules as NumPy callables, models cut at a layer, LMN at a layer.

Cutting rule of :func:`split`. A model is cut at ``layer`` (a name from
``model.named_modules()``) by walking from the model down to that layer. Every module
on the way must compute its output as the chain of its children, in the order they
were registered, each child taking exactly the previous child's output (the first
taking the module's input, the module returning the last child's output), and the
layer must be one of those children. Children that are ``nn.ModuleList`` or
``nn.ModuleDict`` containers count as their elements, in order. The body is every
child up to and including the layer, the head every child after it, so
``head(body(x))`` runs exactly the operations of ``model(x)``.

A plain ``nn.Sequential`` (nested or not) is such a chain by definition. Any other
module's ``forward`` cannot be read, so :func:`split` checks it by running the model
once on a few ``example_inputs`` with hooks on the children, then compares
``head(body(x))`` with ``model(x)``; a skip connection, a child used twice, or work
done in ``forward`` between children makes it refuse with a ``ValueError`` naming the
layer.

Affine prefix folding (docs/design.md, identity 3). ``split(..., fold=True)`` (what
:func:`layer_lmn` does by default) moves the ``nn.Linear`` layers that start the head
into the body: the samples become their output, computed once, and the head left to
interpolate through is shorter. The connectivity matrix is the same, up to rounding,
because an affine map sends segments to segments with the same λ. A head that was a
single ``nn.Linear`` becomes the identity, whose LMN is 1.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("adapters.torch needs PyTorch: pip install 'lmn[torch]'") from error

import lmn_core
from adapters.torch_reduction import TorchPairReduction

DEFAULT_BATCH_SIZE = 4096
REDUCTIONS = ("auto", "device", "host")
N_EXAMPLE_ROWS = 8


def _module_device(module: nn.Module) -> torch.device | None:
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return None


def _floating_dtype(module: nn.Module, default: torch.dtype | None = None) -> torch.dtype:
    """The dtype of the module's first floating-point parameter or buffer, else ``default``."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return default if default is not None else torch.get_default_dtype()


def _as_tensor(values: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``values`` as a tensor on ``device``; floating-point values are cast to ``dtype``."""
    if not isinstance(values, torch.Tensor):
        array = np.asarray(values)
        if not (array.flags.writeable and array.flags.c_contiguous):
            array = np.array(array, order="C")
        values = torch.from_numpy(array)
    if values.is_floating_point():
        return values.to(device=device, dtype=dtype)
    return values.to(device=device)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` and every submodule in eval mode, then restore each one's own mode."""
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for submodule, training in modes:
            submodule.training = training


class TorchFunction:
    """A PyTorch module as a NumPy callable for ``lmn_core``.

    Each call converts the input to a tensor (floating-point input cast to ``dtype``,
    integer input kept as integers), runs the module in chunks of ``batch_size`` rows
    under ``torch.no_grad()`` in eval mode, restores every submodule's train/eval mode,
    and returns the output as a NumPy array on the host. Parameters and gradients are
    never touched.

    It is also a :class:`lmn_core.ReducingFunction`: with ``reduction="device"`` (the
    default, ``"auto"``, on any device but the CPU) ``lmn_core`` hands it whole blocks of
    pairs, which it interpolates, runs and reduces to their ``L`` values with torch ops
    on its device (:class:`adapters.torch_reduction.TorchPairReduction`), so that no
    interpolated point nor output crosses to the host. The points are interpolated in
    the samples' dtype (``torch.lerp``) rather than in float64 rounded once, so the two
    paths differ by about an ulp of that dtype; the r² sums run in float64 on both.

    Parameters
    ----------
    module : torch.nn.Module
        The module to run, on its own device.
    device : str or torch.device, optional
        Where to run; by default the device of the module's first parameter or buffer
        (CPU for a module without any). A module must already be on this device.
    dtype : torch.dtype, optional
        dtype of floating-point inputs; by default the module's first floating-point
        parameter's dtype.
    batch_size : int, optional
        Rows per forward pass (default 4096, the fastest measured for the reference
        MLP on a 2-core CPU).
    reduction : {"auto", "device", "host"}
        Where ``lmn_core`` reduces the outputs of interpolated points to r²: on the
        module's device (``"device"``), on the host with its Numba kernels (``"host"``),
        or on the device unless that is the CPU (``"auto"``, the default: on a CPU the
        host kernels, one fused pass each, are faster).
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        batch_size: int | None = None,
        reduction: str = "auto",
    ) -> None:
        own = _module_device(module)
        wanted = torch.empty(0, device=device).device if device is not None else own
        if own is not None and wanted != own:
            raise ValueError(
                f"{type(module).__name__} is on {own}, not on {wanted}: "
                f"move it first with module.to({str(wanted)!r})"
            )
        self.module = module
        self.device = wanted if wanted is not None else torch.device("cpu")
        self.dtype = dtype if dtype is not None else _floating_dtype(module)
        self.batch_size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def __call__(self, inputs: Any) -> np.ndarray:
        """Run the module on ``inputs`` ``(M, ...)``; return its ``(M, ...)`` output as NumPy."""
        return self.run(_as_tensor(inputs, self.device, self.dtype)).cpu().numpy()

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        """The module's output for a batch tensor on its device, in chunks, in eval mode, without grad."""
        with torch.no_grad(), eval_mode(self.module):
            outputs = [self.module(chunk) for chunk in batch.split(self.batch_size)]
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def pair_reduction(self, task: lmn_core.ReductionTask) -> TorchPairReduction | None:
        """The on-device reduction of ``task``'s pairs, or ``None`` when ``lmn_core`` reduces on the host."""
        if self.reduction == "host" or (self.reduction == "auto" and self.device.type == "cpu"):
            return None
        return TorchPairReduction(self.run, _as_tensor(task.samples, self.device, self.dtype), task)


def _chain_items(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The children of ``module`` as a chain: containers expanded into their elements."""
    items = []
    # _modules, not named_children(): a module registered twice runs twice in a Sequential
    for name, child in module._modules.items():
        if child is None:
            continue
        if isinstance(child, nn.ModuleList | nn.ModuleDict):
            items.extend((f"{name}.{inner}", element) for inner, element in _chain_items(child))
        else:
            items.append((name, child))
    return items


def _is_plain_sequential(module: nn.Module) -> bool:
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


class _ChainRecorder:
    """Hooks that record how a module calls its chain items during one forward pass."""

    def __init__(self, module: nn.Module, items: list[tuple[str, nn.Module]]) -> None:
        self.items = items
        self.active = False
        self.entered: list[tuple[tuple, dict]] = []
        self.exits: list[Any] = []
        self.events: list[tuple[str, int, Any]] = []
        self.handles = [
            module.register_forward_pre_hook(self._enter, with_kwargs=True),
            module.register_forward_hook(self._exit),
        ]
        for index, (_, item) in enumerate(items):
            self.handles.append(item.register_forward_pre_hook(self._call_hook(index), with_kwargs=True))
            self.handles.append(item.register_forward_hook(self._return_hook(index)))

    def _enter(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self.active = True
        self.entered.append((args, kwargs))

    def _exit(self, module: nn.Module, args: tuple, output: Any) -> None:
        self.active = False
        self.exits.append(output)

    def _call_hook(self, index: int) -> Any:
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            if self.active:
                self.events.append(("call", index, (args, kwargs)))

        return hook

    def _return_hook(self, index: int) -> Any:
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            if self.active:
                self.events.append(("return", index, output))

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def problem(self) -> str | None:
        """Why the recorded pass was not a chain of the items, or ``None`` if it was."""
        if len(self.entered) != 1:
            return f"it ran {len(self.entered)} times in one forward pass"
        args, kwargs = self.entered[0]
        if kwargs or len(args) != 1:
            return "its forward takes more than one input"
        current, source, expected = args[0], "its input", 0
        for kind, index, payload in self.events:
            name = self.items[index][0]
            if kind == "return":
                current, source, expected = payload, f"the output of child {name!r}", index + 1
                continue
            if index != expected:
                return (
                    f"child {name!r} runs where child {self.items[expected][0]!r} should (registration order)"
                )
            call_args, call_kwargs = payload
            if call_kwargs or len(call_args) != 1 or call_args[0] is not current:
                return f"child {name!r} does not take exactly {source}"
        if expected != len(self.items):
            return f"child {self.items[expected][0]!r} never runs"
        if self.exits[0] is not current:
            return f"it does not return {source} as it is"
        return None


def _cut(
    model: nn.Module, layer: str
) -> tuple[list[nn.Module], list[nn.Module], list[tuple[str, nn.Module, list]]]:
    """Body and head modules for ``layer``, and the ancestors whose chain must be checked."""
    modules = dict(model.named_modules(remove_duplicate=False))
    if layer == "" or layer not in modules:
        names = [name for name in modules if name]
        raise ValueError(f"no layer {layer!r} in {type(model).__name__}; its layers are {names}")
    body: list[nn.Module] = []
    head_parts: list[list[nn.Module]] = []
    to_check = []
    module, prefix = model, ""
    while True:
        items = _chain_items(module)
        relative = layer[len(prefix) :]
        index = next(
            (k for k, (name, _) in enumerate(items) if relative == name or relative.startswith(name + ".")),
            None,
        )
        if index is None:
            raise ValueError(
                f"layer {layer!r} is a container ({type(modules[layer]).__name__}) with no output of its own"
            )
        if not _is_plain_sequential(module):
            to_check.append((prefix.rstrip(".") or "the model", module, items))
        name, child = items[index]
        body.extend(item for _, item in items[:index])
        head_parts.append([item for _, item in items[index + 1 :]])
        if relative == name:
            body.append(child)
            break
        module, prefix = child, f"{prefix}{name}."
    head = [item for part in reversed(head_parts) for item in part]
    return body, head, to_check


def _is_affine(module: nn.Module) -> bool:
    """An ``nn.Linear`` as it is (not a subclass, no hook of its own that could change it)."""
    return type(module) is nn.Linear and not (module._forward_hooks or module._forward_pre_hooks)


def split(
    model: nn.Module, layer: str, *, example_inputs: Any = None, fold: bool = False
) -> tuple[nn.Sequential, nn.Sequential]:
    """Cut ``model`` after ``layer`` into ``(body, head)`` with ``head(body(x)) == model(x)``.

    See the module docstring for the rule. Body and head share the model's modules
    (no copies), so they follow its training.

    Parameters
    ----------
    model : torch.nn.Module
        The model to cut.
    layer : str
        A name as ``model.named_modules()`` gives it (``"1"`` is the second child of
        an ``nn.Sequential``, ``"0.2"`` a nested one); the body ends with its output.
    example_inputs : array_like or torch.Tensor, optional
        Model inputs; needed when a module on the way to ``layer`` is not a plain
        ``nn.Sequential``, to check that it is a chain (its first rows are used).
    fold : bool
        Move the ``nn.Linear`` layers that start the head into the body (affine prefix
        folding, see the module docstring).

    Returns
    -------
    tuple of torch.nn.Sequential
        ``(body, head)``; ``head`` is empty (the identity) when ``layer`` is last, or
        when only ``nn.Linear`` layers follow it and ``fold`` is true.

    Raises
    ------
    ValueError
        If ``layer`` is not a layer of the model, or is not a cut of it.
    """
    body_modules, head_modules, to_check = _cut(model, layer)
    body, head = nn.Sequential(*body_modules), nn.Sequential(*head_modules)
    if to_check:
        if example_inputs is None:
            where = ", ".join(f"{where} ({type(module).__name__})" for where, module, _ in to_check)
            raise ValueError(
                f"cannot check that layer {layer!r} is a cut: {where} is not an nn.Sequential; "
                "pass example_inputs so that split can run the model once"
            )
        _check_cut(model, layer, body, head, to_check, example_inputs)
    if fold:
        n_affine = next((k for k, module in enumerate(head) if not _is_affine(module)), len(head))
        body, head = nn.Sequential(*body, *head[:n_affine]), head[n_affine:]
    return body, head


def _check_cut(
    model: nn.Module,
    layer: str,
    body: nn.Sequential,
    head: nn.Sequential,
    to_check: list[tuple[str, nn.Module, list]],
    example_inputs: Any,
) -> None:
    device = _module_device(model) or torch.device("cpu")
    examples = _as_tensor(example_inputs[:N_EXAMPLE_ROWS], device, _floating_dtype(model))
    recorders = [(where, module, _ChainRecorder(module, items)) for where, module, items in to_check]
    try:
        with torch.no_grad(), eval_mode(model):
            expected = model(examples)
    finally:
        for _, _, recorder in recorders:
            recorder.remove()
    for where, module, recorder in recorders:
        problem = recorder.problem()
        if problem is not None:
            raise ValueError(
                f"layer {layer!r} is not a cut of {type(model).__name__}: in {where} "
                f"({type(module).__name__}), {problem}, so its forward is not the chain of its children"
            )
    with torch.no_grad(), eval_mode(model):
        cut = head(body(examples))
    if not (isinstance(expected, torch.Tensor) and torch.equal(cut, expected)):
        raise ValueError(
            f"layer {layer!r} is not a cut of {type(model).__name__}: head(body(x)) differs from model(x) "
            "(in-place or other work in forward outside the children)"
        )


def layer_lmn(
    model: nn.Module,
    inputs: Any,
    layer: str,
    *,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    fold: bool = True,
    reduction: str = "auto",
    **lmn_kwargs: Any,
) -> lmn_core.LMNResult:
    """LMN "between ``layer`` and the output" of ``model`` on ``inputs``.

    The samples are ``X = body(inputs)``, the function is the head: see :func:`split`.
    By default the ``nn.Linear`` layers that start the head are folded into the body
    (the same ``L`` up to rounding, in less time; see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The model, on the device it runs on.
    inputs : array_like or torch.Tensor
        Model inputs ``(N, ...)``.
    layer : str
        Layer name as ``model.named_modules()`` gives it.
    device, batch_size
        Passed to :class:`TorchFunction` for the body and the head.
    fold : bool
        Fold the head's leading ``nn.Linear`` layers into the samples.
    reduction : {"auto", "device", "host"}
        Where to reduce to r² (see :class:`TorchFunction`).
    **lmn_kwargs
        Passed to :func:`lmn_core.lmn` (``n_points``, ``memory_budget``, ``progress``, ...).

    Returns
    -------
    lmn_core.LMNResult
    """
    body, head = split(model, layer, example_inputs=inputs, fold=fold)
    # a folded head may have no parameter left to tell the model's device and dtype
    device = device if device is not None else _module_device(model)
    model_dtype = _floating_dtype(model)
    body_dtype, head_dtype = _floating_dtype(body, model_dtype), _floating_dtype(head, model_dtype)
    samples = TorchFunction(body, device=device, dtype=body_dtype, batch_size=batch_size)(inputs)
    head_function = TorchFunction(
        head, device=device, dtype=head_dtype, batch_size=batch_size, reduction=reduction
    )
    return lmn_core.lmn(head_function, samples, **lmn_kwargs)
