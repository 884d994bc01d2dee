"""What a reference run costs on this machine: one training step and one LMN checkpoint.

For each task, with the paper's recipe in PyTorch (float32, CPU), prints the median time
of a full-batch AdamW step and of one LMN checkpoint (the three probes on all N samples).
Run it on an idle machine (nothing else running): ``python benchmarks/bench_run_costs.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch.nn import functional

from adapters.torch import layer_lmn
from reference_tasks.model.spec import PROBES
from reference_tasks.tasks import make_task, train_test_split
from reference_tasks.training.engine import TrainingData
from reference_tasks.training.recipe import TrainConfig
from reference_tasks.training.torch_engine import build_model


def median_seconds(run: Callable[[], object], repeats: int, calls: int = 1) -> float:
    """Median over ``repeats`` of the time of one call of ``run`` (timed ``calls`` at a time)."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            run()
        seconds.append((time.perf_counter() - started) / calls)
    return statistics.median(seconds)


def task_costs(name: str) -> tuple[int, float, float]:
    """``N``, seconds per training step and seconds per LMN checkpoint for one task."""
    config = TrainConfig(task=name)
    task = make_task(name)
    train_index, _ = train_test_split(task.n_samples, train_fraction=config.train_fraction, seed=config.seed)
    pairs, labels = torch.from_numpy(task.pairs), torch.from_numpy(task.labels)
    x_train, y_train = pairs[train_index], labels[train_index]
    model = build_model(config, TrainingData.for_configs([config]))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )

    def step() -> None:
        loss = functional.cross_entropy(model(x_train), y_train)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def checkpoint() -> None:
        for probe in PROBES:
            layer_lmn(model, pairs, probe)

    median_seconds(step, repeats=1, calls=50)  # warm up
    return task.n_samples, median_seconds(step, repeats=5, calls=200), median_seconds(checkpoint, repeats=3)


def main() -> None:
    print(f"{'task':7} {'N':>5} {'step ms':>8} {'checkpoint s':>13}")
    for name in ("modadd", "s4", "xor"):
        n_samples, step_seconds, checkpoint_seconds = task_costs(name)
        print(f"{name:7} {n_samples:5d} {step_seconds * 1e3:8.2f} {checkpoint_seconds:13.2f}", flush=True)


if __name__ == "__main__":
    main()
