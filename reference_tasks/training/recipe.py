"""What defines a run (:class:`TrainConfig`), how it is run (:class:`RunOptions`), and its schedule."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference_tasks.experiment.protocol import LOSSES, OPTIMIZERS, Criterion, Recipe, Task
from reference_tasks.experiment.registry import canonical_source, resolve_task
from reference_tasks.model.spec import DEFAULT_ACTIVATION, check_activation
from reference_tasks.runfolder.schema import LEGACY_CONFIG_VALUES
from reference_tasks.tasks import DEFAULT_TRAIN_FRACTION

DTYPES = ("float32", "float64")
#: The fields a task's :class:`~reference_tasks.experiment.Recipe` sets (:meth:`TrainConfig.for_task`).
RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a reference run (the recipe of docs/design.md, section 2, by default).

    Two runs of equal configs give equal ``metrics.csv`` files on the CPU, whatever the
    :class:`RunOptions` they ran with; a run may resume with other options.

    Attributes
    ----------
    task, task_options
        The task's name (``Task.name``) and its options (the keyword arguments of its ``data``).
    task_source
        Where the task is found when its name is not registered: ``module:function`` or
        ``/absolute/path/file.py:function`` (``reference_tasks.experiment.registry``);
        ``None`` for a registered name.
    seed
        Seeds the train/test split, the initial weights and the LMN subset.
    train_fraction
        Share of all pairs used for training.
    steps
        Optimizer steps; step ``s`` is measured after ``s`` updates (0 to ``steps``).
    optimizer, learning_rate, weight_decay, betas
        ``"adamw"`` (with ``betas``) or ``"sgd"``, as the task's
        :class:`~reference_tasks.experiment.Recipe` says; ``weight_decay=None`` is the
        task's reference value, and the config holds that value.
    batch_size
        ``None``: every update sees the whole training set; an integer: mini-batches from
        the seeded stream of :func:`batch_indices`.
    loss
        ``"cross_entropy"`` or ``"mse"`` (to one-hot labels); ``None`` is the task's.
    embedding_dim, hidden_dim, shared_embedding
        The reference MLP's shape; one embedding table for both operands or one each.
    model_options
        Options of another model's builder (``Model.torch`` / ``Model.keras`` read them).
    init_scale
        Factor on every initial weight (PyTorch's default initialisation times it), as
        Omnigrok's initialisation scale; 1 is PyTorch's default. The model's builder applies it.
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
        The headline probe is measured at every LMN checkpoint, the other
        probes at about one in ``side_probe_every`` of them, spread evenly over
        ``log(step + 1)`` (see :func:`probes_at`); 1 measures every probe at every checkpoint.
    probes
        Layers whose LMN (to the logits) is measured, a subset of the model's probes;
        ``None`` is the task's reference probes, and the config holds them.
    headline_probe
        The probe of the headline claims; ``None`` is the model's.
    criterion
        When the run has memorized and generalized; ``None`` is the task's.
    lmn_samples
        ``N`` for the LMN: a seeded subset of all samples of the task (train and test);
        ``None`` uses all of them.
    lmn_points
        Points per segment ``T``.
    measures
        The progress measures written beside the LMN at every LMN checkpoint (docs/design.md,
        section 6): names as ``lmn_core.measure_registry.resolve_measure`` takes them;
        ``None`` is every measure the run can supply the needs of; ``()`` is none.
    """

    task: str = "modadd"
    task_options: dict[str, Any] = field(default_factory=dict)
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
    task_source: str | None = None
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int | None = None
    loss: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    headline_probe: str | None = None
    criterion: Criterion | None = None
    measures: tuple[str, ...] | None = None

    @classmethod
    def for_task(cls, source: str, **settings: Any) -> TrainConfig:
        """A run of the task named by ``source``, its reference recipe overridden by ``settings``.

        ``source`` is a registered name, ``module:function`` or ``path/to/file.py:function``
        (``reference_tasks.experiment.registry``); every :data:`RECIPE_FIELDS` field starts
        from the task's :class:`~reference_tasks.experiment.Recipe`.

        Raises
        ------
        reference_tasks.experiment.ExperimentError
            If the task cannot be found or breaks the protocol.
        ValueError
            If the settings do not make a valid config.
        """
        task = resolve_task(source)
        recipe = {name: getattr(task.recipe, name) for name in RECIPE_FIELDS}
        where = None if source == task.name else canonical_source(source)
        return cls(task=task.name, task_source=where, **{**recipe, **settings})

    def resolved_task(self) -> Task:
        """The run's task (``reference_tasks.experiment.resolve_task`` of its source or name)."""
        return resolve_task(self.task_source or self.task)

    def _fill_from_task(self) -> None:
        """Take what the config leaves open (``None``) from its task, and check the probes."""
        task = self.resolved_task()
        model = task.model
        defaults = {
            "weight_decay": task.recipe.weight_decay,
            "probes": task.recipe.probes or (self.headline_probe or model.headline_probe,),
            "headline_probe": model.headline_probe,
            "loss": task.loss,
            "criterion": task.criterion,
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, tuple(value) if name == "probes" else value)
        unknown = [probe for probe in (*self.probes, self.headline_probe) if probe not in model.probes]
        if unknown:
            raise ValueError(
                f"task {task.name!r}: unknown probes {sorted(set(unknown))}; model {model.name!r} has probes "
                f"{', '.join(model.probes)}"
            )

    def __post_init__(self) -> None:
        open_fields = ("weight_decay", "probes", "headline_probe", "loss", "criterion")
        if any(getattr(self, name) is None for name in open_fields):
            self._fill_from_task()
        self._check()

    def _check(self) -> None:
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
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} is not known; choose one of {', '.join(LOSSES)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be None (full batch) or at least 1, got {self.batch_size}")
        if self.measures is not None and (
            isinstance(self.measures, str)
            or not all(isinstance(name, str) and name for name in self.measures)
        ):
            raise ValueError(f"measures must be None or a tuple of measure names, got {self.measures!r}")
        if self.lmn_samples is not None and self.lmn_samples < 1:
            raise ValueError(f"lmn_samples must be at least 1 or None, got {self.lmn_samples}")
        if self.checkpoint_steps is not None and not all(0 <= s <= self.steps for s in self.checkpoint_steps):
            raise ValueError(f"checkpoint_steps must lie in 0..{self.steps}")

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

    The headline probe (``config.headline_probe``) at every checkpoint; the others at
    :func:`side_checkpoints`.
    """
    steps = lmn_checkpoints(config)
    side = side_checkpoints(steps, config.side_probe_every)
    return {
        step: tuple(probe for probe in config.probes if probe == config.headline_probe or step in side)
        for step in steps.tolist()
    }


def eval_steps(config: TrainConfig) -> np.ndarray:
    """The sorted steps where a metrics row is written (see :class:`TrainConfig`)."""
    dense = np.arange(min(config.dense_eval_steps, config.steps + 1))
    regular = np.arange(0, config.steps + 1, config.eval_every)
    return np.unique(np.concatenate([dense, regular, [config.steps], lmn_checkpoints(config)])).astype(
        np.int64
    )


def batch_indices(n_train: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """The training samples of the update that follows step ``step``: the seeded mini-batch stream.

    The stream is one permutation of ``range(n_train)`` per epoch (epoch ``e`` drawn from
    ``numpy.random.default_rng([seed, 2, e])``), cut into consecutive batches of
    ``batch_size`` that run on into the next epoch. Update ``step`` takes the stream's
    entries ``step * batch_size`` onward: a pure function of the step, so a resumed run
    draws what the uninterrupted run drew. A batch as large as the training set is the
    whole set, in order.
    """
    if batch_size >= n_train:
        return np.arange(n_train)
    start = step * batch_size
    epoch, offset = divmod(start, n_train)
    parts, needed = [], batch_size
    while needed > 0:
        order = np.random.default_rng([seed, 2, epoch]).permutation(n_train)[offset : offset + needed]
        parts.append(order)
        needed -= order.size
        epoch, offset = epoch + 1, 0
    return np.concatenate(parts)


def train_config_from_json(record: Mapping[str, Any]) -> TrainConfig:
    """A ``TrainConfig`` from a ``config.json`` record (entries that are not fields are ignored).

    Entries the record lacks because it predates them take their legacy values.
    """
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    values = {key: value for key, value in {**LEGACY_CONFIG_VALUES, **record}.items() if key in fields}
    for key in ("probes", "checkpoint_steps", "betas", "measures"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    values["task_options"] = dict(values.get("task_options") or {})
    values["model_options"] = dict(values.get("model_options") or {})
    if isinstance(values["criterion"], Mapping):
        values["criterion"] = Criterion(**values["criterion"])
    return TrainConfig(**values)
