"""The experiment protocol: a :class:`Task` (data, split, loss, recipe, criterion) and its :class:`Model`.

An experiment is a task and a model. Both are plain frozen dataclasses whose fields say
everything the trainer, the run folder, the report and the claims need; nothing else is
read from them. A task is written as a function that takes no arguments and returns a
:class:`Task`; it is registered under a name through the entry-point group
``lmn.experiments`` or named on the command line as ``module:function`` or
``path/to/file.py:function`` (``reference_tasks.experiment.registry``)::

    def task() -> Task:
        return Task(
            name="parity4",
            data=make_data,                  # (**task_options) -> TaskData
            model=Model(
                name="mlp",
                probes=("hidden",),          # cut points the adapters accept (layer names)
                headline_probe="hidden",
                torch=build_torch,           # (config, data) -> torch.nn.Module
            ),
            loss="cross_entropy",
            recipe=Recipe(steps=2000, learning_rate=1e-2, weight_decay=1.0),
            criterion=Criterion(train_acc=1.0, test_acc=0.95),
        )

A model builder receives the run's config (``reference_tasks.training.TrainConfig``: its
``seed``, ``dtype``, ``init_scale``, ``model_options``, ...) and the task's
:class:`TaskData`, and returns an untrained framework model whose initial weights are drawn
from ``config.seed`` alone; the trainer casts it to ``config.dtype``. The model maps a batch
of ``inputs`` rows to ``(batch, n_classes)`` logits (scores for ``mse``), and each of its
``probes`` is a cut point of ``adapters.torch.split`` / ``adapters.keras.split``: the LMN of
the rest of the model is measured on the activations there (docs/design.md, section 2.6).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from reference_tasks.tasks import DEFAULT_TRAIN_FRACTION, TaskData

#: The losses a task may name: cross-entropy on the logits, or the mean squared error
#: between the outputs and the one-hot labels (as Omnigrok's MNIST).
LOSSES = ("cross_entropy", "mse")
#: The optimizers a recipe may name (``torch.optim`` / ``keras.optimizers`` alike).
OPTIMIZERS = ("adamw", "sgd")
FRAMEWORKS = ("torch", "keras")


class ExperimentError(ValueError):
    """A task or model that breaks the protocol; the message names the task and what is wrong."""


@dataclass(frozen=True)
class Criterion:
    """What counts as memorized and generalized: the first evaluated step at a threshold.

    A run has *memorized* at the first evaluated step whose train accuracy reaches
    ``train_acc``, and *generalized* at the first whose test accuracy reaches ``test_acc``
    (docs/design.md, section 2.4). The paper's tasks use 100% for both; a task on real
    data whose test accuracy never reaches 100% states its own threshold (and says why in
    its docstring). The phases, the run summaries and the claims over seeds use it.

    Attributes
    ----------
    train_acc, test_acc : float
        Thresholds in ``(0, 1]``.
    """

    train_acc: float = 1.0
    test_acc: float = 1.0

    def __post_init__(self) -> None:
        for name in ("train_acc", "test_acc"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise ValueError(f"criterion {name} must be a number in (0, 1], got {value!r}")


@dataclass(frozen=True)
class Recipe:
    """A task's reference training recipe: what ``lmn reproduce --task`` trains by default.

    Every field is a ``TrainConfig`` field of the same name; the command line and a sweep's
    grid override them run by run.

    Attributes
    ----------
    steps : int
        Optimizer steps.
    optimizer : {"adamw", "sgd"}
        ``torch.optim.AdamW`` / ``keras.optimizers.AdamW`` (``epsilon`` 1e-8), or plain SGD
        (no momentum) whose weight decay adds ``weight_decay * w`` to the gradient, as
        ``torch.optim.SGD`` does (Keras's decoupled decay is the same update for SGD).
    learning_rate, weight_decay : float
        The optimizer's settings.
    betas : tuple of float
        AdamW's ``(beta_1, beta_2)``; ignored by SGD.
    batch_size : int or None
        ``None`` trains on the full training set at every step; an integer draws each step's
        mini-batch from a stream seeded by the run's seed (one permutation of the training
        set per epoch), so a run is reproducible and resumes where it stopped.
    train_fraction : float
        Share of the task's samples in the training set (a seeded split per run).
    n_checkpoints : int
        About this many LMN checkpoints, denser early.
    lmn_samples : int or None
        ``N``, a seeded subset of the samples the LMN is measured on; ``None`` for all.
    probes : tuple of str or None
        The probes measured by default; ``None`` is the model's headline probe alone.
    """

    steps: int = 20000
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 0.2
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int | None = None
    train_fraction: float = DEFAULT_TRAIN_FRACTION
    n_checkpoints: int = 100
    lmn_samples: int | None = None
    probes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer {self.optimizer!r} is not known; choose one of {', '.join(OPTIMIZERS)}"
            )
        if len(self.betas) != 2 or not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be None (full batch) or at least 1, got {self.batch_size}")
        for name in ("learning_rate", "weight_decay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


class RunConfig(Protocol):
    """What a model builder may read of the run's config (``reference_tasks.training.TrainConfig``)."""

    seed: int
    dtype: str
    init_scale: float
    model_options: Mapping[str, Any]
    task_options: Mapping[str, Any]


