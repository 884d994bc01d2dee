"""The head's last ``nn.Linear`` at its own output width against the width chosen by measurement.

For each reference task (the paper's MLP, float32, PyTorch's initial weights of seed 0, one
torch thread) it prints, first, ``linear`` alone on 3230 rows (one block of pairs at
``hidden1``) at the task's output width and at the next multiples of 8 and 16; then the
LMN at each probe on all ``N`` samples with ``widen_output=False`` and ``True``
(:mod:`adapters.torch.width`), timed alternately, medians of ``--repeats``, their ratio,
the width chosen, and the two LMNs' relative difference.
Run it on an idle machine: ``python benchmarks/bench_width.py``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Iterator

import torch

from adapters.torch import LayerLMN
from adapters.torch.width import WidenedLinear, candidate_widths
from reference_tasks.model.torch_model import build_model
from reference_tasks.tasks import TaskData, make_task

BLOCK_ROWS = 3230


def alternating_medians(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each call, timed in turn ``repeats`` times after one untimed round."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def time_linear(n_classes: int, hidden: int, repeats: int) -> None:
    """``linear`` on one block's rows at each candidate width."""
    linear = torch.nn.Linear(hidden, n_classes)
    rows = torch.randn(BLOCK_ROWS, hidden)
    layers = {str(width): WidenedLinear(linear, width) for width in candidate_widths(n_classes)}
    calls = {width: functools.partial(layer, rows) for width, layer in layers.items()}
    with torch.no_grad():
        seconds = alternating_medians(calls, repeats * 20)
    own = seconds[str(n_classes)]
    cells = ", ".join(
        f"{width} wide {1e6 * value:5.0f} us ({own / value:4.2f}x)" for width, value in seconds.items()
    )
    print(f"  linear {hidden}->{n_classes} on {BLOCK_ROWS} rows: {cells}")


def time_probe(model: torch.nn.Module, pairs: torch.Tensor, probe: str, repeats: int) -> None:
    """The LMN at ``probe`` at the head's own output width and at the chosen one."""
    measures = {"own": LayerLMN(model, probe, widen_output=False), "widened": LayerLMN(model, probe)}
    last = measures["widened"].head.module.module  # TorchFunction(OutputSelector(Sequential))
    width = last[-1].width if len(last) and isinstance(last[-1], WidenedLinear) else "own"
    values: dict[str, float] = {}

    def measured(name: str) -> None:
        values[name] = measures[name](pairs).lmn

    seconds = alternating_medians({name: functools.partial(measured, name) for name in measures}, repeats)
    print(
        f"  LMN at {probe:9}: own width {seconds['own']:6.2f} s, chosen width ({width}) "
        f"{seconds['widened']:6.2f} s, ratio {seconds['own'] / seconds['widened']:4.2f}, "
        f"|LMN difference| {abs(values['widened'] / values['own'] - 1):.1e}",
        flush=True,
    )


def parsed_arguments(description: str, probes: list[str]) -> argparse.Namespace:
    """``--tasks``, ``--probes`` and ``--repeats`` of a benchmark over the reference tasks."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=description, formatter_class=formatter)
    parser.add_argument("--tasks", nargs="+", default=["modadd", "s4", "xor"])
    parser.add_argument("--probes", nargs="+", default=probes)
    parser.add_argument("--repeats", type=int, default=5)
    return parser.parse_args()


def reference_models(tasks: list[str]) -> Iterator[tuple[TaskData, torch.nn.Module, torch.Tensor]]:
    """Each task, the paper's MLP for it (PyTorch's initial weights of seed 0) and all its pairs."""
    for name in tasks:
        task = make_task(name)
        yield task, build_model(task.n_tokens, task.n_classes, seed=0), torch.from_numpy(task.pairs)


def main() -> None:
    args = parsed_arguments(__doc__, ["hidden1", "embedding", "hidden2"])
    torch.set_num_threads(1)
    for task, model, pairs in reference_models(args.tasks):
        print(f"{task.name}: N = {task.n_samples}, {task.n_classes} outputs")
        time_linear(task.n_classes, 100, args.repeats)
        for probe in args.probes:
            time_probe(model, pairs, probe, args.repeats)


if __name__ == "__main__":
    main()
