"""Exact linear regions (docs/design.md, section 1.6): identities 7 to 10 as hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import lmn_core
from lmn_core.pwl_head import Affine, Hinge, PiecewiseLinearHead
from lmn_core.regions import (
    activation_patterns,
    all_pairs,
    linear_regions,
    occupancy_perplexity,
    region_connectivity,
    region_ids,
    region_lmn,
    segment_breakpoints,
    segment_pieces,
)

PROPERTY = settings(max_examples=60, deadline=None)
N_GRID = 8192


def hinge_of(kind: str, width: int, rng: np.random.Generator) -> Hinge:
    if kind == "relu":
        return Hinge(0.0)
    if kind == "leaky":
        return Hinge(float(rng.uniform(-0.5, 0.5)))
    if kind == "prelu":
        return Hinge(rng.uniform(-0.5, 0.5, size=width))
    return Hinge(1.0)  # the identity: bends nothing


@st.composite
def random_heads(draw: st.DrawFn, max_layers: int = 3) -> tuple[PiecewiseLinearHead, int, int]:
    """A head of Gaussian affine maps and hinges, its input width and a seed for its samples."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_inputs = draw(st.integers(1, 3))
    widths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=max_layers))
    kinds = draw(
        st.lists(
            st.sampled_from(["relu", "leaky", "prelu", "identity"]),
            min_size=len(widths),
            max_size=len(widths),
        )
    )
    layers, width = [], n_inputs
    if draw(st.booleans()):  # the head starts with a hinge: the samples are pre-activations
        widths[0] = n_inputs
    else:
        layers.append(Affine(rng.normal(size=(widths[0], n_inputs)), rng.normal(size=widths[0])))
    for index, (hidden, kind) in enumerate(zip(widths, kinds, strict=True)):
        if index > 0:
            layers.append(Affine(rng.normal(size=(hidden, width)), rng.normal(size=hidden)))
        layers.append(hinge_of(kind, hidden, rng))
        width = hidden
    n_outputs = draw(st.integers(1, 3))
    layers.append(Affine(rng.normal(size=(n_outputs, width)), rng.normal(size=n_outputs)))
    return PiecewiseLinearHead(layers), n_inputs, seed


def samples_for(n_inputs: int, seed: int, n_samples: int) -> np.ndarray:
    """Gaussian samples, each followed by a close neighbour (often in its region)."""
    rng = np.random.default_rng([seed, 1])
    centres = 2.0 * rng.normal(size=(n_samples, n_inputs))
    near = centres + 1e-3 * rng.normal(size=centres.shape)
    return np.concatenate([centres, near])


def brute_force_pieces(head: PiecewiseLinearHead, start: np.ndarray, end: np.ndarray, n_grid: int) -> int:
    """Pattern changes between grid midpoints of the segment, plus one (an independent forward pass)."""
    lambdas = (np.arange(n_grid) + 0.5) / n_grid
    y = start + lambdas[:, None] * (end - start)
    bits = []
    for layer in head.layers:
        if isinstance(layer, Affine):
            y = y @ layer.weight.T + layer.bias
        else:
            slopes = np.broadcast_to(layer.negative_slope, (y.shape[1],))
            bits.append((y > 0)[:, slopes != 1.0])
            y = np.where(y > 0, y, slopes * y)
    pattern = np.concatenate(bits, axis=1)
    return 1 + int(np.any(pattern[1:] != pattern[:-1], axis=1).sum())


@PROPERTY
@given(random_heads(), st.integers(1, 6))
def test_samples_of_one_region_are_joined_by_one_linear_piece(drawn, n_samples) -> None:
    """Identity 7: regions are convex, so a segment inside one has one piece and L_ij = 1."""
    head, n_inputs, seed = drawn
    X = samples_for(n_inputs, seed, n_samples)
    labels = region_ids(activation_patterns(head, X))
    pairs = all_pairs(len(X))
    shared = labels[pairs[:, 0]] == labels[pairs[:, 1]]
    assume(shared.any())
    pieces = segment_pieces(head, X)
    connectivity = lmn_core.connectivity_matrix(head, X)
    assert np.all(pieces[shared] == 1)
    assert np.all(connectivity[pairs[shared, 0], pairs[shared, 1]] > 1 - 1e-9)


