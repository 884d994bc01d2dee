"""Bad input gets a clear error naming what was wrong and where; edge cases follow the policy."""

from __future__ import annotations

import numpy as np
import pytest

import lmn_core


def identity(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="N = 0"):
        lmn_core.lmn(identity, np.zeros((0, 3)))


def test_scalar_samples_are_an_error() -> None:
    with pytest.raises(ValueError, match="scalar"):
        lmn_core.lmn(identity, np.float64(1.0))


@pytest.mark.parametrize("n_points", [2, 1, 0, -5])
def test_fewer_than_three_points_is_an_error(n_points: int) -> None:
    with pytest.raises(ValueError, match=f"at least 3.*got {n_points}"):
        lmn_core.lmn(identity, np.eye(3), n_points=n_points)


@pytest.mark.parametrize("n_points", [2.5, "21", True])
def test_non_integer_points_is_an_error(n_points: object) -> None:
    with pytest.raises(TypeError, match="n_points must be an integer"):
        lmn_core.lmn(identity, np.eye(3), n_points=n_points)


def test_non_finite_sample_is_named() -> None:
    X = np.eye(4)
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="sample 2 of X is not finite"):
        lmn_core.lmn(identity, X)


def test_complex_samples_are_an_error() -> None:
    with pytest.raises(TypeError, match=r"real numbers.*complex"):
        lmn_core.lmn(identity, np.eye(3) * 1j)


def test_wrong_batch_size_at_the_endpoints_is_named() -> None:
    with pytest.raises(ValueError, match=r"f returned 2 rows .* batch of 4 rows \(samples 0\.\.3\)"):
        lmn_core.lmn(lambda x: x[:2], np.eye(4))


def test_wrong_batch_size_on_interior_points_names_the_pairs() -> None:
    def drops_a_row_on_large_batches(x: np.ndarray) -> np.ndarray:
        return x if x.shape[0] <= 4 else x[1:]

    with pytest.raises(
        ValueError, match=r"batch of 19 rows \(interior points of pairs \(0, 1\) to \(0, 1\)\)"
    ):
        lmn_core.lmn(drops_a_row_on_large_batches, np.eye(4), block_pairs=1)


def test_scalar_output_is_an_error() -> None:
    with pytest.raises(ValueError, match="f returned a scalar"):
        lmn_core.lmn(lambda x: 3.0, np.eye(3))


def test_non_numeric_output_is_an_error() -> None:
    with pytest.raises(TypeError, match="f returned dtype <U"):
        lmn_core.lmn(lambda x: np.array(["a"] * x.shape[0]), np.eye(3))


def test_complex_output_is_an_error() -> None:
    with pytest.raises(TypeError, match="f returned dtype complex128"):
        lmn_core.lmn(lambda x: x * 1j, np.eye(3))


def test_changing_output_width_is_an_error() -> None:
    def width_depends_on_batch(x: np.ndarray) -> np.ndarray:
        return x if x.shape[0] == 3 else x[:, :2]

    with pytest.raises(ValueError, match=r"2 output dimensions .* but 3 for f\(X\)"):
        lmn_core.lmn(width_depends_on_batch, np.eye(3))


