"""Keras 3 training: the model's own compiled train step, one run at a time.

The model is the task's (``Model.keras`` built from the run's config). The recipe is the
PyTorch engine's: ``keras.optimizers.AdamW`` with the config's learning rate, weight decay
and betas (``epsilon=1e-8``, PyTorch's default) or ``keras.optimizers.SGD``; sparse
cross-entropy on the logits, or the mean squared error to one-hot labels, computed in the
config's loss dtype; full batch or the seeded mini-batches of ``recipe.batch_indices``; the
same schedule. Each update is one call of ``train_on_batch`` (with XLA on TensorFlow, the
fastest measured on a 2-core CPU); in full batch its loss and accuracy, computed on the
weights before the update, are the row's train metrics. The initial weights come from
``config.seed`` alone (seeded initializers), and on the CPU the same config gives the same
``metrics.csv``. The LMN is measured through the adapter's own :class:`adapters.keras.LayerLMN`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

import lmn_core
from adapters.keras import KerasFunction, LayerLMN, LayerProbe, LayerRegions, split
from reference_tasks.runfolder.schema import WEIGHTS_STEM
from reference_tasks.training.engine import Evaluation, TrainingData, check_cuts
from reference_tasks.training.recipe import TrainConfig, batch_indices

ADAM_EPSILON = 1e-8


def build_model(config: TrainConfig, data: TrainingData) -> keras.Model:
    """The task's model for ``config`` (``Model.keras``), compiled with the config's optimizer and loss.

    Compiled with ``jit_compile=True`` (XLA) on TensorFlow and Keras's default elsewhere.

    Raises
    ------
    reference_tasks.experiment.ExperimentError
        If the task's model has no Keras version or its builder does not return a ``keras.Model``.
    """
    model = data.task.model.build("keras", config, data.samples, task=data.task.name, expected=keras.Model)
    if config.loss == "mse":
        loss = keras.losses.MeanSquaredError(dtype=config.computed_loss_dtype)
        accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=config.computed_loss_dtype)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(
        optimizer=_optimizer(config),
        loss=loss,
        metrics=[accuracy],
        jit_compile=True if keras.backend.backend() == "tensorflow" else "auto",
    )
    model.optimizer.build(model.trainable_variables)
    return model


def _optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """AdamW (the config's betas, epsilon 1e-8) or plain SGD (Keras's decay equals PyTorch's L2 there)."""
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=config.learning_rate, weight_decay=config.weight_decay)
    beta_1, beta_2 = config.betas
    return keras.optimizers.AdamW(
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=ADAM_EPSILON,
    )


def _keras_inputs(inputs: np.ndarray, dtype: str) -> np.ndarray:
    """Token indices as int32, features in the run's dtype."""
    return inputs.astype(np.int32) if np.issubdtype(inputs.dtype, np.integer) else inputs.astype(dtype)


def keras_device_name(device: str) -> str:
    """Keras's name of a device: ``"gpu:0"`` for PyTorch's ``"cuda"`` or ``"cuda:0"``, else ``device``."""
    kind, _, index = device.partition(":")
    return f"gpu:{index or 0}" if kind == "cuda" else device


