"""The LMN during PyTorch Lightning training: :class:`LMNCallback` for ``lightning.Trainer``.

A thin layer over the framework-free schedule (:mod:`adapters.schedule`) and the PyTorch
adapter's :class:`adapters.torch.LayerLMN` (each layer cut once when training starts, then
measured on the schedule on the module's own device). The values go to every logger the
trainer has (``trainer.loggers``: CSV, TensorBoard, whatever the user configured) as
``lmn/<layer>`` and ``lmn_n_samples``, with ``measures=[...]`` each progress measure as
``lmn/<column>`` (:mod:`adapters.measures`), at the trainer's ``global_step`` (the number of
optimizer steps done). After each measurement the module's train/eval modes and its
parameters' ``requires_grad`` flags and ``.grad`` tensors are as they were.

Distributed training (DDP and the other strategies that keep a whole replica of the
module on every process): only global rank 0 cuts and measures, on its own replica, which
holds the same weights as the others after every optimizer step; the other ranks do
nothing, and wait for rank 0 at the next collective operation and at the end of training
(so that no process leaves the group while rank 0 still measures). Lightning's loggers
write on rank 0 only, so the values appear once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

try:
    import lightning.pytorch as pl
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("adapters.lightning needs Lightning: pip install 'lmn[lightning]'") from error

import lmn_core
from adapters.measures import MonitorMeasures, selected_measures
from adapters.schedule import (
    Schedule,
    layer_names,
    logger_key,
    measure_layers,
    measure_logger_key,
    measured_values,
)
from adapters.torch.layer import LayerLMN, LayerOptions, LayerProbe
from adapters.torch.monitor import monitor_measures, training_state_kept


class LMNCallback(pl.Callback):
    """Measure the LMN at ``layers`` of the LightningModule on a schedule, and log it.

    Parameters
    ----------
    inputs : array_like or torch.Tensor
        The samples' inputs ``(N, ...)`` (``N`` about 100 to 1000: the cost grows as ``N**2``).
    layers : str or sequence of str
        Layer names as ``module.named_modules()`` gives them.
    every_n_steps : int or collection of int, optional
        Measure at ``global_step`` ``0, k, 2k, ...`` (an int ``k``) or at exactly the steps
        given; step 0 is before the first update.
    every_n_epochs : int, optional
        Also measure at the end of every ``k``-th epoch (epochs counted from 1).
    module : str, optional
        The submodule to measure, by its name in the LightningModule (``"model"`` when
        the LightningModule holds its network as ``self.model``); by default the
        LightningModule itself. Layer names are relative to it.
    measures : sequence of str, optional
        Progress measures logged beside the LMN as ``lmn/<column>`` (docs/design.md, section
        6.1; see :class:`adapters.torch.LMNMonitor`). ``initial_weights`` are the module's
        parameters when training starts. ``None`` (the default): none.
    **keywords
        Any :class:`adapters.torch.LayerOptions` field (``output``, ``fold``,
        ``reduction``, ...), and any keyword of :func:`lmn_core.lmn` (``n_points``,
        ``memory_budget``, ...).

    Attributes
    ----------
    last_results : dict of str to lmn_core.LMNResult
        The results of the last measurement, by layer.
    measurements : list of dict
        Every measurement on this process: ``step``, ``lmn/<layer>``, ``lmn_n_samples``,
        ``lmn/<column>`` per measure.
    """

    def __init__(
        self,
        inputs: Any,
        layers: str | Collection[str],
        *,
        every_n_steps: int | Collection[int] | None = 100,
        every_n_epochs: int | None = None,
        module: str | None = None,
        measures: Sequence[str] | None = None,
        **keywords: Any,
    ) -> None:
        super().__init__()
        self.inputs = inputs
        self.layers = layer_names(layers, "LMNCallback")
        if every_n_steps is None and every_n_epochs is None:
            raise ValueError("LMNCallback needs a schedule: every_n_steps, every_n_epochs or both")
        self.steps = None if every_n_steps is None else Schedule(every_n_steps, name="every_n_steps")
        self.epochs = None if every_n_epochs is None else Schedule(every_n_epochs, name="every_n_epochs")
        if self.epochs is not None and not isinstance(self.epochs.every, int):
            raise ValueError(f"every_n_epochs must be an int, got {every_n_epochs!r}")
        self.module_name = module
        self.options, self.lmn_kwargs = LayerOptions.taken_from(keywords)
        self.last_results: dict[str, lmn_core.LMNResult] = {}
        self.measurements: list[dict[str, Any]] = []
        self._measures: dict[str, LayerLMN] = {}
        self._last_step: int | None = None
        self.measure_names = measures
        selected_measures(measures)  # an unknown name is refused here, before training
        self.progress = MonitorMeasures([], {}, dict, None)

    def _network(self, pl_module: pl.LightningModule) -> Any:
        return pl_module if self.module_name is None else pl_module.get_submodule(self.module_name)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Cut the module at every layer (rank 0 only), then measure the first step if it is due."""
        if not trainer.is_global_zero:
            return
        network = self._network(pl_module)
        with training_state_kept(network):
            self._measures = {
                layer: LayerLMN(network, layer, self.options, example_inputs=self.inputs)
                for layer in self.layers
            }
            self.progress = monitor_measures(
                self.measure_names,
                network,
                self.layers,
                lambda layer: LayerProbe(network, layer, self.options, example_inputs=self.inputs),
                self.inputs,
            )
        if self.steps is not None and self.steps.take(trainer.global_step):
            self._measure(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Measure when ``global_step`` is due (once per step, with gradient accumulation too)."""
        if trainer.is_global_zero and self.steps is not None and self.steps.take(trainer.global_step):
            self._measure(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Measure at the end of every ``every_n_epochs``-th epoch."""
        due = self.epochs is not None and self.epochs.is_due(trainer.current_epoch + 1)
        if trainer.is_global_zero and due:
            self._measure(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Every rank waits for rank 0 to finish its last measurement before training ends."""
        trainer.strategy.barrier("lmn_callback_train_end")

    def _measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = trainer.global_step
        if step == self._last_step:  # a step due on both schedules is logged once
            return
        with training_state_kept(self._network(pl_module)):
            self.last_results = measure_layers(self._measures, self.inputs, self.lmn_kwargs)
            measures = self.progress.values(self.inputs, step)
        values = measured_values(self.last_results, logger_key)
        values.update({measure_logger_key(column): value for column, value in measures.items()})
        for logger in trainer.loggers:
            logger.log_metrics(values, step=step)
        self.measurements.append({"step": step, **values})
        self._last_step = step
