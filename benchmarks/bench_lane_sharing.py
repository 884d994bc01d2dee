"""What two lanes of one process share: the reference head in two threads against two processes.

The lanes of ``lmn_core`` are threads of the caller's process. This times the reference
head of ``benchmarks/bench_default.py`` (its ``hidden1`` cut, one torch thread, inside the
measurement's eval mode, on one block of aligned rows of the core's size) called over and
over three ways, in turn, in fresh processes:

a. alone: one thread of one process;
b. two threads of one process, each calling the head on rows of its own (the lanes);
c. two processes at once, one thread each.

It prints each way's time a call (the median of the calling threads), their medians over
``--rounds`` rounds, and b/a and c/a: what two lanes cost the head beyond what two busy CPUs
cost it. Run it on an idle machine: ``python benchmarks/bench_lane_sharing.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time

import torch
from bench_default import block_rows, reference_case

from adapters import torch as torch_adapter

WAYS = ("a alone", "b two threads", "c two processes")


def child(threads: int, calls: int) -> None:
    """Call the head ``calls`` times in each of ``threads`` threads; print each thread's µs a call."""
    torch.set_num_threads(1)
    model, inputs, probe = reference_case(961)
    measure = torch_adapter.LayerLMN(model, probe, example_inputs=inputs)
    samples = measure.samples(inputs)
    microseconds: list[float] = [0.0] * threads

    def calling(index: int) -> None:
        rows, _ = block_rows(measure.head, samples, seed=index)
        measure.head(rows)
        start = time.perf_counter()
        for _ in range(calls):
            measure.head(rows)
        microseconds[index] = (time.perf_counter() - start) / calls * 1e6

    with measure.backend.measuring(model, measure.head, {"threads": 1}):
        workers = [threading.Thread(target=calling, args=(index,)) for index in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    print(json.dumps(microseconds))


def timed(way: str, calls: int) -> float:
    """One way's median µs a call over its calling threads."""
    command = [
        sys.executable,
        __file__,
        "--child",
        "2" if way.startswith("b") else "1",
        "--calls",
        str(calls),
    ]
    copies = 2 if way.startswith("c") else 1
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    per_thread = []
    for process in running:
        out, _ = process.communicate()
        if process.returncode:
            raise RuntimeError(f"{way}: the child process failed")
        per_thread += json.loads(out.strip().splitlines()[-1])
    return statistics.median(per_thread)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child, arguments.calls)
        return
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    for index in range(arguments.rounds):
        for way in WAYS[index % 3 :] + WAYS[: index % 3]:
            times[way].append(timed(way, arguments.calls))
        print("round", index, {way: round(values[-1], 1) for way, values in times.items()}, flush=True)
    alone = statistics.median(times[WAYS[0]])
    for way in WAYS:
        median = statistics.median(times[way])
        print(f"{way:16} {median:7.1f} µs a call, {median / alone:.3f}x alone")


if __name__ == "__main__":
    main()
