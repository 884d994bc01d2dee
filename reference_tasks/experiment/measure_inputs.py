"""The task-specific inputs of the progress measures (``"task:<key>"``, docs/design.md, section 6).

A task hands them to the measures through ``Task.measure_inputs``: a callable that receives a
:class:`MeasureContext` (the task's samples and options, the checkpoint's weights and the
run's final weights in the snapshot layout, the run's training samples) and returns the same
keys at every checkpoint. Two are written here, for the tasks of the paper's references:

- :func:`modular_addition_inputs`: ``modulus``, ``embedding`` (the operands' rows of an
  embedding table), ``key_frequencies`` (the top frequencies of the *final* embedding, as
  Nanda et al. take them) and ``train_mask`` (the training pairs): the Fourier measures;
- :func:`sparse_parity_inputs`: ``parity_signs`` (the ±1 inputs) and ``parity_subset``: the
  Fourier gap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmn_core import fourier
from reference_tasks.tasks import TaskData


@dataclass(frozen=True)
class MeasureContext:
    """What a task's ``measure_inputs`` reads at one checkpoint.

    Attributes
    ----------
    samples : TaskData
        Every sample of the task, in the order of its ``data``.
    options : mapping
        The run's task options (the task's defaults overridden by the run's).
    weights, final_weights : mapping of str to numpy.ndarray
        The weights at the checkpoint and at the run's end, in the snapshot layout.
    train_mask : numpy.ndarray
        ``(n_samples,)`` booleans: the run's training samples.
    """

    samples: TaskData
    options: Mapping[str, Any]
    weights: Mapping[str, np.ndarray]
    final_weights: Mapping[str, np.ndarray]
    train_mask: np.ndarray


def _table(weights: Mapping[str, np.ndarray], name: str, rows: int) -> np.ndarray:
    if name not in weights:
        raise KeyError(f"the weights hold no embedding {name!r} (they hold {sorted(weights)})")
    return np.asarray(weights[name], dtype=np.float64)[:rows]


def modular_addition_inputs(embedding_weight: str) -> Callable[[MeasureContext], dict[str, Any]]:
    """The Fourier measures' inputs of addition mod ``p`` whose samples are the ``p²`` pairs
    ``(a, b)`` in row-major order and whose operand ``x`` is row ``x`` of ``embedding_weight``."""

    def inputs(context: MeasureContext) -> dict[str, Any]:
        p = context.samples.n_classes
        final = _table(context.final_weights, embedding_weight, p)
        return {
            "modulus": p,
            "embedding": _table(context.weights, embedding_weight, p),
            "key_frequencies": fourier.top_frequencies(final),
            "train_mask": context.train_mask,
        }

    return inputs


def sparse_parity_inputs(
    subset: Callable[[Mapping[str, Any]], np.ndarray],
) -> Callable[[MeasureContext], dict[str, Any]]:
    """The Fourier gap's inputs of sparse parity: the ±1 inputs and the hidden subset, which
    ``subset(task_options)`` draws as the task's data does."""

    def inputs(context: MeasureContext) -> dict[str, Any]:
        return {"parity_signs": np.asarray(context.samples.inputs), "parity_subset": subset(context.options)}

    return inputs
