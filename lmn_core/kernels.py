"""Numba kernels: enumerate pairs, build interpolated points, reduce outputs to r².

Each kernel works on one block of pairs ``i < j``, is compiled once (``cache=True``)
per dtype combination and releases the GIL (``nogil=True``), so that a worker thread
can run it while the calling thread evaluates ``f`` on another block. All sums are
accumulated in float64. A block's rows are ordered by ``λ`` first (row
``t * n_pairs + p``), so that the kernels' inner loops run over tiles of pairs laid
end to end rather than over one short row.
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = {"cache": True, "nogil": True}

# Pairs per tile: small enough that a tile's six float64 sums (16 x K values each) stay in cache.
TILE_PAIRS = 16
# The period of 4K aliasing, and the bytes from one of the six sums' start to the next's
# modulo it (a multiple of 64, so each starts on a cache line).
ALIASING_PERIOD = 4096
SUMS_SPACING = 640


@numba.njit(**_JIT)
def fill_pairs(
    n_samples: int, start_i: int, start_j: int, out_i: np.ndarray, out_j: np.ndarray
) -> tuple[int, int, int]:
    """Write the next pairs ``i < j`` in row-major order, from ``(start_i, start_j)``.

    Returns the number of pairs written and the pair that follows the last one.
    """
    i = start_i
    j = start_j
    count = 0
    capacity = out_i.shape[0]
    while count < capacity and i < n_samples - 1:
        out_i[count] = i
        out_j[count] = j
        count += 1
        j += 1
        if j == n_samples:
            i += 1
            j = i + 1
    return count, i, j


@numba.njit(**_JIT)
def build_interior_points(
    samples: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    interior_lambdas: np.ndarray,
    out: np.ndarray,
) -> None:
    """Fill ``out`` with ``x_i + λ_t (x_j - x_i)`` for every pair ``p`` and interior ``λ_t``.

    ``samples`` is ``(N, D)``; ``out`` is flat, ``n_interior * n_pairs * D`` long, in the
    samples' dtype, ordered by ``λ`` first: the point of pair ``p`` at ``λ_t`` is row
    ``t * n_pairs + p``. The point is computed in float64 and rounded once to the
    output dtype. Pairs go in tiles, so each ``λ`` writes one long contiguous run.
    """
    n_interior = interior_lambdas.shape[0]
    n_features = samples.shape[1]
    n_pairs = pair_i.shape[0]
    start = np.empty(TILE_PAIRS * n_features)
    step = np.empty(TILE_PAIRS * n_features)
    for first in range(0, n_pairs, TILE_PAIRS):
        width = min(TILE_PAIRS, n_pairs - first) * n_features
        for q in range(min(TILE_PAIRS, n_pairs - first)):
            xi = samples[pair_i[first + q]]
            xj = samples[pair_j[first + q]]
            tile_start = start[q * n_features : (q + 1) * n_features]
            tile_step = step[q * n_features : (q + 1) * n_features]
            for d in range(n_features):
                tile_start[d] = xi[d]
                tile_step[d] = np.float64(xj[d]) - tile_start[d]
        for t in range(n_interior):
            lam = interior_lambdas[t]
            offset = (t * n_pairs + first) * n_features
            run = out[offset : offset + width]
            for e in range(width):
                run[e] = start[e] + lam * step[e]


@numba.njit(**_JIT)
def reduce_to_connectivity(
    endpoint_outputs: np.ndarray,
    interior_outputs: np.ndarray,
    row_stride: int,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    centered_lambdas: np.ndarray,
    output_scales: np.ndarray,
    const_rtol: float,
    const_atol: float,
    connectivity_out: np.ndarray,
    non_finite_out: np.ndarray,
) -> None:
    """Reduce each pair's outputs along its segment to ``L_ij = mean_k r²``.

    ``endpoint_outputs`` is ``f(X)`` ``(N, K)`` float64; ``interior_outputs`` is flat, its
    ``(T - 2) * n_pairs`` rows ordered by ``λ`` first as :func:`build_interior_points` lays
    out the points, row ``r``'s ``K`` values starting at ``r * row_stride`` (``row_stride``
    at least ``K``: rows cut from wider ones are read in place; the values between them
    go into sums that are never used); ``centered_lambdas`` are the
    ``T`` values ``λ_t - mean(λ)``. The sums run in one pass over the values shifted by
    the segment's first value, in float64, over tiles of pairs so that each ``λ`` reads
    one contiguous run. A dimension whose spread along the segment is within
    ``const_rtol * scale + const_atol`` counts as linear (r² = 1); ``scale`` is the
    larger of ``output_scales[k]`` and the segment's largest magnitude (bounded above by
    ``|start| + largest excursion``). ``non_finite_out[p]`` is set when a sum of pair
    ``p`` is not finite (a NaN or infinite output, or an overflow).
    """
    n_points = centered_lambdas.shape[0]
    n_outputs = endpoint_outputs.shape[1]
    n_pairs = pair_i.shape[0]
    sxx = 0.0
    for t in range(n_points):
        sxx += centered_lambdas[t] * centered_lambdas[t]
    # six buffers of their own, not rows of one array: LLVM vectorizes the loop below only
    # when it can tell that they do not overlap; placed apart modulo 4096 (docs/design.md
    # 4.2); zeros, so that the unused sums between rows start from a finite value
    sums = (
        placed_zeros(TILE_PAIRS * row_stride, 0),
        placed_zeros(TILE_PAIRS * row_stride, 1),
        placed_zeros(TILE_PAIRS * row_stride, 2),
        placed_zeros(TILE_PAIRS * row_stride, 3),
        placed_zeros(TILE_PAIRS * row_stride, 4),
        placed_zeros(TILE_PAIRS * row_stride, 5),
    )
    origin, sum_d, sum_dd, sum_cd, low, high = sums
    for first in range(0, n_pairs, TILE_PAIRS):
        size = min(TILE_PAIRS, n_pairs - first)
        _start_tile(endpoint_outputs, pair_i, pair_j, first, size, row_stride, centered_lambdas[-1], sums)
        # the tile's rows end to end, up to the last row's last value
        width = (size - 1) * row_stride + n_outputs
        for t in range(n_points - 2):
            c = centered_lambdas[t + 1]
            offset = (t * n_pairs + first) * row_stride
            run = interior_outputs[offset : offset + width]
            for e in range(width):
                d = np.float64(run[e]) - origin[e]
                sum_d[e] += d
                sum_dd[e] += d * d
                sum_cd[e] += c * d
                low[e] = min(low[e], d)
                high[e] = max(high[e], d)
        for q in range(size):
            connectivity_out[first + q], finite = _pair_r_squared(
                sums, q * row_stride, n_outputs, n_points, sxx, output_scales, const_rtol, const_atol
            )
            non_finite_out[first + q] = not finite


@numba.njit(**_JIT)
def placed_zeros(n: int, index: int) -> np.ndarray:
    """``n`` float64 zeros in a fresh buffer, starting at ``index * SUMS_SPACING`` modulo
    :data:`ALIASING_PERIOD`.

    The reduction's loop loads and stores six arrays side by side; two whose addresses
    nearly agree modulo 4096 make the CPU take a load for one of a pending store to the
    other (4K aliasing), and where the allocator puts them differs between processes
    (measured in docs/design.md 4.2).
    """
    buffer = np.zeros(n + ALIASING_PERIOD // 8)
    offset = ((index * SUMS_SPACING - buffer.ctypes.data) % ALIASING_PERIOD) // 8
    return buffer[offset : offset + n]


@numba.njit(**_JIT)
def _start_tile(
    endpoint_outputs: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    first: int,
    size: int,
    row_stride: int,
    c_end: float,
    sums: tuple[np.ndarray, ...],
) -> None:
    """Start a tile's sums from its segments' endpoints (shifted by each start value), pair
    ``q``'s at ``q * row_stride``."""
    origin, sum_d, sum_dd, sum_cd, low, high = sums
    n_outputs = endpoint_outputs.shape[1]
    for q in range(size):
        start = endpoint_outputs[pair_i[first + q]]
        end = endpoint_outputs[pair_j[first + q]]
        for k in range(n_outputs):
            e = q * row_stride + k
            d = end[k] - start[k]
            origin[e] = start[k]
            sum_d[e] = d
            sum_dd[e] = d * d
            sum_cd[e] = c_end * d
            low[e] = min(d, 0.0)
            high[e] = max(d, 0.0)


@numba.njit(**_JIT)
def _pair_r_squared(
    sums: tuple[np.ndarray, ...],
    base: int,
    n_outputs: int,
    n_points: int,
    sxx: float,
    output_scales: np.ndarray,
    const_rtol: float,
    const_atol: float,
) -> tuple[float, bool]:
    """One pair's ``mean_k r²`` from its sums, and whether every sum was finite."""
    origin, sum_d, sum_dd, sum_cd, low, high = sums
    total = 0.0
    finite = True
    for k in range(n_outputs):
        e = base + k
        syy = sum_dd[e] - sum_d[e] * sum_d[e] / n_points
        finite = finite and np.isfinite(syy) and np.isfinite(sum_cd[e])
        scale = max(output_scales[k], abs(origin[e]) + max(-low[e], high[e]))
        if high[e] - low[e] <= const_rtol * scale + const_atol:
            total += 1.0
        else:
            total += min(sum_cd[e] * sum_cd[e] / (sxx * syy), 1.0)
    return total / n_outputs, finite
