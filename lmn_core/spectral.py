"""From a connectivity matrix to its spectrum, the nonlinear complexity and the LMN.

The eigenvalues are computed where ``L`` is, in float64, through the array API of its
array (``numpy.linalg.eigvalsh`` on the host, ``torch.linalg.eigvalsh`` for a tensor on a
GPU, ...); only the ``N`` eigenvalues come to the host, where the entropy is taken.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj, is_numpy_namespace
from threadpoolctl import threadpool_limits

from lmn_core.device import to_numpy

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


def _checked_matrix(connectivity: Any) -> Any:
    """``L`` as float64 in its own namespace, checked square, finite and symmetric."""
    if not is_array_api_obj(connectivity):
        connectivity = np.asarray(connectivity)
    xp = array_namespace(connectivity)
    if is_numpy_namespace(xp):
        return _checked_host_matrix(np.asarray(connectivity))
    if not xp.isdtype(connectivity.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"connectivity matrix must be real numbers, got dtype {connectivity.dtype}")
    if connectivity.ndim != 2 or connectivity.shape[0] != connectivity.shape[1]:
        raise ValueError(f"connectivity matrix must be square (N, N), got shape {tuple(connectivity.shape)}")
    if connectivity.shape[0] == 0:
        raise ValueError("connectivity matrix is empty (N = 0)")
    matrix = xp.astype(connectivity, xp.float64)
    if not bool(xp.all(xp.isfinite(matrix))) or not bool(
        xp.max(xp.abs(matrix - xp.matrix_transpose(matrix))) <= _SYMMETRY_TOLERANCE
    ):
        _checked_host_matrix(to_numpy(matrix))  # names the entry
    return matrix


def _checked_host_matrix(connectivity: np.ndarray) -> np.ndarray:
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


def spectrum(connectivity: Any) -> Spectrum:
    """Eigenvalues, nonlinear complexity and negative mass of a connectivity matrix.

    Parameters
    ----------
    connectivity : array
        Symmetric ``(N, N)`` matrix: a NumPy array, or an array of another array-API
        library (a ``torch.Tensor`` on a GPU, say), whose eigenvalues are then computed
        on its device.

    Returns
    -------
    Spectrum
    """
    return spectrum_of_checked(_checked_matrix(connectivity))


def spectrum_of_checked(matrix: Any) -> Spectrum:
    """:func:`spectrum` of a float64 ``L`` known to be square, finite and symmetric."""
    xp = array_namespace(matrix)
    host = is_numpy_namespace(xp)
    with threadpool_limits(limits=1, user_api="blas") if host else contextlib.nullcontext():  # design 4.5
        eigenvalues = to_numpy(xp.linalg.eigvalsh(matrix)).astype(np.float64, copy=False)
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
