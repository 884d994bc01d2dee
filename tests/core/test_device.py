"""lmn_core.device: the whole measurement on a function's device, through the array API.

NumPy is an array-API library too, so a plan whose arrays are NumPy arrays runs the device
path without any framework: block planning, the r² rule of lmn_core.rule, the assembly of
L, out-of-memory fallback and the checks all run here as they do on a GPU.
"""

from __future__ import annotations

import device_contract as contract
import numpy as np
import pytest
from array_api_compat import array_namespace
from conftest import sample_sets, silu_mlp
from hypothesis import given, settings
from hypothesis import strategies as st

import lmn_core
from lmn_core import kernels
from lmn_core.device import (
    DEVICE_BLOCK_CAP,
    DEVICE_MEMORY_SHARE,
    block_rule,
    device_block_budget,
    device_pairs_per_block,
)
from lmn_core.protocol import ReductionTask
from lmn_core.rule import RuleConstants, pair_connectivity


class SimulatedOutOfMemoryError(Exception):
    """What a device raises when a block does not fit."""


class OnDevice:
    """``f`` measured through a :class:`lmn_core.DevicePlan` of NumPy arrays, recording its calls."""

    def __init__(self, f, *, free_memory=None, max_rows=None, compile=None) -> None:
        self.f, self.free_memory, self.max_rows, self.compile = f, free_memory, max_rows, compile
        self.rows_seen: list[int] = []
        self.host_rows: list[int] = []
        self.sessions = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.host_rows.append(x.shape[0])
        return self.f(x)

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.max_rows is not None and x.shape[0] > self.max_rows:
            raise SimulatedOutOfMemoryError(f"{x.shape[0]} rows do not fit")
        self.rows_seen.append(x.shape[0])
        return self.f(x)

    def device_plan(self) -> lmn_core.DevicePlan:
        self.sessions += 1
        return lmn_core.DevicePlan(
            to_device=np.asarray,
            run=self.run,
            free_memory=self.free_memory,
            is_out_of_memory=lambda error: isinstance(error, SimulatedOutOfMemoryError),
            compile=self.compile,
        )


def test_a_device_function_is_recognised() -> None:
    assert isinstance(OnDevice(np.tanh), lmn_core.DeviceFunction)
    assert not isinstance(np.tanh, lmn_core.DeviceFunction)


