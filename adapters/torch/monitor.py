"""Measure the LMN at named layers on a schedule inside a hand-written PyTorch training loop.

:class:`LMNMonitor` cuts the model once per layer (:class:`adapters.torch.layer.LayerLMN`);
``monitor.step(step)`` measures on the scheduled steps, appends one CSV row per
measurement, and logs to a TensorBoard ``SummaryWriter`` when given one (any object with
``add_scalar``: TensorBoard is never imported here). The model's train/eval modes, its
parameters' ``requires_grad`` flags and their ``.grad`` tensors are as they were after
every step. With ``measures=[...]`` the progress measures (:mod:`adapters.measures`) are
computed on the same steps, from a :class:`adapters.torch.LayerProbe` per layer, the
parameters (:func:`parameters_as_numpy`) and the inputs, and logged beside the LMN.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import lmn_core
from adapters.measures import MonitorMeasures, selected_measures
from adapters.schedule import (
    NOT_GIVEN,
    MonitorCSV,
    Schedule,
    layer_names,
    lmn_key,
    measure_layers,
    measured_values,
    read_monitor_csv,
    renamed,
    renamed_attribute,
)
from adapters.torch.function import to_numpy
from adapters.torch.layer import LayerLMN, LayerOptions, LayerProbe

__all__ = [
    "LMNMonitor",
    "lmn_key",
    "monitor_measures",
    "parameters_as_numpy",
    "read_monitor_csv",
    "training_state_kept",
]


def parameters_as_numpy(model: nn.Module) -> dict[str, np.ndarray]:
    """``{name: value}`` of ``model.named_parameters()`` as NumPy on the host: a measure's ``weights``."""
    return {name: to_numpy(parameter) for name, parameter in model.named_parameters()}


def monitor_measures(
    names: Sequence[str] | None,
    model: nn.Module,
    layers: Sequence[str],
    probe: Callable[[str], LayerProbe],
    inputs: Any,
) -> MonitorMeasures:
    """The progress measures ``names`` of a PyTorch monitor (:class:`adapters.measures.MonitorMeasures`).

    ``probe(layer)`` cuts a :class:`LayerProbe` at each of ``layers``, only when a measure is
    selected; the parameters are read from ``model`` (now, and here for ``initial_weights``).
    """
    selected = selected_measures(names)
    probes = {layer: probe(layer) for layer in layers} if selected else {}
    samples = to_numpy(inputs) if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    return MonitorMeasures(selected, probes, lambda: parameters_as_numpy(model), samples)


