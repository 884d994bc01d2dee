"""Stream the pairs ``i < j`` through ``f`` in blocks, and reduce them to ``L``.

Each block's interpolated points are built and its outputs reduced by Numba kernels
that release the GIL. They run in one of three ways, with the same result:

- inline: the calling thread builds, evaluates and reduces each block in turn;
- overlapped: while the calling thread evaluates ``f`` on block ``k``, one worker
  thread reduces block ``k - 1`` and builds block ``k + 1``, so the kernels use a
  CPU that ``f`` leaves idle;
- in lanes: several threads each take the next block, build it, evaluate ``f`` on it
  and reduce it, so that ``f`` itself runs on several CPUs at once. ``f`` must be safe
  to call from several threads; a function says so with ``concurrent_calls = True``
  (the PyTorch adapter does with one torch thread: a small head gains nothing from
  torch's own threads, but a lane per CPU scales).

Overlap and lanes only pay when CPUs are idle. When ``f``'s own threads keep every CPU
busy (OpenBLAS, for one, spins its threads between calls), more threads compete with
them, and on the 2-CPU development machine that cost more than running the kernels
inline (``benchmarks/bench_core.py --compare-modes``). By default the first blocks run
inline while the CPU use of ``f`` and, on Linux, of the whole machine (``/proc/stat``) is
measured. When ``f`` allows concurrent calls and the process may run on several CPUs,
both ways are timed: a short stretch inline, then as long a stretch in lanes (one per
CPU left idle, at least two), and the rest runs in lanes only if they evaluated pairs
faster; so several workers of a sweep on one machine, which take each other's CPUs, keep
one lane each. Otherwise (at least 200 ms of ``f`` inline), the rest runs overlapped if at
least half a CPU was left idle, else inline. The blocks are the same in every mode, so
``f`` sees the same batches and ``L`` is the same bit for bit.

A function that runs on its own device (:class:`lmn_core.DevicePlan`) is measured there
instead (:mod:`lmn_core.device`); this module then only explains a non-finite pair.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from lmn_core import kernels
from lmn_core.cpu_use import available_cpus, idle_cpus, lanes_for, machine_busy_seconds
from lmn_core.memory import aligned_empty
from lmn_core.protocol import ReductionTask
from lmn_core.validation import call_function, checked_outputs, pairs_named, raise_non_finite, row_stride

logger = logging.getLogger(__name__)

# f is timed inline on at least this many blocks and this many seconds, after a first
# block that may include its warm-up, before deciding whether to overlap.
PROBE_MIN_BLOCKS = 2
PROBE_SECONDS = 0.2
# For a function that allows concurrent calls, each way (inline, lanes) is timed this long;
# lanes are kept when they evaluate pairs at least this much faster.
LANES_PROBE_SECONDS = 0.02
LANES_MIN_GAIN = 1.1
# The kernels move to a worker thread when f left at least this many CPUs idle.
OVERLAP_MIN_IDLE = 0.5


def allows_concurrent_calls(f: Callable[[np.ndarray], Any]) -> bool:
    """Whether ``f`` says it may be called from several threads at once (``f.concurrent_calls``)."""
    return getattr(f, "concurrent_calls", False) is True


def _flat_rows(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """``rows`` (checked outputs) as one flat run from the first value to the last, read in
    place, and the elements from one row's start to the next's."""
    stride = row_stride(rows)
    if stride == rows.shape[1]:
        return rows.reshape(-1), stride
    length = (rows.shape[0] - 1) * stride + rows.shape[1]
    return np.lib.stride_tricks.as_strided(rows, shape=(length,), strides=(rows.itemsize,)), stride


class _Block:
    """Buffers of one block in flight: its pairs and their interpolated points."""

    def __init__(self, block_pairs: int, n_interior: int, n_features: int, dtype: np.dtype) -> None:
        self.pair_i = np.empty(block_pairs, dtype=np.int64)
        self.pair_j = np.empty(block_pairs, dtype=np.int64)
        self.points = aligned_empty((block_pairs * n_interior, n_features), dtype)
        self.non_finite = np.empty(block_pairs, dtype=np.bool_)
        self.count = 0


class ConnectivityStream:
    """Fill a connectivity matrix pair block by pair block (see the module docstring).

    Parameters
    ----------
    task : ReductionTask
        The samples, ``f(X)``, the λ grid and the resolved constant tolerance.
    block_pairs : int
        Pairs per block.
    """

    def __init__(self, task: ReductionTask, block_pairs: int) -> None:
        n_samples = task.samples.shape[0]
        self.samples = np.ascontiguousarray(task.samples.reshape(n_samples, -1))
        self.sample_shape = task.samples.shape[1:]
        self.endpoint_outputs = task.endpoint_outputs
        self.output_scales = task.output_scales
        self.const_rtol = task.const_rtol
        self.const_atol = task.const_atol
        self.interior_lambdas = task.interior_lambdas
        self.n_interior = self.interior_lambdas.shape[0]
        self.centered_lambdas = task.centered_lambdas
        self.block_pairs = block_pairs
        self.connectivity = np.eye(n_samples)
        self.next_pair = (0, 1)

    def _new_block(self, block_pairs: int) -> _Block:
        return _Block(block_pairs, self.n_interior, self.samples.shape[1], self.samples.dtype)

    def _take(self, block: _Block) -> int:
        """Take the next pairs into ``block`` (its ``count``; 0 when none are left)."""
        start_i, start_j = self.next_pair
        block.count, *self.next_pair = kernels.fill_pairs(
            self.samples.shape[0], start_i, start_j, block.pair_i, block.pair_j
        )
        return block.count

    def _interpolate(self, block: _Block) -> None:
        """Fill ``block``'s interpolated points for its pairs."""
        count = block.count
        kernels.build_interior_points(
            self.samples,
            block.pair_i[:count],
            block.pair_j[:count],
            self.interior_lambdas,
            block.points[: count * self.n_interior].reshape(-1),
        )

    def _build(self, block: _Block) -> _Block:
        """Take the next pairs into ``block`` and interpolate their points."""
        if self._take(block):
            self._interpolate(block)
        return block

    def _reduce(self, block: _Block, outputs: np.ndarray) -> int:
        """Reduce ``block``'s outputs into the matrix; return its pair count."""
        count = block.count
        pair_i, pair_j = block.pair_i[:count], block.pair_j[:count]
        non_finite = block.non_finite[:count]
        if kernels.reduce_to_connectivity(
            self.endpoint_outputs,
            *_flat_rows(outputs),
            pair_i,
            pair_j,
            self.centered_lambdas,
            self.output_scales,
            self.const_rtol,
            self.const_atol,
            self.connectivity,
            non_finite,
        ):
            raise_non_finite(outputs, pair_i, pair_j, non_finite, self.interior_lambdas)
        return count

    def _evaluate(self, f: Callable[[np.ndarray], Any], block: _Block) -> np.ndarray:
        """``f`` on ``block``'s interpolated points, checked (calling thread)."""
        rows = block.count * self.n_interior
        where = f"interior points of {pairs_named(block.pair_i[: block.count], block.pair_j[: block.count])}"
        points = block.points[:rows].reshape((rows, *self.sample_shape))
        outputs = checked_outputs(call_function(f, points, where), rows, where)
        n_outputs = self.endpoint_outputs.shape[1]
        if outputs.shape[1] != n_outputs:
            raise ValueError(
                f"f returned {outputs.shape[1]} output dimensions ({where}) but {n_outputs} for f(X)"
            )
        return outputs

    def run(
        self,
        f: Callable[[np.ndarray], Any],
        on_pairs_done: Callable[[int], None],
        overlap: bool | None = None,
        threads: int | None = None,
    ) -> np.ndarray:
        """Evaluate every block and return the filled connectivity matrix.

        ``on_pairs_done(count)`` is called in the calling thread as blocks complete.
        ``threads`` above 1 runs that many lanes; 1 runs one, whose kernels run on a
        worker thread (``overlap=True``), in the calling thread (False), or as ``f``'s CPU
        use on the first blocks decides (None). ``threads=None`` lets those first blocks
        choose lanes too, when ``f`` allows concurrent calls and ``overlap`` is None.
        """
        if threads is not None and threads > 1:
            self._run_lanes(f, threads, on_pairs_done)
            return self.connectivity
        block = self._new_block(self.block_pairs)
        if overlap is None:
            may_run_lanes = threads is None and allows_concurrent_calls(f) and available_cpus() > 1
            seconds = LANES_PROBE_SECONDS if may_run_lanes else PROBE_SECONDS
            idle, inline_rate = self._probe_inline(f, block, on_pairs_done, seconds)
            # a rate of 0: the inline stretch took every pair (a small N)
            lanes = (
                self._time_lanes(f, idle, inline_rate, on_pairs_done) if may_run_lanes and inline_rate else 1
            )
            if lanes > 1:
                self._run_lanes(f, lanes, on_pairs_done)
                return self.connectivity
            overlap = idle >= OVERLAP_MIN_IDLE
            logger.debug("f left %.2f CPUs idle: 1 lane, overlap %s", idle, overlap)
        if overlap:
            self._run_overlapped(f, [block, self._new_block(self.block_pairs)], on_pairs_done)
        else:
            self._run_inline(f, block, on_pairs_done)
        return self.connectivity

    def _time_lanes(
        self,
        f: Callable[[np.ndarray], Any],
        idle: float,
        inline_rate: float,
        on_pairs_done: Callable[[int], None],
    ) -> int:
        """Run lanes as long as the inline stretch was timed; return their number if they
        evaluated pairs :data:`LANES_MIN_GAIN` times faster than it, else 1."""
        lanes = max(2, lanes_for(idle, available_cpus()))
        pairs, seconds = self._run_lanes(f, lanes, on_pairs_done, seconds=LANES_PROBE_SECONDS)
        lanes_rate = pairs / seconds if seconds > 0.0 else 0.0
        won = lanes_rate >= LANES_MIN_GAIN * inline_rate
        logger.debug(
            "f left %.2f CPUs idle; pairs/s inline %.0f, in %d lanes %.0f: %s",
            idle,
            inline_rate,
            lanes,
            lanes_rate,
            "lanes" if won else "1 lane",
        )
        return lanes if won else 1

    def _probe_inline(
        self,
        f: Callable[[np.ndarray], Any],
        block: _Block,
        on_pairs_done: Callable[[int], None],
        seconds: float,
    ) -> tuple[float, float]:
        """Run the first blocks inline, timing ``f`` for at least ``seconds``; return how many
        CPUs it left idle, and the pairs a second of the timed blocks (built, evaluated, reduced)."""
        cpu_seconds = wall_seconds = 0.0
        machine_seconds: float | None = 0.0
        timed_blocks = timed_pairs = 0
        cycle_start: float | None = None  # after the first block, which may include f's warm-up
        while timed_blocks < PROBE_MIN_BLOCKS or wall_seconds < seconds:
            if not self._build(block).count:
                return 0.0, 0.0
            wall_start, cpu_start, machine_start = (
                time.perf_counter(),
                time.process_time(),
                machine_busy_seconds(),
            )
            outputs = self._evaluate(f, block)
            machine_end = machine_busy_seconds()
            if cycle_start is not None:
                wall_seconds += time.perf_counter() - wall_start
                cpu_seconds += time.process_time() - cpu_start
                if machine_seconds is not None and machine_start is not None and machine_end is not None:
                    machine_seconds += machine_end - machine_start
                else:
                    machine_seconds = None
                timed_blocks += 1
            pairs = self._reduce(block, outputs)
            on_pairs_done(pairs)
            if cycle_start is None:
                cycle_start = time.perf_counter()
            else:
                timed_pairs += pairs
        machine = None if machine_seconds is None else (machine_seconds, os.cpu_count() or 1)
        rate = timed_pairs / (time.perf_counter() - cycle_start)
        return idle_cpus(cpu_seconds, wall_seconds, available_cpus(), machine), rate

    def _run_lanes(
        self,
        f: Callable[[np.ndarray], Any],
        n_lanes: int,
        on_pairs_done: Callable[[int], None],
        seconds: float | None = None,
    ) -> tuple[int, float]:
        """Evaluate the remaining blocks (those taken within ``seconds``, if given) in
        ``n_lanes`` threads, each building, evaluating and reducing its own; return the pairs
        evaluated and the wall time taken.

        The calling thread is one lane and reports every lane's progress. Blocks are taken
        in order under a lock, so they hold the same pairs as in the other modes. The
        first error stops every lane at its next block and is raised.
        """
        taking = threading.Lock()
        stop = threading.Event()
        done: queue.SimpleQueue[int] = queue.SimpleQueue()
        start = time.perf_counter()
        deadline = float("inf") if seconds is None else start + seconds
        pairs = 0

        def report() -> None:
            nonlocal pairs
            while not done.empty():
                count = done.get()
                pairs += count
                on_pairs_done(count)

        def lane(on_block: Callable[[], None]) -> None:
            block = self._new_block(self.block_pairs)
            try:
                while not stop.is_set():
                    with taking:
                        if time.perf_counter() >= deadline or not self._take(block):
                            return
                    self._interpolate(block)
                    done.put(self._reduce(block, self._evaluate(f, block)))
                    on_block()
            except BaseException:
                stop.set()
                raise

        with ThreadPoolExecutor(max_workers=n_lanes - 1, thread_name_prefix="lmn-lane") as pool:
            others = [pool.submit(lane, lambda: None) for _ in range(n_lanes - 1)]
            lane(report)
            for other in others:
                other.result()
        report()
        return pairs, time.perf_counter() - start

    def _run_inline(
        self, f: Callable[[np.ndarray], Any], block: _Block, on_pairs_done: Callable[[int], None]
    ) -> None:
        """Build, evaluate and reduce the remaining blocks in the calling thread."""
        while self._build(block).count:
            on_pairs_done(self._reduce(block, self._evaluate(f, block)))

    def _run_overlapped(
        self, f: Callable[[np.ndarray], Any], blocks: list[_Block], on_pairs_done: Callable[[int], None]
    ) -> None:
        """Evaluate the remaining blocks while a worker thread builds and reduces the others."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmn-kernels") as worker:
            building: Future[_Block] = worker.submit(self._build, blocks[0])
            reducing: Future[int] | None = None
            index = 0
            while (block := building.result()).count:
                index += 1
                building = worker.submit(self._build, blocks[index % 2])
                outputs = self._evaluate(f, block)
                if reducing is not None:
                    on_pairs_done(reducing.result())
                reducing = worker.submit(self._reduce, block, outputs)
            if reducing is not None:
                on_pairs_done(reducing.result())

    def explain_non_finite(self, f: Callable[[np.ndarray], Any], i: int, j: int) -> None:
        """Raise the host path's error for pair ``(i, j)``, evaluated through ``f`` itself.

        For a pair that a device measurement flagged non-finite: the message then names the
        pair and λ exactly as on the host path.
        """
        block = self._new_block(1)
        block.pair_i[0], block.pair_j[0], block.count = i, j, 1
        kernels.build_interior_points(
            self.samples, block.pair_i, block.pair_j, self.interior_lambdas, block.points.reshape(-1)
        )
        self._reduce(block, self._evaluate(f, block))
        raise ValueError(
            f"f gave a non-finite value on its device on the segment between samples {i} and {j}, "
            "but f evaluated on the host on that segment's points is finite: the two disagree"
        )
