"""Stream the pairs ``i < j`` through ``f`` in blocks, with the kernels on a worker thread.

While the calling thread evaluates ``f`` on block ``k``, one worker thread reduces block
``k - 1`` to its connectivity values and builds the interpolated points of block
``k + 1``. The kernels release the GIL, so their work overlaps ``f``'s instead of
adding to it, and no threading layer is involved: ``f`` may use any threads it likes.

When ``f`` reduces pairs itself (:mod:`lmn_core.protocol`), the blocks of pairs go to
its reduction instead, and only their ``L`` values come back.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmn_core import kernels
from lmn_core.protocol import PairReduction, segment_lambdas
from lmn_core.validation import checked_outputs, checked_reduction, pairs_named, raise_non_finite

CONST_RTOL_ULPS = 32


def default_const_rtol(dtype: np.dtype) -> float:
    """The default constant tolerance: 32 machine epsilons of ``f``'s output dtype."""
    return CONST_RTOL_ULPS * float(np.finfo(dtype).eps)


@dataclass(frozen=True)
class Segments:
    """The λ grid of every segment and the constant-output tolerance."""

    n_points: int
    const_rtol: float
    const_atol: float

    @property
    def lambdas(self) -> np.ndarray:
        return segment_lambdas(self.n_points)

    @property
    def n_interior(self) -> int:
        return self.n_points - 2


class _Block:
    """Buffers of one block in flight: its pairs and their interpolated points."""

    def __init__(self, block_pairs: int, n_interior: int, n_features: int, dtype: np.dtype) -> None:
        self.pair_i = np.empty(block_pairs, dtype=np.int64)
        self.pair_j = np.empty(block_pairs, dtype=np.int64)
        self.points = np.empty((block_pairs * n_interior, n_features), dtype=dtype)
        self.values = np.empty(block_pairs)
        self.non_finite = np.empty(block_pairs, dtype=np.bool_)
        self.count = 0


