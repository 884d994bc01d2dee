"""The identities of docs/design.md section 1.3, as hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
from conftest import grid_values, sample_sets, silu_mlp
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import lmn_core
from lmn_core.testing import check_identities

PROPERTY = settings(max_examples=60, deadline=None)


def block_matrix(sizes: list[int], order: np.ndarray) -> np.ndarray:
    labels = np.repeat(np.arange(len(sizes)), sizes)[order]
    return (labels[:, None] == labels[None, :]).astype(np.float64)


@PROPERTY
@given(st.integers(1, 8), st.integers(1, 7), st.randoms(use_true_random=False))
def test_equal_all_ones_blocks_give_their_count(n_blocks: int, block_size: int, rng) -> None:
    order = np.array(rng.sample(range(n_blocks * block_size), n_blocks * block_size))
    L = block_matrix([block_size] * n_blocks, order)
    assert math.isclose(lmn_core.lmn_from_connectivity(L), n_blocks, rel_tol=1e-9)
    assert math.isclose(lmn_core.nonlinear_complexity(L), math.log2(n_blocks), abs_tol=1e-9)


@PROPERTY
@given(st.lists(st.integers(1, 9), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_unequal_blocks_give_the_perplexity_of_their_sizes(sizes: list[int], rng) -> None:
    n = sum(sizes)
    L = block_matrix(sizes, np.array(rng.sample(range(n), n)))
    shares = np.array(sizes) / n
    perplexity = 2.0 ** -(shares * np.log2(shares)).sum()
    assert math.isclose(lmn_core.lmn_from_connectivity(L), perplexity, rel_tol=1e-9)


@st.composite
def affine_maps(draw: st.DrawFn, n_inputs: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights on a dyadic grid with whole zero rows and columns allowed, and a bias."""
    n_outputs = draw(st.integers(1, 5))
    weights = np.array(
        draw(
            st.lists(
                grid_values(-2.0, 2.0, 0.125), min_size=n_inputs * n_outputs, max_size=n_inputs * n_outputs
            )
        )
    ).reshape(n_inputs, n_outputs)
    zero_rows = draw(st.lists(st.booleans(), min_size=n_inputs, max_size=n_inputs))
    zero_columns = draw(st.lists(st.booleans(), min_size=n_outputs, max_size=n_outputs))
    weights[np.array(zero_rows), :] = 0.0
    weights[:, np.array(zero_columns)] = 0.0
    bias = np.array(draw(st.lists(grid_values(-8.0, 8.0), min_size=n_outputs, max_size=n_outputs)))
    return weights, bias


@PROPERTY
@given(st.data())
def test_affine_maps_have_lmn_one(data: st.DataObject) -> None:
    X = data.draw(sample_sets())
    n_inputs = int(np.prod(X.shape[1:]))
    weights, bias = data.draw(affine_maps(n_inputs))
    squeeze = data.draw(st.booleans()) and weights.shape[1] == 1

    def affine(x: np.ndarray) -> np.ndarray:
        y = x.reshape(x.shape[0], -1) @ weights + bias
        return y[:, 0] if squeeze else y

    result = lmn_core.lmn(affine, X)
    np.testing.assert_allclose(result.connectivity, 1.0, rtol=0, atol=1e-9)
    assert math.isclose(result.lmn, 1.0, rel_tol=1e-9)
    assert result.n_samples == X.shape[0]


@PROPERTY
@given(sample_sets(max_rank=2), st.integers(0, 2**16), st.integers(1, 4), st.data())
def test_affine_precomposition_moves_into_the_data(X: np.ndarray, seed: int, n_mapped: int, data) -> None:
    n_inputs = int(np.prod(X.shape[1:]))
    values = data.draw(
        st.lists(grid_values(-2.0, 2.0, 0.125), min_size=n_inputs * n_mapped, max_size=n_inputs * n_mapped)
    )
    A = np.array(values).reshape(n_inputs, n_mapped)
    c = np.arange(n_mapped) * 0.5 - 1.0
    mapped = X.reshape(X.shape[0], -1) @ A + c
    distinct = np.unique(np.round(X.reshape(X.shape[0], -1), 9), axis=0).shape[0]
    assume(np.unique(np.round(mapped, 9), axis=0).shape[0] == distinct)  # g separates what X separates
    f = silu_mlp(n_mapped, 8, 3, seed)

    def composed(x: np.ndarray) -> np.ndarray:
        return f(x.reshape(x.shape[0], -1) @ A + c)

    direct = lmn_core.lmn(composed, X)
    moved = lmn_core.lmn(f, mapped)
    np.testing.assert_allclose(direct.connectivity, moved.connectivity, rtol=0, atol=1e-8)
    assert math.isclose(direct.lmn, moved.lmn, rel_tol=1e-7)


