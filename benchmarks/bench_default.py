"""The default ``layer_lmn`` in fresh processes against the folded floor and the forced settings.

The reference MLP of addition mod 31 (``Linear(64,100)-SiLU-Linear(100,100)-SiLU-
Linear(100,31)`` after the pair embedding, PyTorch's initial weights of seed 0), measured
at ``hidden1`` on ``--samples`` of its pairs (all ``N = 961`` by default). Each fresh
process (``--processes`` a variant, the variants in turn) runs one variant: one warm-up
call, then ``--calls`` rounds of a timed call and the floor right after it:

- **default**: every setting left to the library (the head on one torch thread; the core
  times one lane and lanes on its first blocks and keeps the faster, ``lmn_core.pipeline``);
- **torch-threads**: the same with torch's own intra-op threads kept for the measurement
  (:func:`adapters.torch.threads.lane_threads` replaced by a context that does nothing), so
  one lane: the way a head whose matrix products share out well over torch's threads wants;
- **threads=2**, **threads=1**: the core's ``threads`` forced, as a user would;
- **floor**: the folded head alone on the rows the core evaluates, in its blocks, in one
  thread of the caller (the quicker of a run with torch's own threads and one with one
  torch thread).

The machine's slow spells last seconds (calls of one process drift between 0.57 and 0.77 s),
so each call is divided by the floor timed beside it. It prints each process's median of
those ratios, and their median and worst over the processes, for every variant
(``--variants`` chooses), and the same over the head's time on one torch thread (the floor
of one lane); and the worst of the steady processes, those whose floor was within 5% of the
run's median floor (in a slow spell the floor slows too, by 10 to 45%). ``--large N`` adds
a large head (``Linear(64,512)-SiLU-Linear(512,512)-SiLU-Linear(512,512)`` at its first
SiLU, on ``N`` samples), whose matrix products torch's own threads share out well, to check
that lanes do not slow it. Timings on a shared machine are noisy: run it idle,
``python benchmarks/bench_default.py --large 120``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

import lmn_core
from lmn_core.measure import DEFAULT_MEMORY_BUDGET, DEFAULT_N_POINTS, pairs_per_block
from lmn_core.memory import aligned_empty

VARIANTS = ("default", "torch-threads", "threads=2", "threads=1")
FORCED = {"threads=2": {"threads": 2}, "threads=1": {"threads": 1}}
# A process whose median floor is above this times the run's median floor ran in a slow spell.
STEADY_FLOOR = 1.05


def reference_case(samples: int) -> tuple[nn.Module, np.ndarray, str]:
    from reference_tasks.model.torch_model import GrokMLP
    from reference_tasks.tasks import make_task

    torch.manual_seed(0)
    pairs = make_task("modadd").pairs
    chosen = np.linspace(0, len(pairs) - 1, min(samples, len(pairs))).round().astype(int)
    return GrokMLP(31, 31).eval(), pairs[chosen], "hidden1"


def large_case(samples: int) -> tuple[nn.Module, np.ndarray, str]:
    torch.manual_seed(0)
    widths = (64, 512, 512, 512)
    layers: list[nn.Module] = []
    for inputs, outputs in itertools.pairwise(widths):
        layers += [nn.Linear(inputs, outputs), nn.SiLU()]
    model = nn.Sequential(*layers[:-1]).eval()
    return model, np.random.default_rng(0).normal(size=(samples, 64)).astype(np.float32), "1"


CASES = {"reference": reference_case, "large": large_case}


def block_rows(head: lmn_core.Function, samples: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    """Random rows of one block of the core's size, aligned as its points, and its pairs."""
    n_pairs = len(samples) * (len(samples) - 1) // 2
    n_outputs = int(np.prod(head(samples[:1]).shape[1:]))
    block = min(
        n_pairs, pairs_per_block(samples[0].nbytes, n_outputs, DEFAULT_N_POINTS, DEFAULT_MEMORY_BUDGET)
    )
    rows = aligned_empty((block * (DEFAULT_N_POINTS - 2), *samples.shape[1:]), samples.dtype)
    rows[...] = np.random.default_rng(seed).normal(size=rows.shape)
    return rows, block


def floor_seconds(head: lmn_core.Function, samples: np.ndarray) -> float:
    """The head alone on the rows the core evaluates, in blocks of its size, aligned as its points."""
    n_pairs = len(samples) * (len(samples) - 1) // 2
    rows, block = block_rows(head, samples, seed=1)
    interior = DEFAULT_N_POINTS - 2
    start = time.perf_counter()
    head(samples)
    for first in range(0, n_pairs, block):
        head(rows[: min(block, n_pairs - first) * interior])
    return time.perf_counter() - start


