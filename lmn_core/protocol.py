"""What a measurement is made of, and how a callable can run it on its own device.

:class:`ReductionTask` states one measurement: the samples, ``f(X)``, the λ grid and the
resolved constant tolerance; its docstring is the r² rule that every path applies (the
Numba kernels of :mod:`lmn_core.kernels` on the host, :mod:`lmn_core.rule` through the
array API on a device).

By default ``lmn_core`` builds the interpolated points, calls ``f`` on them and reduces
the outputs to r² on the host. A callable that runs elsewhere (a model on a GPU) offers a
:class:`DevicePlan` instead (:class:`DeviceFunction`): how to put an array on its device,
how to run ``f`` there on a whole block, how much memory is free there. The core then
does everything on that device through the array API of the arrays ``f`` returns (NumPy,
PyTorch, JAX, CuPy: ``array-api-compat``): it enumerates and interpolates the pairs,
reduces them, fills ``L`` and computes its spectrum there, and nothing crosses to the host
but the eigenvalues (:mod:`lmn_core.device`).

A callable may also say that it can be called from several threads at once
(``concurrent_calls = True``, an attribute or property): the core then times it in one
lane and in several on the first blocks, and evaluates the rest in the faster way
(:mod:`lmn_core.pipeline`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: The default constant tolerance, in machine epsilons of the dtype ``f`` computes in.
CONST_RTOL_ULPS = 32


def default_const_rtol(eps: float) -> float:
    """The default constant tolerance for outputs computed in a dtype of machine epsilon ``eps``.

    32 epsilons of that dtype (docs/design.md, section 1.2.1): about 3.8e-6 for float32,
    7.1e-15 for float64, 0.031 for float16 and 0.25 for bfloat16.
    """
    return CONST_RTOL_ULPS * float(eps)


def segment_lambdas(n_points: int) -> np.ndarray:
    """The ``n_points`` uniform positions ``λ`` in ``[0, 1]`` of every segment, float64."""
    return np.linspace(0.0, 1.0, n_points)


@dataclass(frozen=True, eq=False)
class ReductionTask:
    """One measurement; the policies are fixed by the core.

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


def _never(error: BaseException) -> bool:
    return False


@dataclass(frozen=True, eq=False)
class DevicePlan:
    """How ``lmn_core`` runs a function on its device (see the module docstring).

    Attributes
    ----------
    to_device : callable
        A NumPy array of samples ``(M, *s)`` -> the array ``run`` takes, on the device,
        in the dtype the function computes in (an array of the array API: a
        ``torch.Tensor``, a ``jax.Array``, a ``cupy.ndarray``, a NumPy array).
    run : callable
        The function on such an array of any number of rows, returning ``(M, ...)`` on
        the same device; the core hands it whole blocks of pairs at once.
    free_memory : int, optional
        Bytes free on the device now (the framework's cached memory counted as free);
        the core plans its blocks from it (:func:`lmn_core.device.device_block_budget`).
        ``None`` (a CPU) plans them by the host's default budget.
    is_out_of_memory : callable
        Whether an exception raised while running a block is the device running out of
        memory: the core then halves the block and goes on.
    session : callable
        A context manager entered around the whole measurement (inference mode, 64-bit
        floats where a framework needs them switched on, ...).
    compile : callable, optional
        A pure function -> the same function compiled for the device (``torch.compile``,
        ``jax.jit``). The function's first argument is the arrays' namespace (a module:
        static), the others are arrays and Python numbers. The core compiles the r² rule
        of a block with it (:func:`lmn_core.device.block_rule`), once per process and
        compiler (:func:`lmn_core.device.compiled_rule`), so that its float64 sums run
        fused rather than one array operation at a time. The points stay uncompiled: a
        compiler may fuse ``x + λ (y - x)`` into one rounding, which would change ``f``'s
        inputs. ``None`` runs the rule one operation at a time.
    """

    to_device: Callable[[np.ndarray], Any]
    run: Callable[[Any], Any]
    free_memory: int | None = None
    is_out_of_memory: Callable[[BaseException], bool] = _never
    session: Callable[[], contextlib.AbstractContextManager[Any]] = field(default=contextlib.nullcontext)
    compile: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None


@runtime_checkable
class DeviceFunction(Protocol):
    """A callable for ``lmn_core`` that can also run the whole measurement on its device."""

    def __call__(self, inputs: np.ndarray) -> Any:
        """``f`` on a host batch ``(M, *s)``: outputs ``(M, d2)`` or ``(M,)``."""
        ...

    def device_plan(self) -> DevicePlan | None:
        """How to run the measurement on the device, or ``None`` to run it on the host."""
        ...
