"""RankMe, the effective rank of representations (Garrido et al. 2023; docs/design.md, section 6.2).

NumPy on the host, in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: RankMe's ``eps`` (Garrido et al. 2023), added to every share of the singular values.
RANKME_EPS = 1e-7


def real_matrix(value: Any, what: str) -> np.ndarray:
    """``value`` as a non-empty finite float64 matrix ``(N, d)``, or an error naming ``what``."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be real numbers, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{what} must be a matrix (N, d), got shape {array.shape}")
    if 0 in array.shape:
        raise ValueError(f"{what} is empty: shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
        raise ValueError(f"{what} holds NaN or infinity (row {int(rows[0])} of {array.shape[0]})")
    return array


def effective_rank(Z: Any, eps: float = RANKME_EPS) -> float:
    """RankMe: the effective rank of the representations ``Z`` (``N x d``).

    With ``s`` the singular values of ``Z`` (``min(N, d)`` of them), ``p_k = s_k / sum(s) +
    eps`` and the value is ``exp(-sum_k p_k log p_k)`` (natural logarithm). ``k`` equal
    non-zero singular values give ``k``, up to the bias of ``eps``: each zero singular value
    adds ``eps |log eps|`` (1.6e-6 at the default) to the entropy. It is invariant to
    rotations of ``Z`` from either side and to its scale.

    Parameters
    ----------
    Z : array_like
        ``(N, d)`` real, finite.
    eps : float
        RankMe's constant, ``1e-7`` by default; ``0 <= eps < 1``.

    Raises
    ------
    ValueError
        If ``Z`` is not a non-empty finite matrix, is all zeros (no spectrum to share), or
        ``eps`` is out of range.
    """
    if not 0.0 <= float(eps) < 1.0:
        raise ValueError(f"effective_rank needs 0 <= eps < 1, got {eps}")
    matrix = real_matrix(Z, "effective_rank's Z")
    singular = np.linalg.svd(matrix, compute_uv=False)
    total = singular.sum()
    if total == 0.0:
        raise ValueError(f"effective_rank's Z is all zeros (shape {matrix.shape}): it has no spectrum")
    shares = singular / total + eps
    shares = shares[shares > 0]  # with eps = 0, a zero share contributes 0 log 0 = 0
    return float(np.exp(-np.sum(shares * np.log(shares))))
