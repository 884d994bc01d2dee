"""The kernels run inline or on a worker thread, chosen from the CPUs left idle; L is the same."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import silu_mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import oracle_connectivity

import lmn_core
from lmn_core import kernels
from lmn_core.pipeline import OVERLAP_MIN_IDLE, PROBE_MIN_BLOCKS, available_cpus, idle_cpus

WORKER_PREFIX = "lmn-kernels"


def worker_running() -> bool:
    return any(thread.name.startswith(WORKER_PREFIX) for thread in threading.enumerate())


class CallLog:
    """Wraps ``f``; records for each call whether the kernels' worker thread was alive."""

    def __init__(self, f, pause_seconds: float = 0.0) -> None:
        self.f = f
        self.pause_seconds = pause_seconds
        self.worker_seen: list[bool] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.worker_seen.append(worker_running())
        if self.pause_seconds:
            time.sleep(self.pause_seconds)
        return self.f(x)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.integers(2, 30), st.integers(1, 40), st.integers(1, 5))
def test_every_mode_gives_the_same_matrix(
    seed: int, n_samples: int, block_pairs: int, n_outputs: int
) -> None:
    X = np.random.default_rng(seed).normal(size=(n_samples, 3))
    f = silu_mlp(3, 8, n_outputs, seed, scale=2.0)
    inline = lmn_core.connectivity_matrix(f, X, block_pairs=block_pairs, overlap=False)
    overlapped = lmn_core.connectivity_matrix(f, X, block_pairs=block_pairs, overlap=True)
    chosen = lmn_core.connectivity_matrix(f, X, block_pairs=block_pairs)
    np.testing.assert_array_equal(overlapped, inline)
    np.testing.assert_array_equal(chosen, inline)


@pytest.mark.parametrize("overlap", [False, True])
def test_both_modes_agree_with_the_oracle_across_tiles_and_blocks(overlap: bool) -> None:
    X = np.random.default_rng(8).normal(size=(23, 4))  # 253 pairs: blocks of 37, tiles of 16
    f = silu_mlp(4, 16, 5, seed=8, scale=3.0)
    np.testing.assert_allclose(
        lmn_core.connectivity_matrix(f, X, block_pairs=37, overlap=overlap),
        oracle_connectivity(f, X),
        rtol=0,
        atol=1e-10,
    )


def test_inline_never_starts_a_worker_and_overlap_always_does() -> None:
    X = np.random.default_rng(0).normal(size=(12, 3))
    f = silu_mlp(3, 8, 2, seed=0)
    inline, overlapped = CallLog(f), CallLog(f)
    lmn_core.connectivity_matrix(inline, X, block_pairs=5, overlap=False)
    lmn_core.connectivity_matrix(overlapped, X, block_pairs=5, overlap=True)
    assert not any(inline.worker_seen)
    assert all(overlapped.worker_seen[1:])  # the first call is f(X), before any block


def test_a_function_that_leaves_the_cpus_idle_gets_the_worker_after_the_probe(monkeypatch) -> None:
    # on a quiet machine: what other processes take is tested with idle_cpus below
    monkeypatch.setattr(lmn_core.pipeline, "machine_busy_seconds", lambda: 0.0)
    X = np.random.default_rng(0).normal(size=(16, 3))
    sleepy = CallLog(silu_mlp(3, 8, 2, seed=0), pause_seconds=0.01)  # sleeping uses no CPU
    lmn_core.connectivity_matrix(sleepy, X, block_pairs=4)  # f(X), then 30 blocks
    seen = sleepy.worker_seen[1:]
    assert len(seen) == 30
    probed = seen.index(True)
    assert probed >= 1 + PROBE_MIN_BLOCKS  # a first block, then the timed ones
    assert seen[probed:] == [True] * (len(seen) - probed)


