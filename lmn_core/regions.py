"""Exact linear regions of a piecewise-linear head on the LMN's samples (docs/design.md, section 1.6).

A head of affine maps and hinges (:class:`~lmn_core.pwl_head.PiecewiseLinearHead`) is
affine on each *linear region*: the set of inputs that share an *activation pattern*
(which of its bending units have a positive pre-activation). Regions are convex, so the
segment between two samples of one region stays in it, and the head is affine along it:
the LMN's ``L_ij`` is 1 there. This module counts, exactly and without sampling:

- the region of every sample (:func:`activation_patterns`, :func:`region_ids`), how many
  regions the samples occupy and the perplexity of their occupancy (``2 ** H`` of the
  regions' shares);
- the linear pieces along every segment the LMN walks (:func:`segment_pieces`): each
  pre-activation is affine in ``λ`` between breakpoints, so the breakpoints are found
  layer by layer from its zero crossings;
- the region connectivity matrix (1 where two samples share a region, else 0) and its
  LMN, which equals the occupancy perplexity (identity 1 of section 1.3).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmn_core import region_kernels
from lmn_core.kernels import fill_pairs
from lmn_core.pwl_head import PiecewiseLinearHead, Stage
from lmn_core.spectral import lmn_from_connectivity
from lmn_core.validation import checked_samples

# A pre-activation after the first hinge counts as zero within this fraction of its unit's
# magnitude (the largest sum of absolute terms over the samples): float64 rounding of its
# sum can give a value that is zero exactly the wrong sign.
ZERO_RTOL = 1e-12
# Segments whose points are handled at once (their table of points is about this many rows
# times the layer's width; points at one λ are never split).
BLOCK_SEGMENTS = 4096


@dataclass(frozen=True)
class RegionSummary:
    """The regions a head's samples occupy, and the pieces along the LMN's segments.

    Attributes
    ----------
    n_samples : int
        ``N``.
    n_regions : int
        Distinct activation patterns among the samples.
    region_perplexity : float
        ``2 ** H`` of the regions' shares of the samples: the region connectivity LMN.
    pieces_mean, pieces_median : float
        Linear pieces per segment over all ``N (N - 1) / 2`` pairs ``i < j`` (1 for ``N = 1``).
    """

    n_samples: int
    n_regions: int
    region_perplexity: float
    pieces_mean: float
    pieces_median: float


@dataclass(frozen=True, eq=False)
class _Prepared:
    """The samples' pre-activations at every stage, and each unit's bound of zero.

    A value within its unit's bound of zero counts as zero; units that bend nothing
    (slope 1) have an infinite bound, so they never cross.
    """

    n_samples: int
    stages: tuple[Stage, ...]
    pre_activations: tuple[np.ndarray, ...]
    bounds: tuple[np.ndarray, ...]

    def patterns(self) -> np.ndarray:
        """The samples' activation patterns (see :func:`activation_patterns`)."""
        columns = [z[:, stage.kinked] > 0 for stage, z in zip(self.stages, self.pre_activations, strict=True)]
        return np.concatenate(columns, axis=1) if columns else np.zeros((self.n_samples, 0), dtype=bool)


def _prepare(head: PiecewiseLinearHead, samples: Any) -> _Prepared:
    x = checked_samples(samples)
    n_samples = x.shape[0]
    x = x.reshape(n_samples, -1).astype(np.float64)
    stages = head.stages(x.shape[1])
    pre_activations, bounds = [], []
    for index, stage in enumerate(stages):
        z = np.ascontiguousarray(stage.pre_activations(x))
        pre_activations.append(z)
        # The first stage's values are given (the samples, or one affine map of them): exact.
        tolerance = np.zeros(z.shape[1]) if index == 0 else ZERO_RTOL * stage.magnitudes(x)
        bounds.append(np.where(stage.kinked, tolerance, np.inf))
        x = stage.activate(z)
    return _Prepared(n_samples, stages, tuple(pre_activations), tuple(bounds))


def activation_patterns(head: PiecewiseLinearHead, samples: Any) -> np.ndarray:
    """Each sample's activation pattern: ``(N, units)`` booleans, ``True`` where ``z > 0``.

    Only units that bend the head count (a unit of slope 1 is left out); layers come in
    order. A head without any has patterns of width 0: one region.
    """
    return _prepare(head, samples).patterns()