#: A model builder: ``(config, data) -> framework model`` (see the module docstring).
Builder = Callable[[Any, TaskData], Any]


@dataclass(frozen=True)
class Model:
    """A model built per framework, with the probes where its LMN is measured.

    Attributes
    ----------
    name : str
        How tables and figures name it.
    probes : tuple of str
        Every cut point its runs may measure, in the order of the network; each is a name
        that ``adapters.torch.split`` (a submodule) or ``adapters.keras.split`` (a layer)
        accepts. ``metrics.csv`` has an ``lmn_{probe}`` column for each.
    headline_probe : str
        The probe the headline claims use (one of ``probes``): measured at every LMN
        checkpoint, the others more sparsely.
    torch, keras : callable or None
        Builders ``(config, data) -> model`` for PyTorch (a ``torch.nn.Module``) and for
        Keras 3 (an unbuilt or built ``keras.Model``); ``None`` where the model has no such
        version (a run in that framework is refused).
    piecewise_linear : callable or bool
        Whether the network after each probe is piecewise linear (affine maps and ReLU-like
        hinges), so that each LMN checkpoint also counts its exact linear regions
        (docs/design.md, section 1.6); a callable receives the run's config.
    keras_snapshot : callable or None
        ``keras.Model -> {name: array}``: the weights a Keras run's snapshots keep; ``None``
        keeps each variable under its path. (A PyTorch run's snapshots are its
        ``state_dict``; the reference MLP maps Keras's weights to those names, so that
        snapshots of both frameworks read alike.)
    keras_load_snapshot : callable or None
        ``(keras.Model, {name: array}) -> None``: the inverse of ``keras_snapshot``, which the
        progress measures use to read a Keras run's snapshots back; ``None`` assigns each
        variable from its path.
    """

    name: str
    probes: tuple[str, ...]
    headline_probe: str
    torch: Builder | None = None
    keras: Builder | None = None
    piecewise_linear: Callable[[Any], bool] | bool = False
    keras_snapshot: Callable[[Any], Mapping[str, np.ndarray]] | None = None
    keras_load_snapshot: Callable[[Any, Mapping[str, np.ndarray]], None] | None = None

    def __post_init__(self) -> None:
        if not self.probes or not all(isinstance(probe, str) and probe for probe in self.probes):
            raise ValueError(
                f"model {self.name!r}: probes must be a non-empty tuple of names, got {self.probes!r}"
            )
        if self.headline_probe not in self.probes:
            raise ValueError(
                f"model {self.name!r}: headline probe {self.headline_probe!r} is not one of its probes "
                f"{', '.join(self.probes)}"
            )
        if self.torch is None and self.keras is None:
            raise ValueError(f"model {self.name!r} has no builder (give torch=, keras= or both)")

    def build(self, framework: str, config: Any, samples: Any, *, task: str, expected: type) -> Any:
        """The ``framework`` model of the run's ``config``, built on the task's ``samples``.

        Raises
        ------
        ExperimentError
            Naming ``task``, if the model has no ``framework`` version or its builder returns
            something other than an ``expected`` (``torch.nn.Module``, ``keras.Model``).
        """
        if framework not in FRAMEWORKS:
            raise ValueError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
        build = getattr(self, framework)
        if build is None:
            raise ExperimentError(f"task {task!r}: model {self.name!r} has no {framework} version")
        model = build(config, samples)
        if not isinstance(model, expected):
            raise ExperimentError(
                f"task {task!r}: model {self.name!r}'s {framework} builder returned "
                f"{type(model).__name__}, not a {framework} {expected.__qualname__}"
            )
        return model

    def is_piecewise_linear(self, config: Any) -> bool:
        """Whether runs of ``config`` count linear regions."""
        return bool(
            self.piecewise_linear(config) if callable(self.piecewise_linear) else self.piecewise_linear
        )


