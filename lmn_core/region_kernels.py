"""Numba kernels of the exact linear regions: zero crossings along segments, layer by layer.

A block of segments is held as a ragged table: segment ``s`` owns rows
``offsets[s] .. offsets[s + 1]`` of ``positions`` (its points' ``λ``, ascending, from 0 to
1) and of ``rows`` (one layer's pre-activations at those points). Between two
consecutive points every pre-activation is affine in ``λ``, so a unit changes sign
inside that interval exactly when its values at the two ends have strictly opposite
signs, and it crosses zero where the straight line between them does (docs/design.md,
section 1.6). Values within a unit's ``bound`` of zero count as zero: a unit that
touches zero, or runs along it, is no crossing; a unit that bends nothing (slope 1) has
an infinite bound. Crossings closer than ``POSITION_TOLERANCE`` in ``λ`` to each other or
to a point already there are one breakpoint.
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = {"cache": True, "nogil": True}

# Two breakpoints closer than this in λ (of a segment of length 1) are one: coincident
# crossings of several units, computed with different rounding.
POSITION_TOLERANCE = 1e-12


@numba.njit(**_JIT)
def _sign_changes(low: np.ndarray, high: np.ndarray, bounds: np.ndarray) -> int:
    """How many units have strictly opposite signs, beyond their bounds, at the two ends.

    Written without branches, so that it runs as one vectorized pass.
    """
    count = 0
    for unit in range(low.shape[0]):
        a, b, bound = low[unit], high[unit], bounds[unit]
        count += ((a > bound) & (b < -bound)) | ((a < -bound) & (b > bound))
    return count


@numba.njit(**_JIT)
def _interval_crossings(low: np.ndarray, high: np.ndarray, bounds: np.ndarray, out: np.ndarray) -> int:
    """Fill ``out`` with the sorted fractions ``r`` in (0, 1) where a unit changes sign.

    ``low`` and ``high`` are the pre-activations at the interval's two ends; returns how
    many fractions were written (duplicates included).
    """
    if _sign_changes(low, high, bounds) == 0:
        return 0
    count = 0
    for unit in range(low.shape[0]):
        a, b, bound = low[unit], high[unit], bounds[unit]
        if (a > bound and b < -bound) or (a < -bound and b > bound):
            out[count] = a / (a - b)
            count += 1
    out[:count].sort()
    return count


@numba.njit(**_JIT)
def _distinct_positions(start: float, stop: float, fractions: np.ndarray, count: int, out: np.ndarray) -> int:
    """Write the distinct breakpoints ``start + r (stop - start)`` into ``out`` as fractions ``r``.

    Breakpoints within ``POSITION_TOLERANCE`` of the last one kept, of ``start`` or of
    ``stop`` are dropped; returns how many were kept.
    """
    kept = 0
    last = start
    length = stop - start
    for k in range(count):
        position = start + fractions[k] * length
        if position - last <= POSITION_TOLERANCE or stop - position <= POSITION_TOLERANCE:
            continue
        out[kept] = fractions[k]
        last = position
        kept += 1
    return kept


@numba.njit(**_JIT)
def count_pieces(
    positions: np.ndarray,
    rows: np.ndarray,
    offsets: np.ndarray,
    bounds: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[s]``: the linear pieces of segment ``s`` once this (last) layer's crossings are added."""
    fractions = np.empty(rows.shape[1])
    kept = np.empty(rows.shape[1])
    for segment in range(offsets.shape[0] - 1):
        first = offsets[segment]
        last = offsets[segment + 1] - 1
        pieces = last - first
        for point in range(first, last):
            count = _interval_crossings(rows[point], rows[point + 1], bounds, fractions)
            pieces += _distinct_positions(positions[point], positions[point + 1], fractions, count, kept)
        out[segment] = pieces


