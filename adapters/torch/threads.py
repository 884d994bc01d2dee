"""The head on one torch thread for a measurement on the CPU, so that the core may run it in lanes.

``lmn_core`` runs a function that allows concurrent calls in several lanes (threads that
each evaluate a block of pairs) when, timed both ways on the first blocks, lanes evaluate
the pairs faster than one lane (docs/design.md, section 4.2). A
:class:`adapters.torch.TorchFunction` allows them with one torch thread only. So a
measurement on the CPU that leaves ``threads`` and ``overlap`` to the core runs the head on
one torch thread, restored after. With torch's default of one intra-op thread per CPU kept,
a small head keeps every CPU busy with threads that gain it little, and the measurement ran
in one lane at up to 2.4 times the floor; on one thread in the lanes the core chooses it
takes 1.39 (``python benchmarks/bench_default.py --large 120``), and a large head, whose
products torch's threads share out well, loses nothing either (1.11 against 1.22). One thread
also fixes the bits: torch's products on several threads differ from one thread's in the
last bits of some rows, so the default ``L`` is one thread's whatever the process's setting
and whichever way the core chooses.
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
