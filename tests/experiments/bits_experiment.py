"""A task and its model written outside the package, as a user writes them (docs/design.md, section 2.6).

The parity of the first three of six bits, learned by a ReLU MLP in PyTorch and in Keras;
broken variants of it for the refusals. Named to ``lmn reproduce`` as
``tests/experiments/bits_experiment.py:task`` (or through an entry point).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import numpy as np

from reference_tasks.experiment import Criterion, Model, Recipe, Task, TaskData

N_BITS = 6


def bits(n_bits: int = N_BITS) -> TaskData:
    """Every ``n_bits``-bit vector (as floats) and the parity of its first three bits."""
    inputs = ((np.arange(2**n_bits)[:, None] >> np.arange(n_bits)) & 1).astype(np.float32)
    return TaskData(inputs, inputs[:, :3].sum(axis=1).astype(np.int64) % 2, n_classes=2)


def build_torch(config, data):
    """linear -> ReLU (``hidden``) -> output, its weights drawn from the run's seed."""
    import torch
    from torch import nn

    width = config.model_options.get("width", 16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return nn.Sequential(
            OrderedDict(
                linear=nn.Linear(data.inputs.shape[1], width),
                hidden=nn.ReLU(),
                output=nn.Linear(width, data.n_classes),
            )
        )


def build_keras(config, data):
    """The same network in Keras, seeded initializers."""
    import keras

    width = config.model_options.get("width", 16)
    dense = {"dtype": config.dtype, "kernel_initializer": keras.initializers.GlorotUniform(seed=config.seed)}
    return keras.Sequential(
        [
            keras.Input((data.inputs.shape[1],), dtype=config.dtype),
            keras.layers.Dense(width, name="linear", **dense),
            keras.layers.ReLU(name="hidden", dtype=config.dtype),
            keras.layers.Dense(data.n_classes, name="output", **dense),
        ]
    )


MODEL = Model(
    name="bits MLP",
    probes=("linear", "hidden"),
    headline_probe="linear",
    torch=build_torch,
    keras=build_keras,
    piecewise_linear=True,
)


def task() -> Task:
    """The parity of three bits: SGD on mini-batches of 8, a test-accuracy criterion of 90%."""
    return Task(
        name="bits",
        data=bits,
        model=MODEL,
        recipe=Recipe(
            steps=40,
            optimizer="sgd",
            learning_rate=0.5,
            weight_decay=1e-3,
            batch_size=8,
            train_fraction=0.75,
            n_checkpoints=4,
            lmn_samples=12,
        ),
        criterion=Criterion(train_acc=1.0, test_acc=0.9),
        title="parity of three bits",
    )


def mse_task() -> Task:
    """The same task with the squared error to one-hot labels, full batch AdamW."""
    return replace(
        task(),
        name="bits_mse",
        loss="mse",
        recipe=replace(task().recipe, optimizer="adamw", batch_size=None, learning_rate=1e-2),
    )


def labels_out_of_range() -> Task:
    """Broken: a label 2 of a two-class task."""

    def data() -> TaskData:
        good = bits()
        labels = good.labels.copy()
        labels[5] = 2
        return TaskData(good.inputs, labels, n_classes=2)

    return replace(task(), name="bad_labels", data=data)


def probe_not_a_cut() -> Task:
    """Broken: a probe that names no layer of the model."""
    return replace(
        task(), name="bad_probe", model=replace(MODEL, probes=("linear", "hiden"), headline_probe="hiden")
    )


def unknown_loss() -> Task:
    """Broken: a loss the protocol does not know."""
    return replace(task(), name="bad_loss", loss="hinge")


def not_a_task() -> dict:
    """Broken: returns something else than a Task."""
    return {"name": "bits"}


def build_torch_tanh(config, data):
    """The network with Tanh in place of ReLU: not piecewise linear."""
    from torch import nn

    model = build_torch(config, data)
    model.hidden = nn.Tanh()
    return model


def wrongly_piecewise_linear() -> Task:
    """Broken: a model that says it is piecewise linear, with a Tanh."""
    return replace(task(), name="bad_regions", model=replace(MODEL, torch=build_torch_tanh))
