"""The core's memory: ``f``'s freed temporaries kept in the process, and the blocks' points
aligned to cache lines.

**Freed memory.** Keep ``f``'s freed temporaries, so blocks do not fault them in again.

glibc hands large freed blocks back to the operating system (``munmap``, or a trim of
the heap top) and the next block of pairs faults the same memory in again: a NumPy head
measured in a fresh process ran 2.2x slower than with the blocks' memory kept
(docs/design.md 4.5). Before its first measurement ``lmn_core`` raises glibc's mmap
and trim thresholds (``mallopt``) to 64 MiB and 256 MiB, what
``MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456`` would set. Freed
memory up to those sizes then stays with the process for reuse. Nothing is changed when
the C library is not glibc, when either variable is set already (the user chose; unless
the caller overrides it, as a Dask task of ``lmn sweep`` does), or when
``LMN_KEEP_FREED_MEMORY=0``.

**Aligned points.** NumPy's buffers are 16-byte aligned, so a block's points start anywhere
within a 64-byte cache line, which a process keeps for all its calls. Where they start
changes what ``f`` costs on them: the reference head's whole measurement took 1.36 floors
with its points on a line's start and 1.53 with them 16 bytes into it (6 fresh processes
each, docs/design.md 4.2). :func:`aligned_empty` starts them on a line.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

import numpy as np

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 64 * 2**20
TRIM_THRESHOLD_BYTES = 256 * 2**20
OPT_OUT_VARIABLE = "LMN_KEEP_FREED_MEMORY"
GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
CACHE_LINE_BYTES = 64


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (AttributeError, ValueError, OSError):
        return False


@functools.cache
def keep_freed_memory(*, over_environment: bool = False) -> bool:
    """Raise glibc's mmap and trim thresholds once per process; return whether they were set.

    ``over_environment=True`` sets them even when glibc's variables are set, for a
    process whose environment someone other than the user chose (a Dask worker starts
    with ``MALLOC_TRIM_THRESHOLD_=65536``, under which an LMN measurement took twice as
    long: docs/design.md 4.5).
    """
    if os.environ.get(OPT_OUT_VARIABLE) == "0":
        return False
    if not over_environment and any(name in os.environ for name in GLIBC_VARIABLES):
        return False
    if not _is_glibc():
        return False
    libc = ctypes.CDLL(None)
    applied = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    logger.debug(
        "glibc mmap/trim thresholds raised to %d/%d bytes: %s",
        MMAP_THRESHOLD_BYTES,
        TRIM_THRESHOLD_BYTES,
        applied,
    )
    return applied


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a cache line (64 bytes)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + CACHE_LINE_BYTES, dtype=np.uint8)
    start = -raw.ctypes.data % CACHE_LINE_BYTES
    return raw[start : start + nbytes].view(dtype).reshape(shape)
