"""The r² rule of :class:`lmn_core.ReductionTask`, written once through the array API.

:func:`pair_connectivity` reduces a block of pairs to their ``L`` values with the
functions of whatever array namespace it is given (NumPy, PyTorch, JAX, CuPy, through
``array-api-compat``), so the same lines run on every device. The host's Numba kernel
(:func:`lmn_core.kernels.reduce_to_connectivity`) fuses the same sums into one pass for
the CPU and is tested against this function.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True, eq=False)
class RuleConstants:
    """A measurement's constants, as float64 arrays of the device's namespace.

    Attributes
    ----------
    interior_centered : array
        ``(T - 2,)``: the centered λ of the interior points, ``c_1 … c_{T-2}``.
    output_scales : array
        ``(d2,)``: each output's largest magnitude over ``f(X)``.
    zero, one : array
        0-d arrays of 0 and 1 (broadcast where the rule needs a constant array).
    centered_end : float
        ``c_{T-1}``, the last centered λ (the endpoint's weight in ``Σ c_t d_t``).
    lambda_spread : float
        ``Σ_t c_t²``.
    n_points : int
        ``T``.
    const_rtol, const_atol : float
        The resolved constant tolerance.
    """

    interior_centered: Any
    output_scales: Any
    zero: Any
    one: Any
    centered_end: float
    lambda_spread: float
    n_points: int
    const_rtol: float
    const_atol: float

    def arguments(self) -> tuple[Any, ...]:
        """The fields in order, as :func:`lmn_core.device.block_rule` takes them (a compiler
        is handed arrays and numbers, not this class)."""
        return tuple(getattr(self, field.name) for field in dataclasses.fields(self))


def pair_connectivity(
    xp: Any, interior: Any, origin: Any, end: Any, constants: RuleConstants
) -> tuple[Any, Any]:
    """``L_ij`` and the non-finite flags of a block of ``P`` pairs.

    Each pass over the ``(T - 2, P, d2)`` values is one library reduction (a sum, a
    vector-matrix product, a norm, a minimum, a maximum), so that a device reads the
    block's outputs a few times rather than once per intermediate.

    Parameters
    ----------
    xp : module
        The array namespace of the arrays.
    interior : array
        ``(T - 2, P, d2)``: the outputs at the interior λ, λ first, in the dtype ``f``
        computes in.
    origin, end : array
        ``(P, d2)`` float64: ``f(x_i)`` and ``f(x_j)`` of each pair.
    constants : RuleConstants
        The measurement's λ grid, scales and tolerance.

    Returns
    -------
    values, non_finite : array
        ``(P,)`` float64 ``L_ij`` (the mean over outputs of r², constant outputs counting
        1) and ``(P,)`` bool, true where a sum was not finite.
    """
    n_interior, n_pairs, n_outputs = interior.shape
    c = constants
    to_end = end - origin
    shifted = interior - origin  # float64: every sum runs over y_t - y_0, as on the host
    flat = xp.reshape(shifted, (n_interior, n_pairs * n_outputs))
    sum_d = xp.sum(shifted, axis=0) + to_end
    sum_cd = xp.reshape(xp.matmul(c.interior_centered, flat), (n_pairs, n_outputs)) + c.centered_end * to_end
    norm = xp.linalg.vector_norm(shifted, axis=0)
    syy = norm * norm + to_end * to_end - sum_d * sum_d / c.n_points
    # rounding is monotone, so min(y) - y_0 is exactly min(y - y_0), as the host computes it
    low = xp.minimum(xp.minimum(xp.astype(xp.min(interior, axis=0), xp.float64) - origin, to_end), c.zero)
    high = xp.maximum(xp.maximum(xp.astype(xp.max(interior, axis=0), xp.float64) - origin, to_end), c.zero)
    scale = xp.maximum(c.output_scales, xp.abs(origin) + xp.maximum(-low, high))
    constant = high - low <= c.const_rtol * scale + c.const_atol
    spread = xp.where(constant, c.one, c.lambda_spread * syy)
    r_squared = xp.where(constant, c.one, xp.minimum(sum_cd * sum_cd / spread, c.one))
    non_finite = ~xp.all(xp.isfinite(syy) & xp.isfinite(sum_cd), axis=1)
    return xp.mean(r_squared, axis=1), non_finite
