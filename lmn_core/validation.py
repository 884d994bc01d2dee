"""Checks of what users hand to ``lmn_core`` and of what their functions return.

Every error says what was wrong and where (which sample, which pair, which λ).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np


class FunctionError(RuntimeError):
    """The measured function raised: the message says which part, on which input; the cause is chained."""

    @classmethod
    def raised_by(
        cls, what: str, batch: Any, error: BaseException, where: str | None = None
    ) -> FunctionError:
        """The error for ``error``, raised by ``what`` (``"f"``, ``"the head of the cut at ..."``)
        on ``batch`` (an array or tensor), which is ``where`` when given (``"samples 0..9"``).

        Raise it ``from error`` so that the original is chained.
        """
        on = f"an {describe_input(batch)}" if where is None else f"{where} ({describe_input(batch)})"
        return cls(f"{what} raised {type(error).__name__} on {on}: {error}")


def describe_input(batch: Any) -> str:
    """``input of shape (M, ...) and dtype D`` of an array or tensor, for error messages."""
    return f"input of shape {tuple(batch.shape)} and dtype {batch.dtype}"


def call_function(f: Callable[[Any], Any], batch: Any, what: str) -> Any:
    """``f(batch)``; what ``f`` raises comes back as a :class:`FunctionError` naming ``what`` and the input.

    An error that already names its part (a :class:`FunctionError` raised by an adapter) passes
    as it is.
    """
    try:
        return f(batch)
    except FunctionError:
        raise
    except Exception as error:
        raise FunctionError.raised_by("f", batch, error, what) from error


def checked_samples(samples: Any) -> np.ndarray:
    """Return the samples as a float32/float64 array of shape ``(N, *s)``, or raise."""
    array = np.asarray(samples)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"samples must be real numbers, got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError("samples must have shape (N, *sample_shape), got a scalar")
    if array.shape[0] == 0:
        raise ValueError("no samples: X has N = 0 rows; the LMN needs at least one")
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    flat = array.reshape(array.shape[0], -1)
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        index = int(np.argmin(finite))
        raise ValueError(f"sample {index} of X is not finite (it holds NaN or infinity)")
    return array


def checked_n_points(n_points: Any) -> int:
    if isinstance(n_points, bool) or not isinstance(n_points, numbers.Integral):
        raise TypeError(f"n_points must be an integer, got {n_points!r}")
    if n_points < 3:
        raise ValueError(f"n_points must be at least 3 for r² to mean anything, got {n_points}")
    return int(n_points)


def checked_outputs(outputs: Any, n_rows: int, what: str) -> np.ndarray:
    """Return ``f``'s outputs as a float array ``(n_rows, d2)`` of contiguous rows, or raise.

    Rows cut from wider ones (a view ``wide[:, :d2]``) are kept in place; other layouts
    are copied (:func:`row_stride` says how far apart the rows are).
    """
    try:
        array = np.asarray(outputs)
    except Exception as error:
        raise TypeError(
            f"f returned {type(outputs).__name__}, which is not convertible to a NumPy array "
            f"({what}); wrap framework models with an adapter from `adapters`"
        ) from error
    if array.dtype.kind not in "fiub":
        raise TypeError(f"f returned dtype {array.dtype} ({what}); outputs must be real numbers")
    if array.ndim == 0 or array.shape[0] != n_rows:
        got = "a scalar" if array.ndim == 0 else f"{array.shape[0]} rows (shape {array.shape})"
        raise ValueError(f"f returned {got} for a batch of {n_rows} rows ({what})")
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    rows = array.reshape(n_rows, -1)
    return rows if row_stride(rows) else np.ascontiguousarray(rows)


def row_stride(rows: np.ndarray) -> int:
    """Elements from one row's start to the next's in a 2-D array whose rows are each
    contiguous and laid out in order (at least the row length); 0 for any other layout."""
    n_rows, width = rows.shape
    if rows.flags.c_contiguous or n_rows == 1:
        return width
    step, item = rows.strides
    if item != rows.itemsize or step % item or step < width * item:
        return 0
    return step // item


def pairs_named(pair_i: np.ndarray, pair_j: np.ndarray) -> str:
    """``pairs (i0, j0) to (i1, j1)``: the first and last pair of a block, for error messages."""
    return f"pairs ({pair_i[0]}, {pair_j[0]}) to ({pair_i[-1]}, {pair_j[-1]})"


def raise_non_finite(
    outputs: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    non_finite: np.ndarray,
    interior_lambdas: np.ndarray,
) -> None:
    """Name the first pair and λ where ``f`` returned NaN or infinity (or r² overflowed, or
    was 0/0 because the squares of tiny outputs underflowed)."""
    pair = int(np.argmax(non_finite))
    rows = outputs[pair :: pair_i.shape[0]]  # the block's rows are ordered by λ, then pair
    where = f"the segment between samples {pair_i[pair]} and {pair_j[pair]}"
    finite_rows = np.isfinite(rows).all(axis=1)
    if finite_rows.all():
        largest = float(np.abs(rows).max())
        problem = "too large to square" if largest >= 1.0 else "too small: their squares underflow"
        raise ValueError(
            f"f's outputs on {where} are {problem} in float64 "
            f"(largest magnitude {largest:.3g}); rescale f's outputs"
        )
    lam = interior_lambdas[int(np.argmin(finite_rows))]
    raise ValueError(f"f returned a non-finite value on {where} at λ = {lam:.6g}")