class KerasEngine:
    """One run of the recipe as a compiled Keras model."""

    framework = "keras"
    batches = False

    def __init__(self, configs: Sequence[TrainConfig], data: TrainingData, device: str) -> None:
        if len(configs) != 1:
            raise ValueError(f"the Keras engine trains one run at a time, got {len(configs)}")
        self.config, self.data, self.device = configs[0], data, keras_device_name(device)
        with keras.device(self.device):
            self.model = build_model(self.config, data)
        self.splits = {
            "train": (
                _keras_inputs(data.train_inputs[0], self.config.dtype),
                self._targets(data.train_labels[0]),
            ),
            "test": (
                _keras_inputs(data.test_inputs[0], self.config.dtype),
                self._targets(data.test_labels[0]),
            ),
        }
        self.lmn_inputs = _keras_inputs(data.lmn_inputs[0], self.config.dtype)
        self.measures = {probe: LayerLMN(self.model, probe) for probe in self.config.probes}

    def _targets(self, labels: np.ndarray) -> np.ndarray:
        """Class indices as int32, or one-hot rows in the loss dtype for ``mse``."""
        if self.config.loss == "mse":
            return np.eye(self.data.n_classes, dtype=self.config.computed_loss_dtype)[labels]
        return labels.astype(np.int32)

    @classmethod
    def check_experiment(cls, config: TrainConfig, data: TrainingData) -> None:
        """Refuse a model without a Keras version, a probe that ``adapters.keras.split`` cannot cut, or,
        for a piecewise-linear model, a head whose regions cannot be read there."""
        model = build_model(config, data)
        model(_keras_inputs(data.lmn_inputs[0][:2], config.dtype))
        regions = LayerRegions if data.task.model.is_piecewise_linear(config) else None
        check_cuts(
            data.task,
            config.probes,
            lambda probe: split(model, probe),
            None if regions is None else lambda probe: regions(model, probe),
        )

    @staticmethod
    def use_threads(threads: int) -> None:
        """Nothing: Keras's backends set their own threads when they start."""

    @staticmethod
    def devices(device: str) -> list[str] | None:
        """One worker process for runs on an accelerator; ``None`` (one per CPU) for the CPU."""
        return None if keras_device_name(device).startswith("cpu") else [device]

    @classmethod
    def record(cls) -> dict[str, Any]:
        """``config.json``'s framework entries."""
        return {
            "framework": cls.framework,
            "keras_version": keras.__version__,
            "keras_backend": keras.backend.backend(),
        }

    def running(self) -> Any:
        """The device scope the run trains in."""
        return keras.device(self.device)

    @staticmethod
    def _evaluation(logs: dict[str, Any], n_rows: int) -> Evaluation:
        """Loss and the exact count of correct predictions of ``n_rows`` (Keras gives a float32 share)."""
        return Evaluation(
            np.asarray([float(logs["loss"])]), np.asarray([round(float(logs["accuracy"]) * n_rows)])
        )

    def update(self, step: int, evaluate: bool) -> Evaluation | None:
        """One ``train_on_batch`` step on the full training set or the mini-batch after ``step``."""
        inputs, targets = self.splits["train"]
        if self.config.batch_size is not None:
            rows = batch_indices(targets.shape[0], self.config.batch_size, self.config.seed, step)
            inputs, targets = inputs[rows], targets[rows]
        logs = self.model.train_on_batch(inputs, targets, return_dict=True)
        return self._evaluation(logs, targets.shape[0]) if evaluate else None

    def evaluate(self, split: str) -> Evaluation:
        """Metrics on ``"train"`` or ``"test"`` with the weights of now."""
        inputs, targets = self.splits[split]
        return self._evaluation(self.model.test_on_batch(inputs, targets, return_dict=True), targets.shape[0])

    def l2_norms(self) -> np.ndarray:
        """The L2 norm of all trainable weights, in float64."""
        total = sum(
            float(np.sum(np.square(w.numpy(), dtype=np.float64))) for w in self.model.trainable_weights
        )
        return np.asarray([math.sqrt(total)])

    def weights(self, run: int) -> dict[str, np.ndarray]:
        """The weights in the snapshot layout: ``Model.keras_snapshot``'s, else by variable path."""
        snapshot = self.data.task.model.keras_snapshot
        if snapshot is not None:
            return dict(snapshot(self.model))
        return {variable.path: variable.numpy() for variable in self.model.weights}

    def state(self, run: int) -> dict[str, np.ndarray]:
        """Every model and optimizer variable by position (``weight_i``, ``optimizer_i``)."""
        arrays = {f"weight_{i}": weight.numpy() for i, weight in enumerate(self.model.weights)}
        arrays.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(self.model.optimizer.variables)})
        return arrays

    def load_states(self, states: Sequence[dict[str, np.ndarray]]) -> None:
        """Restore the variables from :meth:`state`'s arrays, checking their names and shapes."""
        (state,) = states
        targets = [(f"weight_{i}", w) for i, w in enumerate(self.model.weights)]
        targets += [(f"optimizer_{i}", v) for i, v in enumerate(self.model.optimizer.variables)]
        if set(state) != {name for name, _ in targets}:
            raise ValueError("the checkpoint does not hold this model's weights and optimizer state")
        for name, variable in targets:
            if tuple(state[name].shape) != tuple(variable.shape):
                raise ValueError(
                    f"checkpoint {name} has shape {state[name].shape}, the model's {variable.shape}"
                )
            variable.assign(state[name])

    def lmn(self, run: int, probes: Sequence[str], n_points: int, progress: bool) -> dict[str, Any]:
        """The LMN at each probe through the adapter's :class:`~adapters.keras.LayerLMN`."""
        return {
            probe: self.measures[probe](self.lmn_inputs, n_points=n_points, progress=progress)
            for probe in probes
        }

    @functools.cached_property
    def region_counters(self) -> dict[str, LayerRegions]:
        """A :class:`adapters.keras.LayerRegions` per probe, cut once."""
        return {probe: LayerRegions(self.model, probe) for probe in self.config.probes}

    def regions(self, run: int, probes: Sequence[str], progress: bool) -> dict[str, Any]:
        """The linear regions at each probe, through the adapter's ``LayerRegions``."""
        return {probe: self.region_counters[probe](self.lmn_inputs, progress=progress) for probe in probes}

    def load_weights(self, run: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Assign a snapshot's weights: ``Model.keras_load_snapshot``, else each variable by path."""
        loader = self.data.task.model.keras_load_snapshot
        if loader is not None:
            loader(self.model, arrays)
            return
        missing = sorted({variable.path for variable in self.model.weights} - set(arrays))
        if missing:
            raise ValueError(f"the snapshot holds no {missing}")
        for variable in self.model.weights:
            variable.assign(np.asarray(arrays[variable.path]))

    @functools.cached_property
    def probes(self) -> dict[str, LayerProbe]:
        """A :class:`adapters.keras.LayerProbe` per probe, cut once."""
        return {probe: LayerProbe(self.model, probe) for probe in self.config.probes}

    def probe_inputs(self, run: int, probe: str) -> lmn_core.MeasureInputs:
        """What the run gives the progress measures at ``probe`` on its LMN inputs."""
        return self.probes[probe].measure_inputs(self.lmn_inputs)

    def outputs(self, run: int) -> np.ndarray:
        """The outputs on every sample of the task, in float64."""
        logits = KerasFunction(self.model)(_keras_inputs(self.data.all_inputs, self.config.dtype))
        return np.asarray(logits, dtype=np.float64)

    def save(self, run: int, out_dir: Path) -> keras.Model:
        """Write ``model.keras``; return the model."""
        self.model.save(out_dir / f"{WEIGHTS_STEM}.keras")
        return self.model
