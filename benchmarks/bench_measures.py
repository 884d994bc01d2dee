"""Each progress measure's time per checkpoint against the LMN's, at the same probe and N, side by side.

It trains the paper's MLP (``reference_tasks.model.torch_model.build_model``, SiLU by default,
``--activation relu`` for the exact regions; float32, seed 0) on addition mod 31 for
``--steps`` full-batch AdamW steps (``benchmarks/bench_regions.py``'s ``trained_model``) and
times, on all N = 961 pairs, one torch thread, at ``hidden1``, what one checkpoint costs:

- the LMN (``adapters.torch.LayerLMN``: folded head, host kernels, 21 points per segment);
- ``l2`` and ``weight_movement`` (from the ``state_dict``, converted to NumPy);
- ``effective_rank`` (the representations by ``adapters.torch.split``'s body, then RankMe);
- ``local_complexity`` (the representations, then 40 vertices around each through the head's
  layers up to their pre-activations);
- ``pieces_mean`` with ``--activation relu`` (the exact mean pieces per segment);
- ``fourier_share`` (the embedding table), ``restricted_loss`` and ``excluded_loss`` (the
  logits on all pairs; key frequencies from the current embedding);
- ``fourier_gap`` on a synthetic sparse-parity sample of the same N (n = 40 bits, k = 3:
  9880 subsets), since the reference tasks have no parity.

The timings alternate between the runs, after one untimed round, and the medians of
``--repeats`` are printed with the ratio to the LMN's. Run it on an idle machine:
``python benchmarks/bench_measures.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from bench_regions import alternating_medians, trained_model
from torch import nn

import lmn_core
from adapters.torch import LayerLMN, split
from adapters.torch_regions import piecewise_linear_head
from reference_tasks.model.torch_model import build_model
from reference_tasks.tasks import make_task, train_test_split

PROBE = "hidden1"


def numpy_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """The parameters as NumPy arrays, by name."""
    return {name: value.detach().cpu().numpy() for name, value in model.state_dict().items()}


def head_pre_activations(head: nn.Sequential) -> Callable[[np.ndarray], list[np.ndarray]]:
    """``points -> [pre-activations]``: the input of every activation of a chain head, in order."""
    activations = (nn.SiLU, nn.ReLU, nn.GELU, nn.Tanh, nn.LeakyReLU)

    def pre_activations(points: np.ndarray) -> list[np.ndarray]:
        x, found = torch.from_numpy(points), []
        with torch.no_grad():
            for module in head:
                if isinstance(module, activations):
                    found.append(x.numpy())
                x = module(x)
        return found

    return pre_activations


def measure_runs(model: nn.Module, activation: str) -> dict[str, Callable[[], float]]:
    """One checkpoint's work for the LMN and each measure, on all pairs at ``hidden1``."""
    task = make_task("modadd")
    pairs = torch.from_numpy(task.pairs)
    initial = numpy_weights(build_model(task.n_tokens, task.n_classes, activation=activation, seed=0))
    lmn = LayerLMN(model, PROBE)
    body, head = split(model, PROBE, fold=False)
    train = np.zeros(task.n_samples, dtype=bool)
    train[train_test_split(task.n_samples, seed=0)[0]] = True

    def representations() -> np.ndarray:
        with torch.no_grad():
            return body(pairs).numpy()

    def logits() -> np.ndarray:
        with torch.no_grad():
            return model(pairs).double().numpy()

    def embedding() -> np.ndarray:
        return model.embedding.tables[0].weight.detach().numpy()

    rng = np.random.default_rng(0)
    signs = rng.choice([-1, 1], size=(task.n_samples, 40))
    scores = np.prod(signs[:, [3, 17, 29]], axis=1) + rng.normal(scale=0.5, size=task.n_samples)
    runs: dict[str, Callable[[], float]] = {
        "LMN": lambda: lmn(pairs).lmn,
        "l2": lambda: lmn_core.l2(numpy_weights(model)),
        "weight_movement": lambda: lmn_core.weight_movement(numpy_weights(model), initial),
        "effective_rank": lambda: lmn_core.effective_rank(representations()),
        "local_complexity": lambda: lmn_core.local_complexity(representations(), head_pre_activations(head)),
        "fourier_share": lambda: lmn_core.fourier_norm_share(
            embedding(), lmn_core.top_frequencies(embedding())
        ),
        "restricted_loss": lambda: lmn_core.restricted_loss(
            logits(), 31, lmn_core.top_frequencies(embedding())
        ),
        "excluded_loss": lambda: lmn_core.excluded_loss(
            logits(), 31, lmn_core.top_frequencies(embedding()), train
        ),
        "fourier_gap": lambda: lmn_core.fourier_gap(scores, signs, (3, 17, 29)).gap,
    }
    if activation == "relu":
        pwl = piecewise_linear_head(split(model, PROBE, fold=True)[1])
        folded = split(model, PROBE, fold=True)[0]
        runs["pieces_mean"] = lambda: lmn_core.linear_regions(pwl, folded(pairs).detach().numpy()).pieces_mean
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="training steps (default 3000)")
    parser.add_argument("--activation", default="silu", choices=["silu", "relu"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = trained_model(args.steps, None, activation=args.activation)
    timings = alternating_medians(measure_runs(model, args.activation), args.repeats)
    floor = timings["LMN"][0]
    setting = f"{args.activation} MLP, probe {PROBE}, N = 961, one torch thread"
    print(f"{setting}, median of {args.repeats}, alternating")
    print(f"{'measure':18} {'seconds':>9} {'x LMN':>8}  value")
    for name, (seconds, value) in timings.items():
        print(f"{name:18} {seconds:9.4f} {seconds / floor:8.4f}  {value:.5g}")


if __name__ == "__main__":
    main()
