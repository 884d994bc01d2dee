"""The whole measurement on a function's own device, through the array API.

Given a :class:`lmn_core.DevicePlan`, :class:`DeviceMeasurement` puts the samples on the
device once, evaluates ``f(X)`` there, and streams every pair ``i < j`` through blocks
that live on the device from start to end: the pair indices are enumerated there (from
the block's first linear index), the points interpolated there (λ first, in the dtype
``f`` takes), ``f`` runs on the whole block at once, and :func:`lmn_core.rule.pair_connectivity`
reduces its outputs next to them (:func:`block_rule`, compiled where the plan offers a
compiler: ``DevicePlan.compile``). ``L`` is assembled on the device from the blocks'
values; nothing waits for the device but the check of ``f(X)`` and one check of every
block's non-finite flags at the end.

Blocks are planned from the device's free memory (:func:`device_block_budget`), all of
one size (the last padded with its own last pair, whose values are dropped), so that a
compiled function sees one shape. When the device runs out of memory on a block, the
block is halved and the measurement goes on; a single pair that does not fit is
reported with the bytes it asked for.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_cupy_array, is_torch_array
from array_api_compat import device as device_of

from lmn_core.protocol import DevicePlan, ReductionTask, default_const_rtol, segment_lambdas
from lmn_core.rule import RuleConstants, pair_connectivity
from lmn_core.validation import FunctionError

logger = logging.getLogger(__name__)

#: Share of the device's free memory a block may take, and the most it takes: blocks of
#: a few GiB already keep a large GPU busy (``benchmarks/bench_gpu.py``), and ``f``'s own
#: intermediates come on top of what the core counts.
DEVICE_MEMORY_SHARE = 0.25
DEVICE_BLOCK_CAP = 8 * 2**30
#: Bytes the core keeps per interior point and output dimension: ``f``'s output, the
#: float64 values shifted by the start, and room for a temporary of the rule.
_OUTPUT_BYTES = 24
#: Copies of an interior point the core makes: the step times λ, and the point.
_POINT_COPIES = 2


def to_numpy(array: Any) -> np.ndarray:
    """An array of any device on the host, as NumPy (PyTorch, CuPy, JAX and NumPy arrays)."""
    if is_torch_array(array):
        return array.detach().cpu().numpy()
    if is_cupy_array(array):
        return array.get()
    return np.asarray(array)


def device_block_budget(free_memory: int) -> int:
    """Bytes one block may take on a device with ``free_memory`` bytes free."""
    return max(1, min(int(free_memory * DEVICE_MEMORY_SHARE), DEVICE_BLOCK_CAP))


def _pair_bytes(sample_bytes: int, n_outputs: int, n_points: int) -> int:
    """The bytes the core keeps on the device for one pair (``f``'s own intermediates not counted)."""
    return (n_points - 2) * (_POINT_COPIES * sample_bytes + _OUTPUT_BYTES * n_outputs)


def device_pairs_per_block(sample_bytes: int, n_outputs: int, n_points: int, budget: int) -> int:
    """How many pairs one block on the device may hold within ``budget`` bytes (at least 1)."""
    return max(1, budget // _pair_bytes(sample_bytes, n_outputs, n_points))


def _row_offsets(xp: Any, n_samples: int, device: Any) -> Any:
    """``offset[i]``: how many pairs ``(a, b)``, ``a < b``, come before row ``i`` (int64)."""
    rows = xp.arange(n_samples, dtype=xp.int64, device=device)
    return rows * (2 * n_samples - rows - 1) // 2


def _pairs_at(xp: Any, offsets: Any, index: Any) -> tuple[Any, Any]:
    """The pairs ``(i, j)``, ``i < j``, at the linear ``index`` of the row-major order."""
    pair_i = xp.searchsorted(offsets, index, side="right") - 1
    return pair_i, index - xp.take(offsets, pair_i) + pair_i + 1


class DeviceMeasurement:
    """``L`` of one measurement on the plan's device (see the module docstring).

    Parameters
    ----------
    plan : DevicePlan
        The function on its device.
    samples : numpy.ndarray
        ``(N, *s)`` checked samples.
    n_points : int
        ``T``.
    """

    def __init__(self, plan: DevicePlan, samples: np.ndarray, n_points: int) -> None:
        self.plan = plan
        self.samples = plan.to_device(samples)
        self.xp = array_namespace(self.samples)
        self.device = device_of(self.samples)
        self.n_samples, self.n_points = samples.shape[0], n_points
        self.sample_shape = tuple(self.samples.shape[1:])
        self.flat_samples = self.xp.reshape(self.samples, (self.n_samples, -1))

    @property
    def sample_bytes(self) -> int:
        """The bytes of one sample on the device."""
        return math.prod(self.sample_shape) * self.samples.dtype.itemsize

    def block_pairs(self, memory_budget: int, block_pairs: int | None, n_outputs: int) -> int:
        """Pairs per block: ``block_pairs``, else as many as ``memory_budget`` holds."""
        if block_pairs is not None:
            return block_pairs
        return device_pairs_per_block(self.sample_bytes, n_outputs, self.n_points, memory_budget)

    def endpoint_outputs(self, rows_per_call: int) -> Any:
        """``f(X)`` on the device as float64 ``(N, d2)``, checked; also sets the output dtype."""
        xp = self.xp
        chunks = [
            self.outputs_of(self.samples[start : start + rows_per_call], f"samples {start}..")
            for start in range(0, self.n_samples, rows_per_call)
        ]
        widths = {chunk.shape[1] for chunk in chunks}
        if len(widths) > 1:
            raise ValueError(
                f"f returned a different number of output dimensions across batches: {sorted(widths)}"
            )
        self.output_dtype = chunks[0].dtype
        outputs = xp.astype(xp.concat(chunks) if len(chunks) > 1 else chunks[0], xp.float64)
        if not bool(xp.all(xp.isfinite(outputs))):
            sample, dimension = np.argwhere(~np.isfinite(to_numpy(outputs)))[0]
            raise ValueError(f"f(X) is not finite for sample {sample} (output dimension {dimension})")
        return outputs

    def outputs_of(self, batch: Any, where: str) -> Any:
        """``f`` on a device batch, as ``(M, d2)``; refuses what is not real numbers."""
        xp = self.xp
        try:
            outputs = self.plan.run(batch)
        except Exception as error:
            if self.plan.is_out_of_memory(error) or isinstance(error, FunctionError):
                raise
            raise FunctionError.raised_by("f", batch, error, where) from error
        if not hasattr(outputs, "shape") or len(outputs.shape) == 0 or outputs.shape[0] != batch.shape[0]:
            got = getattr(outputs, "shape", type(outputs).__name__)
            raise ValueError(f"f returned {got} for a batch of {batch.shape[0]} rows ({where})")
        if xp.isdtype(outputs.dtype, "complex floating"):
            raise TypeError(f"f returned dtype {outputs.dtype} ({where}); outputs must be real numbers")
        if not xp.isdtype(outputs.dtype, "real floating"):
            outputs = xp.astype(outputs, xp.float64)
        return xp.reshape(outputs, (batch.shape[0], -1))

    def output_const_rtol(self) -> float:
        """32 machine epsilons of the dtype ``f`` computes its outputs in (half precision included)."""
        return default_const_rtol(float(self.xp.finfo(self.output_dtype).eps))

    def constants(self, endpoints: Any, const_rtol: float, const_atol: float) -> RuleConstants:
        """The rule's constants as float64 arrays on the device."""
        xp, lambdas = self.xp, segment_lambdas(self.n_points)
        centered = lambdas - lambdas.mean()
        return RuleConstants(
            interior_centered=xp.asarray(centered[1:-1], dtype=xp.float64, device=self.device),
            output_scales=xp.max(xp.abs(endpoints), axis=0),
            zero=xp.asarray(0.0, dtype=xp.float64, device=self.device),
            one=xp.asarray(1.0, dtype=xp.float64, device=self.device),
            centered_end=float(centered[-1]),
            lambda_spread=float(np.sum(centered**2)),
            n_points=self.n_points,
            const_rtol=const_rtol,
            const_atol=const_atol,
        )

    def pair_values(
        self,
        endpoints: Any,
        constants: RuleConstants,
        block_pairs: int,
        on_pairs_done: Callable[[int], None],
    ) -> tuple[Any, tuple[int, int] | None]:
        """Every pair's ``L_ij`` in row-major order ``(N(N-1)/2,)`` float64, and the first non-finite pair."""
        blocks = _Blocks(self, endpoints, constants)
        values, bad_index = blocks.run(block_pairs, on_pairs_done)
        if bad_index is None:
            return values, None
        offsets = _row_offsets(np, self.n_samples, None)
        pair_i, pair_j = _pairs_at(np, offsets, np.asarray(bad_index))
        return values, (int(pair_i), int(pair_j))

    def matrix(self, values: Any, row_budget: int) -> Any:
        """The symmetric ``(N, N)`` ``L`` from the pairs' values, assembled on the device by rows."""
        xp, n = self.xp, self.n_samples
        n_pairs = n * (n - 1) // 2
        extended = xp.concat([values, xp.ones(1, dtype=xp.float64, device=self.device)])
        offsets = _row_offsets(xp, n, self.device)
        columns = xp.arange(n, dtype=xp.int64, device=self.device)
        step = max(1, row_budget // (8 * 4 * n))
        strips = []
        for first in range(0, n, step):
            rows = xp.arange(first, min(first + step, n), dtype=xp.int64, device=self.device)[:, None]
            low, high = xp.minimum(rows, columns), xp.maximum(rows, columns)
            index = xp.take(offsets, xp.reshape(low, (-1,))) + xp.reshape(high - low - 1, (-1,))
            index = xp.where(xp.reshape(rows == columns, (-1,)), n_pairs, index)
            strips.append(xp.reshape(xp.take(extended, index), (rows.shape[0], n)))
        return strips[0] if len(strips) == 1 else xp.concat(strips)

    def host_task(self, endpoints: Any, samples: np.ndarray, const_rtol: float, const_atol: float) -> Any:
        """The measurement as a host :class:`ReductionTask` (to explain a non-finite pair)."""
        return ReductionTask(samples, to_numpy(endpoints), self.n_points, const_rtol, const_atol)


class _Blocks:
    """The pairs of one measurement in equal blocks on the device; halves a block on out-of-memory."""

    def __init__(self, measurement: DeviceMeasurement, endpoints: Any, constants: RuleConstants) -> None:
        self.m, self.endpoints = measurement, endpoints
        xp, device = measurement.xp, measurement.device
        self.xp = xp
        self.rule_constants = constants.arguments()
        self.n_pairs = measurement.n_samples * (measurement.n_samples - 1) // 2
        self.offsets = _row_offsets(xp, measurement.n_samples, device)
        interior = segment_lambdas(measurement.n_points)[1:-1]
        self.weights = xp.asarray(interior.reshape(-1, 1, 1), dtype=measurement.samples.dtype, device=device)
        self.n_outputs = endpoints.shape[1]
        compiler = measurement.plan.compile
        self.rule_of = block_rule if compiler is None else compiled_rule(compiler)

    def run(self, block_pairs: int, on_pairs_done: Callable[[int], None]) -> tuple[Any, int | None]:
        xp = self.xp
        values, flags, starts = [], [], []
        first, size = 0, self._equal_size(block_pairs, self.n_pairs)
        while first < self.n_pairs:
            try:
                block_values, non_finite = self._block(first, size)
            except Exception as error:
                if not self.m.plan.is_out_of_memory(error):
                    raise
                size = self._halved(size, error)
                continue
            count = min(size, self.n_pairs - first)
            values.append(block_values[:count])
            flags.append(non_finite[:count])
            starts.append(first)
            first += count
            on_pairs_done(count)
        return xp.concat(values) if len(values) > 1 else values[0], self._first_non_finite(flags, starts)

    @staticmethod
    def _equal_size(block_pairs: int, n_pairs: int) -> int:
        """The size of equal blocks, at most ``block_pairs``, that cover ``n_pairs``."""
        n_blocks = -(-n_pairs // max(1, block_pairs))
        return -(-n_pairs // n_blocks)

    def _halved(self, size: int, error: BaseException) -> int:
        if size == 1:
            pair_bytes = _pair_bytes(self.m.sample_bytes, self.n_outputs, self.m.n_points)
            raise MemoryError(
                f"the device ran out of memory on a block of one pair (the core's own share about "
                f"{pair_bytes} bytes, plus what f needs for {self.m.n_points - 2} rows): {error}"
            ) from error
        logger.warning("the device ran out of memory on %d pairs a block; trying %d", size, size // 2)
        return size // 2

    def _block(self, first: int, size: int) -> tuple[Any, Any]:
        """``L`` values and non-finite flags of the ``size`` pairs from linear index ``first``."""
        xp, m = self.xp, self.m
        index = xp.arange(first, first + size, dtype=xp.int64, device=m.device)
        index = xp.minimum(index, xp.asarray(self.n_pairs - 1, dtype=xp.int64, device=m.device))
        pair_i, pair_j = _pairs_at(xp, self.offsets, index)
        start, end = xp.take(m.flat_samples, pair_i, axis=0), xp.take(m.flat_samples, pair_j, axis=0)
        points = start + self.weights * (end - start)  # (T - 2, P, D), λ first
        rows = points.shape[0] * size
        where = f"interior points from pair {first}"
        outputs = m.outputs_of(xp.reshape(points, (rows, *m.sample_shape)), where)
        if outputs.shape[1] != self.n_outputs:
            raise ValueError(
                f"f returned {outputs.shape[1]} output dimensions ({where}) but {self.n_outputs} for f(X)"
            )
        interior = xp.reshape(outputs, (points.shape[0], size, self.n_outputs))
        same = xp.all(start == end, axis=1)
        return self.rule_of(xp, interior, pair_i, pair_j, same, self.endpoints, *self.rule_constants)

    def _first_non_finite(self, flags: list[Any], starts: list[int]) -> int | None:
        """The linear index of the first pair flagged non-finite, or ``None`` (one wait for the device)."""
        xp = self.xp
        found = xp.stack([xp.any(block) for block in flags])
        if not bool(xp.any(found)):
            return None
        block = int(np.argmax(to_numpy(found)))
        return starts[block] + int(np.argmax(to_numpy(flags[block])))


def block_rule(
    xp: Any, interior: Any, pair_i: Any, pair_j: Any, same: Any, endpoints: Any, *constants: Any
) -> tuple[Any, Any]:
    """``L_ij`` and non-finite flags of a block's pairs from ``f`` at their interior points.

    ``xp`` is the arrays' namespace, ``interior`` is ``(T - 2, P, d2)`` as ``f`` returned
    it, ``endpoints`` is ``f(X)`` as float64 ``(N, d2)`` and ``constants`` are
    :meth:`RuleConstants.arguments`. A pair that is a single point has ``L_ij = 1``
    (docs/design.md 1.2.2).
    """
    rule = RuleConstants(*constants)
    origin, end = xp.take(endpoints, pair_i, axis=0), xp.take(endpoints, pair_j, axis=0)
    values, non_finite = pair_connectivity(xp, interior, origin, end, rule)
    return xp.where(same, rule.one, values), non_finite & ~same


@functools.cache
def compiled_rule(compiler: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[..., Any]:
    """:func:`block_rule` compiled by a plan's ``compiler`` (``DevicePlan.compile``), once per
    process and compiler: every later measurement runs what it compiled."""
    return compiler(block_rule)