@numba.njit(**_JIT)
def insert_crossings(
    positions: np.ndarray,
    rows: np.ndarray,
    offsets: np.ndarray,
    bounds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table with every distinct crossing of this layer inserted as a point of its own.

    A new point's row is the straight line between its neighbours at its ``λ`` (exact:
    the layer is affine in ``λ`` there). Returns new ``positions``, ``rows`` and ``offsets``.
    """
    n_points, width = rows.shape
    fractions = np.empty(width)
    kept = np.empty(width)
    capacity = n_points
    for point in range(n_points - 1):
        capacity += _interval_crossings(rows[point], rows[point + 1], bounds, fractions)
    new_positions = np.empty(capacity)
    new_rows = np.empty((capacity, width))
    new_offsets = np.empty_like(offsets)
    filled = 0
    new_offsets[0] = 0
    for segment in range(offsets.shape[0] - 1):
        first = offsets[segment]
        last = offsets[segment + 1] - 1
        for point in range(first, last + 1):
            new_positions[filled] = positions[point]
            new_rows[filled] = rows[point]
            filled += 1
            if point == last:
                break
            count = _interval_crossings(rows[point], rows[point + 1], bounds, fractions)
            start = positions[point]
            stop = positions[point + 1]
            n_kept = _distinct_positions(start, stop, fractions, count, kept)
            for k in range(n_kept):
                r = kept[k]
                new_positions[filled] = start + r * (stop - start)
                new_rows[filled] = rows[point] + r * (rows[point + 1] - rows[point])
                filled += 1
        new_offsets[segment + 1] = filled
    return new_positions[:filled], new_rows[:filled], new_offsets


@numba.njit(**_JIT)
def count_one_stage_pieces(
    pre: np.ndarray, bounds: np.ndarray, pair_i: np.ndarray, pair_j: np.ndarray, out: np.ndarray
) -> None:
    """``out[s]``: pieces of segment ``(pair_i[s], pair_j[s])`` of a head with one hinge layer.

    ``pre`` holds the samples' pre-activations of that layer, affine along every segment.
    """
    fractions = np.empty(pre.shape[1])
    kept = np.empty(pre.shape[1])
    for segment in range(pair_i.shape[0]):
        count = _interval_crossings(pre[pair_i[segment]], pre[pair_j[segment]], bounds, fractions)
        out[segment] = 1 + _distinct_positions(0.0, 1.0, fractions, count, kept)


@numba.njit(**_JIT)
def _first_stage_breakpoints(
    start: np.ndarray, end: np.ndarray, bounds: np.ndarray, positions: np.ndarray, units: np.ndarray
) -> int:
    """Where each unit of an affine first stage crosses zero, sorted by ``λ``; returns how many."""
    count = 0
    for unit in range(start.shape[0]):
        a, b, bound = start[unit], end[unit], bounds[unit]
        if (a > bound and b < -bound) or (a < -bound and b > bound):
            positions[count] = a / (a - b)
            units[count] = unit
            count += 1
    order = np.argsort(positions[:count])
    positions[:count] = positions[:count][order]
    units[:count] = units[:count][order]
    return count


@numba.njit(**_JIT)
def _switch(
    unit: int,
    after: float,
    slopes: np.ndarray,
    slopes1: np.ndarray,
    start: np.ndarray,
    delta: np.ndarray,
    columns2: np.ndarray,
    offset: np.ndarray,
    rate: np.ndarray,
) -> None:
    """Unit ``unit`` of the first layer takes the slope of the side it is on after its crossing."""
    new = 1.0 if after > 0 else slopes1[unit]
    change = new - slopes[unit]
    slopes[unit] = new
    column = columns2[unit]
    for row in range(column.shape[0]):
        offset[row] += change * start[unit] * column[row]
        rate[row] += change * delta[unit] * column[row]


@numba.njit(**_JIT)
def _start_slopes(start: np.ndarray, delta: np.ndarray, slopes1: np.ndarray, slopes: np.ndarray) -> None:
    """Each first-layer unit's slope just after ``λ = 0`` (a unit at zero takes the side it moves to)."""
    for unit in range(start.shape[0]):
        rising = start[unit] > 0 or (start[unit] == 0 and delta[unit] > 0)
        slopes[unit] = 1.0 if rising else slopes1[unit]


@numba.njit(**_JIT)
def _affine_at(offset: np.ndarray, rate: np.ndarray, position: float, out: np.ndarray) -> None:
    for row in range(out.shape[0]):
        out[row] = offset[row] + position * rate[row]


@numba.njit(**_JIT)
def count_two_stage_pieces(
    pre1: np.ndarray,
    pre2: np.ndarray,
    slopes1: np.ndarray,
    bounds1: np.ndarray,
    columns2: np.ndarray,
    bounds2: np.ndarray,
    rates: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[s]``: pieces of each segment of a head with two hinge layers.

    The first layer's pre-activations ``z1`` are affine along the whole segment, so the
    second's, ``z2(λ) = W2 (s ⊙ z1(λ)) + b2``, is ``c + λ d`` between two breakpoints of
    the first, and a breakpoint where unit ``u`` changes its slope changes ``c`` and
    ``d`` by ``W2[:, u]`` times that unit's terms (``columns2`` is ``W2.T``): a rank-one
    update instead of evaluating ``z2`` at every breakpoint. At the segment's ends ``z2``
    is the samples' own ``pre2``; ``rates[s]`` is segment ``s``'s ``d`` on its first
    interval (computed for the block at once, one matrix product).
    """
    width1, width2 = pre1.shape[1], pre2.shape[1]
    positions, units = np.empty(width1), np.empty(width1, dtype=np.int64)
    fractions, kept, slopes = np.empty(width2), np.empty(width2), np.empty(width1)
    offset, rate = np.empty(width2), np.empty(width2)  # c and d of the current interval
    value_left, value_right = np.empty(width2), np.empty(width2)
    for segment in range(pair_i.shape[0]):
        start, end = pre1[pair_i[segment]], pre1[pair_j[segment]]
        delta = end - start
        count = _first_stage_breakpoints(start, end, bounds1, positions, units)
        _start_slopes(start, delta, slopes1, slopes)
        rate[:] = rates[segment]
        offset[:] = pre2[pair_i[segment]]
        value_left[:] = offset
        left, pieces, k = 0.0, 1, 0
        while k < count and positions[k] <= POSITION_TOLERANCE:  # coincident with λ = 0
            _switch(units[k], delta[units[k]], slopes, slopes1, start, delta, columns2, offset, rate)
            k += 1
        while True:
            right = 1.0 if k == count or 1.0 - positions[k] <= POSITION_TOLERANCE else positions[k]
            if right == 1.0:
                value_right[:] = pre2[pair_j[segment]]
            else:
                _affine_at(offset, rate, right, value_right)
            n_cross = _interval_crossings(value_left, value_right, bounds2, fractions)
            if n_cross:
                pieces += _distinct_positions(left, right, fractions, n_cross, kept)
            if right == 1.0:
                break
            pieces += 1
            while k < count and positions[k] - right <= POSITION_TOLERANCE:
                _switch(units[k], delta[units[k]], slopes, slopes1, start, delta, columns2, offset, rate)
                k += 1
            # z2 is continuous: the next interval starts where this one ended
            left = right
            value_left, value_right = value_right, value_left
        out[segment] = pieces
