"""Measure the LMN of plain NumPy functions: an affine map, and a small random SiLU network."""

import numpy as np

import lmn_core

rng = np.random.default_rng(0)
X = rng.normal(size=(300, 8))  # 300 samples of 8 features
W1, W2 = rng.normal(size=(8, 64)), rng.normal(size=(64, 4)) / 8


def network(x: np.ndarray) -> np.ndarray:
    h = x @ W1
    return (h / (1 + np.exp(-h))) @ W2  # SiLU hidden layer


affine = lmn_core.lmn(lambda x: x @ W1 + 1.0, X)
result = lmn_core.lmn(network, X, progress=True)
print(f"affine map : LMN = {affine.lmn:.4f} on N = {affine.n_samples} (exactly 1 for any affine map)")
print(f"SiLU MLP   : LMN = {result.lmn:.2f} on N = {result.n_samples}, S_NL = {result.entropy_bits:.3f} bits")
print(f"negative eigenvalue mass: {result.negative_mass:.3f}")
