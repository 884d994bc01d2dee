"""Local complexity: activation boundaries near the samples (Humayun, Balestriero & Baraniuk 2024).

"Deep networks always grok" counts, around each sample, the neurons whose zero level set
(a hyperplane for a unit of the first layer, a bent surface after it) passes through a small
neighbourhood of the sample; the mean over the samples is the local complexity. The
neighbourhood is a cross-polytope: the convex hull of ``x ± r v_q`` for ``P / 2``
orthonormal directions ``v_q`` (``P`` vertices). A unit of a layer whose pre-activation
is affine in the input crosses that hull exactly when its values at the vertices do not all
share one sign; for later layers the vertices are pushed through the network and the same
test is the source's approximation. docs/design.md, section 6.3 states the constants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lmn_core.rankme import real_matrix

#: Vertices of the cross-polytope (the source's CIFAR-10 setting; ``P / 2`` directions).
DEFAULT_VERTICES = 40
#: Radius as a fraction of the representations' spread (RMS distance from their centroid).
RELATIVE_RADIUS = 0.01
#: Vertices evaluated per call of the pre-activation function, at most (blocks of samples).
BLOCK_ROWS = 16_384

PreActivations = Callable[[np.ndarray], Any]


def spread(Z: np.ndarray) -> float:
    """The spread of ``Z``: ``sqrt(mean_i ||z_i - mean(z)||^2)``, the RMS distance from the centroid."""
    centred = Z - Z.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(centred**2, axis=1))))


def cross_polytope_frame(dimension: int, vertices: int, seed: int = 0) -> np.ndarray:
    """``(vertices / 2, dimension)`` orthonormal rows: the directions of the neighbourhood.

    A seeded Gaussian matrix, orthonormalised by QR; one frame serves every sample, as in
    the source.
    """
    if vertices < 2 or vertices % 2:
        raise ValueError(f"local_complexity needs an even number of vertices >= 2, got {vertices}")
    if vertices // 2 > dimension:
        raise ValueError(
            f"local_complexity: {vertices} vertices need {vertices // 2} orthonormal directions, "
            f"but the representations have only {dimension} dimensions (at most {2 * dimension} vertices)"
        )
    gaussian = np.random.default_rng(seed).standard_normal((dimension, vertices // 2))
    q, r = np.linalg.qr(gaussian)
    return (q * np.sign(np.diag(r))).T


def _layers(result: Any, rows: int) -> list[np.ndarray]:
    """The pre-activation function's result as a list of ``(rows, width)`` float arrays."""
    layers = [result] if not isinstance(result, Sequence) or isinstance(result, str) else list(result)
    if not layers:
        raise ValueError("local_complexity's pre_activations returned no layers")
    arrays = []
    for index, layer in enumerate(layers):
        array = np.asarray(layer)
        if array.dtype.kind not in "fiu" or array.ndim < 1 or array.shape[0] != rows:
            raise ValueError(
                f"local_complexity's pre_activations: layer {index} must be real with {rows} rows "
                f"(one per vertex), got shape {array.shape} and dtype {array.dtype}"
            )
        array = array.reshape(rows, -1)
        if not np.isfinite(array).all():
            raise ValueError(f"local_complexity's pre_activations: layer {index} holds NaN or infinity")
        arrays.append(array)
    return arrays


def _block_counts(Z: np.ndarray, offsets: np.ndarray, pre_activations: PreActivations) -> np.ndarray:
    """Crossing units per sample of one block: vertices of every sample, one call."""
    n_samples, n_vertices = Z.shape[0], offsets.shape[0]
    points = (Z[:, None, :] + offsets[None, :, :]).reshape(n_samples * n_vertices, Z.shape[1])
    counts = np.zeros(n_samples, dtype=np.int64)
    for layer in _layers(pre_activations(points.astype(Z.dtype, copy=False)), points.shape[0]):
        positive = (layer > 0).reshape(n_samples, n_vertices, -1)
        counts += np.count_nonzero(positive.any(axis=1) & ~positive.all(axis=1), axis=1)
    return counts


def local_complexity(
    Z: Any,
    pre_activations: PreActivations,
    *,
    radius: float | None = None,
    vertices: int | None = None,
    seed: int = 0,
    per_sample: bool = False,
) -> float | np.ndarray:
    """The mean number over the samples of the head's units that change sign near each sample.

    Around each row ``z`` of ``Z`` the neighbourhood is the cross-polytope with vertices
    ``z ± r v_q``, ``q = 1 … P/2``, ``v_q`` orthonormal (:func:`cross_polytope_frame`,
    seeded, shared by all samples). A unit counts for ``z`` when its pre-activation is
    positive at some vertices and not at others (a sign change at zero: the kink of a
    ReLU, the bend of SiLU or GELU near zero, the inflection of tanh); the units of every
    layer ``pre_activations`` returns are added up. For a unit affine in ``z`` (the head's
    first layer) this is exact: it counts the hyperplanes that cross the cross-polytope.

    Costs ``N * P`` evaluations of the head's layers: about ``P`` head evaluations per
    sample, far fewer than the LMN's ``(N - 1) (T - 2) / 2`` (``benchmarks/bench_measures.py``).

    Parameters
    ----------
    Z : array_like
        ``(N, d)`` representations at the probe.
    pre_activations : callable
        ``points (M, d) -> array (M, width)`` or a sequence of such arrays, one per layer of
        the head whose units bend (the pre-activations, before the activation).
    radius : float, optional
        ``r``; by default ``RELATIVE_RADIUS`` (0.01) times the spread of ``Z`` (:func:`spread`),
        so the measure does not change when ``Z`` and the head's first weights are rescaled
        together.
    vertices : int, optional
        ``P``, even; by default ``min(40, 2 d)``.
    seed : int
        The frame's seed.
    per_sample : bool
        Return the ``(N,)`` counts instead of their mean.

    Raises
    ------
    ValueError
        On a bad ``Z``, radius or vertex count, or layers of the wrong shape or non-finite.
    """
    samples = real_matrix(Z, "local_complexity's Z")
    n_vertices = min(DEFAULT_VERTICES, 2 * samples.shape[1]) if vertices is None else int(vertices)
    frame = cross_polytope_frame(samples.shape[1], n_vertices, seed)
    r = RELATIVE_RADIUS * spread(samples) if radius is None else float(radius)
    if not (np.isfinite(r) and r > 0):
        raise ValueError(f"local_complexity needs a finite radius > 0, got {r} (all samples equal?)")
    offsets = r * np.concatenate([frame, -frame])
    dtype = np.asarray(Z).dtype if np.asarray(Z).dtype in (np.float32, np.float64) else np.float64
    samples = samples.astype(dtype, copy=False)
    block = max(1, BLOCK_ROWS // n_vertices)
    counts = np.concatenate(
        [
            _block_counts(samples[start : start + block], offsets.astype(dtype), pre_activations)
            for start in range(0, samples.shape[0], block)
        ]
    )
    return counts if per_sample else float(counts.mean())