@settings(max_examples=40, deadline=None)
@given(sample_sets(max_samples=9), st.integers(3, 9), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_the_device_path_gives_the_hosts_matrix(X, n_points, block_pairs, seed) -> None:
    width = int(np.prod(X.shape[1:]))
    f = silu_mlp(width, 8, 3, seed=seed, scale=2.0)
    host = lmn_core.connectivity_matrix(f, X, n_points=n_points, block_pairs=block_pairs)
    device = OnDevice(f)
    measured = lmn_core.connectivity_matrix(device, X, n_points=n_points, block_pairs=block_pairs)
    np.testing.assert_allclose(measured, host, rtol=0, atol=1e-12)
    n_pairs = X.shape[0] * (X.shape[0] - 1) // 2
    assert device.host_rows == []  # f(X) too ran through the plan
    if n_pairs:
        endpoint_calls = -(-X.shape[0] // (block_pairs * (n_points - 2)))  # as many rows as a block
        assert sum(device.rows_seen[:endpoint_calls]) == X.shape[0]
        blocks = device.rows_seen[endpoint_calls:]
        assert len(set(blocks)) == 1  # blocks of one size, the last one padded
        assert blocks[0] <= min(block_pairs, n_pairs) * (n_points - 2)
        assert len(blocks) * blocks[0] >= n_pairs * (n_points - 2)


@st.composite
def reduction_cases(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Outputs along a few segments: smooth, bent, constant and nearly constant dimensions."""
    n_points = draw(st.integers(3, 9))
    n_pairs, n_outputs = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    curves = rng.normal(size=(n_pairs, n_points, n_outputs)).cumsum(axis=1)
    kind = st.sampled_from(["free", "constant", "tiny"])
    kinds = draw(st.lists(kind, min_size=n_outputs, max_size=n_outputs))
    for k, kind in enumerate(kinds):
        if kind == "constant":
            curves[:, :, k] = curves[:, :1, k]
        elif kind == "tiny":
            curves[:, :, k] = 50.0 + 1e-13 * rng.normal(size=(n_pairs, n_points))
    return curves, draw(st.sampled_from([0.0, 1e-12, 1e-6])), draw(st.sampled_from([0.0, 1e-9]))


@settings(max_examples=60, deadline=None)
@given(reduction_cases())
def test_the_array_api_rule_agrees_with_the_numba_kernel(case) -> None:
    curves, const_rtol, const_atol = case
    n_pairs, n_points, _ = curves.shape
    endpoints = np.concatenate([curves[:, 0], curves[:, -1]])  # samples 0..P-1 start, P..2P-1 end
    pair_i, pair_j = np.arange(n_pairs), np.arange(n_pairs, 2 * n_pairs)
    task = ReductionTask(np.zeros((2 * n_pairs, 1)), endpoints, n_points, const_rtol, const_atol)
    interior = np.ascontiguousarray(curves[:, 1:-1].transpose(1, 0, 2))  # λ first
    matrix, kernel_flags = np.zeros((2 * n_pairs, 2 * n_pairs)), np.empty(n_pairs, dtype=bool)
    any_flagged = kernels.reduce_to_connectivity(
        endpoints, interior.reshape(-1), interior.shape[-1], pair_i, pair_j, task.centered_lambdas,
        task.output_scales, const_rtol, const_atol, matrix, kernel_flags,
    )  # fmt: skip
    kernel_values = matrix[pair_i, pair_j]
    assert any_flagged == kernel_flags.any()
    centered = task.centered_lambdas
    constants = RuleConstants(
        centered[1:-1], task.output_scales, np.float64(0.0), np.float64(1.0), float(centered[-1]),
        task.lambda_spread, n_points, const_rtol, const_atol,
    )  # fmt: skip
    values, flags = pair_connectivity(np, interior, endpoints[pair_i], endpoints[pair_j], constants)
    np.testing.assert_allclose(values, kernel_values, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(flags, kernel_flags)


def test_blocks_are_planned_from_the_devices_free_memory() -> None:
    X = np.random.default_rng(1).normal(size=(40, 10))
    f = silu_mlp(10, 8, 5, seed=1)
    free = 400_000
    device = OnDevice(f, free_memory=free)
    lmn_core.connectivity_matrix(device, X)
    budget = device_block_budget(free)
    assert budget == int(free * DEVICE_MEMORY_SHARE) and device_block_budget(2**50) == DEVICE_BLOCK_CAP
    most = device_pairs_per_block(10 * 8, 5, 21, budget)
    n_pairs = 40 * 39 // 2
    n_blocks = -(-n_pairs // most)
    assert device.rows_seen[1:] == [-(-n_pairs // n_blocks) * 19] * n_blocks
    explicit = OnDevice(f, free_memory=free)
    lmn_core.connectivity_matrix(explicit, X, memory_budget=10**9)
    assert explicit.rows_seen[1:] == [n_pairs * 19]  # a stated budget wins


def test_running_out_of_memory_halves_the_block_and_goes_on(caplog) -> None:
    X = np.random.default_rng(2).normal(size=(25, 4))
    f = silu_mlp(4, 8, 3, seed=2, scale=3.0)
    host = lmn_core.connectivity_matrix(f, X)
    device = OnDevice(f, max_rows=40 * 19)
    measured = lmn_core.connectivity_matrix(device, X, block_pairs=300)
    np.testing.assert_allclose(measured, host, rtol=0, atol=1e-12)
    assert max(device.rows_seen[1:]) <= 40 * 19 and "ran out of memory on 300 pairs" in caplog.text


def test_a_pair_that_does_not_fit_is_reported_with_its_bytes() -> None:
    device = OnDevice(np.tanh, max_rows=10)
    with pytest.raises(MemoryError, match=r"block of one pair \(the core's own share about \d+ bytes"):
        lmn_core.connectivity_matrix(device, np.eye(3))


def test_a_plan_that_compiles_runs_the_rule_it_compiled() -> None:
    """The core hands the plan the rule once per process and runs what comes back on every
    block of every measurement, the namespace first; the points are not handed over (see
    DevicePlan)."""
    compiled, blocks = [], []

    def compile(function):
        compiled.append(function)

        def run(xp, interior, *arrays):
            blocks.append((xp, interior.shape))
            values, flags = function(xp, interior, *arrays)
            return values * 0.5, flags  # visibly this function's values

        return run

    X = np.random.default_rng(3).normal(size=(12, 3))
    f = silu_mlp(3, 8, 2, seed=3, scale=2.0)
    plain = lmn_core.connectivity_matrix(OnDevice(f), X, block_pairs=10)
    halved = lmn_core.connectivity_matrix(OnDevice(f, compile=compile), X, block_pairs=10)
    assert compiled == [block_rule]
    assert [shape for _, shape in blocks] == [(19, 10, 2)] * 7  # 66 pairs in 7 blocks of 10
    assert all(xp is array_namespace(X) for xp, _ in blocks)
    off_diagonal = ~np.eye(12, dtype=bool)
    np.testing.assert_array_equal(halved[off_diagonal], 0.5 * plain[off_diagonal])
    again = lmn_core.connectivity_matrix(OnDevice(f, compile=compile), X[:8], block_pairs=10)
    assert compiled == [block_rule] and len(blocks) == 7 + 3  # kept: 28 pairs in 3 blocks of 10
    np.testing.assert_array_equal(again, 0.5 * plain[:8, :8] + 0.5 * np.eye(8))


def test_one_sample_and_the_session() -> None:
    device = OnDevice(np.sin)
    result = lmn_core.lmn(device, np.array([[0.3, 0.1]]))
    assert result.lmn == 1.0 and result.connectivity.tolist() == [[1.0]] and device.sessions == 1


def reducing(function, reduction, width=1):
    return OnDevice(function) if reduction == "device" else function


def test_near_constant_float32_outputs_count_as_linear() -> None:
    contract.check_near_constant_float32_outputs_count_as_linear(
        reducing, lambda x: np.sin(x).astype(np.float32)
    )


def test_absolute_tolerance_is_applied_on_the_device() -> None:
    contract.check_absolute_tolerance_is_applied_where_the_outputs_are(reducing, np.sin, np.float64)


def test_duplicate_samples_are_linearly_connected() -> None:
    contract.check_duplicate_samples_are_linearly_connected(reducing, np.sin)


def test_a_non_finite_interior_output_names_the_pair_and_lambda() -> None:
    with np.errstate(all="ignore"):
        contract.check_non_finite_interior_output_names_the_pair_and_lambda(reducing, np.float64)
    with pytest.raises(ValueError, match="too large to square"), np.errstate(all="ignore"):
        lmn_core.lmn(OnDevice(lambda x: 1e200 * x**2), np.array([[0.0], [1.0]]))


def test_a_flag_that_f_does_not_reproduce_on_the_host_is_an_error() -> None:
    class Disagrees(OnDevice):
        def run(self, x):
            return np.full_like(x, np.nan) if x.shape[0] > 3 else np.tanh(x)

    with pytest.raises(ValueError, match=r"samples 0 and 1, but f evaluated on the host .* is finite"):
        lmn_core.lmn(Disagrees(np.tanh), np.eye(3))


@pytest.mark.parametrize(
    ("run", "error", "message"),
    [
        (lambda x: x[:-1], ValueError, r"f returned \(2, 3\) for a batch of 3 rows \(samples 0..\)"),
        (lambda x: x.astype(np.complex128), TypeError, "complex128 .* must be real numbers"),
        (lambda x: x if len(x) <= 3 else x[:, :1], ValueError, r"1 output dimensions .* but 3 for f\(X\)"),
        (lambda x: np.where(x > 0.5, np.inf, x), ValueError, r"f\(X\) is not finite for sample 0"),
    ],
)
def test_what_f_returns_on_the_device_is_checked(run, error, message) -> None:
    class Returns(OnDevice):
        def run(self, x):
            return run(x)

    with pytest.raises(error, match=message):
        lmn_core.lmn(Returns(np.tanh), np.eye(3))


def test_the_spectrum_is_computed_where_the_matrix_is() -> None:
    L = np.array([[1.0, 0.2, 0.1], [0.2, 1.0, 0.7], [0.1, 0.7, 1.0]])
    assert lmn_core.spectrum(L).lmn == pytest.approx(lmn_core.lmn_from_connectivity(L.tolist()))
    with pytest.raises(ValueError, match=r"not symmetric: L\[0, 1\]"):
        lmn_core.spectrum(L + np.triu(np.full((3, 3), 0.1), 1))


def test_progress_counts_pairs_on_the_device(monkeypatch) -> None:
    bars = []

    class Bar:
        def __init__(self, total: int, **options) -> None:
            self.total, self.counts = total, []
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

        def update(self, count: int) -> None:
            self.counts.append(count)

    pytest.importorskip("tqdm")
    monkeypatch.setattr("tqdm.auto.tqdm", Bar)
    X = np.random.default_rng(3).normal(size=(12, 3))
    lmn_core.connectivity_matrix(OnDevice(np.tanh), X, progress=True, block_pairs=5)
    lmn_core.connectivity_matrix(np.tanh, X, progress=True, block_pairs=5)
    device, host = bars
    assert device.total == host.total == 66
    assert device.counts == [5] * 13 + [1] and host.counts == [5] * 13 + [1]
