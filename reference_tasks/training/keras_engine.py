"""Keras 3 training: the model's own compiled train step, one run at a time.

The recipe is the PyTorch engine's: full batch, ``keras.optimizers.AdamW`` with the
config's learning rate and weight decay (``epsilon=1e-8``, PyTorch's default), sparse
cross-entropy on the logits computed in the config's loss dtype, the same schedule. Each
update is one call of ``train_on_batch`` (with XLA on TensorFlow, the fastest measured on a
2-core CPU), whose loss and accuracy, computed on the weights before the update, are the
row's train metrics. The initial weights come from ``config.seed`` alone (seeded
initializers), and on the CPU the same config gives the same ``metrics.csv``. The LMN is
measured through the adapter's own :class:`adapters.keras.LayerLMN`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from adapters.keras import LayerLMN, LayerRegions
from reference_tasks.model import keras_model
from reference_tasks.runfolder.schema import WEIGHTS_STEM
from reference_tasks.training.engine import Evaluation, TrainingData
from reference_tasks.training.recipe import TrainConfig

ADAM_EPSILON = 1e-8


def build_model(config: TrainConfig, n_tokens: int, n_classes: int) -> keras.Model:
    """The config's model (its dtype, weights drawn from ``config.seed``), compiled with its AdamW.

    Compiled with ``jit_compile=True`` (XLA) on TensorFlow and Keras's default elsewhere.
    """
    model = keras_model.build_model(
        n_tokens,
        n_classes,
        dtype=config.dtype,
        **config.model_options(),
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=config.learning_rate, weight_decay=config.weight_decay, epsilon=ADAM_EPSILON
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=config.computed_loss_dtype),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=True if keras.backend.backend() == "tensorflow" else "auto",
    )
    model.optimizer.build(model.trainable_variables)
    return model


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
            self.model = build_model(self.config, data.n_tokens, data.n_classes)
        self.splits = {
            "train": (data.train_pairs[0].astype(np.int32), data.train_labels[0].astype(np.int32)),
            "test": (data.test_pairs[0].astype(np.int32), data.test_labels[0].astype(np.int32)),
        }
        self.lmn_pairs = data.lmn_pairs[0].astype(np.int32)
        self.measures = {probe: LayerLMN(self.model, probe) for probe in self.config.probes}

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

    def _evaluation(self, logs: dict[str, Any], split: str) -> Evaluation:
        """Loss and the exact count of correct predictions (Keras reports a float32 fraction)."""
        n_rows = self.splits[split][1].size
        return Evaluation(
            np.asarray([float(logs["loss"])]), np.asarray([round(float(logs["accuracy"]) * n_rows)])
        )

    def update(self, evaluate: bool) -> Evaluation | None:
        """One ``train_on_batch`` step on the full training set."""
        logs = self.model.train_on_batch(*self.splits["train"], return_dict=True)
        return self._evaluation(logs, "train") if evaluate else None

    def evaluate(self, split: str) -> Evaluation:
        """Metrics on ``"train"`` or ``"test"`` with the weights of now."""
        return self._evaluation(self.model.test_on_batch(*self.splits[split], return_dict=True), split)

    def l2_norms(self) -> np.ndarray:
        """The L2 norm of all trainable weights, in float64."""
        total = sum(
            float(np.sum(np.square(w.numpy(), dtype=np.float64))) for w in self.model.trainable_weights
        )
        return np.asarray([math.sqrt(total)])

    def weights(self, run: int) -> dict[str, np.ndarray]:
        """The weights in the snapshot layout (PyTorch names and shapes)."""
        return keras_model.snapshot_arrays(self.model)

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
            probe: self.measures[probe](self.lmn_pairs, n_points=n_points, progress=progress)
            for probe in probes
        }

    @functools.cached_property
    def region_counters(self) -> dict[str, LayerRegions]:
        """A :class:`adapters.keras.LayerRegions` per probe, cut once."""
        return {probe: LayerRegions(self.model, probe) for probe in self.config.probes}

    def regions(self, run: int, probes: Sequence[str], progress: bool) -> dict[str, Any]:
        """The linear regions at each probe, through the adapter's ``LayerRegions``."""
        return {probe: self.region_counters[probe](self.lmn_pairs, progress=progress) for probe in probes}

    def save(self, run: int, out_dir: Path) -> keras.Model:
        """Write ``model.keras``; return the model."""
        self.model.save(out_dir / f"{WEIGHTS_STEM}.keras")
        return self.model
