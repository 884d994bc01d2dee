"""Numba kernels: enumerate pairs, build interpolated points, reduce outputs to r².

Each kernel works on one block of pairs ``i < j``, is compiled once (``cache=True``)
per dtype combination and releases the GIL (``nogil=True``), so that a worker thread
runs it while the calling thread evaluates ``f`` on another block. All sums are
accumulated in float64.
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = {"cache": True, "nogil": True}


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
    """Fill ``out[p * m + t] = x_i + λ_t (x_j - x_i)`` for the ``m`` interior λ of pair ``p``.

    ``samples`` is ``(N, D)``; ``out`` is ``(n_pairs * m, D)`` in the samples' dtype.
    The point is computed in float64 and rounded once to the output dtype.
    """
    n_interior = interior_lambdas.shape[0]
    n_features = samples.shape[1]
    start = np.empty(n_features)
    step = np.empty(n_features)
    for p in range(pair_i.shape[0]):
        xi = samples[pair_i[p]]
        xj = samples[pair_j[p]]
        for d in range(n_features):
            start[d] = xi[d]
            step[d] = np.float64(xj[d]) - start[d]
        for t in range(n_interior):
            lam = interior_lambdas[t]
            row = out[p * n_interior + t]
            for d in range(n_features):
                row[d] = start[d] + lam * step[d]


@numba.njit(**_JIT)
def reduce_to_connectivity(
    endpoint_outputs: np.ndarray,
    interior_outputs: np.ndarray,
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

    ``endpoint_outputs`` is ``f(X)`` ``(N, K)`` float64; ``interior_outputs`` is
    ``(n_pairs * (T - 2), K)``; ``centered_lambdas`` are the ``T`` values
    ``λ_t - mean(λ)``. The sums run in one pass over the values shifted by the
    segment's first value, in float64. A dimension whose spread along the segment is
    within ``const_rtol * scale + const_atol`` counts as linear (r² = 1); ``scale`` is
    the larger of ``output_scales[k]`` and the segment's largest magnitude (bounded
    above by ``|start| + largest excursion``). ``non_finite_out[p]`` is set when a sum
    of pair ``p`` is not finite (a NaN or infinite output, or an overflow).
    """
    n_points = centered_lambdas.shape[0]
    n_interior = n_points - 2
    n_outputs = endpoint_outputs.shape[1]
    n_pairs = pair_i.shape[0]
    sxx = 0.0
    for t in range(n_points):
        sxx += centered_lambdas[t] * centered_lambdas[t]
    c_end = centered_lambdas[n_points - 1]
    accumulators = np.empty((6, n_outputs))
    origin = accumulators[0]
    sum_d = accumulators[1]
    sum_dd = accumulators[2]
    sum_cd = accumulators[3]
    low = accumulators[4]
    high = accumulators[5]
    for p in range(n_pairs):
        start = endpoint_outputs[pair_i[p]]
        end = endpoint_outputs[pair_j[p]]
        for k in range(n_outputs):
            d = end[k] - start[k]
            origin[k] = start[k]
            sum_d[k] = d
            sum_dd[k] = d * d
            sum_cd[k] = c_end * d
            low[k] = min(d, 0.0)
            high[k] = max(d, 0.0)
        for t in range(n_interior):
            row = interior_outputs[p * n_interior + t]
            c = centered_lambdas[t + 1]
            for k in range(n_outputs):
                d = np.float64(row[k]) - origin[k]
                sum_d[k] += d
                sum_dd[k] += d * d
                sum_cd[k] += c * d
                low[k] = min(low[k], d)
                high[k] = max(high[k], d)
        total = 0.0
        finite = True
        for k in range(n_outputs):
            syy = sum_dd[k] - sum_d[k] * sum_d[k] / n_points
            finite = finite and np.isfinite(syy) and np.isfinite(sum_cd[k])
            scale = max(output_scales[k], abs(origin[k]) + max(-low[k], high[k]))
            if high[k] - low[k] <= const_rtol * scale + const_atol:
                total += 1.0
            else:
                total += min(sum_cd[k] * sum_cd[k] / (sxx * syy), 1.0)
        connectivity_out[p] = total / n_outputs
        non_finite_out[p] = not finite
