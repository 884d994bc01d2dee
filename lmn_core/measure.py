"""Measure the connectivity matrix and the LMN of any callable on a set of samples."""

from __future__ import annotations

import contextlib
import functools
import logging
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmn_core.device import DeviceMeasurement, device_block_budget, to_numpy
from lmn_core.memory import keep_freed_memory
from lmn_core.pipeline import ConnectivityStream
from lmn_core.protocol import DeviceFunction, DevicePlan, ReductionTask, default_const_rtol
from lmn_core.spectral import Spectrum, spectrum_of_checked
from lmn_core.validation import call_function, checked_n_points, checked_outputs, checked_samples

logger = logging.getLogger(__name__)

DEFAULT_N_POINTS = 21
DEFAULT_MEMORY_BUDGET = 4 * 2**20

Function = Callable[[np.ndarray], Any]


@dataclass(frozen=True, eq=False)
class LMNResult:
    """The LMN of a function on a set of samples, with what it was computed from.

    Attributes
    ----------
    lmn : float
        Linear mapping number ``2 ** entropy_bits``.
    entropy_bits : float
        Nonlinear complexity ``S_NL`` in bits.
    matrix : array
        The ``(N, N)`` float64 linear connectivity matrix ``L`` where it was computed: a
        NumPy array on the host, the device's array (a ``torch.Tensor`` on a GPU, say)
        when the function ran there.
    eigenvalues : numpy.ndarray
        Eigenvalues of ``L``, ascending.
    negative_mass : float
        Share of ``Σ|λ|`` carried by negative eigenvalues.
    n_samples : int
        ``N``, the number of samples (an LMN means little without it).
    n_points : int
        ``T``, the number of points on each segment.
    n_outputs : int
        ``d2``, the number of output dimensions averaged over.
    """

    lmn: float
    entropy_bits: float
    matrix: Any
    eigenvalues: np.ndarray
    negative_mass: float
    n_samples: int
    n_points: int
    n_outputs: int

    @functools.cached_property
    def connectivity(self) -> np.ndarray:
        """``L`` as a NumPy array on the host (copied from the device once, when first asked for)."""
        return to_numpy(self.matrix)


def _endpoint_outputs(f: Function, samples: np.ndarray, chunk_rows: int) -> tuple[np.ndarray, np.dtype]:
    """Evaluate ``f(X)`` once, in chunks, as float64 ``(N, d2)``; check it is finite.

    Also returns the dtype ``f`` computes its outputs in (float32 or float64).
    """
    chunks = []
    for start in range(0, samples.shape[0], chunk_rows):
        stop = min(start + chunk_rows, samples.shape[0])
        where = f"samples {start}..{stop - 1}"
        chunks.append(checked_outputs(call_function(f, samples[start:stop], where), stop - start, where))
    widths = {chunk.shape[1] for chunk in chunks}
    if len(widths) > 1:
        raise ValueError(
            f"f returned a different number of output dimensions across batches: {sorted(widths)}"
        )
    output_dtype = np.result_type(*chunks)
    outputs = np.concatenate(chunks).astype(np.float64, copy=False)
    finite = np.isfinite(outputs)
    if not finite.all():
        sample, dimension = np.argwhere(~finite)[0]
        raise ValueError(f"f(X) is not finite for sample {sample} (output dimension {dimension})")
    return outputs, output_dtype


