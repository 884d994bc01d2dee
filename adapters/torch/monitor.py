"""Measure the LMN at named layers on a schedule inside a hand-written PyTorch training loop.

:class:`LMNMonitor` cuts the model once per layer (:class:`adapters.torch.layer.LayerLMN`);
``monitor.step(step)`` measures on the scheduled steps, appends one CSV row per
measurement, and logs to a TensorBoard ``SummaryWriter`` when given one (any object with
``add_scalar``: TensorBoard is never imported here). The model's train/eval modes, its
parameters' ``requires_grad`` flags and their ``.grad`` tensors are as they were after
every step.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

import lmn_core
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
from adapters.torch.layer import LayerLMN, LayerOptions

__all__ = ["LMNMonitor", "lmn_key", "read_monitor_csv", "training_state_kept"]


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
        Receives ``add_scalar("lmn_<layer>", value, step)`` per layer.
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
    """

    #: What measures each layer (a subclass may measure at other places, as hook points).
    layer_type: type[LayerLMN] = LayerLMN

    def __init__(
        self,
        model: nn.Module,
        inputs: Any,
        layers: str | Collection[str],
        *,
        every_n_steps: int | Collection[int] = 100,
        csv_path: str | Path | None = None,
        writer: Any = None,
        every: Any = NOT_GIVEN,
        **keywords: Any,
    ) -> None:
        self.layers = layer_names(layers, "LMNMonitor")
        every_n_steps = renamed(every_n_steps, 100, every, ("every", "every_n_steps"), "LMNMonitor")
        self.schedule = Schedule(every_n_steps, name="every_n_steps")
        self.model, self.inputs = model, inputs
        self.csv = MonitorCSV(csv_path, self.layers) if csv_path is not None else None
        self.writer = writer
        options, self.lmn_kwargs = LayerOptions.taken_from(keywords)
        self.last_results: dict[str, lmn_core.LMNResult] = {}
        with training_state_kept(model):
            self.measures = {
                layer: self.layer_type(model, layer, options, example_inputs=inputs) for layer in self.layers
            }

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
        """The CSV columns: ``step``, ``lmn_<layer>`` per layer, ``lmn_n_samples``."""
        return MonitorCSV.columns_for(self.layers)

    def is_due(self, step: int) -> bool:
        """Whether :meth:`step` measures at ``step``."""
        return self.schedule.is_due(step)

    def step(self, step: int) -> dict[str, lmn_core.LMNResult]:
        """Measure every layer if ``step`` is scheduled; an empty dict otherwise."""
        if not self.is_due(step):
            return {}
        with training_state_kept(self.model):
            results = measure_layers(self.measures, self.inputs, self.lmn_kwargs)
        self.last_results = results
        values = measured_values(results)
        if self.writer is not None:
            for layer in self.layers:
                self.writer.add_scalar(lmn_key(layer), values[lmn_key(layer)], step)
        if self.csv is not None:
            self.csv.append(step, values)
        return results
