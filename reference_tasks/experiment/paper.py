"""The paper's three tasks and its MLP, written against the protocol like any other experiment.

Registered under ``modadd``, ``s4`` and ``xor`` (``reference_tasks.experiment.registry``).
The recipe is docs/design.md's section 2: AdamW (lr 1e-3, weight decay 0.2; 1.0 for S4, the
reference recipe's one change, chosen by ``results/s4_sweep``), full batch, 80% of the pairs
for training, 20000 steps; every probe measured on addition mod 31 (the paper's Figure 3),
the headline probe ``hidden1`` on the others; memorized and generalized at 100% accuracy.
The MLP's shape is the run config's own fields (``embedding_dim``, ``hidden_dim``,
``shared_embedding``, ``init_scale``, ``activation``).
"""

from __future__ import annotations

from typing import Any

from reference_tasks.experiment.measure_inputs import modular_addition_inputs
from reference_tasks.experiment.protocol import Criterion, Model, Recipe, Task
from reference_tasks.model.spec import HEADLINE_PROBE, PROBES, is_piecewise_linear
from reference_tasks.tasks import TaskData, bitwise_xor, modular_addition, permutation_composition

PAPER_WEIGHT_DECAY = 0.2


def _mlp_options(config: Any) -> dict[str, Any]:
    return {
        "embedding_dim": config.embedding_dim,
        "hidden_dim": config.hidden_dim,
        "shared_embedding": config.shared_embedding,
        "init_scale": config.init_scale,
        "activation": config.activation,
        "seed": config.seed,
    }


def build_torch_mlp(config: Any, data: TaskData) -> Any:
    """The reference MLP in PyTorch (``reference_tasks.model.torch_model.GrokMLP``) for ``config``.

    Built in float32; the trainer casts it to ``config.dtype``.
    """
    from reference_tasks.model import torch_model

    return torch_model.build_model(data.n_tokens, data.n_classes, **_mlp_options(config))


def build_keras_mlp(config: Any, data: TaskData) -> Any:
    """The reference MLP in Keras (``reference_tasks.model.keras_model``) for ``config``."""
    from reference_tasks.model import keras_model

    return keras_model.build_model(data.n_tokens, data.n_classes, dtype=config.dtype, **_mlp_options(config))


def _keras_snapshot(model: Any) -> dict[str, Any]:
    """The Keras MLP's weights under the PyTorch names and shapes (``model.spec.weight_layout``)."""
    from reference_tasks.model import keras_model

    return keras_model.snapshot_arrays(model)


def _keras_load_snapshot(model: Any, arrays: Any) -> None:
    """Assign the Keras MLP's weights from the snapshot layout (the inverse of the above)."""
    from reference_tasks.model import keras_model

    keras_model.load_arrays(model, dict(arrays))


#: The paper's MLP: embedding -> linear1 -> act (hidden1) -> linear2 -> act (hidden2) -> output.
REFERENCE_MLP = Model(
    name="reference MLP",
    probes=PROBES,
    headline_probe=HEADLINE_PROBE,
    torch=build_torch_mlp,
    keras=build_keras_mlp,
    piecewise_linear=lambda config: is_piecewise_linear(config.activation),
    keras_snapshot=_keras_snapshot,
    keras_load_snapshot=_keras_load_snapshot,
)


def modular_addition_task() -> Task:
    """Addition modulo ``p`` (option ``p``, default 31), every probe measured (the paper's Figure 3)."""
    return Task(
        name="modadd",
        data=modular_addition,
        model=REFERENCE_MLP,
        recipe=Recipe(weight_decay=PAPER_WEIGHT_DECAY, probes=PROBES),
        criterion=Criterion(),
        title="addition mod 31",
        measure_inputs=modular_addition_inputs("embedding.tables.0.weight"),
    )


def permutation_composition_task() -> Task:
    """Composition in ``S_n`` (option ``n``, default 4), weight decay 1.0 (docs/design.md, section 2)."""
    return Task(
        name="s4",
        data=permutation_composition,
        model=REFERENCE_MLP,
        recipe=Recipe(weight_decay=1.0),
        criterion=Criterion(),
        title="permutation composition in S4",
    )


def bitwise_xor_task() -> Task:
    """Bitwise XOR of ``n_bits``-bit integers (option ``n_bits``, default 5)."""
    return Task(
        name="xor",
        data=bitwise_xor,
        model=REFERENCE_MLP,
        recipe=Recipe(weight_decay=PAPER_WEIGHT_DECAY),
        criterion=Criterion(),
        title="5-bit XOR",
    )
