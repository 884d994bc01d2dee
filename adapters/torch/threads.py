"""The head on one torch thread for a measurement on the CPU, so that the core may run it in lanes.

``lmn_core`` runs a function in several lanes (threads that each evaluate a block of
pairs) only when the function allows concurrent calls and its first blocks leave CPUs
idle (docs/design.md, section 4.2). A :class:`adapters.torch.TorchFunction` allows them
with one torch thread only. With torch's default of one intra-op thread per CPU, a small
head keeps every CPU busy with threads that gain it little, the core sees nothing idle,
and the measurement ran in one lane: up to twice the floor, and slower than either forced
setting (lanes of one thread, or torch's threads in one lane). So a measurement on the
CPU that leaves ``threads`` and ``overlap`` to the core runs the head on one torch thread,
and the core gives it one lane per CPU it leaves idle. A large head loses nothing: its
rows are shared out among lanes instead of among torch's threads
(``python benchmarks/bench_default.py --large``). One thread also fixes the bits: torch's
products on several threads differ from one thread's in the last bits of some rows, so the
default ``L`` no longer follows the process's thread setting (lanes give one thread's ``L``
bit for bit). The thread count is restored after the measurement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch


def left_to_the_core(lmn_kwargs: Mapping[str, Any]) -> bool:
    """Whether the caller left the lanes and the kernels' thread (``threads``, ``overlap``) to the core."""
    return lmn_kwargs.get("threads") is None and lmn_kwargs.get("overlap") is None


@contextlib.contextmanager
def lane_threads(head: Any, lmn_kwargs: Mapping[str, Any]) -> Iterator[None]:
    """One torch thread while ``lmn_core`` measures ``head`` on the CPU with lanes left to it (see above)."""
    threads = torch.get_num_threads()
    if threads == 1 or head.device.type != "cpu" or not left_to_the_core(lmn_kwargs):
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