@PROPERTY
@given(random_heads(), st.integers(1, 4))
def test_exact_pieces_equal_dense_sampling_where_it_resolves_them(drawn, n_samples) -> None:
    """Identity 8: the exact count equals the count on a grid finer than the gaps between breakpoints."""
    head, n_inputs, seed = drawn
    X = samples_for(n_inputs, seed, n_samples)
    pairs = all_pairs(len(X))
    breakpoints = [segment_breakpoints(head, X[i], X[j]) for i, j in pairs]
    gaps = np.array([np.diff(np.concatenate([[0.0], found, [1.0]])).min() for found in breakpoints])
    resolved = gaps > 4 / N_GRID
    assume(resolved.mean() > 0.5)
    dense = np.array([brute_force_pieces(head, X[i], X[j], N_GRID) for i, j in pairs[resolved]])
    exact = np.array([len(found) + 1 for found in breakpoints])
    np.testing.assert_array_equal(exact[resolved], dense)
    for method in ("auto", "table"):
        np.testing.assert_array_equal(segment_pieces(head, X, method=method), exact)


@PROPERTY
@given(random_heads(), st.integers(1, 5))
def test_pieces_do_not_depend_on_the_order_of_the_pair(drawn, n_samples) -> None:
    """Identity 9: the segment from j to i has the pieces of the segment from i to j."""
    head, n_inputs, seed = drawn
    X = samples_for(n_inputs, seed, n_samples)
    pairs = all_pairs(len(X))
    np.testing.assert_array_equal(segment_pieces(head, X, pairs[:, ::-1]), segment_pieces(head, X, pairs))


@PROPERTY
@given(random_heads(max_layers=2), st.integers(1, 6))
def test_the_rank_one_path_counts_what_the_table_path_counts(drawn, n_samples) -> None:
    head, n_inputs, seed = drawn
    X = samples_for(n_inputs, seed, n_samples)
    np.testing.assert_array_equal(segment_pieces(head, X), segment_pieces(head, X, method="table"))


@PROPERTY
@given(
    st.integers(1, 8),
    st.integers(1, 6),
    st.floats(-0.9, 0.9),
    st.integers(0, 2**32 - 1),
)
def test_equal_regions_give_a_region_lmn_of_their_count(n_regions, per_region, slope, seed) -> None:
    """Identity 10: c regions with equal shares, each its own affine map, give a region LMN of c.

    On a line with thresholds at 1 .. c-1 the regions are the intervals between them, and
    a segment's pieces are 1 plus the thresholds it crosses.
    """
    rng = np.random.default_rng(seed)
    thresholds = np.arange(1.0, n_regions)
    head = PiecewiseLinearHead(
        [
            Affine(np.ones((n_regions - 1, 1)), -thresholds),
            Hinge(slope),
            Affine(rng.normal(size=(2, n_regions - 1)) + 3.0, rng.normal(size=2)),
        ]
    )
    inside = rng.uniform(0.05, 0.95, size=(n_regions, per_region))
    X = (np.arange(n_regions)[:, None] + inside).reshape(-1, 1)[rng.permutation(n_regions * per_region)]
    labels = region_ids(activation_patterns(head, X))
    assert labels.max() + 1 == n_regions
    assert math.isclose(region_lmn(labels), n_regions, rel_tol=1e-9)
    assert math.isclose(occupancy_perplexity(labels), n_regions, rel_tol=1e-12)
    pairs = all_pairs(len(X))
    low, high = np.sort(np.floor(X[pairs, 0]), axis=1).T
    np.testing.assert_array_equal(segment_pieces(head, X), 1 + (high - low).astype(np.int64))
    summary = linear_regions(head, X)
    assert (summary.n_regions, summary.n_samples) == (n_regions, len(X))


@PROPERTY
@given(st.lists(st.integers(0, 5), min_size=1, max_size=30))
def test_the_region_connectivity_lmn_is_the_occupancy_perplexity(labels) -> None:
    labels = np.array(labels)
    R = region_connectivity(labels)
    assert np.array_equal(R, R.T) and np.all(np.diag(R) == 1)
    assert math.isclose(region_lmn(labels), occupancy_perplexity(labels), rel_tol=1e-9)


def folded_line_head(second_layer: list[list[float]], bias: list[float]) -> PiecewiseLinearHead:
    """``z1 = (x - 0.5, 0.5 - x, x - 0.5)`` (the first unit twice), ReLU, a second layer, ReLU."""
    return PiecewiseLinearHead(
        [
            Affine(np.array([[1.0], [-1.0], [1.0]]), np.array([-0.5, 0.5, -0.5])),
            Hinge(),
            Affine(np.array(second_layer), np.array(bias)),
            Hinge(),
            Affine(np.ones((1, len(bias))), np.zeros(1)),
        ]
    )


