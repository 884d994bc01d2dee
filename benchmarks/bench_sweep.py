"""Sweep throughput: runs per hour on Dask workers against the same runs one after another.

The runs are a small grid of short reference runs (XOR, ``--seeds`` seeds x two weight
decays, ``--steps`` steps, the recipe's LMN checkpoints on ``--lmn-samples`` samples). They are
trained twice into fresh folders, side by side in one session:

a. one after another in this process, on one PyTorch thread (the ``train_run`` task
   called directly, as a single worker would);
b. as Dask tasks on a ``LocalCluster`` of ``--workers`` processes, one thread each
   (``lmn sweep``'s engine, cluster start-up included);

and prints each in runs per hour and their ratio b/a. The metrics of every run are
checked to be byte-identical between the two. Run it on an idle machine (nothing else
running): ``python benchmarks/bench_sweep.py``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from reference_tasks.sweep.cluster import connect, run_all, train_run
from reference_tasks.sweep.plan import Run, plan_sweep
from reference_tasks.training import RunOptions

QUIET = RunOptions(progress=False)


def grid(out: Path, seeds: int, steps: int, lmn_samples: int) -> list[Run]:
    """The benchmark's runs under ``out``."""
    return plan_sweep(
        tasks=["xor"],
        seeds=range(seeds),
        framework="torch",
        out=out,
        grid={"weight_decay": (0.1, 0.2)},
        settings={"steps": steps, "lmn_samples": lmn_samples},
    )


def one_after_another(runs: list[Run]) -> float:
    """Seconds to train ``runs`` in this process, one thread."""
    started = time.perf_counter()
    for run in runs:
        train_run(run, QUIET, threads=1)
    return time.perf_counter() - started


def on_dask(runs: list[Run], workers: int) -> float:
    """Seconds to train ``runs`` on a new ``LocalCluster`` (start-up included)."""
    started = time.perf_counter()
    with connect(None, workers) as client:
        outcomes = run_all(client, runs, QUIET, threads=1)
    failed = [outcome.error for outcome in outcomes if outcome.error is not None]
    if failed:
        raise RuntimeError(f"runs failed on Dask: {failed}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="seeds per weight decay (default 4)")
    parser.add_argument("--steps", type=int, default=1500, help="steps per run (default 1500)")
    parser.add_argument("--lmn-samples", type=int, default=128, help="N of the LMN (default 128)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="Dask workers (default: CPUs)")
    args = parser.parse_args()
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    with tempfile.TemporaryDirectory() as folder:
        serial_runs = grid(Path(folder) / "serial", args.seeds, args.steps, args.lmn_samples)
        dask_runs = grid(Path(folder) / "dask", args.seeds, args.steps, args.lmn_samples)
        serial = one_after_another(serial_runs)
        parallel = on_dask(dask_runs, args.workers)
        same = all(
            (a.out_dir / "metrics.csv").read_bytes() == (b.out_dir / "metrics.csv").read_bytes()
            for a, b in zip(serial_runs, dask_runs, strict=True)
        )
    n = len(serial_runs)
    print(f"{n} runs: xor, {args.steps} steps, LMN on {args.lmn_samples} samples")
    print(f"{'':36} {'seconds':>8} {'runs/hour':>10}")
    print(f"{'a one after another, 1 process':36} {serial:8.1f} {n * 3600 / serial:10.0f}")
    print(f"{f'b Dask, {args.workers} workers':36} {parallel:8.1f} {n * 3600 / parallel:10.0f}")
    print(f"throughput b/a: {serial / parallel:.2f}; metrics.csv byte-identical: {same}")


if __name__ == "__main__":
    main()
