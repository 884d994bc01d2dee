"""``layer_lmn`` through a ``torch.fx``-cut head against the same head as an ``nn.Sequential``.

The model is an MLP 64 -> 256 -> 256 -> 31 (SiLU, float32) written twice with the same
weights: as a module whose ``forward`` calls its layers (cut in its ``torch.fx`` graph,
the head a ``GraphModule``) and as an ``nn.Sequential`` (cut as a chain). It times
``layer_lmn`` at the first activation on ``--samples`` rows, the two interleaved, and
prints the medians of ``--repeats``, their ratio and both LMNs. Run it on an idle machine
(nothing else running): ``python benchmarks/bench_split.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from adapters.torch import layer_lmn, split


class Graph(nn.Module):
    """The MLP as a module with its own ``forward`` (not a chain container)."""

    def __init__(self, chain: nn.Sequential) -> None:
        super().__init__()
        self.first, self.act1, self.second, self.act2, self.last = chain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.act2(self.second(self.act1(self.first(x)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    chain = nn.Sequential(nn.Linear(64, 256), nn.SiLU(), nn.Linear(256, 256), nn.SiLU(), nn.Linear(256, 31))
    graph = Graph(chain)
    inputs = torch.from_numpy(np.random.default_rng(0).normal(size=(args.samples, 64)).astype(np.float32))
    kinds = {"nn.Sequential": (chain, "1"), "torch.fx graph": (graph, "act1")}
    heads = {kind: type(split(model, layer)[1]).__name__ for kind, (model, layer) in kinds.items()}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    lmns: dict[str, float] = {}
    for model, layer in kinds.values():  # warm-up: compile the kernels, trace
        layer_lmn(model, inputs[:20], layer)
    for _ in range(args.repeats):
        for kind, (model, layer) in kinds.items():
            started = time.perf_counter()
            lmns[kind] = layer_lmn(model, inputs, layer).lmn
            times[kind].append(time.perf_counter() - started)
    print(f"layer_lmn at the first activation, N = {args.samples}, median of {args.repeats}")
    for kind in kinds:
        print(
            f"{kind:16} head {heads[kind]:12} {statistics.median(times[kind]):8.3f} s  LMN {lmns[kind]:.6f}"
        )
    ratio = statistics.median(times["torch.fx graph"]) / statistics.median(times["nn.Sequential"])
    print(f"fx / Sequential: {ratio:.3f}")


if __name__ == "__main__":
    main()
