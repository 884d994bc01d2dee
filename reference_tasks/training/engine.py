"""What the training loop asks of a framework: the :class:`Engine` protocol and its data.

An engine trains ``K >= 1`` runs of one recipe (configs that differ only in their seed)
at once. The loop (``training.loop``) decides *when* to update, evaluate, snapshot,
checkpoint and measure; the engine only knows *how*, in its framework.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from reference_tasks.experiment import ExperimentError, Task, TaskData
from reference_tasks.tasks import lmn_sample_indices, train_test_split
from reference_tasks.training.recipe import TrainConfig


def _model_inputs(inputs: Any) -> np.ndarray:
    """Inputs as the models take them: integers as int64, features as they are."""
    inputs = np.asarray(inputs)
    return inputs.astype(np.int64) if np.issubdtype(inputs.dtype, np.integer) else inputs


@dataclass(frozen=True)
class TrainingData:
    """The samples of ``K`` runs, stacked on a leading run axis (one split per seed).

    Attributes
    ----------
    task : Task
        The runs' task (its model, loss and names).
    samples : TaskData
        Every sample of the task, as its ``data`` gave them (what a model builder receives).
    train_inputs, test_inputs : numpy.ndarray
        ``(K, n_train, *s)`` and ``(K, n_test, *s)`` inputs.
    train_labels, test_labels : numpy.ndarray
        ``(K, n_train)`` and ``(K, n_test)`` int64 classes.
    lmn_inputs : tuple of numpy.ndarray
        Per run, the ``(N, *s)`` inputs its LMN is measured on.
    """

    task: Task
    samples: TaskData
    train_inputs: np.ndarray
    train_labels: np.ndarray
    test_inputs: np.ndarray
    test_labels: np.ndarray
    lmn_inputs: tuple[np.ndarray, ...]

    @property
    def all_inputs(self) -> np.ndarray:
        """Every sample's input, in the task's order (integers as int64)."""
        return _model_inputs(self.samples.inputs)

    @property
    def n_classes(self) -> int:
        """Classes of the task (the model's output width)."""
        return self.samples.n_classes

    @classmethod
    def for_configs(cls, configs: Sequence[TrainConfig]) -> TrainingData:
        """Each config's seeded train/test split and LMN samples of its task.

        Raises
        ------
        reference_tasks.experiment.ExperimentError
            If the task cannot be found, is not the one the config names, or its data breaks
            the protocol.
        """
        task = configs[0].resolved_task()
        if task.name != configs[0].task:
            raise ExperimentError(
                f"task {configs[0].task_source or configs[0].task!r} is now named {task.name!r}, "
                f"the config {configs[0].task!r}"
            )
        samples = task.make_data(**configs[0].task_options)
        splits = [
            train_test_split(samples.n_samples, train_fraction=c.train_fraction, seed=c.seed) for c in configs
        ]
        inputs = _model_inputs(samples.inputs)
        labels = np.asarray(samples.labels).astype(np.int64)
        return cls(
            task=task,
            samples=samples,
            train_inputs=np.stack([inputs[train] for train, _ in splits]),
            train_labels=np.stack([labels[train] for train, _ in splits]),
            test_inputs=np.stack([inputs[test] for _, test in splits]),
            test_labels=np.stack([labels[test] for _, test in splits]),
            lmn_inputs=tuple(
                inputs[lmn_sample_indices(samples.n_samples, size=c.lmn_samples, seed=c.seed)]
                for c in configs
            ),
        )


@dataclass(frozen=True)
class Evaluation:
    """Loss and number of correct predictions of every run on one split, on the host."""

    loss: np.ndarray
    correct: np.ndarray


class Engine(Protocol):
    """A framework's side of training: built from ``(configs, data, device)``."""

    framework: str
    batches: bool  # whether it trains several runs at once (else one engine per run)
    data: TrainingData

    @classmethod
    def record(cls) -> dict[str, Any]:
        """What ``config.json`` adds to the config: the framework and its versions."""

    @staticmethod
    def devices(device: str) -> list[str] | None:
        """One device per worker process for runs on ``device`` (every GPU); ``None`` for the CPU."""

    @classmethod
    def check_experiment(cls, config: TrainConfig, data: TrainingData) -> None:
        """Refuse, before training, a model that has no version here or a probe that is not its cut
        (``ExperimentError`` naming the task)."""

    @staticmethod
    def use_threads(threads: int) -> None:
        """Run this process's framework on ``threads`` CPU threads (where it has that setting)."""

    def running(self) -> AbstractContextManager[Any]:
        """A context the loop runs in (a Keras device scope, say)."""

    def update(self, step: int, evaluate: bool) -> Evaluation | None:
        """The update after step ``step`` of every run (its mini-batch from
        ``recipe.batch_indices`` or the whole training set); with ``evaluate``, the train
        metrics of its forward pass."""

    def evaluate(self, split: str) -> Evaluation:
        """Metrics on ``"train"`` or ``"test"`` with the weights of now."""

    def l2_norms(self) -> np.ndarray:
        """The L2 norm of all parameters of every run."""

    def weights(self, run: int) -> dict[str, np.ndarray]:
        """Run ``run``'s weights in the snapshot layout (``runfolder.weights``)."""

    def state(self, run: int) -> dict[str, np.ndarray]:
        """Run ``run``'s whole training state (weights and optimizer) as named arrays."""

    def load_states(self, states: Sequence[dict[str, np.ndarray]]) -> None:
        """Restore every run from what :meth:`state` gave."""

    def lmn(self, run: int, probes: Sequence[str], n_points: int, progress: bool) -> dict[str, Any]:
        """Run ``run``'s ``LMNResult`` at each probe, on its LMN inputs."""

    def regions(self, run: int, probes: Sequence[str], progress: bool) -> dict[str, Any]:
        """Run ``run``'s ``lmn_core.RegionSummary`` at each probe, on its LMN samples (piecewise linear)."""

    def load_weights(self, run: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Give run ``run`` the weights of a snapshot (:meth:`weights`' layout)."""

    def probe_inputs(self, run: int, probe: str) -> Any:
        """What run ``run`` gives the progress measures at ``probe`` on its LMN inputs: an
        ``lmn_core.MeasureInputs`` (representations, pre-activations, piecewise-linear head)."""

    def outputs(self, run: int) -> np.ndarray:
        """Run ``run``'s outputs (logits) on every sample of the task."""

    def save(self, run: int, out_dir: Path) -> Any:
        """Write run ``run``'s final weights into ``out_dir``; return its model."""


def check_cuts(
    task: Task, probes: Sequence[str], cut: Callable[[str], Any], regions: Callable[[str], Any] | None
) -> None:
    """Call ``cut(probe)`` (an adapter's ``split``) for each probe, and ``regions(probe)`` (its
    ``LayerRegions``) for a piecewise-linear model; refuse the first that fails.

    Raises
    ------
    reference_tasks.experiment.ExperimentError
        Naming the task, the probe and the adapter's reason.
    """
    for probe in probes:
        try:
            cut(probe)
        except (ValueError, KeyError, AttributeError) as error:
            raise ExperimentError(
                f"task {task.name!r}: probe {probe!r} is not a cut of model {task.model.name!r}: {error}"
            ) from error
        try:
            if regions is not None:
                regions(probe)
        except (ValueError, TypeError) as error:
            raise ExperimentError(
                f"task {task.name!r}: model {task.model.name!r} says it is piecewise linear, but its "
                f"regions after probe {probe!r} cannot be counted: {error}"
            ) from error
