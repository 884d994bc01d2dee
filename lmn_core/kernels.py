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
    connectivity: np.ndarray,
    non_finite_out: np.ndarray,
) -> bool:
    """Reduce each pair's outputs along its segment to ``L_ij = mean_k r²``, written to
    ``connectivity[i, j]`` and ``connectivity[j, i]``; return whether any pair's is not finite.

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
    ``p`` is not finite (a NaN or infinite output, or an overflow); its ``L_ij`` is written
    all the same.
    """
    n_points = centered_lambdas.shape[0]
    n_outputs = endpoint_outputs.shape[1]
    n_pairs = pair_i.shape[0]
    sxx = 0.0
    for t in range(n_points):
        sxx += centered_lambdas[t] * centered_lambdas[t]
    tile_length = TILE_PAIRS * row_stride
    # six buffers of their own, not rows of one array: LLVM vectorizes the loops below only
    # when it can tell that they do not overlap; placed apart modulo 4096 (docs/design.md
    # 4.2); zeros, so that the unused sums between rows start from a finite value
    sums = (
        placed_zeros(tile_length, 0),
        placed_zeros(tile_length, 1),
        placed_zeros(tile_length, 2),
        placed_zeros(tile_length, 3),
        placed_zeros(tile_length, 4),
        placed_zeros(tile_length, 5),
    )
    tile_scales = np.zeros(tile_length)
    for q in range(TILE_PAIRS):
        tile_scales[q * row_stride : q * row_stride + n_outputs] = output_scales
    r_squared = np.empty(tile_length)
    finite = np.empty(tile_length, dtype=np.bool_)
    for first in range(0, n_pairs, TILE_PAIRS):
        size = min(TILE_PAIRS, n_pairs - first)
        # the tile's rows end to end, up to the last row's last value
        width = (size - 1) * row_stride + n_outputs
        _start_tile(
            endpoint_outputs, pair_i, pair_j, first, size, row_stride, width, centered_lambdas[-1], sums
        )
        for t in range(0, n_points - 3, 2):  # two λ a pass: half the loads and stores of the sums
            offset = (t * n_pairs + first) * row_stride
            next_offset = offset + n_pairs * row_stride
            _add_two_rows(
                interior_outputs[offset : offset + width],
                interior_outputs[next_offset : next_offset + width],
                centered_lambdas[t + 1],
                centered_lambdas[t + 2],
                sums,
            )
        if (n_points - 2) % 2:
            offset = ((n_points - 3) * n_pairs + first) * row_stride
            _add_row(interior_outputs[offset : offset + width], centered_lambdas[n_points - 2], sums)
        _tile_r_squared(sums, tile_scales, width, n_points, sxx, const_rtol, const_atol, r_squared, finite)
        for q in range(size):
            p = first + q
            non_finite_out[p] = not _store_pair_mean(
                r_squared, finite, q * row_stride, n_outputs, connectivity, pair_i[p], pair_j[p]
            )
    return non_finite_out.any()


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


@numba.njit(**_JIT, inline="always")
def _start_tile(
    endpoint_outputs: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    first: int,
    size: int,
    row_stride: int,
    width: int,
    c_end: float,
    sums: tuple[np.ndarray, ...],
) -> None:
    """Start a tile's sums from its segments' endpoints (shifted by each start value), pair
    ``q``'s at ``q * row_stride``: the endpoints copied in, then the sums from them in one
    vectorized pass."""
    origin, sum_d, sum_dd, sum_cd, low, high = sums
    n_outputs = endpoint_outputs.shape[1]
    for q in range(size):
        start = endpoint_outputs[pair_i[first + q]]
        end = endpoint_outputs[pair_j[first + q]]
        base = q * row_stride
        for k in range(n_outputs):
            origin[base + k] = start[k]
            sum_d[base + k] = end[k] - start[k]
    for e in range(width):
        d = sum_d[e]
        sum_dd[e] = d * d
        sum_cd[e] = c_end * d
        low[e] = min(d, 0.0)
        high[e] = max(d, 0.0)


@numba.njit(**_JIT, inline="always")
def _add_row(run: np.ndarray, c: float, sums: tuple[np.ndarray, ...]) -> None:
    """Add one ``λ``'s outputs ``run`` (the tile's rows end to end) to the sums."""
    origin, sum_d, sum_dd, sum_cd, low, high = sums
    for e in range(run.shape[0]):
        d = np.float64(run[e]) - origin[e]
        sum_d[e] += d
        sum_dd[e] += d * d
        sum_cd[e] += c * d
        low[e] = min(low[e], d)
        high[e] = max(high[e], d)


@numba.njit(**_JIT, inline="always")
def _add_two_rows(
    run: np.ndarray, next_run: np.ndarray, c: float, next_c: float, sums: tuple[np.ndarray, ...]
) -> None:
    """:func:`_add_row` for two ``λ`` in turn, in one pass: the same sums in the same order."""
    origin, sum_d, sum_dd, sum_cd, low, high = sums
    for e in range(run.shape[0]):
        d = np.float64(run[e]) - origin[e]
        next_d = np.float64(next_run[e]) - origin[e]
        sum_d[e] = (sum_d[e] + d) + next_d
        sum_dd[e] = (sum_dd[e] + d * d) + next_d * next_d
        sum_cd[e] = (sum_cd[e] + c * d) + next_c * next_d
        low[e] = min(min(low[e], d), next_d)
        high[e] = max(max(high[e], d), next_d)


# numpy's error model: a division by zero gives inf or NaN rather than a branch that raises,
# so that the loop vectorizes (a NaN r² is reported as non-finite by _store_pair_mean)
@numba.njit(**_JIT, error_model="numpy")
def _tile_r_squared(
    sums: tuple[np.ndarray, ...],
    tile_scales: np.ndarray,
    width: int,
    n_points: int,
    sxx: float,
    const_rtol: float,
    const_atol: float,
    r_squared: np.ndarray,
    finite: np.ndarray,
) -> None:
    """Each of a tile's dimensions' r² (1 when its spread is within the constant tolerance)
    and whether its sums are finite; ``tile_scales`` holds ``output_scales`` at each pair's
    dimensions."""
    origin, sum_d, sum_dd, sum_cd, low, high = sums
    for e in range(width):
        syy = sum_dd[e] - sum_d[e] * sum_d[e] / n_points
        finite[e] = np.isfinite(syy) and np.isfinite(sum_cd[e])
        scale = max(tile_scales[e], abs(origin[e]) + max(-low[e], high[e]))
        fitted = min(sum_cd[e] * sum_cd[e] / (sxx * syy), 1.0)
        r_squared[e] = 1.0 if high[e] - low[e] <= const_rtol * scale + const_atol else fitted


@numba.njit(**_JIT)
def _store_pair_mean(
    r_squared: np.ndarray,
    finite: np.ndarray,
    base: int,
    n_outputs: int,
    connectivity: np.ndarray,
    i: int,
    j: int,
) -> bool:
    """Write one pair's ``mean_k r²`` (summed in order of ``k``) at ``L_ij`` and ``L_ji``; return
    whether it and every sum were finite."""
    total = 0.0
    all_finite = True
    for e in range(base, base + n_outputs):
        total += r_squared[e]
        all_finite = all_finite and finite[e]
    connectivity[i, j] = connectivity[j, i] = total / n_outputs
    return all_finite and np.isfinite(total)