def test_non_finite_endpoint_output_names_the_sample() -> None:
    def log(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(x)

    X = np.array([[1.0], [2.0], [0.0], [3.0]])
    with pytest.raises(ValueError, match=r"f\(X\) is not finite for sample 2"):
        lmn_core.lmn(log, X)


def test_non_finite_interior_output_names_the_pair_and_lambda() -> None:
    def pole_at_half(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 1.0 / (x - 0.5)

    X = np.array([[2.0], [3.0], [0.0], [1.0]])  # first crossing: pair (0, 2) at λ = 0.75
    with pytest.raises(ValueError, match=r"between samples 0 and 2 at λ = 0\.75"):
        lmn_core.lmn(pole_at_half, X)


def test_overflowing_outputs_are_an_error_not_a_nan() -> None:
    with pytest.raises(ValueError, match="too large to square"):
        lmn_core.lmn(lambda x: 1e200 * x**2, np.array([[0.0], [1.0]]))


def test_outputs_whose_squares_underflow_are_an_error_not_a_nan() -> None:
    # variations of 1e-200 along each segment: outside the constant tolerance, but their
    # squares and r²'s products round to zero, so r² is 0/0
    X = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match=r"between samples 0 and 1 are too small: their squares underflow"):
        lmn_core.lmn(lambda x: 1e-200 * x[:, :2], X)


def test_a_nan_result_never_escapes_for_bad_budgets() -> None:
    with pytest.raises(ValueError, match="memory_budget"):
        lmn_core.lmn(identity, np.eye(3), memory_budget=0)
    with pytest.raises(ValueError, match="block_pairs"):
        lmn_core.lmn(identity, np.eye(3), block_pairs=0)


def test_one_sample_has_lmn_one() -> None:
    result = lmn_core.lmn(np.sin, np.array([[0.3, 0.1]]))
    assert result.lmn == 1.0
    np.testing.assert_array_equal(result.connectivity, [[1.0]])


def test_duplicate_samples_are_linearly_connected() -> None:
    X = np.array([[0.0, 1.0], [2.0, -1.0], [0.0, 1.0]])
    L = lmn_core.connectivity_matrix(lambda x: np.sin(3.0 * x), X)
    assert L[0, 2] == 1.0
    assert L[0, 1] < 0.9


def test_float32_rounding_does_not_make_a_constant_random() -> None:
    def almost_constant(x: np.ndarray) -> np.ndarray:
        return np.float32(1000.0) + np.float32(1e-4) * np.sin(50.0 * x)  # a few float32 ulps

    X = np.linspace(-3.0, 3.0, 12, dtype=np.float32)[:, None]
    assert lmn_core.lmn(almost_constant, X).lmn == pytest.approx(1.0, abs=1e-12)
    strict = lmn_core.connectivity_matrix(almost_constant, X, const_rtol=0.0)
    assert strict.min() < 0.9  # with no tolerance, rounding noise reads as non-linearity


def test_integer_samples_are_measured_in_float64() -> None:
    seen = []

    def record(x: np.ndarray) -> np.ndarray:
        seen.append(x.dtype)
        return x**2

    lmn_core.lmn(record, np.arange(4)[:, None])
    assert set(seen) == {np.dtype(np.float64)}


def test_connectivity_matrix_input_is_checked() -> None:
    with pytest.raises(ValueError, match="square"):
        lmn_core.lmn_from_connectivity(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"not symmetric: L\[0, 1\]"):
        lmn_core.lmn_from_connectivity(np.array([[1.0, 0.2], [0.5, 1.0]]))
    with pytest.raises(ValueError, match=r"non-finite entry at \(1, 1\)"):
        lmn_core.lmn_from_connectivity(np.array([[1.0, 0.0], [0.0, np.inf]]))
    with pytest.raises(ValueError, match="no non-zero eigenvalue"):
        lmn_core.lmn_from_connectivity(np.zeros((3, 3)))


def test_an_error_raised_by_f_names_where_and_on_what_input() -> None:
    def fails_on_big_batches(x: np.ndarray) -> np.ndarray:
        if x.shape[0] > 3:
            raise KeyError("no such row")
        return x

    with pytest.raises(
        lmn_core.FunctionError, match=r"f raised KeyError on samples 0\.\.2 \(input of shape \(3, 2\)"
    ):
        lmn_core.lmn(lambda x: fails_on_big_batches(x[:0].reshape(5, -1)), np.eye(3, 2))
    with pytest.raises(
        lmn_core.FunctionError, match=r"on interior points of pairs \(0, 1\) to \(1, 2\)"
    ) as raised:
        lmn_core.lmn(fails_on_big_batches, np.eye(3, 2), block_pairs=3)
    assert isinstance(raised.value.__cause__, KeyError)