def four_floats(low: float, high: float) -> st.SearchStrategy[list[float]]:
    return st.lists(st.floats(low, high), min_size=4, max_size=4)


@PROPERTY
@given(
    sample_sets(max_rank=2),
    st.integers(0, 2**16),
    four_floats(0.1, 10.0),
    st.lists(st.sampled_from([-1.0, 1.0]), min_size=4, max_size=4),
    four_floats(-10.0, 10.0),
)
# Found on a fresh machine: two equal samples, and a shift that brings output 2 near zero
# (1.018 -> -0.018), below the one-ulp noise of the head's larger intermediates.
@example(np.array([[-4.0], [-4.0]]), 22, [1.0] * 4, [-1.0] * 4, [0.0, 0.0, 1.0, 0.0])
def test_per_dimension_affine_postcomposition_keeps_connectivity(
    X: np.ndarray, seed: int, magnitudes: list[float], signs: list[float], shift: list[float]
) -> None:
    scale = np.array(magnitudes) * np.array(signs)
    f = silu_mlp(int(np.prod(X.shape[1:])), 8, len(scale), seed, scale=0.5)

    plain = lmn_core.connectivity_matrix(f, X)
    transformed = lmn_core.connectivity_matrix(lambda x: scale * f(x) + shift, X)
    np.testing.assert_allclose(transformed, plain, rtol=0, atol=1e-8)


@PROPERTY
@given(sample_sets(max_rank=2), st.integers(0, 2**16), st.randoms(use_true_random=False))
def test_permuting_samples_permutes_connectivity(X: np.ndarray, seed: int, rng) -> None:
    f = silu_mlp(int(np.prod(X.shape[1:])), 8, 3, seed)
    order = np.array(rng.sample(range(X.shape[0]), X.shape[0]))
    plain = lmn_core.lmn(f, X)
    permuted = lmn_core.lmn(f, X[order])
    np.testing.assert_allclose(permuted.connectivity, plain.connectivity[np.ix_(order, order)], atol=1e-10)
    assert math.isclose(permuted.lmn, plain.lmn, rel_tol=1e-9)


@PROPERTY
@given(sample_sets(), st.integers(0, 2**16), st.floats(0.1, 20.0), st.integers(3, 30))
def test_bounds_and_symmetry(X: np.ndarray, seed: int, frequency: float, n_points: int) -> None:
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(int(np.prod(X.shape[1:])), 5)) * frequency

    def wiggly(x: np.ndarray) -> np.ndarray:
        return np.sin(x.reshape(x.shape[0], -1) @ weights)

    result = lmn_core.lmn(wiggly, X, n_points=n_points)
    L = result.connectivity
    assert L.dtype == np.float64 and L.shape == (X.shape[0], X.shape[0])
    np.testing.assert_array_equal(L, L.T)
    np.testing.assert_array_equal(np.diag(L), 1.0)
    assert L.min() >= 0.0 and L.max() <= 1.0
    assert 1.0 - 1e-9 <= result.lmn <= X.shape[0] + 1e-9
    assert result.n_points == n_points


@PROPERTY
@given(sample_sets(max_rank=2), st.integers(0, 2**16), st.floats(1e-12, 1e-3))
def test_equal_samples_are_one_point_whatever_f_returns(X: np.ndarray, seed: int, noise: float) -> None:
    """1.2.2: ``x_i == x_j`` gives ``L_ij = 1`` even when ``f`` answers the same row differently."""
    f = silu_mlp(int(np.prod(X.shape[1:])), 8, 3, seed)

    def position_dependent(x: np.ndarray) -> np.ndarray:  # as batched rounding can do
        wobble = np.sin(np.arange(x.shape[0]) * 1.7)[:, None] * noise
        return f(x) * (1.0 + wobble) + wobble

    connectivity = lmn_core.connectivity_matrix(position_dependent, X)
    rows = X.reshape(X.shape[0], -1)
    equal = (rows[:, None, :] == rows[None, :, :]).all(axis=2)
    np.testing.assert_array_equal(connectivity[equal], 1.0)
    assume(not equal.all())
    assert connectivity[~equal].min() < 1.0  # the wobble is seen on real segments


def test_lmn_core_passes_every_identity() -> None:
    """The public checks of lmn_core.testing (closed-form cases a port can run) hold for the core."""
    checked = check_identities(
        lambda f, X: lmn_core.lmn(f, X), from_connectivity=lmn_core.lmn_from_connectivity
    )
    assert checked == [
        "affine",
        "quadratic segment",
        "several outputs",
        "absolute eigenvalues",
        "invariances",
        "blocks",
    ]
