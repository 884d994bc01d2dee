"""How a callable can reduce whole blocks of pairs to their ``L`` values where its outputs are.

By default ``lmn_core`` builds the interpolated points, calls ``f`` on them and reduces
the outputs to r² on the host (:mod:`lmn_core.kernels`). A callable that runs elsewhere
(a model on a GPU) can offer ``pair_reduction`` instead (:class:`ReducingFunction`):
given the :class:`ReductionTask` of one measurement, it returns a
:class:`PairReduction` that takes a block of pairs and returns their ``L_ij``, having
built the points, run ``f`` and reduced to r² next to the outputs, or ``None`` to let
the core do it. The core still checks the samples, evaluates the endpoints ``f(X)``,
fixes the constant-output tolerance, plans the blocks by ``memory_budget``, checks what
comes back, names the pair and λ of a non-finite output, and computes the spectrum.

A callable may also say that it can be called from several threads at once
(``concurrent_calls = True``, an attribute or property): the core then evaluates it in
lanes, one thread per idle CPU (:mod:`lmn_core.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


def segment_lambdas(n_points: int) -> np.ndarray:
    """The ``n_points`` uniform positions ``λ`` in ``[0, 1]`` of every segment, float64."""
    return np.linspace(0.0, 1.0, n_points)


@dataclass(frozen=True, eq=False)
class ReductionTask:
    """What a pair reduction needs for one measurement; the policies are fixed by the core.

    For output dimension ``k`` of pair ``(i, j)``, with ``y_t`` its value at ``λ_t``,
    ``d_t = y_t - y_0`` (``y_0 = f(x_i)``, ``y_{T-1} = f(x_j)``, both from
    ``endpoint_outputs``) and ``c_t = centered_lambdas[t]``, all in float64:

    - the dimension is constant, r² = 1, when
      ``max_t d_t - min_t d_t <= const_rtol * scale + const_atol`` (``d_0 = 0`` included),
      where ``scale = max(output_scales[k], |y_0| + max_t |d_t|)``;
    - otherwise ``r² = min(1, (Σ c_t d_t)² / (lambda_spread * syy))`` with
      ``syy = Σ d_t² - (Σ d_t)² / T``;
    - ``L_ij`` is the mean of r² over the dimensions, and the pair is flagged
      non-finite when ``syy`` or ``Σ c_t d_t`` is not finite for some dimension.

    Attributes
    ----------
    samples : numpy.ndarray
        ``(N, *s)`` samples, float32 or float64, exactly as ``f`` gets them.
    endpoint_outputs : numpy.ndarray
        ``f(X)`` as float64 ``(N, d2)``.
    n_points : int
        ``T``, points per segment, endpoints included.
    const_rtol, const_atol : float
        The constant-output tolerance, already resolved.
    """

    samples: np.ndarray
    endpoint_outputs: np.ndarray
    n_points: int
    const_rtol: float
    const_atol: float

    @property
    def lambdas(self) -> np.ndarray:
        """The ``T`` uniform λ in ``[0, 1]``, float64."""
        return segment_lambdas(self.n_points)

    @property
    def interior_lambdas(self) -> np.ndarray:
        """The ``T - 2`` interior λ, where ``f`` is evaluated."""
        return self.lambdas[1:-1].copy()

    @property
    def centered_lambdas(self) -> np.ndarray:
        """``λ_t - mean(λ)`` for the ``T`` points."""
        lambdas = self.lambdas
        return lambdas - lambdas.mean()

    @property
    def lambda_spread(self) -> float:
        """``Σ_t (λ_t - mean(λ))²``."""
        return float(np.sum(self.centered_lambdas**2))

    @property
    def output_scales(self) -> np.ndarray:
        """Each output dimension's largest magnitude over ``f(X)``, float64 ``(d2,)``."""
        return np.abs(self.endpoint_outputs).max(axis=0)


class PairReduction(Protocol):
    """Reduces one block of pairs to their ``L`` values (see :class:`ReductionTask`)."""

    def __call__(self, pair_i: np.ndarray, pair_j: np.ndarray) -> tuple[Any, Any]:
        """``L_ij`` of the pairs ``(pair_i[p], pair_j[p])``, ``i < j``, and their non-finite flags.

        Returns two array-likes of shape ``(P,)``: the float values in ``[0, 1]`` and a
        bool per pair, true where a sum was not finite (the core then names the pair and λ).
        """
        ...


@runtime_checkable
class ReducingFunction(Protocol):
    """A callable for ``lmn_core`` that can also reduce blocks of pairs itself."""

    def __call__(self, inputs: np.ndarray) -> Any:
        """``f`` on a batch ``(M, *s)``: outputs ``(M, d2)`` or ``(M,)``."""
        ...

    def pair_reduction(self, task: ReductionTask) -> PairReduction | None:
        """A reduction for this measurement, or ``None`` to let the core reduce on the host."""
        ...