@dataclass(frozen=True)
class Task:
    """A task: its samples, its loss, its model, its reference recipe and its criterion.

    Attributes
    ----------
    name : str
        The name its runs are filed under (``{task}-seed{seed}`` folders, report sections).
    data : callable
        ``(**task_options) -> TaskData``: every sample and its label, deterministic in its
        options (a run's seed only splits them and draws the LMN subset). Inputs may have any
        shape ``(N, *s)``: token indices (integers) or features (floats).
    model : Model
        The reference model of the task.
    loss : {"cross_entropy", "mse"}
        Cross-entropy on the logits, or the mean squared error to one-hot labels.
    recipe : Recipe
        The reference recipe.
    criterion : Criterion
        When a run has memorized and generalized.
    title : str or None
        How figures and tables name it (the name if ``None``).
    options : mapping
        Default task options (the run's ``task_options`` override them).
    measure_inputs : callable or None
        ``MeasureContext -> {key: value}``: the task-specific inputs of the progress measures
        (``"task:<key>"`` needs, docs/design.md, section 6.1) at one checkpoint, the same keys
        at every checkpoint (:mod:`reference_tasks.experiment.measure_inputs`).
    """

    name: str
    data: Callable[..., TaskData]
    model: Model
    loss: str = "cross_entropy"
    recipe: Recipe = field(default_factory=Recipe)
    criterion: Criterion = field(default_factory=Criterion)
    title: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    measure_inputs: Callable[[Any], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ExperimentError(f"task {self.name!r}: its name must be a non-empty string without '/'")
        if self.loss not in LOSSES:
            raise ExperimentError(
                f"task {self.name!r}: loss {self.loss!r} is not known; choose one of {', '.join(LOSSES)}"
            )
        if not isinstance(self.model, Model):
            raise ExperimentError(
                f"task {self.name!r}: model must be a Model, got {type(self.model).__name__}"
            )
        unknown = set(self.recipe.probes or ()) - set(self.model.probes)
        if unknown:
            raise ExperimentError(
                f"task {self.name!r}: recipe probes {sorted(unknown)} are not probes of model "
                f"{self.model.name!r} ({', '.join(self.model.probes)})"
            )

    @property
    def display_title(self) -> str:
        """The title, or the name where there is none."""
        return self.title or self.name

    def make_data(self, **options: Any) -> TaskData:
        """The task's samples with its default options overridden by ``options``, checked.

        Raises
        ------
        ExperimentError
            If the data breaks the protocol: inputs and labels of different lengths, labels
            that are not integers in ``0 .. n_classes - 1``, non-finite float inputs, token
            inputs outside ``0 .. n_tokens - 1`` (the message names the task and the sample).
        """
        data = self.data(**{**self.options, **options})
        if not isinstance(data, TaskData):
            raise ExperimentError(
                f"task {self.name!r}: data() must return a TaskData, got {type(data).__name__}"
            )
        problem = data_problem(data)
        if problem is not None:
            raise ExperimentError(f"task {self.name!r}: {problem}")
        return data


def data_problem(data: TaskData) -> str | None:
    """What is wrong with ``data`` (a sentence naming the first bad sample), or ``None``."""
    inputs, labels = np.asarray(data.inputs), np.asarray(data.labels)
    if inputs.ndim < 1 or labels.ndim != 1 or inputs.shape[0] != labels.shape[0] or labels.size == 0:
        return (
            f"inputs {inputs.shape} and labels {labels.shape} must hold the same N >= 1 samples, labels 1-D"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        return f"labels must be integer class indices, got dtype {labels.dtype}"
    if (
        isinstance(data.n_classes, bool)
        or not isinstance(data.n_classes, int | np.integer)
        or data.n_classes < 2
    ):
        return f"n_classes must be an integer >= 2, got {data.n_classes!r}"
    outside = np.flatnonzero((labels < 0) | (labels >= data.n_classes))
    if outside.size:
        return f"label {labels[outside[0]]} of sample {outside[0]} is out of range 0..{data.n_classes - 1}"
    if np.issubdtype(inputs.dtype, np.floating) and not np.isfinite(inputs).all():
        return f"input of sample {np.argwhere(~np.isfinite(inputs))[0][0]} is not finite"
    if data.n_tokens is not None:
        if not np.issubdtype(inputs.dtype, np.integer):
            return f"n_tokens is given but the inputs are not token indices (dtype {inputs.dtype})"
        bad = np.argwhere((inputs < 0) | (inputs >= data.n_tokens))
        if bad.size:
            return (
                f"token {inputs[tuple(bad[0])]} of sample {bad[0][0]} is out of range 0..{data.n_tokens - 1}"
            )
    return None
