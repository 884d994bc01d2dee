"""Numba's threading layer choice, and LMN computed from several Python threads at once."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from conftest import silu_mlp

import lmn_core

SCRIPT = """
import numba, numpy as np, lmn_core
lmn_core.lmn(np.tanh, np.random.default_rng(0).normal(size=(5, 2)))
print(numba.threading_layer())
"""


def layer_used(env_layer: str | None) -> str:
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_THREADING_LAYER"}
    if env_layer is not None:
        env["NUMBA_THREADING_LAYER"] = env_layer
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    return completed.stdout.strip()


def test_workqueue_layer_is_chosen_by_default() -> None:
    assert layer_used(None) == "workqueue"


def test_a_layer_the_user_chose_is_kept() -> None:
    assert layer_used("omp") == "omp"


def test_threads_measuring_at_once_get_the_same_answers() -> None:
    X = np.random.default_rng(0).normal(size=(40, 3))
    functions = [silu_mlp(3, 16, 4, seed=seed, scale=2.0) for seed in range(4)]
    expected = [lmn_core.connectivity_matrix(f, X, block_pairs=50) for f in functions]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda f: lmn_core.connectivity_matrix(f, X, block_pairs=50), functions))
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_array_equal(mine, theirs)
