"""A deliberately literal NumPy transcription of the paper's LMN, for checking the library.

Every pair (i, j) with i != j is computed on its own, in both orders, with the r²
formula of the paper's footnote 2. It is slow on purpose: it shares no code with
``lmn_core`` and takes no shortcut.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def r_squared(x: np.ndarray, y: np.ndarray) -> float:
    """``(<xy> - <x><y>)² / ((<x²> - <x>²)(<y²> - <y>²))``; a constant ``y`` counts as 1."""
    if np.ptp(y) == 0.0:
        return 1.0
    numerator = (np.mean(x * y) - np.mean(x) * np.mean(y)) ** 2
    denominator = (np.mean(x * x) - np.mean(x) ** 2) * (np.mean(y * y) - np.mean(y) ** 2)
    return float(numerator / denominator)


def oracle_connectivity(
    f: Callable[[np.ndarray], np.ndarray], X: np.ndarray, n_points: int = 21
) -> np.ndarray:
    """Linear connectivity matrix, pair by pair (equations 1 and 2 of the paper)."""
    n_samples = X.shape[0]
    lambdas = np.linspace(0.0, 1.0, n_points)
    L = np.ones((n_samples, n_samples))
    for i in range(n_samples):
        for j in range(n_samples):
            if i == j:
                continue
            curve = np.stack([X[i] + lam * (X[j] - X[i]) for lam in lambdas])
            outputs = np.asarray(f(curve), dtype=np.float64).reshape(n_points, -1)
            L[i, j] = np.mean([r_squared(lambdas, outputs[:, k]) for k in range(outputs.shape[1])])
    return L


def oracle_lmn(L: np.ndarray) -> float:
    """LMN = 2 ** S_NL from the normalised absolute eigenvalues (equation 3)."""
    eigenvalues = np.abs(np.linalg.eigvals(L).real)
    p = eigenvalues / eigenvalues.sum()
    p = p[p > 0]
    return float(2.0 ** (-np.sum(p * np.log2(p))))
