"""Keras 3 adapter: models as NumPy callables, models cut at a layer, LMN at a layer and during fit.

Works with whichever Keras backend is active (TensorFlow, PyTorch, JAX), on that
backend's default device: every forward pass goes through ``model.predict_on_batch``,
Keras's compiled inference step (a ``tf.function`` on TensorFlow, ``jax.jit`` on JAX,
``torch.no_grad`` on PyTorch), in inference mode (``training=False``). Only the
TensorFlow backend computes float64 models in float64: Keras 3 promotes 64-bit floats
to 32-bit in the ops of its other backends, so there a float64 model's matrix products
run in float32.

The NumPy callable (half precision included): :mod:`adapters.keras_function`. Cutting
models at a layer, and affine prefix folding: :mod:`adapters.keras_split`; the layers it
can cut at: :mod:`adapters.keras_cuts`. The float64 warning: :mod:`adapters.keras_precision`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

try:
    import keras
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("adapters.keras needs Keras 3: pip install 'lmn[keras]'") from error

if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover - depends on the environment
    raise ImportError(f"adapters.keras needs Keras 3, found {keras.__version__}: pip install 'lmn[keras]'")

import lmn_core
from adapters.keras_cuts import cut_points
from adapters.keras_function import KerasFunction
from adapters.keras_precision import warn_if_float64_off_tensorflow
from adapters.keras_split import select_output, split
from adapters.schedule import (
    N_SAMPLES_KEY,
    Schedule,
    layer_names,
    lmn_key,
    measure_layers,
    measured_values,
)

__all__ = [
    "KerasFunction",
    "LMNCallback",
    "LayerLMN",
    "cut_points",
    "layer_lmn",
    "lmn_key",
    "select_output",
    "split",
]


class LayerLMN:
    """The LMN "between ``layer`` and the output" of ``model``, split once, measured many times.

    Body and head share the model's weights, so a ``LayerLMN`` built once follows
    training (and keeps Keras's compiled inference functions between measurements).

    Parameters
    ----------
    model : keras.Model
        A Sequential or functional model.
    layer : str
        Keras name of the layer; see :func:`split`.
    batch_size : int, optional
        Passed to :class:`KerasFunction` for the body and the head.
    fold : bool
        Fold the linear ``Dense`` layers that start the head into the samples (the
        same ``L`` up to rounding, in less time; see the module docstring).
    reduction : {"auto", "device", "host"}
        Where to reduce to r² (see :class:`KerasFunction`).
    output : int, str or callable, optional
        For a model with several outputs, the one to measure (see
        :func:`adapters.keras_split.select_output`).
    """

    def __init__(
        self,
        model: keras.Model,
        layer: str,
        *,
        batch_size: int | None = None,
        fold: bool = True,
        reduction: str = "auto",
        output: Any = None,
    ) -> None:
        self.layer, self.model = layer, model
        body, head = split(model, layer, fold=fold)
        self.body = KerasFunction(body, batch_size=batch_size, name=f"the body of the cut at layer {layer!r}")
        names = None if output is None else list(model.output_names)
        head = select_output(head, output, names)
        self.head = KerasFunction(
            head, batch_size=batch_size, reduction=reduction, name=f"the head of the cut at layer {layer!r}"
        )

    def __call__(self, inputs: Any, **lmn_kwargs: Any) -> lmn_core.LMNResult:
        """LMN of the head on ``X = body(inputs)``; ``lmn_kwargs`` go to :func:`lmn_core.lmn`.

        A head that computes in float16 or bfloat16 gets the constant tolerance of that
        dtype unless ``const_rtol`` is passed. A float64 model measured on a backend other
        than TensorFlow is warned about, once (:mod:`adapters.keras_precision`).
        """
        warn_if_float64_off_tensorflow(self.model)
        samples = self.body(inputs)
        # on the device the core reads the output dtype itself; the host sees float32 copies
        if "const_rtol" not in lmn_kwargs and len(samples) and not self.head.measures_on_device:
            lmn_kwargs = {**lmn_kwargs, "const_rtol": self.head.const_rtol(samples)}
        return lmn_core.lmn(self.head, samples, **lmn_kwargs)


def layer_lmn(
    model: keras.Model,
    inputs: Any,
    layer: str,
    *,
    batch_size: int | None = None,
    fold: bool = True,
    reduction: str = "auto",
    output: Any = None,
    **lmn_kwargs: Any,
) -> lmn_core.LMNResult:
    """LMN "between ``layer`` and the output" of ``model`` on ``inputs``.

    The samples are ``X = body(inputs)``, the function is the head: see :func:`split`.
    By default the linear ``Dense`` layers that start the head are folded into the
    body (the same ``L`` up to rounding, in less time; see the module docstring).

    Parameters
    ----------
    model : keras.Model
        A Sequential or functional model.
    inputs : array_like
        Model inputs ``(N, ...)``.
    layer : str
        Keras name of the layer.
    batch_size : int, optional
        Passed to :class:`KerasFunction` for the body and the head.
    fold : bool
        Fold the head's leading linear ``Dense`` layers into the samples.
    reduction : {"auto", "device", "host"}
        Where to reduce to r² (see :class:`KerasFunction`).
    output : int, str or callable, optional
        For a model with several outputs, the one to measure (see
        :func:`adapters.keras_split.select_output`).
    **lmn_kwargs
        Passed to :func:`lmn_core.lmn` (``n_points``, ``memory_budget``, ``progress``, ...).

    Returns
    -------
    lmn_core.LMNResult
    """
    measure = LayerLMN(model, layer, batch_size=batch_size, fold=fold, reduction=reduction, output=output)
    return measure(inputs, **lmn_kwargs)


class LMNCallback(keras.callbacks.Callback):
    """Measure LMN at named layers during ``model.fit`` and put the values into the epoch's logs.

    At the end of each scheduled epoch the callback measures, for every layer in
    ``layers``, the LMN between that layer and the model's output on ``inputs`` (see
    :func:`layer_lmn`), and writes into the epoch's ``logs``:

    - ``lmn_<layer>`` (see :func:`lmn_key`): the LMN, one key per layer;
    - ``lmn_n_samples``: ``N``, the number of samples it was measured on.

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
        Keras names of the layers to measure at (see :func:`split`).
    every : int or collection of int
        Schedule: an int ``k`` measures after epochs ``k, 2k, 3k, ...``; a collection
        measures after exactly those epochs. Epochs count from 1, as in Keras's
        ``validation_freq`` (the ``epoch`` index Keras passes to callbacks is that
        number minus one).
    fill_value : float or None
        What the keys hold on epochs that are not measured; ``None`` leaves them out.
    at_start : bool
        Also measure before the first update (``on_train_begin``: step 0).
    every_batches : int, optional
        Also measure after every ``every_batches``-th optimizer step (batch), counted
        over the whole of ``fit``; with full-batch training one batch is one epoch.
    batch_size : int, optional
        Passed to :class:`KerasFunction`.
    fold, reduction
        Passed to :class:`LayerLMN`: affine prefix folding (on by default) and where
        to reduce to r².
    **lmn_kwargs
        Passed to :func:`lmn_core.lmn` (``n_points``, ``memory_budget``, ...).

    Attributes
    ----------
    last_results : dict of str to lmn_core.LMNResult
        The results of the last measurement, by layer (empty before the first).
    measurements : list of dict
        Every measurement in order: ``step`` (optimizer steps done), ``epoch`` (Keras
        index of the epoch it ended, or ``None``), ``lmn_<layer>`` and ``lmn_n_samples``.
    """

    def __init__(
        self,
        inputs: Any,
        layers: str | list[str] | tuple[str, ...],
        *,
        every: int | Collection[int] = 1,
        fill_value: float | None = math.nan,
        at_start: bool = False,
        every_batches: int | None = None,
        batch_size: int | None = None,
        fold: bool = True,
        reduction: str = "auto",
        **lmn_kwargs: Any,
    ) -> None:
        super().__init__()
        self.inputs = np.asarray(inputs)
        self.layers = layer_names(layers, "LMNCallback")
        self.epochs = Schedule(every, unit="epoch numbers", first=1)
        self.every = self.epochs.every
        self.batches = None if every_batches is None else Schedule(every_batches, name="every_batches")
        self.at_start, self.every_batches, self.steps = at_start, every_batches, 0
        self.measurements: list[dict[str, Any]] = []
        self.fill_value = fill_value
        self.measure_options = {"batch_size": batch_size, "fold": fold, "reduction": reduction}
        self.lmn_kwargs = lmn_kwargs
        self.last_results: dict[str, lmn_core.LMNResult] = {}
        self._measures: dict[str, LayerLMN] = {}
        self._measured_model: keras.Model | None = None

    def scheduled(self, epoch: int) -> bool:
        """Whether the epoch with Keras index ``epoch`` (from 0) is measured."""
        return self.epochs.is_due(epoch + 1)

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Cut the model at every layer (once per model: a bad layer name fails here)."""
        if self._measured_model is not self.model:
            self._measures = {
                layer: LayerLMN(self.model, layer, **self.measure_options) for layer in self.layers
            }
            self._measured_model = self.model
        self.steps = 0
        if self.at_start:
            self._measure(epoch=None)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Count optimizer steps; measure every ``every_batches`` of them."""
        self.steps += 1
        if self.batches is not None and self.batches.is_due(self.steps):
            values = self._measure(epoch=None)
            if logs is not None:
                logs.update(values)

    def _measure(self, epoch: int | None) -> dict[str, Any]:
        """Measure every layer now; record and return ``{lmn_<layer>: LMN, lmn_n_samples: N}``."""
        # on JAX, fit holds the weights of now in its own state between epochs: write them back first
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        self.last_results = measure_layers(self._measures, self.inputs, self.lmn_kwargs)
        values: dict[str, Any] = measured_values(self.last_results)
        self.measurements.append({"step": self.steps, "epoch": epoch, **values})
        return values

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Measure at the scheduled epochs; write the values (or ``fill_value``) into ``logs``."""
        logs = {} if logs is None else logs
        if self.scheduled(epoch):
            logs.update(self._measure(epoch))
        elif self.fill_value is not None:
            logs.update({lmn_key(layer): self.fill_value for layer in self.layers})
            logs[N_SAMPLES_KEY] = self.fill_value
