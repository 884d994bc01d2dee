"""``connectivity_matrix`` agrees with a literal transcription of the paper's formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import silu_mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import oracle_connectivity, oracle_lmn

import lmn_core


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**16),
    st.integers(2, 12),
    st.sampled_from([(3,), (2, 2), (1, 2, 3)]),
    st.integers(1, 6),
    st.sampled_from([3, 5, 21]),
)
def test_agrees_with_the_literal_oracle(
    seed: int, n_samples: int, sample_shape: tuple[int, ...], n_outputs: int, n_points: int
) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, *sample_shape))
    f = silu_mlp(int(np.prod(sample_shape)), 16, n_outputs, seed, scale=2.0)

    expected = oracle_connectivity(f, X, n_points)
    result = lmn_core.lmn(f, X, n_points=n_points)
    np.testing.assert_allclose(result.connectivity, expected, rtol=0, atol=1e-10)
    assert math.isclose(result.lmn, oracle_lmn(expected), rel_tol=1e-10)


@pytest.mark.parametrize("block_pairs", [1, 7, 100])
def test_agrees_with_the_oracle_for_any_block_size(block_pairs: int) -> None:
    X = np.random.default_rng(3).normal(size=(17, 5))
    f = silu_mlp(5, 32, 7, seed=3, scale=3.0)
    np.testing.assert_allclose(
        lmn_core.connectivity_matrix(f, X, block_pairs=block_pairs),
        oracle_connectivity(f, X),
        rtol=0,
        atol=1e-10,
    )


def test_float32_stays_close_to_the_float64_oracle() -> None:
    X = np.random.default_rng(5).normal(size=(20, 6))
    f = silu_mlp(6, 24, 5, seed=5, scale=2.0)
    expected = oracle_connectivity(f, X)
    got = lmn_core.connectivity_matrix(
        lambda x: f(x.astype(np.float64)).astype(np.float32), X.astype(np.float32)
    )
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
