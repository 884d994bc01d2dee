"""Exact linear regions against the LMN, at a probe of the reference ReLU MLP, side by side.

It trains the paper's MLP with ReLU (``reference_tasks.model.torch_model.build_model(...,
activation="relu")``, float32, seed 0) on addition mod 31 for ``--steps`` full-batch AdamW
steps (or loads ``--weights``, a ``state_dict``; a missing file is written after
training), and times, on all 961 pairs, one torch thread, at each ``--probes``:

a. the LMN (``adapters.torch.LayerLMN``: folded head, host kernels, 21 points per
   segment): the floor the regions are set against;
b. the exact pieces of all ``N (N - 1) / 2`` segments (``lmn_core.segment_pieces`` on the
   folded samples, the head read by ``adapters.torch.regions``);
c. everything a run records (``adapters.torch.regions.LayerRegions``: the samples, the
   head read and checked, the patterns, regions, perplexity and the pieces);
d. with ``--compare-methods``, the pieces with ``method="table"`` (every layer evaluated
   at every breakpoint) instead of the rank-one updates of ``"auto"``.

The timings alternate (a, b, c, d, a, b, ...) and the medians of ``--repeats`` are
printed with the ratios to a. Run it on an idle machine:
``python benchmarks/bench_regions.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional

import lmn_core
from adapters.torch import LayerLMN, split
from adapters.torch.regions import LayerRegions, piecewise_linear_head
from reference_tasks.model.torch_model import GrokMLP, build_model
from reference_tasks.tasks import make_task, train_test_split


def trained_model(steps: int, weights: Path | None, activation: str = "relu") -> GrokMLP:
    """The reference MLP (ReLU by default) after ``steps`` full-batch AdamW steps on addition mod 31."""
    task = make_task("modadd")
    model = build_model(task.n_tokens, task.n_classes, activation=activation, seed=0)
    if weights is not None and weights.exists():
        model.load_state_dict(torch.load(weights))
        return model
    train, test = train_test_split(task.n_samples, seed=0)
    pairs, labels = torch.from_numpy(task.pairs), torch.from_numpy(task.labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.2)
    for _ in range(steps):
        loss = functional.cross_entropy(model(pairs[train]).double(), labels[train])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(pairs[test]).argmax(dim=1) == labels[test]).double().mean().item()
    print(f"trained {steps} steps: train loss {loss.item():.3g}, test accuracy {accuracy:.3f}")
    if weights is not None:
        torch.save(model.state_dict(), weights)
    return model


def alternating_medians(
    runs: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, object]]:
    """Each run's median wall time over ``repeats`` rounds (after one untimed round) and its last value."""
    values = {name: run() for name, run in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            values[name] = run()
            times[name].append(time.perf_counter() - started)
    return {name: (statistics.median(times[name]), values[name]) for name in runs}


def probe_runs(
    model: GrokMLP, pairs: torch.Tensor, probe: str, compare: bool
) -> dict[str, Callable[[], object]]:
    """The timed runs of one probe (see the module docstring)."""
    lmn = LayerLMN(model, probe)
    regions = LayerRegions(model, probe)
    samples = regions.body(pairs)
    head = piecewise_linear_head(split(model, probe, fold=True)[1])
    runs: dict[str, Callable[[], object]] = {
        "a LMN": lambda: lmn(pairs).lmn,
        "b pieces": lambda: float(lmn_core.segment_pieces(head, samples).mean()),
        "c regions": lambda: regions(pairs).pieces_mean,
    }
    if compare:
        runs["d pieces, table"] = lambda: float(lmn_core.segment_pieces(head, samples, method="table").mean())
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    parser.add_argument("--weights", type=Path, help="a state_dict to load, or to write after training")
    parser.add_argument("--probes", nargs="+", default=["hidden1"], choices=["embedding", "hidden1"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare-methods", action="store_true", help="also time method='table'")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = trained_model(args.steps, args.weights)
    pairs = torch.from_numpy(make_task("modadd").pairs)
    print(f"N = {len(pairs)}, {len(pairs) * (len(pairs) - 1) // 2} segments, one torch thread, "
          f"median of {args.repeats}, alternating")  # fmt: skip
    print(f"{'probe':10} {'run':18} {'seconds':>8} {'x/a':>6}  value")
    for probe in args.probes:
        timings = alternating_medians(probe_runs(model, pairs, probe, args.compare_methods), args.repeats)
        floor = timings["a LMN"][0]
        for name, (seconds, value) in timings.items():
            label = "LMN" if name == "a LMN" else "mean pieces"
            print(f"{probe:10} {name:18} {seconds:8.3f} {seconds / floor:6.2f}  {label} {value:.4f}")


if __name__ == "__main__":
    main()
