"""The testbeds as experiments (``reference_tasks.experiment``): tasks, models, reference recipes.

Registered in the entry-point group ``lmn.experiments`` (docs/design.md, section 2.7;
docs/guides/testbeds.md gives each recipe, its deviations from the source and the runs
that chose it):

- ``transformer``: Nanda et al.'s one-layer transformer on ``a b =`` modulo ``p``, sized for
  a CPU (p = 59, ``d_model`` 64, ``d_mlp`` 256, half of the pairs for training);
- ``transformer_nanda``: the same at Nanda et al.'s size (p = 113, ``d_model`` 128,
  ``d_mlp`` 512, 30% of the pairs), a GPU's run;
- ``parity``: sparse parity, n = 40 bits, k = 3, 1000 training vectors, one hidden ReLU
  layer of width 1000, SGD on mini-batches of 32 (Merrill et al.'s setting);
- ``digits``: scikit-learn's 8x8 digits, 1000 training images, a ReLU MLP of width 200 and
  depth 3 initialised at 8 times PyTorch's default, MSE to one-hot labels (Omnigrok).

A model's shape is its builder's defaults, overridden by the run's ``model_options``; the
run's ``init_scale`` multiplies every initial weight on top of the testbed's own
initialisation (Omnigrok's 8 for ``digits``: ``alpha`` in ``model_options``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from reference_tasks.experiment.measure_inputs import modular_addition_inputs, sparse_parity_inputs
from reference_tasks.experiment.protocol import Criterion, Model, Recipe, Task
from reference_tasks.tasks import TaskData
from reference_tasks.testbeds.data import digits, modular_addition_sequences, parity_subset, sparse_parity

#: The CPU-sized transformer (a stated deviation from Nanda et al.'s size, below).
TRANSFORMER_SHAPE = {"d_model": 64, "n_heads": 4, "d_mlp": 256}
#: Nanda et al.'s transformer.
NANDA_SHAPE = {"d_model": 128, "n_heads": 4, "d_mlp": 512}
#: Merrill et al.'s sparse-parity network: one hidden ReLU layer of width 1000.
PARITY_SHAPE = {"width": 1000, "depth": 2}
#: Omnigrok's MNIST network on the digits: width 200, depth 3, every initial weight times 8.
DIGITS_SHAPE = {"width": 200, "depth": 3, "alpha": 8.0}
#: The transformer's probes (module names in PyTorch, layer names in Keras), in network order.
TRANSFORMER_PROBES = ("embed", "attn", "mlp")


def _shape(defaults: Mapping[str, Any], config: Any) -> dict[str, Any]:
    """The builder's defaults overridden by the run's ``model_options``; an unknown option is refused."""
    options = dict(config.model_options or {})
    unknown = set(options) - set(defaults)
    if unknown:
        raise ValueError(f"unknown model options {sorted(unknown)}; this model takes {sorted(defaults)}")
    return {**defaults, **options}


def _transformer_options(defaults: Mapping[str, Any], config: Any, data: TaskData) -> dict[str, Any]:
    shape = _shape(defaults, config)
    return {"p": data.n_classes, **shape, "seed": config.seed, "init_scale": config.init_scale}


def build_torch_transformer(
    config: Any, data: TaskData, *, defaults: Mapping[str, Any] = TRANSFORMER_SHAPE
) -> Any:
    """The one-layer transformer in PyTorch (``testbeds.torch_models.OneLayerTransformer``) for ``config``."""
    from reference_tasks.testbeds import torch_models

    return torch_models.transformer(**_transformer_options(defaults, config, data))


def build_keras_transformer(
    config: Any, data: TaskData, *, defaults: Mapping[str, Any] = TRANSFORMER_SHAPE
) -> Any:
    """The one-layer transformer in Keras (``testbeds.keras_models.transformer``) for ``config``."""
    from reference_tasks.testbeds import keras_models

    return keras_models.transformer(**_transformer_options(defaults, config, data), dtype=config.dtype)


def _mlp_options(defaults: Mapping[str, Any], config: Any, data: TaskData) -> dict[str, Any]:
    shape = _shape(defaults, config)
    scale = shape.pop("alpha", 1.0) * config.init_scale
    n_inputs = int(data.inputs.shape[1])
    return {
        "n_inputs": n_inputs,
        **shape,
        "n_classes": data.n_classes,
        "seed": config.seed,
        "init_scale": scale,
    }


def build_torch_mlp(config: Any, data: TaskData, *, defaults: Mapping[str, Any]) -> Any:
    """A ReLU MLP in PyTorch (``testbeds.torch_models.mlp``) for ``config``."""
    from reference_tasks.testbeds import torch_models

    return torch_models.mlp(**_mlp_options(defaults, config, data))


def build_keras_mlp(config: Any, data: TaskData, *, defaults: Mapping[str, Any]) -> Any:
    """A ReLU MLP in Keras (``testbeds.keras_models.mlp``) for ``config``."""
    from reference_tasks.testbeds import keras_models

    return keras_models.mlp(**_mlp_options(defaults, config, data), dtype=config.dtype)


def keras_snapshot(model: Any) -> dict[str, Any]:
    """A Keras testbed model's weights under its PyTorch twin's names and shapes (its snapshots)."""
    from reference_tasks.testbeds import keras_models

    return keras_models.torch_named_weights(model)


def keras_load_snapshot(model: Any, arrays: Mapping[str, Any]) -> None:
    """Assign a Keras testbed model's weights from its PyTorch twin's names and shapes."""
    from reference_tasks.testbeds import keras_models

    keras_models.load_torch_named_weights(model, arrays)


def _parity_subset(options: Mapping[str, Any]) -> Any:
    return parity_subset(options["n_bits"], options["k"], options["data_seed"])


def _transformer_model(name: str, defaults: Mapping[str, Any]) -> Model:
    return Model(
        name=name,
        probes=TRANSFORMER_PROBES,
        headline_probe="attn",
        torch=functools.partial(build_torch_transformer, defaults=defaults),
        keras=functools.partial(build_keras_transformer, defaults=defaults),
        keras_snapshot=keras_snapshot,
        keras_load_snapshot=keras_load_snapshot,
    )


def _mlp_model(name: str, defaults: Mapping[str, Any]) -> Model:
    hidden = tuple(f"hidden{index}" for index in range(1, defaults["depth"]))
    return Model(
        name=name,
        probes=("linear1", *hidden),
        headline_probe="linear1" if len(hidden) == 1 else "hidden1",
        torch=functools.partial(build_torch_mlp, defaults=defaults),
        keras=functools.partial(build_keras_mlp, defaults=defaults),
        piecewise_linear=True,
        keras_snapshot=keras_snapshot,
        keras_load_snapshot=keras_load_snapshot,
    )


def transformer_task() -> Task:
    """Addition mod 59 as ``a b =`` on a one-layer transformer: the CPU-sized reference recipe.

    Memorized and generalized at 100% train and test accuracy, as the paper's tasks.
    """
    return Task(
        name="transformer",
        data=modular_addition_sequences,
        model=_transformer_model("one-layer transformer", TRANSFORMER_SHAPE),
        recipe=Recipe(
            steps=5000,
            learning_rate=1e-3,
            weight_decay=1.0,
            betas=(0.9, 0.98),
            train_fraction=0.5,
            n_checkpoints=50,
            lmn_samples=256,
            probes=TRANSFORMER_PROBES,
        ),
        criterion=Criterion(),
        title="addition mod 59, transformer",
        options={"p": 59},
        measure_inputs=modular_addition_inputs("embed.tokens.weight"),
    )


def transformer_nanda_task() -> Task:
    """Nanda et al.'s size: p = 113, ``d_model`` 128, ``d_mlp`` 512, 30% of the pairs (a GPU's run).

    The CPU recipe's task with their size, 25000 steps and ``N`` = 1024.
    """
    task = transformer_task()
    recipe = dataclasses.replace(
        task.recipe, steps=25000, train_fraction=0.3, n_checkpoints=100, lmn_samples=1024
    )
    return dataclasses.replace(
        task,
        name="transformer_nanda",
        model=_transformer_model("one-layer transformer (Nanda et al.)", NANDA_SHAPE),
        recipe=recipe,
        title="addition mod 113, transformer",
        options={"p": 113},
    )


def parity_task() -> Task:
    """Sparse parity (n = 40, k = 3): 1000 training and 1000 test vectors, SGD on batches of 32.

    Memorized and generalized at 100% train and test accuracy. The probe ``linear1`` (the
    first pre-activation) measures the whole network from its input bits (identity 3);
    ``hidden1`` reads 1 (identity 2), a sanity check.
    """
    return Task(
        name="parity",
        data=sparse_parity,
        model=_mlp_model("ReLU MLP, width 1000", PARITY_SHAPE),
        recipe=Recipe(
            steps=15000,
            optimizer="sgd",
            learning_rate=0.1,
            weight_decay=0.01,
            batch_size=32,
            train_fraction=0.5,
            n_checkpoints=50,
            lmn_samples=256,
        ),
        criterion=Criterion(),
        title="sparse parity, n = 40, k = 3",
        measure_inputs=sparse_parity_inputs(_parity_subset),
        options={"n_bits": 40, "k": 3, "n_samples": 2000, "data_seed": 0},
    )


#: The digits' generalization threshold on test accuracy (see :func:`digits_task`).
DIGITS_TEST_ACCURACY = 0.9


def digits_task() -> Task:
    """scikit-learn's digits on a ReLU MLP initialised at 8 times the default (Omnigrok), MSE loss.

    Memorized at 100% train accuracy; generalized at 90% test accuracy, since test accuracy
    on real images never reaches 100%: the same network from PyTorch's default
    initialisation (alpha 1) reaches 98.6% by step 2000, at alpha 8 it creeps from about
    45% at memorization past 90% near step 40000 (docs/guides/testbeds.md).
    """
    return Task(
        name="digits",
        data=digits,
        loss="mse",
        model=_mlp_model("ReLU MLP, width 200, depth 3, alpha 8", DIGITS_SHAPE),
        recipe=Recipe(
            steps=60000,
            learning_rate=1e-3,
            weight_decay=0.01,
            batch_size=200,
            train_fraction=1000 / 1797,
            n_checkpoints=50,
            lmn_samples=500,
            probes=("hidden1", "hidden2"),
        ),
        criterion=Criterion(train_acc=1.0, test_acc=DIGITS_TEST_ACCURACY),
        title="digits, alpha 8",
    )
