"""What the training loop asks of a framework: the :class:`Engine` protocol and its data.

An engine trains ``K >= 1`` runs of one recipe (configs that differ only in their seed)
at once. The loop (``training.loop``) decides *when* to update, evaluate, snapshot,
checkpoint and measure; the engine only knows *how*, in its framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from reference_tasks.tasks import lmn_sample_indices, make_task, train_test_split
from reference_tasks.training.recipe import TrainConfig


@dataclass(frozen=True)
class TrainingData:
    """The samples of ``K`` runs, stacked on a leading run axis (one split per seed).

    Attributes
    ----------
    train_pairs, test_pairs : numpy.ndarray
        ``(K, n_train, 2)`` and ``(K, n_test, 2)`` int64 operand pairs.
    train_labels, test_labels : numpy.ndarray
        ``(K, n_train)`` and ``(K, n_test)`` int64 classes.
    lmn_pairs : tuple of numpy.ndarray
        Per run, the ``(N, 2)`` pairs its LMN is measured on.
    n_tokens, n_classes : int
        Operand values and classes of the task.
    """

    train_pairs: np.ndarray
    train_labels: np.ndarray
    test_pairs: np.ndarray
    test_labels: np.ndarray
    lmn_pairs: tuple[np.ndarray, ...]
    n_tokens: int
    n_classes: int

    @classmethod
    def for_configs(cls, configs: Sequence[TrainConfig]) -> TrainingData:
        """Each config's seeded train/test split and LMN samples of its task."""
        task = make_task(configs[0].task, **configs[0].task_options)
        splits = [
            train_test_split(task.n_samples, train_fraction=c.train_fraction, seed=c.seed) for c in configs
        ]
        pairs, labels = task.pairs.astype(np.int64), task.labels.astype(np.int64)
        return cls(
            train_pairs=np.stack([pairs[train] for train, _ in splits]),
            train_labels=np.stack([labels[train] for train, _ in splits]),
            test_pairs=np.stack([pairs[test] for _, test in splits]),
            test_labels=np.stack([labels[test] for _, test in splits]),
            lmn_pairs=tuple(
                pairs[lmn_sample_indices(task.n_samples, size=c.lmn_samples, seed=c.seed)] for c in configs
            ),
            n_tokens=task.n_tokens,
            n_classes=task.n_classes,
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

    @staticmethod
    def use_threads(threads: int) -> None:
        """Run this process's framework on ``threads`` CPU threads (where it has that setting)."""

    def running(self) -> AbstractContextManager[Any]:
        """A context the loop runs in (a Keras device scope, say)."""

    def update(self, evaluate: bool) -> Evaluation | None:
        """One AdamW step of every run; with ``evaluate``, the train metrics of its forward pass."""

    def evaluate(self, split: str) -> Evaluation:
        """Metrics on ``"train"`` or ``"test"`` with the weights of now."""

    def l2_norms(self) -> np.ndarray:
        """The L2 norm of all parameters of every run."""

    def weights(self, run: int) -> dict[str, np.ndarray]:
        """Run ``run``'s weights in the snapshot layout (``model.spec``)."""

    def state(self, run: int) -> dict[str, np.ndarray]:
        """Run ``run``'s whole training state (weights and optimizer) as named arrays."""

    def load_states(self, states: Sequence[dict[str, np.ndarray]]) -> None:
        """Restore every run from what :meth:`state` gave."""

    def lmn(self, run: int, probes: Sequence[str], n_points: int, progress: bool) -> dict[str, Any]:
        """Run ``run``'s ``LMNResult`` at each probe, on its LMN samples."""

    def regions(self, run: int, probes: Sequence[str], progress: bool) -> dict[str, Any]:
        """Run ``run``'s ``lmn_core.RegionSummary`` at each probe, on its LMN samples (piecewise linear)."""

    def save(self, run: int, out_dir: Path) -> Any:
        """Write run ``run``'s final weights into ``out_dir``; return its model."""