def region_ids(patterns: np.ndarray) -> np.ndarray:
    """``(N,)`` region labels ``0, 1, ...`` from activation patterns (equal patterns, equal label)."""
    patterns = np.asarray(patterns, dtype=bool)
    if patterns.ndim != 2:
        raise ValueError(f"activation patterns must be (N, units), got shape {patterns.shape}")
    packed = np.packbits(patterns, axis=1)
    _, labels = np.unique(packed, axis=0, return_inverse=True)
    return labels.reshape(-1).astype(np.int64)


def occupancy_perplexity(labels: np.ndarray) -> float:
    """``2 ** H`` of the shares of the samples in each region (``H`` in bits)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    shares = counts[counts > 0] / counts.sum()
    return float(2.0 ** -(shares * np.log2(shares)).sum())


def region_connectivity(labels: np.ndarray) -> np.ndarray:
    """The region connectivity matrix: ``R_ij = 1`` where samples ``i`` and ``j`` share a region."""
    labels = np.asarray(labels)
    return (labels[:, None] == labels[None, :]).astype(np.float64)


def region_lmn(labels: np.ndarray) -> float:
    """The LMN of the region connectivity matrix (equal to :func:`occupancy_perplexity`)."""
    return lmn_from_connectivity(region_connectivity(labels))


def all_pairs(n_samples: int) -> np.ndarray:
    """Every pair ``i < j`` of ``n_samples`` in row-major order, ``(N (N - 1) / 2, 2)``."""
    i, j = np.triu_indices(n_samples, k=1)
    return np.stack([i, j], axis=1)


def _pair_blocks(n_samples: int, pairs: np.ndarray | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    if pairs is not None:
        for start in range(0, len(pairs), BLOCK_SEGMENTS):
            yield pairs[start : start + BLOCK_SEGMENTS, 0], pairs[start : start + BLOCK_SEGMENTS, 1]
        return
    out_i, out_j = np.empty(BLOCK_SEGMENTS, np.int64), np.empty(BLOCK_SEGMENTS, np.int64)
    i, j = 0, 1
    while True:
        count, i, j = fill_pairs(n_samples, i, j, out_i, out_j)
        if count == 0:
            return
        yield out_i[:count].copy(), out_j[:count].copy()


def _table(
    prepared: _Prepared, pair_i: np.ndarray, pair_j: np.ndarray, *, count_last: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The segments' points after every stage's crossings, each layer evaluated at every point.

    Returns ``positions`` and ``offsets`` of the ragged table (see
    :mod:`lmn_core.region_kernels`); with ``count_last`` the last stage's crossings are
    only counted, and the pieces per segment come third.
    """
    n = pair_i.shape[0]
    offsets = np.arange(0, 2 * n + 1, 2, dtype=np.int64)
    positions = np.tile(np.array([0.0, 1.0]), n)
    rows = np.empty((2 * n, prepared.pre_activations[0].shape[1]))
    for index, stage in enumerate(prepared.stages):
        if index > 0:
            rows = stage.pre_activations(prepared.stages[index - 1].activate(rows))
        rows[offsets[:-1]] = prepared.pre_activations[index][pair_i]  # the ends: the samples' own values
        rows[offsets[1:] - 1] = prepared.pre_activations[index][pair_j]
        arguments = (positions, np.ascontiguousarray(rows), offsets, prepared.bounds[index])
        if count_last and index == len(prepared.stages) - 1:
            pieces = np.empty(n, dtype=np.int64)
            region_kernels.count_pieces(*arguments, pieces)
            return positions, offsets, pieces
        positions, rows, offsets = region_kernels.insert_crossings(*arguments)
    return positions, offsets, None


def segment_breakpoints(head: PiecewiseLinearHead, start: Any, end: Any) -> np.ndarray:
    """The ``λ`` in ``(0, 1)`` where the activation pattern changes along ``start + λ (end - start)``.

    Found layer by layer as :func:`segment_pieces` counts them (``method="table"``);
    ``len(breakpoints) + 1`` is that segment's pieces.
    """
    prepared = _prepare(head, np.stack([np.asarray(start), np.asarray(end)]))
    if not prepared.stages:
        return np.zeros(0)
    positions, _, _ = _table(prepared, np.array([0]), np.array([1]), count_last=False)
    return positions[1:-1]


