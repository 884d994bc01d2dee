"""Cut a PyTorch model at a layer with forward hooks, for models that ``torch.fx`` cannot trace.

Most Hugging Face models cannot be traced by ``torch.fx.symbolic_trace`` (their
``forward`` takes ``**kwargs``: ``ValueError: code: co_varnames is too small``), and
``torch.export`` fails on those that return a cache (GPT-2). Forward hooks need no
graph: they see a module's output as the model runs (``register_forward_hook``, public
API), whatever the model's Python does around it.

- The **body** runs the model on the samples' inputs and stops at ``layer``'s output
  (the hook raises once it has the value, so nothing after the layer runs).
- The **head** runs the model on *placeholder* inputs (one row of the example inputs,
  repeated) with ``layer``'s output replaced by the value given, and returns what the
  model returns. What the model computes before ``layer`` on the placeholder is thrown
  away, so the head costs the whole model's forward, not only the part after the layer.

That is ``head(body(x)) == model(x)`` (in the output that is measured) exactly when the
model's output depends on its samples' input only through ``layer``'s output, and
``layer`` runs once per forward:
every path from the input to the output passes through the layer, as in a stack of
transformer blocks. Attention masks, position ids and the like, which depend on the
input's shape but not its values, may go around it. Both conditions are checked on the
example inputs, every row: a layer that runs more or less than once, or whose model
output differs from ``head(body(x))`` on some row (the model reads the input beside the
layer, as ``GPT2ForSequenceClassification`` does to find each row's last token when rows
hold padding), is refused. A layer that outputs integers (token ids, before an
embedding) is refused: integers cannot be interpolated.

The hooks are registered for the calls in flight and removed after them, so the model
carries none between measurements. The value the head's hook hands over is thread-local,
and its hook is added and removed only while no head call runs (a hook dict changed
during a forward pass would break it), so ``lmn_core``'s lanes may call the head from
several threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from adapters.refusals import NotACutError
from adapters.torch.function import (
    OutputChoice,
    as_tensor,
    eval_mode,
    floating_dtype,
    module_device,
    select_output,
)


class _ReachedLayerError(Exception):
    """Raised by the body's hook once it has ``layer``'s output: nothing after it needs to run."""


def _call(model: nn.Module, sample: str, rows: torch.Tensor, fixed: dict[str, Any]) -> Any:
    return model(**{sample: rows}, **fixed)


class HookBody(nn.Module):
    """``layer``'s output for the samples' inputs, the model stopped right after it.

    Parameters
    ----------
    model : torch.nn.Module
        The model (shared, not copied).
    layer : str
        A name from ``model.named_modules()``.
    sample : str
        The ``forward`` argument the samples go to (``"input_ids"``).
    fixed : dict
        The other ``forward`` arguments, the same for every call.
    """

    def __init__(self, model: nn.Module, layer: str, sample: str, fixed: dict[str, Any]) -> None:
        super().__init__()
        self.model, self.layer, self.sample, self.fixed = model, layer, sample, fixed
        self._local = threading.local()

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if getattr(self._local, "capturing", False):
            self._local.output = output
            raise _ReachedLayerError

    def forward(self, inputs: torch.Tensor) -> Any:
        """The layer's output on ``inputs``."""
        handle = self.model.get_submodule(self.layer).register_forward_hook(self._hook)
        self._local.capturing, self._local.output = True, None
        try:
            _call(self.model, self.sample, inputs, self.fixed)
        except _ReachedLayerError:
            return self._local.output
        finally:
            self._local.capturing = False
            handle.remove()
        raise ValueError(f"layer {self.layer!r} is never called in {type(self.model).__name__}'s forward")


class HookHead(nn.Module):
    """The model with ``layer``'s output replaced by the given value, run on placeholder inputs.

    Parameters
    ----------
    model, layer, sample, fixed
        As for :class:`HookBody`.
    placeholder : torch.Tensor
        One sample's input (shape ``(1, ...)``), repeated to the batch's rows.
    """

    def __init__(
        self, model: nn.Module, layer: str, sample: str, fixed: dict[str, Any], placeholder: torch.Tensor
    ) -> None:
        super().__init__()
        self.model, self.layer, self.sample, self.fixed = model, layer, sample, fixed
        self.register_buffer("placeholder", placeholder, persistent=False)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._calls_in_flight = 0
        self._handle: Any = None

    def _hook(self, module: nn.Module, args: Any, output: Any) -> Any:
        return getattr(self._local, "value", None)

    def _enter(self) -> None:
        """Register the hook for the first call in flight (none runs while it is added)."""
        with self._lock:
            if self._calls_in_flight == 0:
                self._handle = self.model.get_submodule(self.layer).register_forward_hook(self._hook)
            self._calls_in_flight += 1

    def _leave(self) -> None:
        """Remove the hook after the last call in flight (none runs while it is removed)."""
        with self._lock:
            self._calls_in_flight -= 1
            if self._calls_in_flight == 0:
                self._handle.remove()
                self._handle = None

    def forward(self, cut_value: torch.Tensor) -> Any:
        """What the model returns when ``layer`` outputs ``cut_value`` (rows: ``cut_value``'s)."""
        rows = self.placeholder.expand(cut_value.shape[0], *self.placeholder.shape[1:])
        self._enter()
        self._local.value = cut_value
        try:
            return _call(self.model, self.sample, rows, self.fixed)
        finally:
            self._local.value = None
            self._leave()


