"""Property tests for any implementation of the LMN: hypothesis strategies of cases whose LMN is known.

Whoever writes or ports an LMN (to JAX, to a GPU kernel, to another language through
Python bindings) can check it against the identities that hold exactly (docs/design.md,
section 1.3), each at the level where it holds:

- **affine maps**: LMN 1 (identity 2);
- **a quadratic along a segment**: ``f(x) = (w·x + c)²`` on two samples, whose r² on the
  ``T``-point λ grid is a closed-form number (:func:`quadratic_r2`, exact rational
  arithmetic), so ``L = [[1, r²], [r², 1]]``;
- **several outputs**: quadratics with different r², so that ``L_01`` is their mean;
- **absolute eigenvalues**: three or more collinear samples whose ``L`` has a negative
  eigenvalue (a segment symmetric about the parabola's vertex has r² = 0), so an
  implementation that drops the ``|μ|`` before the entropy fails;
- **blocks** (for implementations that expose ``L`` or its spectrum): ``c`` equal
  all-ones blocks give ``c``, unequal ones ``2 ** H(shares)`` (identity 1);
- **invariances**: per-dimension affine post-composition (identity 4), sample order
  (identity 5), every sample repeated the same number of times (1.2.2: equal samples
  are one point).

:func:`check_identities` runs them all against a callable ``measure(f, X) -> LMN`` and
raises :class:`IdentityError`, naming the identity, on the first that fails.
Far-apart clusters under different affine maps do not give their count: a segment
between two clusters crosses a jump and keeps a large r² (3 such clusters measured 2.12).

Needs hypothesis (``pip install 'lmn[testing]'``); ``import lmn_core`` does not import
this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

try:
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("lmn_core.testing needs hypothesis: pip install 'lmn[testing]'") from error

PAPER_POINTS = 21

Function = Callable[[np.ndarray], np.ndarray]


class IdentityError(AssertionError):
    """An implementation broke an identity; the message names it."""


@dataclass(frozen=True)
class Case:
    """A function, samples, and the LMN they must give."""

    identity: str
    function: Function
    samples: np.ndarray
    expected: float


def quadratic_r2(start: float, end: float, n_points: int = PAPER_POINTS) -> float:
    """r² of ``u²`` against λ on the ``n_points`` grid, for ``u`` going from ``start`` to ``end``.

    Exact: ``u² = start² + κ' t + t²`` up to a positive factor, with ``t = 0 … T - 1`` and
    ``κ' = 2 (T - 1) start / (end - start)``, and the central moments of ``t`` and ``t²``
    over the grid are rationals. A constant (``start == end``) counts as linear: 1.
    """
    a, b = Fraction(start), Fraction(end)
    if a == b:
        return 1.0
    t = [Fraction(k) for k in range(n_points)]
    mean = [sum(value**power for value in t) / n_points for power in range(5)]
    var1 = mean[2] - mean[1] ** 2
    cov12 = mean[3] - mean[1] * mean[2]
    var2 = mean[4] - mean[2] ** 2
    kappa = 2 * (n_points - 1) * a / (b - a)
    covariance = kappa * var1 + cov12
    return float(covariance**2 / (var1 * (kappa**2 * var1 + 2 * kappa * cov12 + var2)))


def lmn_of_connectivity(L: np.ndarray) -> float:
    """``2 ** H(|μ| / Σ|μ|)`` over the eigenvalues ``μ`` of a symmetric ``L``, written out plainly."""
    magnitudes = np.abs(np.linalg.eigvalsh(np.asarray(L, dtype=np.float64)))
    shares = magnitudes[magnitudes > 0] / magnitudes.sum()
    return float(2.0 ** -(shares * np.log2(shares)).sum())


def _dyadic(low: int, high: int, denominator: int = 8) -> st.SearchStrategy[float]:
    return st.integers(low, high).map(lambda numerator: numerator / denominator)


def _arrays(draw: st.DrawFn, shape: tuple[int, ...], low: int = -16, high: int = 16) -> np.ndarray:
    values = draw(st.lists(_dyadic(low, high), min_size=math.prod(shape), max_size=math.prod(shape)))
    return np.array(values, dtype=np.float64).reshape(shape)


def _nonzero(draw: st.DrawFn, size: int) -> np.ndarray:
    return np.array(
        draw(
            st.lists(_dyadic(1, 16).flatmap(lambda v: st.sampled_from([v, -v])), min_size=size, max_size=size)
        )
    )


@st.composite
def affine_cases(draw: st.DrawFn) -> Case:
    """``f(x) = x A + b`` (zero rows and columns allowed) on 1 to 8 samples: LMN 1."""
    n_inputs, n_outputs, n_samples = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 8))
    weights, bias = _arrays(draw, (n_inputs, n_outputs), -8, 8), _arrays(draw, (n_outputs,))
    samples = _arrays(draw, (n_samples, n_inputs))
    return Case("affine maps have LMN 1", lambda x: x @ weights + bias, samples, 1.0)


def _quadratic(draw: st.DrawFn, samples: np.ndarray) -> tuple[Function, np.ndarray]:
    """``(w·x + c)²`` with ``w`` and ``c`` drawn, and its ``u = w·x + c`` at the samples.

    ``u`` differs at the two samples: where it is equal, ``w·x`` cancels along the segment
    only up to rounding, and a constant zero would meet noise of its own size.
    """
    weights, shift = _arrays(draw, (samples.shape[1],), -8, 8), draw(_dyadic(-16, 16))
    u = samples @ weights + shift
    assume(u[0] != u[1])
    return (lambda x: (x @ weights + shift) ** 2), u


def _two_samples(draw: st.DrawFn) -> np.ndarray:
    n_inputs = draw(st.integers(1, 3))
    first = _arrays(draw, (n_inputs,))
    return np.stack([first, first + _nonzero(draw, n_inputs)])


@st.composite
def quadratic_segment_cases(draw: st.DrawFn, n_points: int = PAPER_POINTS) -> Case:
    """Two samples and ``(w·x + c)²``: ``L_01`` is :func:`quadratic_r2` of the ends' ``u``."""
    samples = _two_samples(draw)
    function, u = _quadratic(draw, samples)
    r2 = quadratic_r2(u[0], u[1], n_points)
    expected = lmn_of_connectivity(np.array([[1.0, r2], [r2, 1.0]]))
    return Case(
        f"a quadratic along a segment has its closed-form r² on the {n_points}-point grid",
        function,
        samples,
        expected,
    )