def pairs_per_block(sample_bytes: int, n_outputs: int, n_points: int, memory_budget: int) -> int:
    """How many pairs fit one block, with two blocks of inputs and float64 outputs in the budget.

    Parameters
    ----------
    sample_bytes : int
        Bytes of one flattened sample.
    n_outputs : int
        Output dimensions ``d2`` of ``f``.
    n_points : int
        Points per segment ``T``; a pair has ``T - 2`` interior points.
    memory_budget : int
        Bytes for the two blocks in flight (one in ``f``, one being built or reduced).

    Returns
    -------
    int
        At least 1.
    """
    pair_bytes = (n_points - 2) * (sample_bytes + n_outputs * 8)
    return max(1, memory_budget // (2 * pair_bytes))


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Callable[[int], Any]]:
    """A callback counting pairs done: a tqdm bar's ``update`` when enabled, else one that does nothing."""
    if not enabled:
        yield lambda count: None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError as error:
        raise ImportError("progress=True needs tqdm: pip install 'lmn[progress]'") from error
    with tqdm(total=total, unit="pair", desc="LMN pairs", leave=False) as bar:
        yield bar.update


def connectivity_matrix(
    f: Function,
    X: Any,
    *,
    n_points: int = DEFAULT_N_POINTS,
    memory_budget: int | None = None,
    block_pairs: int | None = None,
    const_rtol: float | None = None,
    const_atol: float = 0.0,
    progress: bool = False,
    overlap: bool | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Linear connectivity matrix ``L`` of ``f`` on the samples ``X``.

    ``L_ij`` is the mean over output dimensions of the squared Pearson correlation
    between the output and ``λ`` along the segment ``x_i + λ (x_j - x_i)`` sampled at
    ``n_points`` uniform ``λ`` in ``[0, 1]``; ``L_ii = 1``.

    Parameters
    ----------
    f : callable
        Maps a batch ``(M, *s)`` to outputs ``(M, d2)`` or ``(M,)`` (trailing output
        axes are flattened into ``d2``). It gets arrays in ``X``'s dtype. When it is a
        :class:`lmn_core.DeviceFunction` whose ``device_plan`` returns a plan, the whole
        measurement runs on that device instead (see :mod:`lmn_core.device`).
    X : array_like
        Samples ``(N, *s)``. float32 and float64 keep their dtype; other real dtypes
        are converted to float64.
    n_points : int
        ``T >= 3`` points per segment, endpoints included (the paper uses 21).
    memory_budget : int, optional
        Bytes for the interpolated inputs and outputs of the pairs in flight, which sets
        how many pairs go to ``f`` at once (``f``'s own intermediates are not counted).
        By default 4 MiB on the host (two blocks in flight: one in ``f``, one being built
        or reduced), and on a device a share of its free memory
        (:func:`lmn_core.device.device_block_budget`).
    block_pairs : int, optional
        Pairs per block, overriding ``memory_budget``.
    const_rtol, const_atol : float
        An output dimension whose spread along a segment is at most
        ``const_rtol * scale + const_atol`` counts as constant, hence linear
        (r² = 1). ``scale`` is the larger of that dimension's largest magnitude over
        ``f(X)`` and ``|y(0)| + max_t |y(λ_t) - y(0)|`` on the segment. The default
        ``const_rtol`` is 32 machine epsilons of ``f``'s output dtype, so float32
        rounding does not turn a constant into a random r².
    progress : bool
        Show a tqdm progress bar over pairs.
    overlap : bool, optional
        On the host: build and reduce blocks on a worker thread while ``f`` evaluates the
        next one (True), or in the calling thread between calls of ``f`` (False). The
        default (None) runs the first blocks inline and overlaps the rest only if ``f``
        left at least half a CPU idle meanwhile: when ``f``'s own threads keep every CPU
        busy, a worker only competes with them. The result is the same either way.
    threads : int, optional
        On the host: how many threads evaluate ``f`` at once, each on blocks of its own
        (building, calling ``f``, reducing); ``f`` must be safe to call from several
        threads. The default (None) is one, or, when ``f`` says it allows concurrent calls
        (``f.concurrent_calls`` is True, as the PyTorch adapter says with one torch
        thread), ``overlap`` is None and the process may use several CPUs, one lane or
        several (one per CPU the first blocks left idle, at least two), whichever evaluates
        the pairs faster when both are timed on the first blocks. The blocks, hence ``L``,
        are the same either way.

    Returns
    -------
    numpy.ndarray
        Symmetric float64 ``(N, N)`` matrix with entries in ``[0, 1]``.
    """
    options = _Options(
        n_points, memory_budget, block_pairs, const_rtol, const_atol, progress, overlap, threads
    )
    matrix, _, _ = _measure(f, X, options, with_spectrum=False)
    return to_numpy(matrix)


@dataclass(frozen=True)
class _Options:
    """The keyword arguments of :func:`connectivity_matrix`, checked."""

    n_points: int
    memory_budget: int | None
    block_pairs: int | None
    const_rtol: float | None
    const_atol: float
    progress: bool
    overlap: bool | None
    threads: int | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_points", checked_n_points(self.n_points))
        if self.memory_budget is not None and self.memory_budget <= 0:
            raise ValueError(f"memory_budget must be a positive number of bytes, got {self.memory_budget}")
        if self.block_pairs is not None and self.block_pairs < 1:
            raise ValueError(f"block_pairs must be at least 1, got {self.block_pairs}")
        if self.threads is not None:
            _check_threads(self.threads, self.overlap)


def _check_threads(threads: Any, overlap: bool | None) -> None:
    """Refuse a thread count that is not a whole number of at least 1, or several with overlap=True."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be a whole number of at least 1, got {threads!r}")
    if threads > 1 and overlap:
        raise ValueError("overlap=True puts one thread's kernels on a worker; it cannot go with threads > 1")


def _measure(
    f: Function, X: Any, options: _Options, *, with_spectrum: bool
) -> tuple[Any, int, Spectrum | None]:
    """``L`` (on the host, or on ``f``'s device), the number of output dimensions, and the spectrum.

    On a device the spectrum is computed within the plan's session, where ``L`` is.
    """
    samples = checked_samples(X)
    plan = f.device_plan() if isinstance(f, DeviceFunction) else None
    with contextlib.nullcontext() if plan is None else plan.session():
        if plan is None:
            keep_freed_memory()
            matrix, n_outputs = _measure_on_host(f, samples, options)
        else:
            matrix, n_outputs = _measure_on_device(f, plan, samples, options)
        return matrix, n_outputs, spectrum_of_checked(matrix) if with_spectrum else None


def _measure_on_host(f: Function, samples: np.ndarray, options: _Options) -> tuple[np.ndarray, int]:
    """``L`` by the host's kernels; see :func:`connectivity_matrix`."""
    n_samples, n_points = samples.shape[0], options.n_points
    memory_budget = DEFAULT_MEMORY_BUDGET if options.memory_budget is None else options.memory_budget
    row_bytes_in = samples[0].nbytes
    chunk_rows = max(1, memory_budget // max(row_bytes_in, 1))
    endpoint_outputs, output_dtype = _endpoint_outputs(f, samples, chunk_rows)
    n_outputs = endpoint_outputs.shape[1]
    n_pairs = n_samples * (n_samples - 1) // 2
    if n_pairs == 0:
        return np.eye(n_samples), n_outputs
    block_pairs = options.block_pairs
    if block_pairs is None:
        block_pairs = pairs_per_block(row_bytes_in, n_outputs, n_points, memory_budget)
    block_pairs = min(block_pairs, n_pairs)
    logger.debug("%d pairs in blocks of %d", n_pairs, block_pairs)
    const_rtol = options.const_rtol
    if const_rtol is None:
        const_rtol = default_const_rtol(np.finfo(output_dtype).eps)
    task = ReductionTask(samples, endpoint_outputs, n_points, const_rtol, options.const_atol)
    stream = ConnectivityStream(task, block_pairs)
    with _progress_bar(n_pairs, options.progress) as on_pairs_done:
        connectivity = stream.run(f, on_pairs_done, options.overlap, options.threads)
    _link_point_segments(connectivity, samples)
    return connectivity, n_outputs


def _measure_on_device(
    f: Function, plan: DevicePlan, samples: np.ndarray, options: _Options
) -> tuple[Any, int]:
    """``L`` on ``f``'s device (:mod:`lmn_core.device`); see :func:`connectivity_matrix`."""
    measurement = DeviceMeasurement(plan, samples, options.n_points)
    budget = options.memory_budget
    if budget is None:
        budget = DEFAULT_MEMORY_BUDGET if plan.free_memory is None else device_block_budget(plan.free_memory)
    rows_per_call = measurement.block_pairs(budget, options.block_pairs, 1) * (options.n_points - 2)
    endpoints = measurement.endpoint_outputs(rows_per_call)
    n_outputs = endpoints.shape[1]
    n_pairs = samples.shape[0] * (samples.shape[0] - 1) // 2
    if n_pairs == 0:
        return measurement.matrix(measurement.xp.zeros(0, dtype=measurement.xp.float64), budget), n_outputs
    const_rtol = measurement.output_const_rtol() if options.const_rtol is None else options.const_rtol
    constants = measurement.constants(endpoints, const_rtol, options.const_atol)
    block_pairs = min(measurement.block_pairs(budget, options.block_pairs, n_outputs), n_pairs)
    logger.debug("%d pairs on the device in blocks of at most %d", n_pairs, block_pairs)
    with _progress_bar(n_pairs, options.progress) as on_pairs_done:
        values, bad_pair = measurement.pair_values(endpoints, constants, block_pairs, on_pairs_done)
    if bad_pair is not None:
        task = measurement.host_task(endpoints, samples, const_rtol, options.const_atol)
        ConnectivityStream(task, 1).explain_non_finite(f, *bad_pair)
    return measurement.matrix(values, budget), n_outputs


def _link_point_segments(connectivity: np.ndarray, samples: np.ndarray) -> None:
    """Set ``L_ij = 1`` where ``x_i == x_j``: such a segment is one point, whatever ``f`` does.

    Decided from the samples alone (docs/design.md 1.2.2), so the one-ulp differences that
    ``f`` may give the same row at two places of a batch never reach ``L``.
    """
    rows = samples.reshape(samples.shape[0], -1)
    _, group_of, group_sizes = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    for group in np.flatnonzero(group_sizes > 1):
        members = np.flatnonzero(group_of.reshape(-1) == group)
        connectivity[np.ix_(members, members)] = 1.0


def lmn(
    f: Function,
    X: Any,
    *,
    n_points: int = DEFAULT_N_POINTS,
    memory_budget: int | None = None,
    block_pairs: int | None = None,
    const_rtol: float | None = None,
    const_atol: float = 0.0,
    progress: bool = False,
    overlap: bool | None = None,
    threads: int | None = None,
) -> LMNResult:
    """Linear mapping number of ``f`` on the samples ``X``.

    Takes the same arguments as :func:`connectivity_matrix`, then reads the LMN off
    the spectrum of ``L``: ``p = |λ| / Σ|λ|``, ``S_NL = -Σ p log2 p``, ``LMN = 2 ** S_NL``.
    On a device the spectrum is computed where ``L`` is, and ``L`` stays there
    (:attr:`LMNResult.matrix`) until :attr:`LMNResult.connectivity` is asked for.

    Returns
    -------
    LMNResult
    """
    options = _Options(
        n_points, memory_budget, block_pairs, const_rtol, const_atol, progress, overlap, threads
    )
    matrix, n_outputs, summary = _measure(f, X, options, with_spectrum=True)
    return LMNResult(
        lmn=summary.lmn,
        entropy_bits=summary.entropy_bits,
        matrix=matrix,
        eigenvalues=summary.eigenvalues,
        negative_mass=summary.negative_mass,
        n_samples=matrix.shape[0],
        n_points=options.n_points,
        n_outputs=n_outputs,
    )
