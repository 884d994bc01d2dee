"""lmn_core.testing: its closed forms, and check_identities against lmn_core and two wrong implementations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import lmn_core
from lmn_core.testing import IdentityError, check_identities, lmn_of_connectivity, quadratic_r2


def pearson_r2(start: float, end: float, n_points: int) -> float:
    lambdas = np.linspace(0.0, 1.0, n_points)
    return float(np.corrcoef(lambdas, (start + lambdas * (end - start)) ** 2)[0, 1] ** 2)


@pytest.mark.parametrize("start, end", [(0.0, 1.0), (-1.0, 0.0), (0.5, 3.0), (-2.0, 0.25), (7.0, -1.5)])
@pytest.mark.parametrize("n_points", [3, 20, 21])
def test_the_closed_form_r2_is_pearsons(start: float, end: float, n_points: int) -> None:
    assert quadratic_r2(start, end, n_points) == pytest.approx(pearson_r2(start, end, n_points), rel=1e-12)


def test_the_closed_forms_that_the_cases_rely_on() -> None:
    assert quadratic_r2(-3.0, 3.0) == 0.0  # symmetric about the vertex
    assert quadratic_r2(0.0, 1.0) == quadratic_r2(-1.0, 0.0) == quadratic_r2(0.0, 5.0)
    assert quadratic_r2(2.0, 2.0) == 1.0  # a constant is linear
    rho = quadratic_r2(0.0, 1.0)
    L = np.array([[1.0, rho, 0.0], [rho, 1.0, rho], [0.0, rho, 1.0]])
    assert np.linalg.eigvalsh(L).min() == pytest.approx(1.0 - np.sqrt(2.0) * rho)
    assert np.linalg.eigvalsh(L).min() < 0.0
    assert lmn_of_connectivity(np.ones((4, 4))) == pytest.approx(1.0)
    assert lmn_of_connectivity(np.eye(5)) == pytest.approx(5.0)


def test_twenty_points_without_saying_so_fail_the_segment_identity() -> None:
    with pytest.raises(IdentityError, match=r"identity 'a quadratic along a segment .* 21-point grid' fails"):
        check_identities(lambda f, X: lmn_core.lmn(f, X, n_points=20))
    # said so, it passes
    check_identities(lambda f, X: lmn_core.lmn(f, X, n_points=20), n_points=20, max_examples=20)


def lmn_without_absolute_values(f, X) -> float:
    """The entropy of μ / Σμ, negative shares left out: right whenever L is positive semi-definite."""
    eigenvalues = np.linalg.eigvalsh(lmn_core.connectivity_matrix(f, X))
    shares = eigenvalues / eigenvalues.sum()
    shares = shares[shares > 0]
    return float(2.0 ** -(shares * np.log2(shares)).sum())


def test_dropping_the_absolute_values_fails_the_negative_eigenvalue_identity() -> None:
    with pytest.raises(IdentityError, match="identity 'the entropy takes the eigenvalues' absolute values"):
        check_identities(lmn_without_absolute_values)


def test_blocks_are_checked_on_the_connectivity_step() -> None:
    def half_the_spectrum(L: np.ndarray) -> float:
        eigenvalues = np.abs(np.linalg.eigvalsh(L))[::2]
        shares = eigenvalues[eigenvalues > 0] / eigenvalues.sum()
        return float(2.0 ** -(shares * np.log2(shares)).sum())

    with pytest.raises(IdentityError, match="all-ones blocks"):
        check_identities(
            lambda f, X: lmn_core.lmn(f, X), from_connectivity=half_the_spectrum, max_examples=20
        )


def test_lmn_core_imports_without_hypothesis() -> None:
    script = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import lmn_core\n"
        "try:\n    import lmn_core.testing\nexcept ImportError as error:\n    print(error)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "pip install 'lmn[testing]'" in completed.stdout