def _block_pieces(prepared: _Prepared, pair_i: np.ndarray, pair_j: np.ndarray, method: str) -> np.ndarray:
    """The pieces of a block of segments: by the rank-one kernels for one or two hinge layers."""
    stages, pre = prepared.stages, prepared.pre_activations
    if method == "table" or len(stages) > 2:
        return _table(prepared, pair_i, pair_j, count_last=True)[2]
    pieces = np.empty(pair_i.shape[0], dtype=np.int64)
    if len(stages) == 1:
        region_kernels.count_one_stage_pieces(pre[0], prepared.bounds[0], pair_i, pair_j, pieces)
        return pieces
    weight = stages[1].weight if stages[1].weight is not None else np.eye(pre[0].shape[1])
    start, delta = pre[0][pair_i], pre[0][pair_j] - pre[0][pair_i]
    rising = (start > 0) | ((start == 0) & (delta > 0))
    rates = np.ascontiguousarray((np.where(rising, 1.0, stages[0].slopes) * delta) @ weight.T)
    columns = np.ascontiguousarray(weight.T)
    region_kernels.count_two_stage_pieces(
        pre[0], pre[1], stages[0].slopes, prepared.bounds[0], columns, prepared.bounds[1], rates,
        pair_i, pair_j, pieces,
    )  # fmt: skip
    return pieces


def _checked_pairs(pairs: Any, n_samples: int) -> np.ndarray:
    array = np.asarray(pairs)
    if array.ndim != 2 or array.shape[1] != 2 or (array.size and array.dtype.kind not in "iu"):
        raise ValueError(f"pairs must be (P, 2) integer indices, got shape {array.shape} dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= n_samples):
        raise ValueError(f"pairs must index the {n_samples} samples, got {array.min()}..{array.max()}")
    return array.astype(np.int64)


METHODS = ("auto", "table")


def segment_pieces(
    head: PiecewiseLinearHead,
    samples: Any,
    pairs: Any = None,
    *,
    method: str = "auto",
    progress: bool = False,
) -> np.ndarray:
    """The exact number of linear pieces of ``head`` along each segment between two samples.

    Parameters
    ----------
    head : PiecewiseLinearHead
        The head.
    samples : array_like
        ``(N, *s)`` inputs of the head.
    pairs : array_like, optional
        ``(P, 2)`` sample indices ``(i, j)``; by default every pair ``i < j`` in
        row-major order (the LMN's pairs, :func:`all_pairs`).
    method : {"auto", "table"}
        ``"table"`` evaluates every layer at every breakpoint of the layers before it;
        ``"auto"`` does so only for heads of three or more hinge layers, and otherwise
        updates the second layer's affine map along the segment one unit at a time
        (docs/design.md, section 1.6). Both count the same breakpoints.
    progress : bool
        Show a progress bar over the segments (needs tqdm).

    Returns
    -------
    numpy.ndarray
        ``(P,)`` int64: 1 plus the number of distinct breakpoints in ``0 < λ < 1``, where
        the activation pattern changes (a unit that only touches zero is none).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return _pieces(_prepare(head, samples), pairs, method, progress)


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="linear pieces", unit="segment")


def _pieces(prepared: _Prepared, pairs: Any, method: str, progress: bool) -> np.ndarray:
    n = prepared.n_samples
    chosen = None if pairs is None else _checked_pairs(pairs, n)
    total = n * (n - 1) // 2 if chosen is None else len(chosen)
    if not prepared.stages:
        return np.ones(total, dtype=np.int64)
    counts = [np.zeros(0, dtype=np.int64)]
    with _progress_bar(total, progress) as bar:
        for pair_i, pair_j in _pair_blocks(n, chosen):
            counts.append(_block_pieces(prepared, pair_i, pair_j, method))
            if bar is not None:
                bar.update(len(pair_i))
    return np.concatenate(counts)


def linear_regions(head: PiecewiseLinearHead, samples: Any, *, progress: bool = False) -> RegionSummary:
    """The occupied regions, their perplexity, and the pieces per segment over all pairs."""
    prepared = _prepare(head, samples)
    labels = region_ids(prepared.patterns())
    pieces = _pieces(prepared, None, "auto", progress)
    return RegionSummary(
        n_samples=int(labels.shape[0]),
        n_regions=int(labels.max()) + 1,
        region_perplexity=occupancy_perplexity(labels),
        pieces_mean=float(pieces.mean()) if pieces.size else 1.0,
        pieces_median=float(np.median(pieces)) if pieces.size else 1.0,
    )