@pytest.mark.parametrize(
    ("cpu_seconds", "wall_seconds", "n_cpus", "expected"),
    [
        (1.0, 1.0, 2, True),  # single-threaded f on two CPUs: one idle
        (2.0, 1.0, 2, False),  # f's threads keep both busy (a spinning BLAS)
        (1.6, 1.0, 2, False),  # less than half a CPU idle
        (1.5, 1.0, 2, True),
        (0.1, 1.0, 1, True),  # f mostly waits (I/O, a device)
        (0.9, 1.0, 1, False),
        (15.0, 1.0, 16, True),
        (1.0, 0.0, 2, False),  # nothing measured
    ],
)
def test_overlap_needs_half_a_cpu_left_idle(
    cpu_seconds: float, wall_seconds: float, n_cpus: int, expected: bool
) -> None:
    assert (idle_cpus(cpu_seconds, wall_seconds, n_cpus) >= OVERLAP_MIN_IDLE) is expected


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        (None, True),  # unknown: this process's own use decides
        ((1.0, 2), True),  # only this process was busy
        ((2.0, 2), False),  # another process (a second sweep worker) took the idle CPU
        ((1.6, 2), False),
        ((2.0, 4), True),  # on a larger machine two CPUs are still idle
    ],
)
def test_overlap_needs_the_idle_cpu_to_be_idle_on_the_machine(machine, expected) -> None:
    assert (idle_cpus(1.0, 1.0, 2, machine) >= OVERLAP_MIN_IDLE) is expected


def test_no_worker_while_other_processes_keep_every_cpu_busy() -> None:
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(available_cpus())]
    try:
        time.sleep(0.3)
        X = np.random.default_rng(0).normal(size=(16, 3))
        sleepy = CallLog(silu_mlp(3, 8, 2, seed=0), pause_seconds=0.01)  # leaves its own CPU idle
        lmn_core.connectivity_matrix(sleepy, X, block_pairs=4)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    assert not any(sleepy.worker_seen)


class CutFromWider:
    """``f`` whose outputs are the first columns of wider rows (a view, as a widened last layer
    gives), with ``padding`` in the columns cut off."""

    def __init__(self, f, extra: int, padding: float) -> None:
        self.f, self.extra, self.padding = f, extra, padding

    def __call__(self, x: np.ndarray) -> np.ndarray:
        outputs = self.f(x)
        wide = np.full((outputs.shape[0], outputs.shape[1] + self.extra), self.padding, outputs.dtype)
        wide[:, : outputs.shape[1]] = outputs
        return wide[:, : outputs.shape[1]]


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**16),
    st.integers(2, 25),
    st.integers(1, 40),
    st.integers(1, 5),
    st.integers(1, 17),
    st.sampled_from([0.0, np.nan, 1e300]),
)
def test_rows_cut_from_wider_ones_give_the_matrix_of_their_copy(
    seed: int, n_samples: int, block_pairs: int, n_outputs: int, extra: int, padding: float
) -> None:
    X = np.random.default_rng(seed).normal(size=(n_samples, 3)).astype(np.float32)
    f = silu_mlp(3, 8, n_outputs, seed, scale=2.0)
    own = lmn_core.connectivity_matrix(f, X, block_pairs=block_pairs, overlap=False)
    cut = lmn_core.connectivity_matrix(CutFromWider(f, extra, padding), X, block_pairs=block_pairs, threads=2)
    np.testing.assert_array_equal(cut, own)


def test_a_non_finite_row_cut_from_a_wider_one_is_named() -> None:
    X = np.random.default_rng(3).normal(size=(6, 3))
    f = silu_mlp(3, 8, 4, seed=3)

    def nan_on_sample_2_to_5(x: np.ndarray) -> np.ndarray:
        outputs = f(x)
        on_segment = np.isclose(x, X[2] + 0.5 * (X[5] - X[2])).all(axis=1)
        outputs[on_segment, 1] = np.nan
        return outputs

    with pytest.raises(ValueError, match=r"between samples 2 and 5 at λ = 0\.5\b"):
        lmn_core.connectivity_matrix(CutFromWider(nan_on_sample_2_to_5, 3, 0.0), X, block_pairs=4)