@st.composite
def quadratic_outputs_cases(draw: st.DrawFn, n_points: int = PAPER_POINTS) -> Case:
    """Two samples and 2 to 4 quadratic outputs with their own r²: ``L_01`` is their mean."""
    samples = _two_samples(draw)
    parts = [_quadratic(draw, samples) for _ in range(draw(st.integers(2, 4)))]
    r2 = float(np.mean([quadratic_r2(u[0], u[1], n_points) for _, u in parts]))

    def outputs(x: np.ndarray) -> np.ndarray:
        return np.stack([function(x) for function, _ in parts], axis=1)

    expected = lmn_of_connectivity(np.array([[1.0, r2], [r2, 1.0]]))
    return Case("with several outputs, L is the mean of their r²", outputs, samples, expected)


@st.composite
def negative_eigenvalue_cases(draw: st.DrawFn, n_points: int = PAPER_POINTS) -> Case:
    """Collinear samples about a parabola's vertex (``u = -s, 0, s``, more): ``L`` has a negative μ."""
    n_inputs = draw(st.integers(1, 3))
    middle, direction = _arrays(draw, (n_inputs,)), _nonzero(draw, n_inputs)
    weights = _nonzero(draw, n_inputs)
    slope = float(direction @ weights)
    if slope == 0.0:
        weights = direction.copy()
        slope = float(direction @ weights)
    steps = [-1.0, 0.0, 1.0, *draw(st.lists(_dyadic(-24, 24, 8), max_size=3, unique=True))]
    steps = list(dict.fromkeys(steps))
    order = draw(st.permutations(range(len(steps))))
    steps = [steps[k] for k in order]
    samples = np.stack([middle + step * direction for step in steps])
    shift = -float(middle @ weights)
    u = [step * slope for step in steps]
    L = np.array([[quadratic_r2(a, b, n_points) for b in u] for a in u])
    if np.linalg.eigvalsh(L).min() >= 0.0:  # pragma: no cover - interlacing: the triple's is negative
        raise AssertionError("the case lost its negative eigenvalue")
    return Case(
        "the entropy takes the eigenvalues' absolute values (L has a negative eigenvalue)",
        lambda x: (x @ weights + shift) ** 2,
        samples,
        lmn_of_connectivity(L),
    )


@st.composite
def block_connectivity_cases(draw: st.DrawFn) -> tuple[str, np.ndarray, float]:
    """``(identity, L, LMN)``: all-ones blocks in a drawn sample order; equal sizes give their count."""
    if draw(st.booleans()):
        count, size = draw(st.integers(1, 8)), draw(st.integers(1, 6))
        sizes, identity = [size] * count, "c equal all-ones blocks give LMN c"
        expected = float(count)
    else:
        sizes = draw(st.lists(st.integers(1, 9), min_size=1, max_size=8))
        shares = np.array(sizes) / sum(sizes)
        identity = "unequal all-ones blocks give 2 ** the entropy of their shares"
        expected = float(2.0 ** -(shares * np.log2(shares)).sum())
    labels = np.repeat(np.arange(len(sizes)), sizes)[np.array(draw(st.permutations(range(sum(sizes)))))]
    return identity, (labels[:, None] == labels[None, :]).astype(np.float64), expected


