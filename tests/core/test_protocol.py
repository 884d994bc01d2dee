"""lmn_core.ReducingFunction: a callable that reduces blocks of pairs itself."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import sample_sets, silu_mlp
from hypothesis import given, settings
from hypothesis import strategies as st

import lmn_core


def reduce_pairs(f, task: lmn_core.ReductionTask, pair_i: np.ndarray, pair_j: np.ndarray):
    """The documented reduction of ``ReductionTask``, written plainly in NumPy."""
    samples = task.samples.reshape(task.samples.shape[0], -1)
    lambdas = task.lambdas[None, :, None]
    points = samples[pair_i][:, None] + lambdas * (samples[pair_j] - samples[pair_i])[:, None]
    n_pairs, n_points = pair_i.shape[0], task.n_points
    interior = points[:, 1:-1].reshape(n_pairs * (n_points - 2), *task.samples.shape[1:])
    outputs = np.asarray(f(interior.astype(task.samples.dtype)), dtype=np.float64)
    curves = np.concatenate(
        [
            task.endpoint_outputs[pair_i][:, None],
            outputs.reshape(n_pairs, n_points - 2, -1),
            task.endpoint_outputs[pair_j][:, None],
        ],
        axis=1,
    )
    d = curves - curves[:, :1]
    c = task.centered_lambdas[None, :, None]
    with np.errstate(all="ignore"):
        syy = (d * d).sum(axis=1) - d.sum(axis=1) ** 2 / n_points
        sum_cd = (c * d).sum(axis=1)
        scale = np.maximum(task.output_scales, np.abs(curves[:, 0]) + np.abs(d).max(axis=1))
        constant = np.ptp(d, axis=1) <= task.const_rtol * scale + task.const_atol
        r_squared = np.minimum(sum_cd**2 / (task.lambda_spread * syy), 1.0)
    values = np.where(constant, 1.0, r_squared).mean(axis=1)
    non_finite = ~(np.isfinite(syy) & np.isfinite(sum_cd)).all(axis=1)
    return values, non_finite


class Reducing:
    """``f`` that reduces its pairs itself, recording the task and the blocks it got."""

    def __init__(self, f, *, declines: bool = False, tamper=None) -> None:
        self.f = f
        self.declines = declines
        self.tamper = tamper
        self.tasks: list[lmn_core.ReductionTask] = []
        self.blocks: list[tuple[np.ndarray, np.ndarray]] = []
        self.rows_seen: list[int] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.rows_seen.append(x.shape[0])
        return self.f(x)

    def pair_reduction(self, task: lmn_core.ReductionTask):
        self.tasks.append(task)
        if self.declines:
            return None

        def reduction(pair_i: np.ndarray, pair_j: np.ndarray):
            self.blocks.append((pair_i.copy(), pair_j.copy()))
            result = reduce_pairs(self.f, task, pair_i, pair_j)
            return result if self.tamper is None else self.tamper(*result)

        return reduction


def test_a_reducing_function_is_recognised() -> None:
    assert isinstance(Reducing(np.tanh), lmn_core.ReducingFunction)
    assert not isinstance(np.tanh, lmn_core.ReducingFunction)


@settings(max_examples=40, deadline=None)
@given(sample_sets(max_samples=9), st.integers(3, 9), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_reduced_pairs_give_the_hosts_matrix(X, n_points, block_pairs, seed) -> None:
    width = int(np.prod(X.shape[1:]))
    f = silu_mlp(width, 8, 3, seed=seed, scale=2.0)
    host = lmn_core.connectivity_matrix(f, X, n_points=n_points, block_pairs=block_pairs)
    reducing = Reducing(f)
    reduced = lmn_core.connectivity_matrix(reducing, X, n_points=n_points, block_pairs=block_pairs)
    np.testing.assert_allclose(reduced, host, rtol=0, atol=1e-12)
    n_samples = X.shape[0]
    if n_samples > 1:
        pairs = np.concatenate([np.stack(block, axis=1) for block in reducing.blocks])
        expected = np.array([(i, j) for i in range(n_samples) for j in range(i + 1, n_samples)])
        np.testing.assert_array_equal(pairs, expected)  # every pair i < j, once, in order
        assert all(block[0].shape[0] <= block_pairs for block in reducing.blocks)
        assert reducing.rows_seen[0] == n_samples  # only f(X) went through the plain call


def test_the_task_carries_the_cores_policies() -> None:
    X = np.random.default_rng(0).normal(size=(7, 2, 3)).astype(np.float32)
    f = silu_mlp(6, 8, 4, seed=0)
    reducing = Reducing(lambda x: f(x).astype(np.float32))
    lmn_core.lmn(reducing, X, n_points=11)
    (task,) = reducing.tasks
    assert task.samples.dtype == np.float32 and task.samples.shape == (7, 2, 3)
    assert task.endpoint_outputs.dtype == np.float64 and task.endpoint_outputs.shape == (7, 4)
    np.testing.assert_array_equal(task.endpoint_outputs, f(X).astype(np.float32))
    np.testing.assert_array_equal(task.output_scales, np.abs(task.endpoint_outputs).max(axis=0))
    assert task.n_points == 11
    assert task.const_rtol == 32 * np.finfo(np.float32).eps and task.const_atol == 0.0
    np.testing.assert_allclose(task.interior_lambdas, np.arange(1, 10) / 10)
    assert task.lambda_spread == pytest.approx(np.sum((np.linspace(0, 1, 11) - 0.5) ** 2), rel=1e-15)
    lmn_core.lmn(reducing, X, const_rtol=1e-3, const_atol=0.5)
    assert (reducing.tasks[-1].const_rtol, reducing.tasks[-1].const_atol) == (1e-3, 0.5)


def test_blocks_follow_the_memory_budget() -> None:
    X = np.random.default_rng(1).normal(size=(30, 10))
    reducing = Reducing(silu_mlp(10, 8, 5, seed=1))
    lmn_core.connectivity_matrix(reducing, X, memory_budget=20_000)
    # a pair costs 19 rows of 10 float64 inputs and 5 float64 outputs, 2280 bytes; two blocks fit
    # 20000 bytes with 4 pairs each, and 435 = 108 * 4 + 3 pairs
    sizes = [block[0].shape[0] for block in reducing.blocks]
    assert sizes == [4] * 108 + [3]


def test_declining_leaves_the_reduction_to_the_host() -> None:
    X = np.random.default_rng(2).normal(size=(6, 3))
    f = silu_mlp(3, 8, 2, seed=2, scale=3.0)
    reducing = Reducing(f, declines=True)
    L = lmn_core.connectivity_matrix(reducing, X, block_pairs=4)
    np.testing.assert_array_equal(L, lmn_core.connectivity_matrix(f, X, block_pairs=4))
    assert reducing.blocks == [] and len(reducing.tasks) == 1
    assert reducing.rows_seen == [6, 4 * 19, 4 * 19, 4 * 19, 3 * 19]


def test_one_sample_needs_no_reduction() -> None:
    reducing = Reducing(np.sin)
    assert lmn_core.lmn(reducing, np.array([[0.3, 0.1]])).lmn == 1.0
    assert reducing.tasks == []


def test_constant_outputs_and_duplicates_are_linear_through_a_reduction() -> None:
    def almost_constant(x: np.ndarray) -> np.ndarray:
        return np.float32(1000.0) + np.float32(1e-4) * np.sin(50.0 * x)

    X = np.linspace(-3.0, 3.0, 12, dtype=np.float32)[:, None]
    assert lmn_core.lmn(Reducing(almost_constant), X).lmn == pytest.approx(1.0, abs=1e-12)
    assert lmn_core.connectivity_matrix(Reducing(almost_constant), X, const_rtol=0.0).min() < 0.9
    duplicates = np.array([[0.0, 1.0], [2.0, -1.0], [0.0, 1.0]])
    L = lmn_core.connectivity_matrix(Reducing(lambda x: np.sin(3.0 * x)), duplicates)
    assert L[0, 2] == 1.0 and L[0, 1] < 0.9


def test_a_flagged_pair_is_named_with_its_lambda() -> None:
    def pole_at_half(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 1.0 / (x - 0.5)

    X = np.array([[2.0], [3.0], [0.0], [1.0]])  # first crossing: pair (0, 2) at λ = 0.75
    with pytest.raises(ValueError, match=r"between samples 0 and 2 at λ = 0\.75"):
        lmn_core.lmn(Reducing(pole_at_half), X)
    with pytest.raises(ValueError, match="too large to square"):
        lmn_core.lmn(Reducing(lambda x: 1e200 * x**2), np.array([[0.0], [1.0]]))


def test_a_flag_that_f_does_not_reproduce_is_an_error() -> None:
    def flags_everything(values, non_finite):
        return values, np.ones_like(non_finite)

    with pytest.raises(ValueError, match=r"samples 0 and 1, but f evaluated .* is finite"):
        lmn_core.lmn(Reducing(np.tanh, tamper=flags_everything), np.eye(3))


@pytest.mark.parametrize(
    ("tamper", "error", "message"),
    [
        (lambda values, non_finite: values, TypeError, r"returned ndarray .*\(values, non_finite\)"),
        (lambda values, non_finite: (values[:-1], non_finite), ValueError, r"values of shape \(2,\)"),
        (lambda values, non_finite: (values, non_finite.astype(float)), ValueError, "non_finite of shape"),
        (lambda values, non_finite: (values + 1.5, non_finite), ValueError, r"0 and 1, outside \[0, 1\]"),
        (lambda values, non_finite: (values * np.nan, non_finite), ValueError, "L = nan for the segment"),
    ],
)
def test_what_a_reduction_returns_is_checked(tamper, error, message) -> None:
    with pytest.raises(error, match=message):
        lmn_core.lmn(Reducing(lambda x: np.sin(3.0 * x), tamper=tamper), np.eye(3), block_pairs=3)


def test_progress_counts_reduced_pairs(monkeypatch) -> None:
    bars = []

    class Bar:
        def __init__(self, total: int, **options) -> None:
            self.total, self.counts = total, []
            bars.append(self)

        def update(self, count: int) -> None:
            self.counts.append(count)

        def close(self) -> None:
            pass

    pytest.importorskip("tqdm")
    monkeypatch.setattr("tqdm.auto.tqdm", Bar)
    X = np.random.default_rng(3).normal(size=(12, 3))
    lmn_core.connectivity_matrix(Reducing(np.tanh), X, progress=True, block_pairs=5)
    (bar,) = bars
    assert bar.total == 66 and bar.counts == [5] * 13 + [1]
