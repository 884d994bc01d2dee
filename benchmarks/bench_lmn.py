"""LMN at ``hidden1`` of a trained addition-mod-31 model: plain, folded, folded + reduced in the framework.

It trains the paper's MLP (``reference_tasks.model.torch_model.GrokMLP``, float32, seed 0) for
``--steps`` full-batch AdamW steps (or loads ``--weights``, a ``state_dict``; a missing
file is written after training), copies the weights into the Keras model
(``reference_tasks.model.crossframework.torch_to_keras``), and times, on ``--samples`` pairs
(all 961 by default) with 21 points per segment:

a. the black box: the head after ``hidden1`` as a plain callable, the core's Numba
   kernels reducing on the host (``fold=False, reduction="host"``);
b. affine prefix folding: ``linear2`` moves into the samples (``fold=True, reduction="host"``);
c. folding, and the whole measurement through the array API on the framework's own
   arrays (``fold=True, reduction="device"``: ``lmn_core.device``, the path a GPU takes,
   here on the CPU; Keras on its PyTorch or JAX backend only: TensorFlow's tensors are not
   array-API arrays);

for PyTorch at each ``--threads`` count (``torch.set_num_threads``), then for Keras on
its active backend (``KERAS_BACKEND``). It prints the median of ``--repeats`` timings,
the ratios a/b and a/c, and each LMN with its relative difference from a.
Run it on an idle machine (nothing else running): ``python benchmarks/bench_lmn.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional

from adapters.torch import layer_lmn
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.tasks import make_task, train_test_split

PROBE = "hidden1"
PATHS = {"a plain": (False, "host"), "b fold": (True, "host"), "c fold+reduce": (True, "device")}


def trained_model(steps: int, weights: Path | None) -> GrokMLP:
    """The paper's model after ``steps`` full-batch AdamW steps on addition mod 31 (or loaded)."""
    task = make_task("modadd")
    torch.manual_seed(0)
    model = GrokMLP(task.n_tokens, task.n_classes)
    if weights is not None and weights.exists():
        model.load_state_dict(torch.load(weights))
        return model
    train, test = train_test_split(task.n_samples, seed=0)
    pairs, labels = torch.from_numpy(task.pairs), torch.from_numpy(task.labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.2)
    for _ in range(steps):
        loss = functional.cross_entropy(model(pairs[train]), labels[train])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(pairs[test]).argmax(dim=1) == labels[test]).double().mean().item()
    print(f"trained {steps} steps: train loss {loss.item():.3g}, test accuracy {accuracy:.3f}")
    if weights is not None:
        torch.save(model.state_dict(), weights)
    return model


def median_seconds(run: Callable[[], float], repeats: int) -> tuple[float, float]:
    """Median wall time of ``run`` over ``repeats`` calls (after one untimed call) and its last value."""
    value = run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        value = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def print_rows(framework: str, timings: dict[str, tuple[float, float]]) -> None:
    plain_seconds, plain_lmn = timings["a plain"]
    for path, (seconds, value) in timings.items():
        ratio = f"{plain_seconds / seconds:6.2f}" if path != "a plain" else f"{'':6}"
        difference = abs(value / plain_lmn - 1.0)
        print(f"{framework:22} {path:14} {seconds:9.3f} {ratio} {value:12.6f} {difference:10.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=3000, help="training steps")
    parser.add_argument("--weights", type=Path, help="state_dict to load, or to write after training")
    parser.add_argument("--samples", type=int, default=961, help="N, pairs measured on")
    parser.add_argument("--repeats", type=int, default=5, help="timings per path")
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--no-keras", action="store_true", help="time PyTorch only")
    args = parser.parse_args()

    model = trained_model(args.steps, args.weights)
    task = make_task("modadd")
    inputs = task.pairs[np.linspace(0, task.n_samples - 1, args.samples).astype(np.int64)]
    print(f"LMN at {PROBE}, N = {args.samples}, T = 21, median of {args.repeats}")
    print(f"{'framework':22} {'path':14} {'seconds':>9} {'a/x':>6} {'LMN':>12} {'|x/a - 1|':>10}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        timings = {
            path: median_seconds(
                lambda fold=fold, reduction=reduction: (
                    layer_lmn(model, inputs, PROBE, fold=fold, reduction=reduction).lmn
                ),
                args.repeats,
            )
            for path, (fold, reduction) in PATHS.items()
        }
        print_rows(f"torch {threads} thread(s)", timings)
    if not args.no_keras:
        time_keras(model, inputs, args.repeats)


def time_keras(model: GrokMLP, inputs: np.ndarray, repeats: int) -> None:
    """The three paths through Keras, on a copy of ``model``'s weights."""
    import keras

    from adapters.keras import LayerLMN
    from reference_tasks.model.crossframework import torch_to_keras
    from reference_tasks.model.keras_model import build_model

    kmodel = build_model(31, 31)
    torch_to_keras(model, kmodel)
    kinputs = inputs.astype(np.int32)
    timings = {}
    for path, (fold, reduction) in PATHS.items():
        if reduction == "device" and keras.backend.backend() == "tensorflow":
            continue  # the TensorFlow backend measures on the host
        measure = LayerLMN(kmodel, PROBE, fold=fold, reduction=reduction)  # keeps its compiled steps
        timings[path] = median_seconds(lambda measure=measure: measure(kinputs).lmn, repeats)
    print_rows(f"keras ({keras.backend.backend()})", timings)


if __name__ == "__main__":
    main()