class ConnectivityStream:
    """Fill a connectivity matrix pair block by pair block (see the module docstring).

    Parameters
    ----------
    flat_samples : numpy.ndarray
        ``(N, D)`` C-contiguous samples, float32 or float64.
    sample_shape : tuple of int
        Shape of one sample as ``f`` expects it.
    endpoint_outputs : numpy.ndarray
        ``f(X)`` as float64 ``(N, d2)``.
    segments : Segments
        The λ grid and the constant tolerance.
    block_pairs : int
        Pairs per block.
    """

    def __init__(
        self,
        flat_samples: np.ndarray,
        sample_shape: tuple[int, ...],
        endpoint_outputs: np.ndarray,
        segments: Segments,
        block_pairs: int,
    ) -> None:
        self.samples = flat_samples
        self.sample_shape = sample_shape
        self.endpoint_outputs = endpoint_outputs
        self.output_scales = np.abs(endpoint_outputs).max(axis=0)
        self.segments = segments
        lambdas = segments.lambdas
        self.interior_lambdas = lambdas[1:-1].copy()
        self.centered_lambdas = lambdas - lambdas.mean()
        self.block_pairs = block_pairs
        self.connectivity = np.eye(flat_samples.shape[0])
        self.next_pair = (0, 1)

    def _new_block(self, block_pairs: int) -> _Block:
        return _Block(block_pairs, self.segments.n_interior, self.samples.shape[1], self.samples.dtype)

    def _build(self, block: _Block) -> _Block:
        """Take the next pairs into ``block`` and interpolate their points (worker thread)."""
        start_i, start_j = self.next_pair
        count, *self.next_pair = kernels.fill_pairs(
            self.samples.shape[0], start_i, start_j, block.pair_i, block.pair_j
        )
        block.count = count
        if count:
            kernels.build_interior_points(
                self.samples,
                block.pair_i[:count],
                block.pair_j[:count],
                self.interior_lambdas,
                block.points[: count * self.segments.n_interior],
            )
        return block

    def _reduce(self, block: _Block, outputs: np.ndarray) -> int:
        """Reduce ``block``'s outputs into the matrix (worker thread); return its pair count."""
        count = block.count
        pair_i, pair_j = block.pair_i[:count], block.pair_j[:count]
        values, non_finite = block.values[:count], block.non_finite[:count]
        kernels.reduce_to_connectivity(
            self.endpoint_outputs,
            outputs,
            pair_i,
            pair_j,
            self.centered_lambdas,
            self.output_scales,
            self.segments.const_rtol,
            self.segments.const_atol,
            values,
            non_finite,
        )
        if non_finite.any():
            raise_non_finite(outputs, pair_i, pair_j, non_finite, self.interior_lambdas)
        self.connectivity[pair_i, pair_j] = values
        self.connectivity[pair_j, pair_i] = values
        return count

    def _evaluate(self, f: Callable[[np.ndarray], Any], block: _Block) -> np.ndarray:
        """``f`` on ``block``'s interpolated points, checked (calling thread)."""
        rows = block.count * self.segments.n_interior
        where = f"interior points of {pairs_named(block.pair_i[: block.count], block.pair_j[: block.count])}"
        outputs = checked_outputs(f(block.points[:rows].reshape((rows, *self.sample_shape))), rows, where)
        n_outputs = self.endpoint_outputs.shape[1]
        if outputs.shape[1] != n_outputs:
            raise ValueError(
                f"f returned {outputs.shape[1]} output dimensions ({where}) but {n_outputs} for f(X)"
            )
        return outputs

    def run(self, f: Callable[[np.ndarray], Any], on_pairs_done: Callable[[int], None]) -> np.ndarray:
        """Evaluate every block and return the filled connectivity matrix.

        ``on_pairs_done(count)`` is called in the calling thread as blocks complete.
        """
        blocks = [self._new_block(self.block_pairs) for _ in range(2)]
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
        return self.connectivity

    def run_reduced(
        self,
        f: Callable[[np.ndarray], Any],
        reduction: PairReduction,
        on_pairs_done: Callable[[int], None],
    ) -> np.ndarray:
        """Hand every block of pairs to ``f``'s ``reduction`` and return the filled matrix.

        A pair flagged non-finite is evaluated again through ``f`` itself, so that the
        error names its λ exactly as on the host path.
        """
        n_samples = self.samples.shape[0]
        pair_i = np.empty(self.block_pairs, dtype=np.int64)
        pair_j = np.empty(self.block_pairs, dtype=np.int64)
        while True:
            count, *self.next_pair = kernels.fill_pairs(n_samples, *self.next_pair, pair_i, pair_j)
            if not count:
                return self.connectivity
            block_i, block_j = pair_i[:count].copy(), pair_j[:count].copy()
            values, non_finite = checked_reduction(reduction(block_i, block_j), block_i, block_j)
            if non_finite.any():
                pair = int(np.argmax(non_finite))
                self._explain_non_finite(f, int(block_i[pair]), int(block_j[pair]))
            self.connectivity[block_i, block_j] = values
            self.connectivity[block_j, block_i] = values
            on_pairs_done(count)

    def _explain_non_finite(self, f: Callable[[np.ndarray], Any], i: int, j: int) -> None:
        """Raise the host path's error for pair ``(i, j)``, evaluated through ``f`` itself."""
        block = self._new_block(1)
        block.pair_i[0], block.pair_j[0], block.count = i, j, 1
        kernels.build_interior_points(
            self.samples, block.pair_i, block.pair_j, self.interior_lambdas, block.points
        )
        self._reduce(block, self._evaluate(f, block))
        raise ValueError(
            f"f's pair reduction reported a non-finite value on the segment between samples {i} and {j}, "
            "but f evaluated on that segment's points is finite: its reduction disagrees with f"
        )
