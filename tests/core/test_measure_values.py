"""The progress measures' computations (docs/design.md, section 6) on cases whose value is known."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

import lmn_core
from lmn_core import fourier, local_boundaries, parity
from lmn_core.rankme import RANKME_EPS

PROPERTY = settings(max_examples=40, deadline=None)


@st.composite
def equal_singular_values(draw):
    """``(Z, k)``: ``Z`` with ``k`` equal non-zero singular values, ``min(N, d) - k <= 5`` zero ones."""
    m = draw(st.integers(1, 8))
    k = draw(st.integers(max(1, m - 5), m))
    n, d = m + draw(st.integers(0, 6)), m
    if draw(st.booleans()):
        n, d = d, n
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1e-3, 1.0, 7.5, 1e3]))
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((n, m)))[0]
    v = np.linalg.qr(rng.standard_normal((d, m)))[0]
    s = np.where(np.arange(m) < k, scale, 0.0)
    return (u * s) @ v.T, k


@PROPERTY
@given(equal_singular_values())
def test_effective_rank_of_k_equal_singular_values_is_k(case):
    z, k = case
    assert lmn_core.effective_rank(z) == pytest.approx(k, rel=1e-5)


@PROPERTY
@given(st.integers(2, 12), st.integers(2, 12), st.integers(0, 2**31 - 1))
def test_effective_rank_is_invariant_to_rotations(n, d, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d)) * rng.uniform(0.1, 10.0, size=d)
    left = ortho_group.rvs(n, random_state=seed) if n > 1 else np.eye(1)
    right = ortho_group.rvs(d, random_state=seed + 1)
    value = lmn_core.effective_rank(z)
    assert lmn_core.effective_rank(z @ right) == pytest.approx(value, rel=1e-9)
    assert lmn_core.effective_rank(left @ z) == pytest.approx(value, rel=1e-9)
    assert 1.0 <= value <= min(n, d) * (1 + 1e-5)


def test_effective_rank_follows_the_rankme_formula_with_eps():
    z = np.diag([3.0, 1.0, 0.0])
    p = np.array([0.75, 0.25, 0.0]) + RANKME_EPS
    assert lmn_core.effective_rank(z) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-12)
    assert lmn_core.effective_rank(z, eps=0.0) == pytest.approx(
        2 ** (0.75 * np.log2(4 / 3) + 0.25 * 2), rel=1e-12
    )


@pytest.mark.parametrize(
    ("z", "message"),
    [
        (np.zeros((3, 2)), "all zeros"),
        (np.ones(4), "matrix"),
        (np.zeros((0, 3)), "empty"),
        (np.array([[1.0, np.nan]]), "row 0"),
        (np.array([["a", "b"]]), "real numbers"),
    ],
)
def test_effective_rank_refuses_bad_input(z, message):
    with pytest.raises((ValueError, TypeError), match=message):
        lmn_core.effective_rank(z)


def test_l2_and_weight_movement():
    weights = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    initial = {"a": np.array([0.0, 0.0]), "b": np.array([[1.0]])}
    assert lmn_core.l2(weights) == pytest.approx(5.0)
    assert lmn_core.weight_movement(weights, initial) == pytest.approx(np.sqrt(9.0 + 9.0))
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['c'\]"):
        lmn_core.weight_movement(weights, {"a": initial["a"], "c": initial["b"]})
    with pytest.raises(ValueError, match="parameter 'b' has shape"):
        lmn_core.weight_movement(weights, {"a": initial["a"], "b": np.zeros(2)})
    with pytest.raises(ValueError, match="'a' holds NaN"):
        lmn_core.l2({"a": np.array([np.inf])})


def test_local_complexity_counts_thresholds_within_the_radius_in_one_dimension():
    # In 1-d the cross-polytope of 2 vertices is [z - r, z + r]; unit u is z - t_u.
    thresholds = np.array([-2.0, -0.3, 0.15, 0.45, 1.0, 3.0])
    z = np.array([[0.0], [0.5], [2.5], [-5.0]])
    counts = local_boundaries.local_complexity(
        z, lambda x: x - thresholds, radius=0.4, vertices=2, per_sample=True
    )
    expected = [np.sum(np.abs(row[0] - thresholds) < 0.4) for row in z]
    assert counts.tolist() == expected == [2, 2, 0, 0]


@pytest.mark.parametrize(("d", "vertices"), [(3, 6), (5, 4), (8, 16)])
def test_local_complexity_counts_the_hyperplanes_that_cross_the_cross_polytope(d, vertices):
    rng = np.random.default_rng(d)
    w, b = rng.standard_normal((40, d)), rng.standard_normal(40)
    z = rng.standard_normal((25, d))
    radius, seed = 0.7, 3
    counts = local_boundaries.local_complexity(
        z, lambda x: x @ w.T + b, radius=radius, vertices=vertices, seed=seed, per_sample=True
    )
    # A hyperplane w.x + b = 0 meets the hull of z ± r v_q when |w.z + b| < r max_q |w.v_q|.
    frame = local_boundaries.cross_polytope_frame(d, vertices, seed)
    assert np.allclose(frame @ frame.T, np.eye(vertices // 2), atol=1e-12)
    reach = radius * np.max(np.abs(w @ frame.T), axis=1)
    expected = np.sum(np.abs(z @ w.T + b) < reach, axis=1)
    assert counts.tolist() == expected.tolist()
    assert expected.min() < expected.max()  # the case tells counts apart


def test_local_complexity_adds_layers_blocks_and_scales_with_the_spread(monkeypatch):
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((30, 6)), rng.standard_normal((20, 30)) / 5
    z = rng.standard_normal((50, 6))

    def head(x):
        first = x @ w1.T
        return [first, np.tanh(first) @ w2.T]

    both = local_boundaries.local_complexity(z, head, per_sample=True)
    first = local_boundaries.local_complexity(z, lambda x: head(x)[0], per_sample=True)
    second = local_boundaries.local_complexity(z, lambda x: head(x)[1], per_sample=True)
    assert both.tolist() == (first + second).tolist() and both.sum() > 0
    # The default radius is 1% of the spread: rescaling Z and the first weights together changes nothing.
    assert local_boundaries.local_complexity(10 * z, lambda x: head(x / 10)) == pytest.approx(both.mean())
    calls = []
    monkeypatch.setattr(local_boundaries, "BLOCK_ROWS", 60)
    blocked = local_boundaries.local_complexity(z, lambda x: calls.append(len(x)) or head(x), per_sample=True)
    assert blocked.tolist() == both.tolist() and max(calls) <= 60 and len(calls) > 1


@pytest.mark.parametrize(
    ("keywords", "message"),
    [({"vertices": 3}, "even number"), ({"vertices": 14}, "only 6 dimensions"), ({"radius": 0.0}, "radius")],
)
def test_local_complexity_refuses_bad_settings(keywords, message):
    with pytest.raises(ValueError, match=message):
        local_boundaries.local_complexity(np.ones((4, 6)), lambda x: x, **keywords)
    with pytest.raises(ValueError, match="layer 1 must be real with 24 rows"):
        local_boundaries.local_complexity(np.eye(6)[:2], lambda x: [x, x[:3]], vertices=12)


P = 31
KEY = (3, 7)


def _waves(k, x):
    return np.cos(2 * np.pi * k * x / P), np.sin(2 * np.pi * k * x / P)


def test_fourier_basis_is_orthonormal():
    for p in (2, 7, 12, 31):
        basis = fourier.fourier_basis(p)
        assert np.allclose(basis @ basis.T, np.eye(p), atol=1e-12)


def test_embedding_share_on_a_fourier_sparse_embedding():
    x = np.arange(P)
    cos3, _ = _waves(3, x)
    _, sin7 = _waves(7, x)
    cos11, _ = _waves(11, x)
    embedding = np.stack([3 * cos3, 4 * sin7, cos11, 0 * x], axis=1)
    # Each wave has squared norm p / 2: shares are 9 : 16 : 1.
    assert fourier.top_frequencies(embedding, 2) == KEY
    assert lmn_core.fourier_norm_share(embedding, KEY) == pytest.approx(25 / 26, rel=1e-12)
    # A constant 2 adds 4 p to each of the 4 columns' squared norms: 25 (p / 2) / (26 (p / 2) + 16 p).
    assert lmn_core.fourier_norm_share(embedding + 2.0, KEY) == pytest.approx(25 / 58, rel=1e-12)


def _cross_entropy(logits, labels):
    logits = logits - logits.max(axis=1, keepdims=True)
    return -np.mean(logits[np.arange(len(labels)), labels] - np.log(np.exp(logits).sum(axis=1)))


def test_restricted_and_excluded_losses_keep_and_remove_the_key_frequencies():
    a, b = (axis.reshape(-1) for axis in np.meshgrid(np.arange(P), np.arange(P), indexing="ij"))
    c = np.arange(P)
    labels = (a + b) % P
    # Key part: waves in a + b - c; the rest: a non-key wave in a + b - c, one in a alone, a class bias.
    key = sum(np.cos(2 * np.pi * k * (a[:, None] + b[:, None] - c) / P) for k in KEY) * 2.0
    rest = (
        0.7 * np.cos(2 * np.pi * 5 * (a[:, None] + b[:, None] - c) / P)
        + np.sin(2 * np.pi * 2 * a / P)[:, None]
    )
    bias = np.linspace(-1, 1, P)[None, :]
    logits = key + rest + bias
    train = np.random.default_rng(0).random(P * P) < 0.3
    assert lmn_core.restricted_loss(logits, P, KEY) == pytest.approx(
        _cross_entropy(key + bias, labels), rel=1e-10
    )
    assert lmn_core.excluded_loss(logits, P, KEY, train) == pytest.approx(
        _cross_entropy((rest + bias)[train], labels[train]), rel=1e-10
    )
    assert lmn_core.restricted_loss(logits, P, KEY) < lmn_core.excluded_loss(logits, P, KEY, train)
    with pytest.raises(ValueError, match="distinct integers in 1 … 15"):
        lmn_core.restricted_loss(logits, P, (0, 3))
    with pytest.raises(ValueError, match=r"\(961, 31\)"):
        lmn_core.restricted_loss(logits[:10], P, KEY)


def test_the_fourier_coefficients_of_an_exact_parity_are_one_on_its_subset_and_zero_elsewhere():
    n, subset = 6, (0, 2, 5)
    signs = np.array(list(itertools.product([-1, 1], repeat=n)))
    f = np.prod(signs[:, subset], axis=1) * 5.0  # the normalisation removes the scale
    for other in itertools.combinations(range(n), 3):
        expected = 1.0 if other == subset else 0.0
        assert parity.fourier_coefficient(f, signs, other) == pytest.approx(expected, abs=1e-12)
    gap = lmn_core.fourier_gap(f, signs, subset)
    assert gap.coefficient == pytest.approx(1.0) and gap.largest_other == pytest.approx(0.0, abs=1e-12)
    assert gap.gap == pytest.approx(1.0)


def test_the_fourier_gap_of_a_mixture_and_of_the_wrong_parity():
    n, subset, wrong = 5, (1, 3), (0, 4)
    signs = np.array(list(itertools.product([-1, 1], repeat=n)))
    chi = {s: np.prod(signs[:, s], axis=1) for s in (subset, wrong)}
    mixture = lmn_core.fourier_gap(0.8 * chi[subset] + 0.6 * chi[wrong], signs, subset)
    assert (mixture.coefficient, mixture.largest_other, mixture.gap) == pytest.approx((0.8, 0.6, 0.2))
    assert mixture.largest_other_subset == wrong
    assert lmn_core.fourier_gap(chi[wrong], signs, subset).gap == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="-1 and \\+1"):
        lmn_core.fourier_gap(chi[wrong], (signs + 1) // 2, subset)
