"""How many CPUs a process may use, and how many a stretch of its work left idle (for
:mod:`lmn_core.pipeline`'s choice of lanes and overlap)."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """The number of CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_busy_seconds() -> float | None:
    """CPU-seconds all processes of the machine have been busy since boot (Linux), else ``None``."""
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()
        ticks = [int(value) for value in fields[1:9]]  # user nice system idle iowait irq softirq steal
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def idle_cpus(
    cpu_seconds: float,
    wall_seconds: float,
    n_cpus: int,
    machine: tuple[float, int] | None = None,
) -> float:
    """How many CPUs were left idle while a process was busy for ``cpu_seconds``.

    Parameters
    ----------
    cpu_seconds : float
        CPU time of the whole process (all threads) while ``f`` ran.
    wall_seconds : float
        Wall time over the same calls.
    n_cpus : int
        CPUs the process may run on.
    machine : (float, int), optional
        CPU-seconds the whole machine was busy over the same time, and its CPUs: other
        processes (the other workers of a sweep, say) may have taken what this one left.
    """
    if wall_seconds <= 0.0:
        return 0.0
    idle = n_cpus - cpu_seconds / wall_seconds
    if machine is not None:
        busy_seconds, machine_cpus = machine
        idle = min(idle, machine_cpus - busy_seconds / wall_seconds)
    return max(idle, 0.0)


def lanes_for(idle: float, n_cpus: int) -> int:
    """Threads to evaluate ``f`` in: one, and one more per CPU left idle (three quarters of one counts)."""
    return max(1, min(n_cpus, 1 + int(idle + 0.25)))
