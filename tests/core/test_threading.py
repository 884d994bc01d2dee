"""LMN computed from several Python threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from conftest import silu_mlp

import lmn_core


def test_threads_measuring_at_once_get_the_same_answers() -> None:
    X = np.random.default_rng(0).normal(size=(40, 3))
    functions = [silu_mlp(3, 16, 4, seed=seed, scale=2.0) for seed in range(4)]
    expected = [lmn_core.connectivity_matrix(f, X, block_pairs=50) for f in functions]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda f: lmn_core.connectivity_matrix(f, X, block_pairs=50), functions))
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_array_equal(mine, theirs)
