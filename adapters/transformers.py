"""The LMN of Hugging Face ``transformers`` models: a layer measure, its cut points, a ``TrainerCallback``.

Hugging Face models take integer token ids, which cannot be interpolated: the samples
are the activations at a layer after the embedding (a block of the layer stack, such as
``"bert.encoder.layer.0"``), and the function is the rest of the model followed by the
choice of ``output`` (``"logits"`` by default). ``torch.fx`` cannot trace most of these
models, so the model is cut with forward hooks (:mod:`adapters.torch.hooks`): any model
whose output depends on its token ids only through the layer's output, checked on
every example row. The measurement itself is :class:`adapters.torch.LayerLMN`'s with
``cut_by=("hooks",)``.

:class:`LMNCallback` is a thin layer over the framework-free schedule
(:mod:`adapters.schedule`) and that measure: it measures at ``global_step`` 0 and on
schedule (``on_step_end``), on the main process only, and adds ``lmn/<layer>`` and
``lmn_n_samples`` (with ``measures=[...]``, ``lmn/<column>`` per progress measure:
:mod:`adapters.measures`) to the trainer's log history; given the trainer (``trainer=``), it logs
through ``Trainer.log``, which also hands the values to every reporter (TensorBoard,
W&B, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import Any

try:
    import transformers
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("adapters.transformers needs transformers: pip install 'lmn[transformers]'") from error

import torch
from torch import nn

import lmn_core
from adapters.measures import MonitorMeasures, selected_measures
from adapters.options import Options
from adapters.schedule import (
    Schedule,
    layer_names,
    logger_key,
    measure_layers,
    measure_logger_key,
    measured_values,
)
from adapters.torch.function import (
    OutputChoice,
    as_tensor,
    eval_mode,
    floating_dtype,
    module_device,
    select_output,
)
from adapters.torch.hooks import hook_split
from adapters.torch.layer import LayerLMN, LayerProbe
from adapters.torch.monitor import monitor_measures, training_state_kept
from lmn_core.measure import DEFAULT_N_POINTS

DEFAULT_OUTPUT = "logits"
DEFAULT_INPUT = "input_ids"


@dataclasses.dataclass(frozen=True)
class CutOptions(Options):
    """How a Hugging Face model is cut at a layer and measured: the options of every entry point here.

    Attributes
    ----------
    output : int, str or callable
        What to measure from what the model returns (``"logits"`` of a ``ModelOutput``).
    input : str
        The ``forward`` argument the samples go to.
    fixed_inputs : dict, optional
        Other ``forward`` arguments, one value for every call.
    batch_size, reduction
        Passed to :class:`adapters.torch.LayerLMN`.
    """

    output: OutputChoice = DEFAULT_OUTPUT
    input: str = DEFAULT_INPUT
    fixed_inputs: dict[str, Any] | None = None
    batch_size: int | None = None
    reduction: str = "auto"


def layer_measure(
    model: nn.Module,
    layer: str,
    example_inputs: Any,
    options: CutOptions | None = None,
    **option_keywords: Any,
) -> LayerLMN:
    """A :class:`adapters.torch.LayerLMN` of ``model`` at ``layer``, cut with forward hooks.

    Parameters
    ----------
    model : torch.nn.Module
        A Hugging Face model (or any module), on its device.
    layer : str
        A name from ``model.named_modules()`` whose output is a floating-point tensor
        and a cut (see :mod:`adapters.torch.hooks`); :func:`cut_points` lists them.
    example_inputs : array_like or torch.Tensor
        Token ids ``(N, L)`` (or what ``input`` takes) the cut is checked on.
    options : CutOptions, optional
        How to cut and measure (the defaults of :class:`CutOptions` otherwise).
    **option_keywords
        Any :class:`CutOptions` field (``output=``, ``input=``, ...), over ``options``.
    """
    options = CutOptions.with_keywords(options, option_keywords, "layer_measure")
    with training_state_kept(model):
        return LayerLMN(model, layer, example_inputs=example_inputs, **hook_cut(options))


def hook_cut(options: CutOptions) -> dict[str, Any]:
    """``options`` as the :class:`adapters.torch.LayerOptions` of a cut by hooks, unfolded."""
    return {**{name: getattr(options, name) for name in options.names()}, "fold": False, "cut_by": ("hooks",)}


def layer_probe(model: nn.Module, layer: str, example_inputs: Any, options: CutOptions) -> LayerProbe:
    """A :class:`adapters.torch.LayerProbe` of ``model`` at ``layer``, cut with forward hooks."""
    with training_state_kept(model):
        return LayerProbe(model, layer, example_inputs=example_inputs, **hook_cut(options))


def layer_lmn(
    model: nn.Module,
    inputs: Any,
    layer: str,
    *,
    output: OutputChoice = DEFAULT_OUTPUT,
    input: str = DEFAULT_INPUT,
    fixed_inputs: dict[str, Any] | None = None,
    batch_size: int | None = None,
    reduction: str = "auto",
    n_points: int = DEFAULT_N_POINTS,
    memory_budget: int | None = None,
    block_pairs: int | None = None,
    const_rtol: float | None = None,
    const_atol: float = 0.0,
    progress: bool = False,
    overlap: bool | None = None,
    threads: int | None = None,
) -> lmn_core.LMNResult:
    """LMN "between ``layer`` and the output" of a Hugging Face model on token ids ``inputs``.

    ``output``, ``input``, ``fixed_inputs``, ``batch_size`` and ``reduction`` are the
    :class:`CutOptions` of :func:`layer_measure`; ``n_points``, ``memory_budget``,
    ``block_pairs``, ``const_rtol``, ``const_atol``, ``progress``, ``overlap`` and ``threads``
    go to :func:`lmn_core.lmn`, with its defaults.
    """
    options, lmn_kwargs = CutOptions.split_call(locals())
    return layer_measure(model, layer, inputs, options)(inputs, **lmn_kwargs)


def cut_points(
    model: nn.Module,
    example_inputs: Any,
    *,
    input: str = DEFAULT_INPUT,
    fixed_inputs: dict[str, Any] | None = None,
    output: OutputChoice = DEFAULT_OUTPUT,
) -> list[str]:
    """The layers of ``model`` that :func:`layer_measure` can cut at, in the order their outputs appear.

    A layer is listed when it runs once per forward, outputs a floating-point tensor,
    and the model's ``output`` on ``example_inputs`` depends on them only through it.
    """
    order: list[str] = []
    handles = [
        module.register_forward_hook(lambda _module, _args, _output, name=name: order.append(name))
        for name, module in model.named_modules()
        if name
    ]
    rows = as_tensor(example_inputs, module_device(model), floating_dtype(model))
    try:
        with torch.no_grad(), eval_mode(model):
            outputs = model(**{input: rows}, **(fixed_inputs or {}))
    finally:
        for handle in handles:
            handle.remove()
    select_output(outputs, output)  # a wrong output= is refused here, not taken for "no cut point"
    found = []
    for name in dict.fromkeys(order):
        try:
            with training_state_kept(model):
                hook_split(model, name, rows, input=input, fixed_inputs=fixed_inputs, output=output)
        except ValueError:
            continue
        found.append(name)
    return found


class LMNCallback(transformers.TrainerCallback):
    """Measure the LMN at ``layers`` during ``transformers.Trainer`` training, into its log history.

    Parameters
    ----------
    inputs : array_like or torch.Tensor
        Token ids ``(N, L)`` to measure on (``N`` about 100 to 1000: the cost grows as ``N**2``).
    layers : str or sequence of str
        Layers after the embedding (see :func:`cut_points`).
    every_n_steps : int or collection of int
        Measure at ``global_step`` ``0, k, 2k, ...`` or at exactly the steps given.
    trainer : transformers.Trainer, optional
        Log through ``trainer.log`` (log history and every reporter). Without it the
        values are appended to ``state.log_history`` only.
    measures : sequence of str, optional
        Progress measures logged beside the LMN as ``lmn/<column>`` (docs/design.md, section
        6.1; see :class:`adapters.torch.LMNMonitor`). ``initial_weights`` are the model's
        parameters when training begins. ``None`` (the default): none.
    **keywords
        Any :class:`CutOptions` field (``output``, ``input``, ``fixed_inputs``,
        ``batch_size``, ``reduction``), and any keyword of :func:`lmn_core.lmn`.

    Attributes
    ----------
    last_results : dict of str to lmn_core.LMNResult
        The results of the last measurement, by layer.
    measurements : list of dict
        Every measurement: ``step``, ``lmn/<layer>``, ``lmn_n_samples``, ``lmn/<column>`` per measure.
    """

    def __init__(
        self,
        inputs: Any,
        layers: str | Collection[str],
        *,
        every_n_steps: int | Collection[int] = 100,
        trainer: Any = None,
        measures: Sequence[str] | None = None,
        **keywords: Any,
    ) -> None:
        self.inputs = inputs
        self.layers = layer_names(layers, "LMNCallback")
        self.schedule = Schedule(every_n_steps, name="every_n_steps")
        self.options, self.lmn_kwargs = CutOptions.taken_from(keywords)
        self.trainer = trainer
        self.last_results: dict[str, lmn_core.LMNResult] = {}
        self.measurements: list[dict[str, Any]] = []
        self._measures: dict[str, LayerLMN] = {}
        self.measure_names = measures
        selected_measures(measures)  # an unknown name is refused here, before training
        self.progress = MonitorMeasures([], {}, dict, None)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: nn.Module, **kwargs: Any) -> None:
        """Cut the model at every layer (main process only); measure the first step if due."""
        if not state.is_world_process_zero:
            return
        self._measures = {
            layer: layer_measure(model, layer, self.inputs, self.options) for layer in self.layers
        }
        self.progress = monitor_measures(
            self.measure_names,
            model,
            self.layers,
            lambda layer: layer_probe(model, layer, self.inputs, self.options),
            self.inputs,
        )
        if self.schedule.take(state.global_step):
            self._measure(state, model)

    def on_step_end(self, args: Any, state: Any, control: Any, model: nn.Module, **kwargs: Any) -> None:
        """Measure when ``global_step`` (optimizer steps done) is due."""
        if state.is_world_process_zero and self.schedule.take(state.global_step):
            self._measure(state, model)

    def _measure(self, state: Any, model: nn.Module) -> None:
        with training_state_kept(model):
            self.last_results = measure_layers(self._measures, self.inputs, self.lmn_kwargs)
            measures = self.progress.values(self.inputs, state.global_step)
        values = measured_values(self.last_results, logger_key)
        values.update({measure_logger_key(column): value for column, value in measures.items()})
        self.measurements.append({"step": state.global_step, **values})
        if self.trainer is not None:
            self.trainer.log(dict(values))
        else:
            state.log_history.append({**values, "epoch": state.epoch, "step": state.global_step})
