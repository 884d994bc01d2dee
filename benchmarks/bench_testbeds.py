"""What the testbeds cost on this machine: a training step, an LMN checkpoint, a default run.

For each testbed's reference recipe (``reference_tasks.testbeds.experiments``; PyTorch,
float32, CPU, one thread), prints side by side in one run:

- the floor: one plain PyTorch training step (the recipe's optimizer on one batch, the
  trainer's float64 cross-entropy or the MSE), median of ``--repeats`` timings;
- one LMN checkpoint at the recipe's ``N`` (with the linear regions, for the ReLU MLPs,
  as the trainer counts them): the headline probe alone, and every probe of the recipe,
  with their ratio to the floor (a checkpoint costs that many steps);
- the default run that these predict (steps, plus the headline at every checkpoint, plus
  the other probes at about one checkpoint in ten, as the trainer schedules them);
- with ``--runs``, the wall time of ``lmn reproduce --task NAME`` (the default run, one
  worker, no report) in a fresh folder: the issue's target is 15 minutes on 2 cores.

The machine is shared with other work while it runs, so the numbers are noisy: quote
medians, and rerun on an idle machine before relying on a ratio.
``python benchmarks/bench_testbeds.py --repeats 5 --runs``
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable

import torch
from bench_run_costs import median_seconds
from torch.nn import functional

from adapters.torch import LayerLMN
from adapters.torch_regions import LayerRegions
from reference_tasks.experiment.protocol import Task
from reference_tasks.tasks import lmn_sample_indices, train_test_split
from reference_tasks.testbeds import experiments

TESTBEDS = {
    "transformer": experiments.transformer_task,
    "parity": experiments.parity_task,
    "digits": experiments.digits_task,
}
#: The trainer measures the probes other than the headline at about one checkpoint in this many.
SIDE_PROBE_EVERY = 10


def plain_step(task: Task, model: torch.nn.Module, seed: int) -> Callable[[], None]:
    """One optimizer step of the recipe on one batch, in plain PyTorch (the floor)."""
    data, recipe = task.make_data(), task.recipe
    train, _ = train_test_split(data.n_samples, train_fraction=recipe.train_fraction, seed=seed)
    inputs, labels = torch.as_tensor(data.inputs[train]), torch.as_tensor(data.labels[train])
    if recipe.batch_size is not None:
        inputs, labels = inputs[: recipe.batch_size], labels[: recipe.batch_size]
    targets = functional.one_hot(labels, data.n_classes).float()
    if recipe.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay, betas=recipe.betas
        )

    def step() -> None:
        outputs = model(inputs)
        if task.loss == "mse":
            loss = functional.mse_loss(outputs, targets)
        else:
            loss = functional.cross_entropy(outputs.double(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def checkpoint(task: Task, model: torch.nn.Module, probes: tuple[str, ...], seed: int) -> Callable[[], None]:
    """One LMN checkpoint at ``probes`` on the recipe's seeded subset of ``N`` samples.

    As the trainer's: for a piecewise-linear model, the linear regions at each probe too.
    """
    data = task.make_data()
    subset = lmn_sample_indices(data.n_samples, size=task.recipe.lmn_samples, seed=seed)
    samples = torch.as_tensor(data.inputs[subset])
    measures: list[Callable[..., object]] = [LayerLMN(model, probe) for probe in probes]
    if task.model.piecewise_linear:
        measures += [LayerRegions(model, probe) for probe in probes]

    def measure() -> None:
        for measure_one in measures:
            measure_one(samples)

    return measure


def costs(name: str, repeats: int) -> dict[str, float]:
    """Seconds per step and per checkpoint of one testbed's reference recipe, and the run they predict."""
    task = TESTBEDS[name]()
    config = types.SimpleNamespace(seed=0, init_scale=1.0, model_options={}, dtype="float32")
    model = task.model.torch(config, task.make_data())
    recipe, headline = task.recipe, task.model.headline_probe
    probes = recipe.probes or (headline,)
    step = plain_step(task, model, seed=0)
    median_seconds(step, repeats=1, calls=20)  # warm up
    found = {"step": median_seconds(step, repeats=repeats, calls=20)}
    found["headline"] = median_seconds(checkpoint(task, model, (headline,), seed=0), repeats=repeats)
    found["every probe"] = median_seconds(checkpoint(task, model, probes, seed=0), repeats=repeats)
    side = math.ceil(recipe.n_checkpoints / SIDE_PROBE_EVERY) * (found["every probe"] - found["headline"])
    found["predicted run"] = recipe.steps * found["step"] + recipe.n_checkpoints * found["headline"] + side
    return found


def timed_run(name: str) -> float:
    """Wall seconds of ``lmn reproduce --task NAME``: the default run, one worker, no report."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "reference_tasks.cli", "reproduce", "--task", name, "--out", out]
        started = time.perf_counter()
        subprocess.run([*command, "--workers", "1", "--quiet", "--no-report"], check=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timings per median (default 5)")
    parser.add_argument("--testbeds", nargs="+", choices=list(TESTBEDS), default=list(TESTBEDS))
    parser.add_argument("--runs", action="store_true", help="also time each default run (minutes each)")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    print("PyTorch, float32, CPU, 1 thread; medians; a shared machine: noisy numbers")
    header = f"{'testbed':12} {'N':>5} {'step ms':>8} {'headline s':>11} {'x step':>7}"
    header += f" {'all probes s':>13} {'x step':>7}"
    print(f"{header} {'predicted run s':>16}" + (f" {'run s':>7}" if arguments.runs else ""))
    for name in arguments.testbeds:
        found = costs(name, arguments.repeats)
        n_samples = TESTBEDS[name]().recipe.lmn_samples
        ratios = [found[key] / found["step"] for key in ("headline", "every probe")]
        line = (
            f"{name:12} {n_samples:5d} {found['step'] * 1e3:8.2f} {found['headline']:11.2f} {ratios[0]:7.0f} "
            f"{found['every probe']:13.2f} {ratios[1]:7.0f} {found['predicted run']:16.0f}"
        )
        print(line + (f" {timed_run(name):7.0f}" if arguments.runs else ""), flush=True)


if __name__ == "__main__":
    main()
