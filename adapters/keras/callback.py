"""Measure the LMN at named layers during ``model.fit``: :class:`LMNCallback`."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import keras
import numpy as np

import lmn_core
from adapters.keras.layer import LayerLMN, LayerOptions, LayerProbe
from adapters.measures import MonitorMeasures, selected_measures
from adapters.schedule import (
    N_SAMPLES_KEY,
    NOT_GIVEN,
    Schedule,
    layer_names,
    lmn_key,
    measure_layers,
    measured_values,
    renamed,
    renamed_attribute,
)


def weights_as_numpy(model: keras.Model) -> dict[str, np.ndarray]:
    """``{path: value}`` of ``model.trainable_weights`` as NumPy: a progress measure's ``weights``."""
    return {weight.path: keras.ops.convert_to_numpy(weight) for weight in model.trainable_weights}


class LMNCallback(keras.callbacks.Callback):
    """Measure LMN at named layers during ``model.fit`` and put the values into the epoch's logs.

    At the end of each scheduled epoch the callback measures, for every layer in
    ``layers``, the LMN between that layer and the model's output on ``inputs`` (see
    :func:`adapters.keras.layer.layer_lmn`), and writes into the epoch's ``logs``:

    - ``lmn_<layer>`` (see :func:`lmn_key`): the LMN, one key per layer;
    - ``lmn_n_samples``: ``N``, the number of samples it was measured on;
    - with ``measures=[...]``, each progress measure's column (``effective_rank_<layer>``,
      ``weight_movement``; see :mod:`adapters.measures`), measured at the same times.

    ``History`` (``model.fit(...).history``) and the ``ProgbarLogger`` see them with no
    extra code; ``CSVLogger``, ``TensorBoard`` and any other callback that reads the
    logs see them when they come after this callback in the ``callbacks`` list. On
    epochs that are not scheduled the keys hold ``fill_value`` (NaN by default), so
    every epoch has the same keys and ``History`` lists stay aligned with epochs;
    with ``fill_value=None`` they are left out instead. The full results of the last
    measurement are kept in :attr:`last_results`.

    Parameters
    ----------
    inputs : array_like
        Model inputs ``(N, ...)`` to measure on (``N`` about 100 to 1000: the cost
        grows as ``N**2``).
    layers : str or sequence of str
        Keras names of the layers to measure at (see :func:`adapters.keras.split`).
    every_n_epochs : int or collection of int
        Schedule: an int ``k`` measures after epochs ``k, 2k, 3k, ...``; a collection
        measures after exactly those epochs. Epochs count from 1, as in Keras's
        ``validation_freq`` (the ``epoch`` index Keras passes to callbacks is that
        number minus one).
    every_n_steps : int, optional
        Also measure after every ``every_n_steps``-th optimizer step (batch), counted
        over the whole of ``fit``; with full-batch training one step is one epoch.
    fill_value : float or None
        What the keys hold on epochs that are not measured; ``None`` leaves them out.
    at_start : bool
        Also measure before the first update (``on_train_begin``: step 0).
    measures : sequence of str, optional
        Progress measures to log beside the LMN (docs/design.md, section 6.1): built-in
        names, ``module:function``, ``path/to/file.py:function`` or entry points. The
        weights are the model's ``trainable_weights``; ``initial_weights`` are those when
        the model first starts training with this callback. ``None`` (the default): none.
    **keywords
        Any :class:`adapters.keras.layer.LayerOptions` field (``batch_size``, ``fold``,
        ``reduction``, ``output``, ``compile_rule``) and any keyword of :func:`lmn_core.lmn`
        (``n_points``, ``memory_budget``, ...).
    every, every_batches
        The old names of ``every_n_epochs`` and ``every_n_steps``: they work for one
        release, with a ``DeprecationWarning``.

    Attributes
    ----------
    last_results : dict of str to lmn_core.LMNResult
        The results of the last measurement, by layer (empty before the first).
    measurements : list of dict
        Every measurement in order: ``step`` (optimizer steps done), ``epoch`` (Keras
        index of the epoch it ended, or ``None``), ``lmn_<layer>``, ``lmn_n_samples`` and the
        measures' columns.
    """

    def __init__(
        self,
        inputs: Any,
        layers: str | list[str] | tuple[str, ...],
        *,
        every_n_epochs: int | Collection[int] = 1,
        every_n_steps: int | None = None,
        fill_value: float | None = math.nan,
        at_start: bool = False,
        measures: Sequence[str] | None = None,
        every: Any = NOT_GIVEN,
        every_batches: Any = NOT_GIVEN,
        **keywords: Any,
    ) -> None:
        super().__init__()
        self.inputs = np.asarray(inputs)
        self.layers = layer_names(layers, "LMNCallback")
        every_n_epochs = renamed(every_n_epochs, 1, every, ("every", "every_n_epochs"), "LMNCallback")
        every_n_steps = renamed(
            every_n_steps, None, every_batches, ("every_batches", "every_n_steps"), "LMNCallback"
        )
        self.epochs = Schedule(every_n_epochs, name="every_n_epochs", unit="epoch numbers", first=1)
        self.batches = None if every_n_steps is None else Schedule(every_n_steps, name="every_n_steps")
        self.at_start, self.steps = at_start, 0
        self.measurements: list[dict[str, Any]] = []
        self.fill_value = fill_value
        self.options, self.lmn_kwargs = LayerOptions.taken_from(keywords)
        self.last_results: dict[str, lmn_core.LMNResult] = {}
        self._measures: dict[str, LayerLMN] = {}
        self._measured_model: keras.Model | None = None
        self._selected = selected_measures(measures)
        self.progress = MonitorMeasures([], {}, dict, self.inputs)

    @property
    def every_n_epochs(self) -> int | frozenset[int]:
        """The epochs measured: ``k`` (epochs ``k, 2k, ...``) or the set of epoch numbers."""
        return self.epochs.every

    @property
    def every_n_steps(self) -> int | None:
        """Also measured after every ``k``-th optimizer step, or ``None``."""
        return None if self.batches is None else self.batches.every  # type: ignore[return-value]

    @property
    def every(self) -> int | frozenset[int]:
        """The old name of :attr:`every_n_epochs` (for one release, with a ``DeprecationWarning``)."""
        return renamed_attribute(self, "every", "every_n_epochs")

    @property
    def every_batches(self) -> int | None:
        """The old name of :attr:`every_n_steps` (for one release, with a ``DeprecationWarning``)."""
        return renamed_attribute(self, "every_batches", "every_n_steps")

    def scheduled(self, epoch: int) -> bool:
        """Whether the epoch with Keras index ``epoch`` (from 0) is measured."""
        return self.epochs.is_due(epoch + 1)

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Cut the model at every layer (once per model: a bad layer name fails here)."""
        if self._measured_model is not self.model:
            model = self.model
            self._measures = {layer: LayerLMN(model, layer, self.options) for layer in self.layers}
            probes = {
                layer: LayerProbe(model, layer, self.options) for layer in self.layers if self._selected
            }
            self.progress = MonitorMeasures(
                self._selected, probes, lambda: weights_as_numpy(model), self.inputs
            )
            self._measured_model = model
        self.steps = 0
        if self.at_start:
            self._measure(epoch=None)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Count optimizer steps; measure every ``every_n_steps`` of them."""
        self.steps += 1
        if self.batches is not None and self.batches.is_due(self.steps):
            values = self._measure(epoch=None)
            if logs is not None:
                logs.update(values)

    def _measure(self, epoch: int | None) -> dict[str, Any]:
        """Measure now; record and return ``{lmn_<layer>: LMN, lmn_n_samples: N, <column>: value}``."""
        # on JAX, fit holds the weights of now in its own state between epochs: write them back first
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        self.last_results = measure_layers(self._measures, self.inputs, self.lmn_kwargs)
        values: dict[str, Any] = measured_values(self.last_results)
        values.update(self.progress.values(self.inputs, self.steps))
        self.measurements.append({"step": self.steps, "epoch": epoch, **values})
        return values

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Measure at the scheduled epochs; write the values (or ``fill_value``) into ``logs``."""
        logs = {} if logs is None else logs
        if self.scheduled(epoch):
            logs.update(self._measure(epoch))
        elif self.fill_value is not None:
            keys = [*(lmn_key(layer) for layer in self.layers), N_SAMPLES_KEY, *self.progress.columns]
            logs.update(dict.fromkeys(keys, self.fill_value))
