"""The built-in progress measures (docs/design.md, sections 6.2 to 6.6), each a ``Measure``.

=========================  ==========================================================  =========
name                       needs                                                        per probe
=========================  ==========================================================  =========
``l2``                     weights                                                      no
``weight_movement``        weights, initial_weights                                     no
``effective_rank``         representations                                              yes
``local_complexity``       representations, pre_activations                             yes
``pieces_mean``            representations, pwl_head                                    yes
``fourier_share``          task:embedding                                               no
``restricted_loss``        outputs, task:modulus, task:key_frequencies                  no
``excluded_loss``          outputs, task:modulus, task:key_frequencies, task:train_mask no
``fourier_gap``            outputs, task:parity_signs, task:parity_subset               no
=========================  ==========================================================  =========

Task inputs: ``embedding`` is the modular-addition embedding table ``(p, d)``; ``modulus`` is
``p``; ``key_frequencies`` are the final checkpoint's :func:`~lmn_core.fourier.top_frequencies`
(a run computes them after training, from its last snapshot); ``train_mask`` marks the
training pairs; ``parity_signs`` are the sparse-parity inputs as ``±1`` and ``parity_subset``
the true subset. For ``fourier_gap`` the outputs are one score per sample or two logits (their
difference is the score).
"""

from __future__ import annotations

import numpy as np

from lmn_core import fourier, parity
from lmn_core.local_boundaries import local_complexity as _local_complexity
from lmn_core.parameters import l2 as _l2
from lmn_core.parameters import weight_movement as _weight_movement
from lmn_core.progress import Measure, MeasureInputs, progress_measure
from lmn_core.rankme import effective_rank as _effective_rank
from lmn_core.regions import linear_regions


@progress_measure(["weights"])
def l2(inputs: MeasureInputs) -> float:
    """The parameters' L2 norm."""
    return _l2(inputs.weights)


@progress_measure(["weights", "initial_weights"])
def weight_movement(inputs: MeasureInputs) -> float:
    """The parameters' L2 distance from their initial values."""
    return _weight_movement(inputs.weights, inputs.initial_weights)


@progress_measure(["representations"])
def effective_rank(inputs: MeasureInputs) -> float:
    """RankMe of the representations at the probe."""
    return _effective_rank(inputs.representations)


@progress_measure(["representations", "pre_activations"])
def local_complexity(inputs: MeasureInputs) -> float:
    """Mean units of the head changing sign in a cross-polytope around each sample."""
    return float(_local_complexity(inputs.representations, inputs.pre_activations))


@progress_measure(["representations", "pwl_head"])
def pieces_mean(inputs: MeasureInputs) -> float:
    """Exact mean linear pieces per segment of a piecewise-linear head."""
    return linear_regions(inputs.pwl_head, inputs.representations).pieces_mean


@progress_measure(["task:embedding"])
def fourier_share(inputs: MeasureInputs) -> float:
    """Share of the embedding's squared norm in its own top 5 frequencies."""
    embedding = inputs.task["embedding"]
    return fourier.fourier_norm_share(embedding, fourier.top_frequencies(embedding))


@progress_measure(["outputs", "task:modulus", "task:key_frequencies"])
def restricted_loss(inputs: MeasureInputs) -> float:
    """Loss on all pairs of the logits kept to the key frequencies."""
    task = inputs.task
    return fourier.restricted_loss(inputs.outputs, int(task["modulus"]), task["key_frequencies"])


@progress_measure(["outputs", "task:modulus", "task:key_frequencies", "task:train_mask"])
def excluded_loss(inputs: MeasureInputs) -> float:
    """Training loss of the logits with the key frequencies removed."""
    task = inputs.task
    return fourier.excluded_loss(
        inputs.outputs,
        int(task["modulus"]),
        task["key_frequencies"],
        np.asarray(task["train_mask"], dtype=bool),
    )


@progress_measure(["outputs", "task:parity_signs", "task:parity_subset"])
def fourier_gap(inputs: MeasureInputs) -> float:
    """Normalised Fourier coefficient on the true parity subset minus the largest on another."""
    outputs = np.asarray(inputs.outputs, dtype=np.float64)
    if outputs.ndim == 2 and outputs.shape[1] == 2:
        outputs = outputs[:, 0] - outputs[:, 1]
    return parity.fourier_gap(outputs, inputs.task["parity_signs"], inputs.task["parity_subset"]).gap


BUILTIN_MEASURES: dict[str, Measure] = {
    measure.name: measure
    for measure in (
        l2,
        weight_movement,
        effective_rank,
        local_complexity,
        pieces_mean,
        fourier_share,
        restricted_loss,
        excluded_loss,
        fourier_gap,
    )
}