@st.composite
def smooth_functions(draw: st.DrawFn, n_inputs: int) -> Function:
    """A small tanh network with drawn weights: non-linear, smooth, 1 to 3 outputs."""
    hidden, n_outputs = draw(st.integers(2, 6)), draw(st.integers(1, 3))
    first, second = _arrays(draw, (n_inputs, hidden), -12, 12), _arrays(draw, (hidden, n_outputs), -12, 12)
    bias = _arrays(draw, (hidden,))
    return lambda x: np.tanh(x @ first + bias) @ second


@st.composite
def invariance_cases(draw: st.DrawFn) -> tuple[str, Function, np.ndarray, Function, np.ndarray]:
    """``(identity, f, X, g, Y)`` with ``LMN(g, Y) == LMN(f, X)``: post-composition, order, duplicates."""
    n_inputs = draw(st.integers(1, 3))
    samples = np.unique(_arrays(draw, (draw(st.integers(2, 8)), n_inputs)), axis=0)
    function = draw(smooth_functions(n_inputs))
    kind = draw(st.sampled_from(["post-composition", "order", "duplicates"]))
    if kind == "post-composition":
        n_outputs = function(samples[:1]).shape[1]
        scale, shift = _nonzero(draw, n_outputs), _arrays(draw, (n_outputs,))
        identity = "per-dimension affine post-composition a * f + b keeps the LMN"
        return identity, function, samples, lambda x: scale * function(x) + shift, samples
    if kind == "order":
        order = np.array(draw(st.permutations(range(len(samples)))))
        return "the order of the samples does not change the LMN", function, samples, function, samples[order]
    copies = draw(st.integers(2, 3))
    identity = "every sample repeated the same number of times keeps the LMN (equal samples are one point)"
    return identity, function, samples, function, np.repeat(samples, copies, axis=0)


def _value(result: Any) -> float:
    """An LMN from what a measure returns: a number, or an object with ``.lmn``."""
    return float(getattr(result, "lmn", result))


def _expect(identity: str, measured: float, expected: float, rtol: float, where: str) -> None:
    if not (math.isfinite(measured) and math.isclose(measured, expected, rel_tol=rtol, abs_tol=rtol)):
        raise IdentityError(
            f"identity '{identity}' fails: expected LMN {expected!r}, got {measured!r} ({where})"
        )


def check_identities(
    measure: Callable[[Function, np.ndarray], Any],
    *,
    from_connectivity: Callable[[np.ndarray], Any] | None = None,
    n_points: int = PAPER_POINTS,
    max_examples: int = 50,
    rtol: float = 1e-7,
) -> list[str]:
    """Run every identity of this module against ``measure(f, X) -> LMN``; raise on the first that fails.

    Parameters
    ----------
    measure : callable
        ``measure(f, X)`` with ``f`` a NumPy function from ``(M, d)`` samples to ``(M,)``
        or ``(M, K)`` outputs and ``X`` float64 samples ``(N, d)``; returns the LMN (a
        number, or an object with an ``lmn`` attribute, as ``lmn_core.lmn``).
    from_connectivity : callable, optional
        ``L -> LMN`` for implementations that expose the step from the connectivity
        matrix: the block identities are checked on it too.
    n_points : int
        The λ grid the implementation uses (the paper's 21 by default).
    max_examples : int
        Hypothesis examples per identity.
    rtol : float
        Relative (and absolute) tolerance on each LMN.

    Returns
    -------
    list of str
        The groups of identities checked.

    Raises
    ------
    IdentityError
        Naming the identity, the expected and the measured LMN (hypothesis shrinks the
        case first).
    """
    config = settings(
        max_examples=max_examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )

    def known(strategy: st.SearchStrategy[Case]) -> None:
        @config
        @given(strategy)
        def run(case: Case) -> None:
            _expect(
                case.identity,
                _value(measure(case.function, case.samples)),
                case.expected,
                rtol,
                f"X = {case.samples.tolist()}",
            )

        run()

    known(affine_cases())
    known(quadratic_segment_cases(n_points))
    known(quadratic_outputs_cases(n_points))
    known(negative_eigenvalue_cases(n_points))
    checked = ["affine", "quadratic segment", "several outputs", "absolute eigenvalues"]

    @config
    @given(invariance_cases())
    def invariances(case: tuple[str, Function, np.ndarray, Function, np.ndarray]) -> None:
        identity, f, X, g, Y = case
        _expect(identity, _value(measure(g, Y)), _value(measure(f, X)), rtol, f"X = {X.tolist()}")

    invariances()
    checked.append("invariances")
    if from_connectivity is not None:

        @config
        @given(block_connectivity_cases())
        def blocks(case: tuple[str, np.ndarray, float]) -> None:
            identity, L, expected = case
            _expect(identity, _value(from_connectivity(L)), expected, rtol, f"L of size {len(L)}")

        blocks()
        checked.append("blocks")
    return checked
