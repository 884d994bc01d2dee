"""Measure the LMN at named layers on a schedule inside a hand-written PyTorch training loop.

:class:`LMNMonitor` cuts the model once per layer (:class:`adapters.torch_layer.LayerLMN`);
``monitor.step(step)`` measures on the scheduled steps, appends one CSV row per
measurement, and logs to a TensorBoard ``SummaryWriter`` when given one (any object with
``add_scalar``: TensorBoard is never imported here). The model's train/eval modes, its
parameters' ``requires_grad`` flags and their ``.grad`` tensors are as they were after
every step.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import lmn_core
from adapters.torch_function import OutputChoice
from adapters.torch_layer import LayerLMN

LMN_KEY_PREFIX = "lmn_"
N_SAMPLES_KEY = "lmn_n_samples"


def lmn_key(layer: str) -> str:
    """The CSV column and TensorBoard tag under which :class:`LMNMonitor` writes ``layer``'s LMN."""
    return f"{LMN_KEY_PREFIX}{layer}"


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
    """The LMN at ``layers`` of ``model`` every ``every`` steps of a custom training loop.

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
    every : int or collection of int
        Schedule: an int ``k`` measures at steps ``0, k, 2k, ...``; a collection at
        exactly those steps.
    csv_path : str or Path, optional
        A CSV file to append one row per measurement to: ``step``, ``lmn_<layer>`` per
        layer, ``lmn_n_samples``. An existing file must have the same columns.
    writer : torch.utils.tensorboard.SummaryWriter, optional
        Receives ``add_scalar("lmn_<layer>", value, step)`` per layer.
    output, input, fixed_inputs, device, batch_size, fold, reduction
        Passed to :class:`adapters.torch_layer.LayerLMN`.
    **lmn_kwargs
        Passed to :func:`lmn_core.lmn` (``n_points``, ``memory_budget``, ...).

    Attributes
    ----------
    last_results : dict of str to lmn_core.LMNResult
        The results of the last measurement, by layer (empty before the first).
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: Any,
        layers: str | Collection[str],
        *,
        every: int | Collection[int] = 100,
        csv_path: str | Path | None = None,
        writer: Any = None,
        output: OutputChoice = None,
        input: str | None = None,
        fixed_inputs: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        fold: bool = True,
        reduction: str = "auto",
        **lmn_kwargs: Any,
    ) -> None:
        self.layers = (layers,) if isinstance(layers, str) else tuple(layers)
        if not self.layers:
            raise ValueError("LMNMonitor needs at least one layer")
        if isinstance(every, int):
            if every < 1:
                raise ValueError(f"every must be at least 1, got {every}")
        elif not all(isinstance(step, int) and step >= 0 for step in every):
            raise ValueError(f"every must be an int or a collection of steps >= 0, got {every!r}")
        self.every = every if isinstance(every, int) else frozenset(every)
        self.model, self.inputs = model, inputs
        self.csv_path = Path(csv_path) if csv_path is not None else None
        self.writer = writer
        self.lmn_kwargs = lmn_kwargs
        self.last_results: dict[str, lmn_core.LMNResult] = {}
        options = {"output": output, "input": input, "fixed_inputs": fixed_inputs, "device": device}
        options |= {"batch_size": batch_size, "fold": fold, "reduction": reduction}
        with training_state_kept(model):
            self.measures = {
                layer: LayerLMN(model, layer, example_inputs=inputs, **options) for layer in self.layers
            }
        if self.csv_path is not None:
            self._check_csv_columns()

    @property
    def columns(self) -> list[str]:
        """The CSV columns: ``step``, ``lmn_<layer>`` per layer, ``lmn_n_samples``."""
        return ["step", *(lmn_key(layer) for layer in self.layers), N_SAMPLES_KEY]

    def is_due(self, step: int) -> bool:
        """Whether :meth:`step` measures at ``step``."""
        return step % self.every == 0 if isinstance(self.every, int) else step in self.every

    def step(self, step: int) -> dict[str, lmn_core.LMNResult]:
        """Measure every layer if ``step`` is scheduled; an empty dict otherwise."""
        if not self.is_due(step):
            return {}
        with training_state_kept(self.model):
            results = {
                layer: measure(self.inputs, **self.lmn_kwargs) for layer, measure in self.measures.items()
            }
        self.last_results = results
        self._log(step, results)
        return results

    def _log(self, step: int, results: dict[str, lmn_core.LMNResult]) -> None:
        values = {lmn_key(layer): float(result.lmn) for layer, result in results.items()}
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)
        if self.csv_path is None:
            return
        n_samples = next(iter(results.values())).n_samples
        row = [step, *(repr(values[lmn_key(layer)]) for layer in self.layers), n_samples]
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        with self.csv_path.open("a", newline="") as file:
            writer = csv.writer(file)
            if new:
                writer.writerow(self.columns)
            writer.writerow(row)

    def _check_csv_columns(self) -> None:
        if not self.csv_path.exists() or self.csv_path.stat().st_size == 0:
            return
        with self.csv_path.open(newline="") as file:
            header = next(csv.reader(file), [])
        if header != self.columns:
            raise ValueError(f"{self.csv_path} has the columns {header}, not {self.columns}")


def read_monitor_csv(path: str | Path) -> dict[str, np.ndarray]:
    """The columns of an :class:`LMNMonitor` CSV as arrays (``step`` and ``lmn_n_samples`` as int)."""
    with Path(path).open(newline="") as file:
        rows = list(csv.reader(file))
    header, body = rows[0], rows[1:]
    columns = {key: [row[k] for row in body] for k, key in enumerate(header)}
    as_int = {"step", N_SAMPLES_KEY}
    return {
        key: np.array([int(value) for value in values])
        if key in as_int
        else np.array([float(value) if value else math.nan for value in values])
        for key, values in columns.items()
    }