@contextlib.contextmanager
def torch_threads(threads: int):
    own = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(own)


def child(case: str, variant: str, calls: int, samples: int) -> None:
    """In this fresh process: a warm-up call, then ``calls`` rounds of a timed call and the
    floor right after it (the VM's slow spells last seconds, so each call is paired with the
    floor timed beside it)."""
    from adapters import torch as torch_adapter
    from adapters.torch import layer as torch_layer

    if variant == "torch-threads":
        torch_layer.lane_threads = lambda head, lmn_kwargs: contextlib.nullcontext()
    forced = FORCED.get(variant, {})
    model, inputs, probe = CASES[case](samples)
    measure = torch_adapter.LayerLMN(model, probe, example_inputs=inputs)
    measure(inputs, **forced)
    folded_samples = measure.samples(inputs)
    rounds = []
    for _ in range(calls):
        start = time.perf_counter()
        measure(inputs, **forced)
        seconds = time.perf_counter() - start
        floors = {}
        for threads in (torch.get_num_threads(), 1):  # the quicker of torch's threads and one
            with measure.backend.measuring(model, measure.head, {"threads": 1}), torch_threads(threads):
                floors[threads] = floor_seconds(measure.head, folded_samples)
        rounds.append({"seconds": seconds, "floor": min(floors.values()), "floor_one_thread": floors[1]})
    print(json.dumps(rounds))


def run_child(case: str, variant: str, calls: int, samples: int) -> list[dict]:
    command = [
        sys.executable,
        __file__,
        "--child",
        case,
        variant,
        "--calls",
        str(calls),
        "--samples",
        str(samples),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(case: str, processes: int, calls: int, samples: int, variants: tuple[str, ...]) -> None:
    """Each variant in ``processes`` fresh processes, in turn: per process, the median over its
    rounds of a call over the floor timed beside it (and over the head's time on one torch
    thread, the floor of one lane)."""
    ratios: dict[str, list[float]] = {variant: [] for variant in variants}
    one_thread: dict[str, list[float]] = {variant: [] for variant in variants}
    floors: dict[str, list[float]] = {variant: [] for variant in variants}
    for index in range(processes):
        for variant in variants[index % len(variants) :] + variants[: index % len(variants)]:
            rounds = run_child(case, variant, calls, samples)
            ratios[variant].append(statistics.median(r["seconds"] / r["floor"] for r in rounds))
            one_thread[variant].append(
                statistics.median(r["seconds"] / r["floor_one_thread"] for r in rounds)
            )
            floors[variant].append(statistics.median(r["floor"] for r in rounds))
            seconds = {key: [round(r[key], 3) for r in rounds] for key in rounds[0]}
            print(
                f"{case:9} process {index:2} {variant:13} calls {seconds['seconds']} s, "
                f"floors {seconds['floor']} s (one thread {seconds['floor_one_thread']} s), "
                f"median call/floor {ratios[variant][-1]:.2f}",
                flush=True,
            )
    summary(case, ratios, one_thread, floors)


def summary(
    case: str,
    ratios: dict[str, list[float]],
    one_thread: dict[str, list[float]],
    floors: dict[str, list[float]],
) -> None:
    """Each variant's median and worst process, over every process and over the steady ones:
    those whose floor was within :data:`STEADY_FLOOR` of the run's median floor (a process
    in one of the machine's slow spells has a slower floor too)."""
    run_floor = statistics.median(floor for values in floors.values() for floor in values)
    for variant, values in ratios.items():
        against_one = one_thread[variant]
        steady = [
            ratio
            for ratio, floor in zip(values, floors[variant], strict=True)
            if floor <= STEADY_FLOOR * run_floor
        ]
        print(
            f"{case:9} {variant:13} over the floor: median {statistics.median(values):.2f}, "
            f"worst {max(values):.2f}; over one thread's: median {statistics.median(against_one):.2f}, "
            f"worst {max(against_one):.2f}; steady processes {len(steady)} of {len(values)}"
            + (f", worst {max(steady):.2f}" if steady else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--samples", type=int, default=961, help="N (the reference task has 961)")
    parser.add_argument("--large", type=int, default=0, metavar="N", help="also the large head, on N samples")
    parser.add_argument("--no-reference", action="store_true", help="the large head only")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--child", nargs=2, metavar=("CASE", "VARIANT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(*arguments.child, arguments.calls, arguments.samples)
        return
    variants = tuple(arguments.variants)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads by default")
    if not arguments.no_reference:
        table("reference", arguments.processes, arguments.calls, arguments.samples, variants)
    if arguments.large:
        table("large", arguments.processes, arguments.calls, arguments.large, variants)


if __name__ == "__main__":
    main()