@pytest.mark.parametrize("method", ["auto", "table"])
def test_coincident_breakpoints_count_once_and_touching_zero_is_none(method) -> None:
    ends = np.array([[0.0], [1.0]])
    # All three first-layer units cross at 0.5: one breakpoint, two pieces.
    assert segment_pieces(folded_line_head([[0.0, 0.0, 0.0]], [-1.0]), ends, method=method).tolist() == [2]
    # |x - 0.5| touches zero at 0.5 without changing sign; |x - 0.5| - 0.25 crosses at 0.25 and 0.75;
    # a unit that is zero everywhere crosses nowhere.
    head = folded_line_head([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], [0.0, -0.25, 0.0])
    assert segment_pieces(head, ends, method=method).tolist() == [4]
    assert segment_pieces(head, np.array([[0.0], [0.5]]), method=method).tolist() == [2]
    assert segment_pieces(head, np.array([[0.3], [0.3]]), method=method).tolist() == [1]


def test_a_third_layer_that_touches_zero_at_a_breakpoint_is_no_breakpoint() -> None:
    # The third layer's unit is |x - 0.5| again, touching zero at the first layer's breakpoint.
    head = PiecewiseLinearHead(
        [
            Affine(np.array([[1.0], [-1.0]]), np.array([-0.5, 0.5])),
            Hinge(),
            Affine(np.eye(2), np.zeros(2)),
            Hinge(),
            Affine(np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([0.0, -0.125])),
            Hinge(),
        ]
    )
    assert segment_pieces(head, np.array([[0.0], [1.0]])).tolist() == [4]  # 0.375, 0.5, 0.625


def test_a_head_without_hinges_is_one_region_and_one_piece() -> None:
    head = PiecewiseLinearHead([Affine(np.ones((2, 3)), np.zeros(2)), Hinge(1.0)])
    X = np.random.default_rng(0).normal(size=(5, 3))
    assert activation_patterns(head, X).shape == (5, 0)
    summary = linear_regions(head, X)
    assert (summary.n_regions, summary.region_perplexity, summary.pieces_mean) == (1, 1.0, 1.0)
    one = linear_regions(head, X[:1])
    assert (one.n_regions, one.pieces_mean, one.pieces_median) == (1, 1.0, 1.0)


def test_bad_heads_and_arguments_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"layer 2: Affine takes 4 inputs, the layers before it give 3"):
        PiecewiseLinearHead(
            [Affine(np.ones((3, 2)), np.zeros(3)), Hinge(), Affine(np.ones((1, 4)), np.zeros(1))]
        )
    with pytest.raises(TypeError, match=r"layer 0 is a str, not an Affine or a Hinge"):
        PiecewiseLinearHead(["relu"])
    with pytest.raises(ValueError, match=r"Hinge has 2 slopes but its input has 3 units"):
        PiecewiseLinearHead([Affine(np.ones((3, 2)), np.zeros(3)), Hinge(np.zeros(2))])
    with pytest.raises(ValueError, match=r"Affine needs a weight \(out, in\) and a bias \(out,\)"):
        Affine(np.ones((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match=r"Affine weight holds NaN or infinity"):
        Affine(np.full((1, 1), np.nan), np.zeros(1))
    head = PiecewiseLinearHead([Affine(np.ones((3, 2)), np.zeros(3)), Hinge()])
    with pytest.raises(ValueError, match=r"layer 0: Affine takes 2 inputs, it is given 5"):
        segment_pieces(head, np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"pairs must index the 4 samples, got 0\.\.4"):
        segment_pieces(head, np.zeros((4, 2)), [[0, 4]])
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'table'\), got 'dense'"):
        segment_pieces(head, np.zeros((4, 2)), method="dense")
    with pytest.raises(ValueError, match=r"sample 1 of X is not finite"):
        segment_pieces(head, np.array([[0.0, 0.0], [np.inf, 0.0]]))


def test_an_extracted_head_agrees_only_with_what_it_computes():
    rng = np.random.default_rng(3)
    head = PiecewiseLinearHead([Affine(rng.normal(size=(5, 3)), rng.normal(size=5)), Hinge(0.0)])
    samples = rng.normal(size=(100, 3))
    assert head.agrees_with(head, samples)
    assert head.agrees_with(lambda x: head(x).astype(np.float32), samples)
    assert not head.agrees_with(lambda x: head(x) + 1e-3, samples)
    assert not head.agrees_with(lambda x: head(x)[:, :4], samples)
    # Only the first rows are compared: a model that differs past them goes unnoticed by design.
    assert head.agrees_with(lambda x: head(x) + (np.arange(len(x)) >= 64)[:, None], samples)