@given(st.integers(1, 5000))
def test_the_reductions_sums_are_zeros_placed_apart_modulo_4096(n: int) -> None:
    sums = [kernels.placed_zeros(n, index) for index in range(6)]
    assert all(s.shape == (n,) and s.dtype == np.float64 and not s.any() for s in sums)
    period = kernels.ALIASING_PERIOD
    assert period == 4096
    assert [s.ctypes.data % period for s in sums] == [index * kernels.SUMS_SPACING for index in range(6)]
    assert kernels.SUMS_SPACING % 64 == 0 and period > 5 * kernels.SUMS_SPACING


def sequential_pair_values(endpoints, interior, pair_i, pair_j, centered, output_scales, rtol, atol):
    """The kernel's documented sums, one λ after another from the endpoint's, and each pair's
    mean of r² in order of the outputs: what its tiles and passes must give bit for bit."""
    start, end = endpoints[pair_i], endpoints[pair_j]
    n_points = centered.shape[0]
    d = end - start
    sum_d, sum_dd, sum_cd = d.copy(), d * d, centered[-1] * d
    low, high = np.minimum(d, 0.0), np.maximum(d, 0.0)
    for t in range(n_points - 2):
        d = interior[t].astype(np.float64) - start
        sum_d, sum_dd, sum_cd = sum_d + d, sum_dd + d * d, sum_cd + centered[t + 1] * d
        low, high = np.minimum(low, d), np.maximum(high, d)
    syy = sum_dd - sum_d * sum_d / n_points
    sxx = 0.0
    for c in centered:
        sxx += c * c
    scale = np.maximum(output_scales, np.abs(start) + np.maximum(-low, high))
    with np.errstate(divide="ignore", invalid="ignore"):
        fitted = np.minimum(sum_cd * sum_cd / (sxx * syy), 1.0)
    r_squared = np.where(high - low <= rtol * scale + atol, 1.0, fitted)
    total = np.zeros(pair_i.shape[0])
    for k in range(r_squared.shape[1]):
        total = total + r_squared[:, k]
    return total / r_squared.shape[1]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16), st.integers(3, 12), st.integers(1, 40), st.integers(1, 9), st.booleans())
def test_the_reduction_sums_in_the_documented_order_bit_for_bit(
    seed: int, n_points: int, n_pairs: int, n_outputs: int, constant_output: bool
) -> None:
    rng = np.random.default_rng(seed)
    endpoints = rng.normal(size=(2 * n_pairs, n_outputs))
    interior = rng.normal(size=(n_points - 2, n_pairs, n_outputs)).astype(np.float32)
    if constant_output:
        endpoints[:, 0] = 0.5
        interior[:, :, 0] = 0.5
    pair_i, pair_j = np.arange(n_pairs), np.arange(n_pairs, 2 * n_pairs)
    lambdas = np.linspace(0.0, 1.0, n_points)
    centered = lambdas - lambdas.mean()
    output_scales = np.abs(endpoints).max(axis=0)
    matrix, flags = np.zeros((2 * n_pairs, 2 * n_pairs)), np.empty(n_pairs, dtype=bool)
    flagged = kernels.reduce_to_connectivity(
        endpoints, interior.reshape(-1), n_outputs, pair_i, pair_j, centered, output_scales, 1e-6, 0.0,
        matrix, flags,
    )  # fmt: skip
    expected = sequential_pair_values(endpoints, interior, pair_i, pair_j, centered, output_scales, 1e-6, 0.0)
    np.testing.assert_array_equal(matrix[pair_i, pair_j], expected)
    np.testing.assert_array_equal(matrix[pair_j, pair_i], expected)
    assert not flagged and not flags.any()
