"""Overhead of ``lmn_core.connectivity_matrix`` over the forward-pass floor, and against the oracle.

For a NumPy MLP head 100 -> 100 -> 31 with SiLU (random weights) it prints, per dtype
and N, the median wall time of:

a. ``connectivity_matrix(f, X)``, with the kernels run where it chooses (``mode``:
   inline, or on a worker thread when ``f`` leaves a CPU idle; ``mixed`` when the
   repeats chose differently);
b. the literal oracle of ``tests/oracle.py`` (N = 200 only: it is slow);
c. the floor: ``f`` alone on the same total number of rows, in blocks of the same size;

and the ratios a/c (the core's overhead) and b/a (speed-up over the oracle). With
``--compare-modes`` it also times both modes forced, as a/c inline and a/c worker, and
the core's own work alone (k: building and reducing with an ``f`` that costs nothing,
its outputs computed beforehand) as k/c. ``--first-call`` instead times the first call
at N = 500 in fresh processes against the second call and the floor, as installed, with the library's
memory setting declined (``LMN_KEEP_FREED_MEMORY=0``), and with glibc's variables set.
Run it on an idle machine (nothing else running): ``python benchmarks/bench_core.py``.
How many CPUs the head's BLAS keeps busy decides the mode; compare
``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_core.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

import lmn_core
from lmn_core.measure import DEFAULT_MEMORY_BUDGET, DEFAULT_N_POINTS, pairs_per_block

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracle import oracle_connectivity

WIDTH, HIDDEN, OUTPUTS = 100, 100, 31


def make_head(dtype: type, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """A random MLP head ``Linear(100, 100) -> SiLU -> Linear(100, 31)`` in ``dtype``."""
    rng = np.random.default_rng(seed)
    w1 = (rng.normal(size=(WIDTH, HIDDEN)) / np.sqrt(WIDTH)).astype(dtype)
    b1 = rng.normal(size=HIDDEN).astype(dtype) * dtype(0.1)
    w2 = (rng.normal(size=(HIDDEN, OUTPUTS)) / np.sqrt(HIDDEN)).astype(dtype)
    b2 = rng.normal(size=OUTPUTS).astype(dtype) * dtype(0.1)

    def head(x: np.ndarray) -> np.ndarray:
        h = x @ w1 + b1
        h *= 1.0 / (1.0 + np.exp(-h))
        return h @ w2 + b2

    return head


def floor_time(head: Callable[[np.ndarray], np.ndarray], X: np.ndarray, memory_budget: int) -> float:
    """Seconds for ``head`` alone on the rows ``connectivity_matrix`` evaluates, in its blocks."""
    n_samples = X.shape[0]
    n_pairs = n_samples * (n_samples - 1) // 2
    n_interior = DEFAULT_N_POINTS - 2
    block = min(n_pairs, pairs_per_block(X[0].nbytes, OUTPUTS, DEFAULT_N_POINTS, memory_budget))
    rows = np.random.default_rng(1).normal(size=(block * n_interior, WIDTH)).astype(X.dtype)
    start = time.perf_counter()
    head(X)
    for first in range(0, n_pairs, block):
        head(rows[: min(block, n_pairs - first) * n_interior])
    return time.perf_counter() - start


def core_alone_time(head: Callable[[np.ndarray], np.ndarray], X: np.ndarray, memory_budget: int) -> float:
    """Seconds for ``connectivity_matrix`` (kernels inline) when ``f`` costs nothing.

    ``f`` hands back outputs computed beforehand, so what is timed is the core's own work:
    building and reducing every block, and its Python loop.
    """
    n_pairs = X.shape[0] * (X.shape[0] - 1) // 2
    block = min(n_pairs, pairs_per_block(X[0].nbytes, OUTPUTS, DEFAULT_N_POINTS, memory_budget))
    rows = np.random.default_rng(1).normal(size=(block * (DEFAULT_N_POINTS - 2), WIDTH)).astype(X.dtype)
    endpoint_outputs, block_outputs = head(X), head(rows)
    calls = 0

    def free(x: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        return endpoint_outputs if calls == 1 else block_outputs[: x.shape[0]]

    start = time.perf_counter()
    lmn_core.connectivity_matrix(free, X, memory_budget=memory_budget, overlap=False)
    return time.perf_counter() - start


class ModeLog(logging.Handler):
    """Remembers where ``connectivity_matrix`` last chose to run its kernels."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.mode = "-"

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()  # lmn_core.pipeline's "... 1 lane, overlap True/False"
        if "overlap True" in message:
            self.mode = "worker"
        elif "overlap False" in message:
            self.mode = "inline"


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


FIRST_CALL_SIZE = 500
FIRST_CALL_VARIANTS = {
    "as installed": {},
    "LMN_KEEP_FREED_MEMORY=0": {"LMN_KEEP_FREED_MEMORY": "0"},
    "glibc variables set": {"MALLOC_TRIM_THRESHOLD_": "268435456", "MALLOC_MMAP_THRESHOLD_": "67108864"},
}


