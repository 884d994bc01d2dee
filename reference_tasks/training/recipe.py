"""What defines a run (:class:`TrainConfig`), how it is run (:class:`RunOptions`), and its schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference_tasks.model.spec import DEFAULT_ACTIVATION, HEADLINE_PROBE, PROBES, check_activation
from reference_tasks.tasks import DEFAULT_TRAIN_FRACTION

DTYPES = ("float32", "float64")
PAPER_WEIGHT_DECAY = 0.2
# The reference recipe's one change to the paper's, per task (docs/design.md, section 2):
# at 0.2, S4 groks within 20000 steps in 2 of 8 seeds; at 1.0 in 8 of 8 (results/s4_sweep).
TASK_WEIGHT_DECAY = {"s4": 1.0}
# Every probe where the paper draws the LMN at every layer (its Figure 3: addition mod 31),
# the headline probe elsewhere (docs/design.md, section 2.3).
TASK_PROBES = {"modadd": PROBES}


def reference_weight_decay(task: str) -> float:
    """The reference recipe's AdamW weight decay for ``task``: the paper's 0.2, 1.0 for S4."""
    return TASK_WEIGHT_DECAY.get(task, PAPER_WEIGHT_DECAY)


def reference_probes(task: str) -> tuple[str, ...]:
    """The reference recipe's probes for ``task``: all of them for addition mod 31, ``hidden1`` else."""
    return TASK_PROBES.get(task, (HEADLINE_PROBE,))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a reference run (the recipe of docs/design.md, section 2, by default).

    Two runs of equal configs give equal ``metrics.csv`` files on the CPU, whatever the
    :class:`RunOptions` they ran with; a run may resume with other options.

    Attributes
    ----------
    task, task_options
        Task registry name and its options (see ``reference_tasks.tasks``).
    seed
        Seeds the train/test split, the initial weights and the LMN subset.
    train_fraction
        Share of all pairs used for training.
    steps
        Optimizer steps; step ``s`` is measured after ``s`` updates (0 to ``steps``).
    learning_rate, weight_decay
        AdamW settings; ``weight_decay=None`` is the task's reference value
        (:func:`reference_weight_decay`), and the config holds that value.
    embedding_dim, hidden_dim, shared_embedding
        Model shape; one embedding table for both operands or one each.
    init_scale
        Factor on every initial weight (PyTorch's default initialisation times it), as
        Omnigrok's initialisation scale; 1 is PyTorch's default.
    activation
        The hidden activation, one of ``model.spec.ACTIVATIONS``: ``"silu"`` (the paper's),
        ``"relu"``, ``"leaky_relu"`` (slope 0.01 below zero), ``"gelu"`` (exact) or ``"tanh"``.
        With ``"relu"`` or ``"leaky_relu"`` the network is piecewise linear and each LMN
        checkpoint also counts its linear regions (docs/design.md, section 1.6).
    dtype
        ``"float32"`` or ``"float64"``: the model's weights and activations.
    loss_dtype
        The dtype the cross-entropy (its log-softmax) is computed in; ``None`` is ``dtype``.
        The default ``"float64"`` keeps a float32 model clear of softmax collapse once the
        loss is tiny (a stated deviation from the paper, docs/design.md).
    eval_every, dense_eval_steps
        Losses, accuracies and the L2 norm are measured at every step below
        ``dense_eval_steps``, every ``eval_every`` steps, at the last step and at
        every LMN checkpoint.
    n_checkpoints, checkpoint_steps
        LMN is measured at ``checkpoint_steps`` if given, else at about
        ``n_checkpoints`` steps from :func:`checkpoint_schedule`.
    side_probe_every
        The headline probe (``hidden1``) is measured at every LMN checkpoint, the other
        probes at about one in ``side_probe_every`` of them, spread evenly over
        ``log(step + 1)`` (see :func:`probes_at`); 1 measures every probe at every checkpoint.
    probes
        Layers whose LMN (to the logits) is measured, a subset of ``model.spec.PROBES``;
        ``None`` is the task's reference probes (:func:`reference_probes`), and the config
        holds them.
    lmn_samples
        ``N`` for the LMN: a seeded subset of all pairs of the task (train and test);
        ``None`` uses all of them.
    lmn_points
        Points per segment ``T``.
    """

    task: str = "modadd"
    task_options: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    train_fraction: float = DEFAULT_TRAIN_FRACTION
    steps: int = 20000
    learning_rate: float = 1e-3
    weight_decay: float | None = None
    embedding_dim: int = 32
    hidden_dim: int = 100
    shared_embedding: bool = True
    init_scale: float = 1.0
    activation: str = DEFAULT_ACTIVATION
    dtype: str = "float32"
    loss_dtype: str | None = "float64"
    eval_every: int = 10
    dense_eval_steps: int = 100
    n_checkpoints: int = 100
    checkpoint_steps: tuple[int, ...] | None = None
    side_probe_every: int = 10
    probes: tuple[str, ...] | None = None
    lmn_samples: int | None = None
    lmn_points: int = 21

    def __post_init__(self) -> None:
        if self.weight_decay is None:
            object.__setattr__(self, "weight_decay", reference_weight_decay(self.task))
        if self.probes is None:
            object.__setattr__(self, "probes", reference_probes(self.task))
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.side_probe_every < 1:
            raise ValueError(f"side_probe_every must be at least 1, got {self.side_probe_every}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be at least 1, got {self.eval_every}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.loss_dtype is not None and self.loss_dtype not in DTYPES:
            raise ValueError(f"loss_dtype must be None or one of {DTYPES}, got {self.loss_dtype!r}")
        if not (math.isfinite(self.init_scale) and self.init_scale > 0):
            raise ValueError(f"init_scale must be a positive number, got {self.init_scale}")
        check_activation(self.activation)
        unknown = set(self.probes) - set(PROBES)
        if unknown:
            raise ValueError(f"unknown probes {sorted(unknown)}; the metrics schema has {PROBES}")
        if self.lmn_samples is not None and self.lmn_samples < 1:
            raise ValueError(f"lmn_samples must be at least 1 or None, got {self.lmn_samples}")
        if self.checkpoint_steps is not None and not all(0 <= s <= self.steps for s in self.checkpoint_steps):
            raise ValueError(f"checkpoint_steps must lie in 0..{self.steps}")

    def model_options(self) -> dict[str, Any]:
        """The keyword arguments of every framework's ``build_model`` but the dtype."""
        return {
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "shared_embedding": self.shared_embedding,
            "init_scale": self.init_scale,
            "activation": self.activation,
            "seed": self.seed,
        }

    @property
    def computed_loss_dtype(self) -> str:
        """The dtype the loss is computed in."""
        return self.loss_dtype or self.dtype


@dataclass(frozen=True)
class RunOptions:
    """How a run is executed, not what it computes: a run may resume under other options.

    Attributes
    ----------
    device
        A framework device name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
    progress
        Show progress bars (training, and the LMN at each checkpoint).
    pause_at_step
        An LMN checkpoint step at which the run, its checkpoint written, waits until its
        process is killed: tests of kills and resumes know then that it is unfinished. A run
        that resumes from that checkpoint goes on.
    """

    device: str = "cpu"
    progress: bool = True
    pause_at_step: int | None = None


def checkpoint_schedule(steps: int, n_points: int = 100) -> np.ndarray:
    """About ``n_points`` steps in ``0 .. steps``, denser early, with 0 and ``steps``.

    Half the points are spaced linearly, the rest geometrically from step 1 (more of
    them until the union of distinct steps reaches ``n_points``). With ``steps + 1 <=
    n_points`` every step is a checkpoint; ``n_points = 0`` gives none.
    """
    if n_points <= 0:
        return np.zeros(0, dtype=np.int64)
    if steps + 1 <= n_points:
        return np.arange(steps + 1)
    linear = np.rint(np.linspace(0, steps, max(n_points // 2, 2)))
    points, n_log = linear, max(n_points - linear.size, 1)
    while points.size < n_points:
        points = np.union1d(linear, np.rint(np.geomspace(1, steps, n_log)))
        n_log += 1
    return points.astype(np.int64)


def lmn_checkpoints(config: TrainConfig) -> np.ndarray:
    """The sorted steps where LMN is measured."""
    if not config.probes:
        return np.zeros(0, dtype=np.int64)
    if config.checkpoint_steps is not None:
        return np.unique(np.asarray(config.checkpoint_steps, dtype=np.int64))
    return checkpoint_schedule(config.steps, config.n_checkpoints)


def side_checkpoints(steps: np.ndarray, every: int) -> set[int]:
    """About one in ``every`` of the sorted checkpoint ``steps``, spread evenly over ``log(step + 1)``.

    The first and the last are always among them (the figures draw steps on a log axis,
    so the early phases get as many side measurements as the late ones).
    """
    if every == 1 or steps.size <= 2:
        return set(steps.tolist())
    count = math.ceil(steps.size / every) + 1
    targets = np.linspace(np.log1p(steps[0]), np.log1p(steps[-1]), count)
    nearest = np.abs(np.log1p(steps)[None, :] - targets[:, None]).argmin(axis=1)
    return set(steps[nearest].tolist()) | {int(steps[0]), int(steps[-1])}


def probes_at(config: TrainConfig) -> dict[int, tuple[str, ...]]:
    """The probes measured at each LMN checkpoint (in the order of ``config.probes``).

    The headline probe at every checkpoint; the others at :func:`side_checkpoints`.
    """
    steps = lmn_checkpoints(config)
    side = side_checkpoints(steps, config.side_probe_every)
    return {
        step: tuple(probe for probe in config.probes if probe == HEADLINE_PROBE or step in side)
        for step in steps.tolist()
    }


def eval_steps(config: TrainConfig) -> np.ndarray:
    """The sorted steps where a metrics row is written (see :class:`TrainConfig`)."""
    dense = np.arange(min(config.dense_eval_steps, config.steps + 1))
    regular = np.arange(0, config.steps + 1, config.eval_every)
    return np.unique(np.concatenate([dense, regular, [config.steps], lmn_checkpoints(config)])).astype(
        np.int64
    )
