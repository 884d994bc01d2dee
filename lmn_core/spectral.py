"""From a connectivity matrix to its spectrum, the nonlinear complexity and the LMN."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

_SYMMETRY_TOLERANCE = 1e-9


@dataclass(frozen=True, eq=False)
class Spectrum:
    """Eigen-decomposition summary of a connectivity matrix.

    Attributes
    ----------
    eigenvalues : numpy.ndarray
        Eigenvalues of ``L`` in ascending order (float64).
    entropy_bits : float
        ``S_NL = -Σ p log2 p`` with ``p = |λ| / Σ|λ|``.
    negative_mass : float
        Share of ``Σ|λ|`` carried by negative eigenvalues (a diagnostic: the paper
        takes ``|λ|``, so this mass counts toward the LMN).
    """

    eigenvalues: np.ndarray
    entropy_bits: float
    negative_mass: float

    @property
    def lmn(self) -> float:
        """The linear mapping number ``2 ** S_NL``."""
        return float(2.0**self.entropy_bits)


def _checked_matrix(connectivity: np.ndarray) -> np.ndarray:
    matrix = np.asarray(connectivity)
    if matrix.dtype.kind not in "fiub":
        raise TypeError(f"connectivity matrix must be real numbers, got dtype {matrix.dtype}")
    matrix = matrix.astype(np.float64, copy=False)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"connectivity matrix must be square (N, N), got shape {matrix.shape}")
    if matrix.shape[0] == 0:
        raise ValueError("connectivity matrix is empty (N = 0)")
    if not np.all(np.isfinite(matrix)):
        row, col = np.argwhere(~np.isfinite(matrix))[0]
        raise ValueError(f"connectivity matrix has a non-finite entry at ({row}, {col})")
    asymmetry = np.abs(matrix - matrix.T)
    if asymmetry.max() > _SYMMETRY_TOLERANCE:
        row, col = np.unravel_index(np.argmax(asymmetry), asymmetry.shape)
        raise ValueError(
            f"connectivity matrix is not symmetric: L[{row}, {col}] = {matrix[row, col]!r} "
            f"but L[{col}, {row}] = {matrix[col, row]!r}"
        )
    return matrix


def spectrum(connectivity: np.ndarray) -> Spectrum:
    """Eigenvalues, nonlinear complexity and negative mass of a connectivity matrix.

    Parameters
    ----------
    connectivity : numpy.ndarray
        Symmetric ``(N, N)`` matrix.

    Returns
    -------
    Spectrum
    """
    with threadpool_limits(limits=1, user_api="blas"):  # docs/design.md 4.5
        eigenvalues = np.linalg.eigvalsh(_checked_matrix(connectivity))
    magnitudes = np.abs(eigenvalues)
    total = magnitudes.sum()
    if total == 0.0:
        raise ValueError("connectivity matrix has no non-zero eigenvalue; its entropy is undefined")
    probabilities = magnitudes[magnitudes > 0.0] / total
    entropy_bits = float(-(probabilities * np.log2(probabilities)).sum())
    negative_mass = float(magnitudes[eigenvalues < 0.0].sum() / total)
    return Spectrum(eigenvalues, max(entropy_bits, 0.0), negative_mass)


def nonlinear_complexity(connectivity: np.ndarray) -> float:
    """Nonlinear complexity ``S_NL`` in bits of a connectivity matrix.

    Parameters
    ----------
    connectivity : numpy.ndarray
        Symmetric ``(N, N)`` matrix.

    Returns
    -------
    float
        The von Neumann-style entropy of the normalised ``|eigenvalues|``.
    """
    return spectrum(connectivity).entropy_bits


def lmn_from_connectivity(connectivity: np.ndarray) -> float:
    """Linear mapping number ``2 ** S_NL`` of a connectivity matrix.

    Parameters
    ----------
    connectivity : numpy.ndarray
        Symmetric ``(N, N)`` matrix.

    Returns
    -------
    float
    """
    return spectrum(connectivity).lmn
