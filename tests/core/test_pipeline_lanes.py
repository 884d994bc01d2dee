"""Lanes: several threads evaluate ``f`` at once on blocks of their own; L is the same bit for bit."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import silu_mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle import oracle_connectivity

import lmn_core
from lmn_core.pipeline import ConnectivityStream, lanes_for
from lmn_core.protocol import ReductionTask


class ThreadLog:
    """Wraps ``f``; records the thread of each call and the most calls that ran at once."""

    def __init__(self, f, pause_seconds: float = 0.0, concurrent_calls: bool | None = None) -> None:
        self.f = f
        self.pause_seconds = pause_seconds
        if concurrent_calls is not None:
            self.concurrent_calls = concurrent_calls
        self.threads: list[int] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            self.threads.append(threading.get_ident())
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if self.pause_seconds:
                time.sleep(self.pause_seconds)  # sleeping uses no CPU: the lanes overlap
            return self.f(x)
        finally:
            with self._lock:
                self.running -= 1


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.integers(2, 30), st.integers(1, 40), st.integers(1, 5), st.integers(2, 4))
def test_lanes_give_the_inline_matrix_bit_for_bit(
    seed: int, n_samples: int, block_pairs: int, n_outputs: int, threads: int
) -> None:
    X = np.random.default_rng(seed).normal(size=(n_samples, 3))
    f = silu_mlp(3, 8, n_outputs, seed, scale=2.0)
    inline = lmn_core.connectivity_matrix(f, X, block_pairs=block_pairs, overlap=False)
    lanes = lmn_core.connectivity_matrix(f, X, block_pairs=block_pairs, threads=threads)
    np.testing.assert_array_equal(lanes, inline)


def test_lanes_agree_with_the_oracle_across_tiles_and_blocks() -> None:
    X = np.random.default_rng(8).normal(size=(23, 4))  # 253 pairs: blocks of 37, tiles of 16
    f = silu_mlp(4, 16, 5, seed=8, scale=3.0)
    got = lmn_core.connectivity_matrix(f, X, block_pairs=37, threads=3)
    np.testing.assert_allclose(got, oracle_connectivity(f, X), rtol=0, atol=1e-10)


def test_threads_call_f_at_once_and_the_calling_thread_reports_every_pair() -> None:
    X = np.random.default_rng(0).normal(size=(16, 3))  # 120 pairs: 30 blocks of 4
    f = ThreadLog(silu_mlp(3, 8, 2, seed=0), pause_seconds=0.005)
    task = ReductionTask(X, np.asarray(f(X), dtype=np.float64), 21, 1e-12, 0.0)
    calling_thread = threading.get_ident()
    reported: list[tuple[int, int]] = []
    ConnectivityStream(task, block_pairs=4).run(
        f, lambda count: reported.append((threading.get_ident(), count)), threads=3
    )
    assert f.most_at_once >= 2
    assert len(set(f.threads[1:])) == 3  # after f(X): three lanes
    assert {thread for thread, _ in reported} == {calling_thread}
    assert sum(count for _, count in reported) == 120


def test_a_function_that_allows_concurrent_calls_gets_lanes_on_idle_cpus(monkeypatch) -> None:
    monkeypatch.setattr(lmn_core.pipeline, "machine_busy_seconds", lambda: 0.0)  # a quiet machine
    monkeypatch.setattr(lmn_core.pipeline, "available_cpus", lambda: 3)
    X = np.random.default_rng(0).normal(size=(16, 3))
    allowed = ThreadLog(silu_mlp(3, 8, 2, seed=0), pause_seconds=0.01, concurrent_calls=True)
    unsaid = ThreadLog(silu_mlp(3, 8, 2, seed=0), pause_seconds=0.01)
    refused = ThreadLog(silu_mlp(3, 8, 2, seed=0), pause_seconds=0.01, concurrent_calls=False)
    expected = lmn_core.connectivity_matrix(silu_mlp(3, 8, 2, seed=0), X, block_pairs=4, overlap=False)
    for f in (allowed, unsaid, refused):
        np.testing.assert_array_equal(lmn_core.connectivity_matrix(f, X, block_pairs=4), expected)
    assert len(set(allowed.threads)) >= 2 and allowed.most_at_once >= 2
    assert len(set(unsaid.threads)) == 1 and len(set(refused.threads)) == 1


class OneAtATime(ThreadLog):
    """Says it allows concurrent calls, but its calls queue for one lock (as a function whose
    work holds the GIL, or whose one device serves one call at a time): lanes gain nothing."""

    def __init__(self, f, pause_seconds: float) -> None:
        super().__init__(f, pause_seconds, concurrent_calls=True)
        self.serial = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.serial:
            return super().__call__(x)


def test_lanes_are_kept_only_when_timing_both_ways_finds_them_faster(monkeypatch, caplog) -> None:
    monkeypatch.setattr(lmn_core.pipeline, "machine_busy_seconds", lambda: 0.0)  # a quiet machine
    monkeypatch.setattr(lmn_core.pipeline, "available_cpus", lambda: 2)
    X = np.random.default_rng(0).normal(size=(40, 3))  # 780 pairs: 195 blocks of 4
    expected = lmn_core.connectivity_matrix(silu_mlp(3, 8, 2, seed=0), X, block_pairs=4, overlap=False)
    overlapping = ThreadLog(silu_mlp(3, 8, 2, seed=0), pause_seconds=0.002, concurrent_calls=True)
    queueing = OneAtATime(silu_mlp(3, 8, 2, seed=0), pause_seconds=0.002)
    with caplog.at_level("DEBUG", logger="lmn_core.pipeline"):
        for f in (overlapping, queueing):
            np.testing.assert_array_equal(lmn_core.connectivity_matrix(f, X, block_pairs=4), expected)
    choices = [
        record.getMessage().rsplit(": ", 1)[1] for record in caplog.records if "pairs/s" in record.message
    ]
    assert choices == ["lanes", "1 lane"]
    assert queueing.most_at_once == 1  # the lock let one call run at a time
    # each timed stretch (20 ms) holds about 10 blocks of 2 ms: the last 100 blocks are the rest
    assert set(queueing.threads[-100:]) == {queueing.threads[0]}  # the calling thread's, as f(X)
    assert len(set(overlapping.threads[-100:])) == 2


def test_pairs_the_inline_stretch_finishes_start_no_lanes(monkeypatch) -> None:
    monkeypatch.setattr(lmn_core.pipeline, "available_cpus", lambda: 2)
    started: list[int] = []
    run_lanes = ConnectivityStream._run_lanes
    monkeypatch.setattr(
        ConnectivityStream,
        "_run_lanes",
        lambda self, f, n_lanes, *args, **kwargs: (
            started.append(n_lanes) or run_lanes(self, f, n_lanes, *args, **kwargs)
        ),
    )
    X = np.random.default_rng(0).normal(size=(6, 3))  # 15 pairs: 4 blocks of 4
    f = ThreadLog(silu_mlp(3, 8, 2, seed=0), concurrent_calls=True)
    np.testing.assert_array_equal(
        lmn_core.connectivity_matrix(f, X, block_pairs=4),
        lmn_core.connectivity_matrix(silu_mlp(3, 8, 2, seed=0), X, block_pairs=4, overlap=False),
    )
    assert len(f.threads) == 5 and set(f.threads) == {threading.get_ident()}  # f(X), then 4 blocks
    assert started == []  # no lanes to time once every pair is done


def test_no_lanes_when_overlap_or_one_thread_is_asked_for(monkeypatch) -> None:
    monkeypatch.setattr(lmn_core.pipeline, "machine_busy_seconds", lambda: 0.0)
    monkeypatch.setattr(lmn_core.pipeline, "available_cpus", lambda: 3)
    X = np.random.default_rng(0).normal(size=(12, 3))
    for kwargs in ({"threads": 1}, {"overlap": False}, {"overlap": True}):
        f = ThreadLog(silu_mlp(3, 8, 2, seed=0), pause_seconds=0.005, concurrent_calls=True)
        lmn_core.connectivity_matrix(f, X, block_pairs=4, **kwargs)
        assert f.most_at_once == 1, kwargs


@pytest.mark.parametrize(
    ("idle", "n_cpus", "expected"),
    [
        (0.0, 2, 1),
        (0.5, 2, 1),  # half a CPU: the kernels' worker, not a lane
        (0.8, 2, 2),
        (1.0, 2, 2),
        (1.9, 2, 2),  # never more lanes than CPUs
        (6.7, 8, 7),
        (15.0, 16, 16),
    ],
)
def test_one_lane_per_idle_cpu(idle: float, n_cpus: int, expected: int) -> None:
    assert lanes_for(idle, n_cpus) == expected


def test_an_error_in_any_lane_stops_the_measurement_and_is_raised() -> None:
    X = np.random.default_rng(0).normal(size=(20, 3))
    f = silu_mlp(3, 8, 2, seed=0)
    calls = 0
    lock = threading.Lock()

    def breaks_on_the_fifth_block(x: np.ndarray) -> np.ndarray:
        nonlocal calls
        with lock:
            calls += 1
            fifth = calls == 6  # the first call is f(X)
        if fifth:
            raise RuntimeError("the model failed")
        return f(x)

    with pytest.raises(RuntimeError, match="the model failed"):
        lmn_core.connectivity_matrix(breaks_on_the_fifth_block, X, block_pairs=2, threads=2)
    assert calls < 1 + 95  # stopped well before the 95 blocks were all evaluated


def test_a_non_finite_output_in_a_lane_names_its_pair() -> None:
    angles = np.linspace(0.0, 2.0 * np.pi, 8, endpoint=False)
    X = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # no chord passes another's midpoint
    midpoint = X[6] + 0.5 * (X[7] - X[6])  # as the kernel interpolates: reached at λ = 0.5

    def nan_at_the_midpoint(x: np.ndarray) -> np.ndarray:
        at_midpoint = np.linalg.norm(x - midpoint, axis=1) < 1e-12
        return np.where(at_midpoint[:, None], np.nan, np.tanh(x @ [[1.0, 2.0], [-1.0, 0.5]]))

    with pytest.raises(ValueError, match="between samples 6 and 7") as error:
        lmn_core.connectivity_matrix(nan_at_the_midpoint, X, block_pairs=3, threads=2)
    assert "0.5" in str(error.value)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_threads_must_be_a_whole_number_of_at_least_one(threads) -> None:
    X = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(ValueError, match="threads must be a whole number"):
        lmn_core.lmn(silu_mlp(2, 4, 1, seed=0), X, threads=threads)


def test_several_threads_cannot_go_with_overlap() -> None:
    X = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(ValueError, match="cannot go with threads > 1"):
        lmn_core.lmn(silu_mlp(2, 4, 1, seed=0), X, threads=2, overlap=True)