def first_call_child(budget: int) -> None:
    """In this fresh process: the first ``connectivity_matrix`` at N = 500 (float32), a second, the floor."""
    head = make_head(np.float32)
    lmn_core.connectivity_matrix(head, np.zeros((3, WIDTH), np.float32))  # load the compiled kernels
    X = np.random.default_rng(FIRST_CALL_SIZE).normal(size=(FIRST_CALL_SIZE, WIDTH)).astype(np.float32)
    first = timed(partial(lmn_core.connectivity_matrix, head, X, memory_budget=budget))
    second = timed(partial(lmn_core.connectivity_matrix, head, X, memory_budget=budget))
    floor = min(floor_time(head, X, budget) for _ in range(3))
    print(json.dumps({"first": first, "second": second, "floor": floor}))


def first_call_table(repeats: int, budget: int) -> None:
    """Each variant's first call over the floor, each repeat a fresh process (medians)."""
    print(
        "first connectivity_matrix call in a fresh process, "
        f"float32, N = {FIRST_CALL_SIZE}, median of {repeats}"
    )
    print(f"{'':26} {'first s':>8} {'second s':>9} {'floor s':>8} {'first/floor':>12} {'first/second':>13}")
    base = {k: v for k, v in os.environ.items() if k not in FIRST_CALL_VARIANTS["glibc variables set"]}
    base.pop("LMN_KEEP_FREED_MEMORY", None)
    command = [sys.executable, __file__, "--first-call-child", "--memory-budget", str(budget)]
    times: dict[str, list[dict[str, float]]] = {name: [] for name in FIRST_CALL_VARIANTS}
    for _ in range(repeats):  # interleaved, so drift hits all alike
        for name, extra in FIRST_CALL_VARIANTS.items():
            done = subprocess.run(command, env={**base, **extra}, capture_output=True, text=True, check=True)
            times[name].append(json.loads(done.stdout.splitlines()[-1]))
    for name, runs in times.items():
        first, second, floor = (
            statistics.median(run[key] for run in runs) for key in ("first", "second", "floor")
        )
        over_floor = statistics.median(run["first"] / run["floor"] for run in runs)
        over_second = statistics.median(run["first"] / run["second"] for run in runs)
        print(f"{name:26} {first:8.3f} {second:9.3f} {floor:8.3f} {over_floor:12.3f} {over_second:13.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 961])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--oracle-size", type=int, default=200)
    parser.add_argument("--memory-budget", type=int, default=DEFAULT_MEMORY_BUDGET, help="bytes")
    parser.add_argument("--compare-modes", action="store_true", help="also time both kernel modes forced")
    parser.add_argument(
        "--first-call", action="store_true", help="time the first call in fresh processes instead"
    )
    parser.add_argument("--first-call-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_call_child:
        return first_call_child(args.memory_budget)
    if args.first_call:
        return first_call_table(args.repeats, args.memory_budget)

    mode_log = ModeLog()
    pipeline_logger = logging.getLogger("lmn_core.pipeline")
    pipeline_logger.addHandler(mode_log)
    pipeline_logger.setLevel(logging.DEBUG)
    forced = {"inline": False, "worker": True} if args.compare_modes else {}
    budget = args.memory_budget
    print(f"memory budget {budget / 2**20:g} MiB, median of {args.repeats}")
    columns = [("dtype", 8), ("N", 5), ("a core s", 9), ("mode", 6), ("b oracle s", 10), ("c floor s", 9)]
    columns += [("a/c", 6), ("b/a", 7)] + [(f"a/c {name}", 12) for name in forced]
    columns += [("k/c", 6)] if args.compare_modes else []
    print(" ".join(f"{title:>{width}}" for title, width in columns))
    for dtype in (np.float32, np.float64):
        head = make_head(dtype)
        lmn_core.connectivity_matrix(head, np.zeros((3, WIDTH), dtype))  # compile outside the timing
        for n_samples in args.sizes:
            X = np.random.default_rng(n_samples).normal(size=(n_samples, WIDTH)).astype(dtype)
            core, floor = [], []
            forced_times: dict[str, list[float]] = {name: [] for name in forced}
            alone = []
            modes = set()
            for _ in range(args.repeats):  # interleaved, so drift hits all alike
                measure = partial(lmn_core.connectivity_matrix, head, X, memory_budget=budget)
                core.append(timed(measure))
                modes.add(mode_log.mode)
                for name, overlap in forced.items():
                    forced_times[name].append(timed(partial(measure, overlap=overlap)))
                if args.compare_modes:
                    alone.append(core_alone_time(head, X, budget))
                floor.append(floor_time(head, X, budget))
            a, c = statistics.median(core), statistics.median(floor)
            mode = modes.pop() if len(modes) == 1 else "mixed"
            if n_samples == args.oracle_size:
                b = timed(lambda X=X, head=head: oracle_connectivity(head, X))
                oracle_cells = f"{b:10.3f}"
                ratio_cell = f"{b / a:7.1f}"
            else:
                oracle_cells, ratio_cell = f"{'-':>10}", f"{'-':>7}"
            name = np.dtype(dtype).name
            forced_cells = [f"{statistics.median(times) / c:12.3f}" for times in forced_times.values()]
            cells = [f"{name:>8}", f"{n_samples:5d}", f"{a:9.3f}", f"{mode:>6}", oracle_cells, f"{c:9.3f}"]
            cells += [f"{a / c:6.3f}", ratio_cell, *forced_cells]
            cells += [f"{statistics.median(alone) / c:6.3f}"] if alone else []
            print(" ".join(cells), flush=True)


if __name__ == "__main__":
    main()
