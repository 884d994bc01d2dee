"""The LMN in lanes (several threads calling the head at once) against one thread.

For each reference task (the paper's MLP, float32, PyTorch's initial weights of seed 0) and
probe, on all ``N`` samples, it times ``adapters.torch.LayerLMN`` four ways, in turn,
medians of ``--repeats``:

a. one torch thread, one lane, the kernels inline (``threads=1, overlap=False``);
b. one torch thread, one lane, the kernels on a worker thread (``threads=1, overlap=True``);
c. one torch thread, two lanes (``threads=2``);
d. two torch threads, one lane, the kernels inline;

and prints each time, a/x, and whether the lanes' connectivity matrix equals (a)'s bit for bit.
Run it on an idle machine: ``python benchmarks/bench_lanes.py``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from bench_width import alternating_medians, parsed_arguments, reference_models

from adapters.torch import LayerLMN

MODES = {
    "a 1 lane, inline": (1, {"threads": 1, "overlap": False}),
    "b 1 lane, overlapped": (1, {"threads": 1, "overlap": True}),
    "c 2 lanes": (1, {"threads": 2}),
    "d 2 torch threads": (2, {"threads": 1, "overlap": False}),
}


def time_probe(model: torch.nn.Module, pairs: torch.Tensor, probe: str, repeats: int) -> None:
    """The LMN at ``probe`` in each mode."""
    measure = LayerLMN(model, probe)
    matrices: dict[str, np.ndarray] = {}

    def measured(name: str) -> None:
        torch_threads, kwargs = MODES[name]
        torch.set_num_threads(torch_threads)
        try:
            matrices[name] = measure(pairs, **kwargs).connectivity
        finally:
            torch.set_num_threads(1)

    seconds = alternating_medians({name: functools.partial(measured, name) for name in MODES}, repeats)
    inline = seconds["a 1 lane, inline"]
    same = np.array_equal(matrices["c 2 lanes"], matrices["a 1 lane, inline"])
    cells = ", ".join(f"{name} {value:5.2f} s ({inline / value:4.2f}x)" for name, value in seconds.items())
    print(f"  {probe:9}: {cells}; lanes' L equal to a's: {same}", flush=True)


def main() -> None:
    args = parsed_arguments(__doc__, ["hidden1", "embedding"])
    torch.set_num_threads(1)
    for task, model, pairs in reference_models(args.tasks):
        print(f"{task.name}: N = {task.n_samples}")
        for probe in args.probes:
            time_probe(model, pairs, probe, args.repeats)


if __name__ == "__main__":
    main()