@contextmanager
def _counting_calls(module: nn.Module) -> Iterator[list[Any]]:
    """The outputs of every call of ``module`` while the context is open."""
    outputs: list[Any] = []
    handle = module.register_forward_hook(lambda _module, _args, output: outputs.append(output))
    try:
        yield outputs
    finally:
        handle.remove()


def _describe_output(output: Any) -> str:
    if isinstance(output, torch.Tensor):
        return f"a {output.dtype} tensor"
    return f"a {type(output).__name__}"


def check_hook_cut(
    model: nn.Module, layer: str, body: HookBody, head: HookHead, rows: torch.Tensor, output: OutputChoice
) -> None:
    """Refuse ``layer`` unless it runs once, outputs one floating tensor, and ``head(body(x)) == model(x)``
    in the output that ``output`` picks."""
    name = type(model).__name__
    with torch.no_grad(), eval_mode(model):
        with _counting_calls(model.get_submodule(layer)) as outputs:
            expected = _call(model, body.sample, rows, body.fixed)
        if len(outputs) != 1:
            raise NotACutError(
                f"layer {layer!r} is called {len(outputs)} times in {name}'s forward, not once, so its "
                "output is not one value to cut at"
            )
        if not (isinstance(outputs[0], torch.Tensor) and outputs[0].is_floating_point()):
            raise NotACutError(
                f"layer {layer!r} outputs {_describe_output(outputs[0])}, not a floating-point tensor: the "
                "samples are interpolated, so measure at a layer after the embedding (whose output is "
                "floating point), not before it"
            )
        cut = select_output(head(body(rows)), output)
    if not torch.equal(cut, select_output(expected, output)):
        raise NotACutError(
            f"layer {layer!r} is not a cut of {name}: with its output kept and the input {body.sample!r} "
            "changed, the model's output changes, so the model reads that input beside the layer (a "
            "skip connection, or token ids read again, as a classifier that looks for padding does)"
        )


def hook_split(
    model: nn.Module,
    layer: str,
    example_inputs: Any,
    *,
    input: str = "input_ids",
    fixed_inputs: dict[str, Any] | None = None,
    output: OutputChoice = None,
) -> tuple[HookBody, HookHead]:
    """Cut ``model`` after ``layer`` with forward hooks into ``(body, head)``, checked on ``example_inputs``.

    See the module docstring for the rule and its check.

    Parameters
    ----------
    model : torch.nn.Module
        The model, on its device.
    layer : str
        A name from ``model.named_modules()``.
    example_inputs : array_like or torch.Tensor
        The samples' inputs ``(N, ...)`` (token ids ``(N, L)``); the cut is checked on
        every row, and the first row is the head's placeholder.
    input : str
        The ``forward`` argument the samples go to.
    fixed_inputs : dict, optional
        The other ``forward`` arguments, one value for every call.
    output : int, str or callable, optional
        The output that is measured, and so compared (as for
        :class:`adapters.torch.function.OutputSelector`): what else the model returns, a
        cache of the layers before the cut for example, may differ.

    Returns
    -------
    tuple of torch.nn.Module
        ``(body, head)`` with ``head(body(x)) == model(x)`` on the example inputs (in
        the output ``output`` picks).
    """
    names = [name for name, _ in model.named_modules() if name]
    if layer not in names:
        raise ValueError(f"no layer {layer!r} in {type(model).__name__}; its layers are {names}")
    rows = as_tensor(example_inputs, module_device(model), floating_dtype(model))
    if rows.ndim == 0 or rows.shape[0] == 0:
        raise ValueError(f"example_inputs must hold at least one row (N, ...), got shape {tuple(rows.shape)}")
    fixed = dict(fixed_inputs or {})
    body = HookBody(model, layer, input, fixed)
    head = HookHead(model, layer, input, fixed, rows[:1].clone())
    check_hook_cut(model, layer, body, head, rows, output)
    return body, head