@contextmanager
def training_state_kept(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's mode and every parameter's ``requires_grad`` and ``.grad`` after."""
    modes = [(module, module.training) for module in model.modules()]
    parameters = [(parameter, parameter.requires_grad, parameter.grad) for parameter in model.parameters()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for parameter, requires_grad, grad in parameters:
            parameter.requires_grad_(requires_grad)
            parameter.grad = grad


class LMNMonitor:
    """The LMN at ``layers`` of ``model`` every ``every_n_steps`` steps of a custom training loop.

    Call :meth:`step` once per training step; it measures on scheduled steps only.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained.
    inputs : array_like or torch.Tensor
        Samples' inputs ``(N, ...)`` to measure on (``N`` about 100 to 1000: the cost
        grows as ``N**2``).
    layers : str or sequence of str
        Layer names as ``model.named_modules()`` gives them.
    every_n_steps : int or collection of int
        Schedule: an int ``k`` measures at steps ``0, k, 2k, ...``; a collection at
        exactly those steps.
    csv_path : str or Path, optional
        A CSV file to append one row per measurement to: ``step``, ``lmn_<layer>`` per
        layer, ``lmn_n_samples``. An existing file must have the same columns.
    writer : torch.utils.tensorboard.SummaryWriter, optional
        Receives ``add_scalar("lmn_<layer>", value, step)`` per layer, and one per measure column.
    measures : sequence of str, optional
        Progress measures to compute on the same steps (docs/design.md, section 6.1): built-in
        names (``"effective_rank"``, ``"local_complexity"``, ``"weight_movement"``, ``"l2"``,
        ...), ``module:function``, ``path/to/file.py:function`` or entry points. A measure of
        the layer's representations is one value per layer, ``<name>_<layer>``; the others
        one value, ``<name>``; both go to the CSV (after ``lmn_n_samples``), the writer and
        :attr:`last_measures`. ``initial_weights`` are the parameters when the monitor is
        made. ``None`` (the default): none.
    **keywords
        Any :class:`adapters.torch.LayerOptions` field (``output``, ``fold``,
        ``reduction``, ...), and any keyword of :func:`lmn_core.lmn` (``n_points``,
        ``memory_budget``, ...).
    every
        The old name of ``every_n_steps``: works for one release, with a ``DeprecationWarning``.

    Attributes
    ----------
    last_results : dict of str to lmn_core.LMNResult
        The results of the last measurement, by layer (empty before the first).
    last_measures : dict of str to float
        The progress measures' values of the last measurement, by column.
    """

    #: What measures each layer (a subclass may measure at other places, as hook points).
    layer_type: type[LayerLMN] = LayerLMN
    #: What gives the progress measures each layer's representations and head.
    probe_type: type[LayerProbe] = LayerProbe

    def __init__(
        self,
        model: nn.Module,
        inputs: Any,
        layers: str | Collection[str],
        *,
        every_n_steps: int | Collection[int] = 100,
        csv_path: str | Path | None = None,
        writer: Any = None,
        measures: Sequence[str] | None = None,
        every: Any = NOT_GIVEN,
        **keywords: Any,
    ) -> None:
        self.layers = layer_names(layers, "LMNMonitor")
        every_n_steps = renamed(every_n_steps, 100, every, ("every", "every_n_steps"), "LMNMonitor")
        self.schedule = Schedule(every_n_steps, name="every_n_steps")
        self.model, self.inputs = model, inputs
        self.writer = writer
        options, self.lmn_kwargs = LayerOptions.taken_from(keywords)
        self.last_results: dict[str, lmn_core.LMNResult] = {}
        self.last_measures: dict[str, float] = {}
        with training_state_kept(model):
            self.measures = {
                layer: self.layer_type(model, layer, options, example_inputs=inputs) for layer in self.layers
            }
            self.progress = monitor_measures(
                measures,
                model,
                self.layers,
                lambda layer: self.probe_type(model, layer, options, example_inputs=inputs),
                inputs,
            )
        self.csv = None if csv_path is None else MonitorCSV(csv_path, self.layers, self.progress.columns)

    @property
    def every_n_steps(self) -> int | frozenset[int]:
        """The schedule: ``k`` (steps ``0, k, 2k, ...``) or the set of steps."""
        return self.schedule.every

    @property
    def every(self) -> int | frozenset[int]:
        """The old name of :attr:`every_n_steps` (for one release, with a ``DeprecationWarning``)."""
        return renamed_attribute(self, "every", "every_n_steps")

    @property
    def csv_path(self) -> Path | None:
        """The CSV file the rows go to, if any."""
        return None if self.csv is None else self.csv.path

    @property
    def columns(self) -> list[str]:
        """The CSV columns: ``step``, ``lmn_<layer>`` per layer, ``lmn_n_samples``, the measures'."""
        return MonitorCSV.columns_for(self.layers, self.progress.columns)

    def is_due(self, step: int) -> bool:
        """Whether :meth:`step` measures at ``step``."""
        return self.schedule.is_due(step)

    def step(self, step: int) -> dict[str, lmn_core.LMNResult]:
        """Measure every layer if ``step`` is scheduled; an empty dict otherwise."""
        if not self.is_due(step):
            return {}
        with training_state_kept(self.model):
            results = measure_layers(self.measures, self.inputs, self.lmn_kwargs)
            self.last_measures = self.progress.values(self.inputs, step)
        self.last_results = results
        values = {**measured_values(results), **self.last_measures}
        if self.writer is not None:
            for key in [*(lmn_key(layer) for layer in self.layers), *self.last_measures]:
                self.writer.add_scalar(key, values[key], step)
        if self.csv is not None:
            self.csv.append(step, values)
        return results
