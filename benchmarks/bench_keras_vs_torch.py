"""Training and LMN cost of the Keras trainer next to the PyTorch one, on addition mod 31.

For each framework it builds the trainer's own model and optimizer (``build_model`` of
``reference_tasks.training.torch_engine`` and ``...keras_engine``, float32, seed
0) and prints the median wall time of:

a. one full-batch training step (769 pairs), as the trainer runs it: PyTorch's
   ``TorchEngine.update`` (autograd through ``torch.vmap(functional_call)``,
   ``torch.optim.AdamW``), and for reference the textbook autograd step (forward, cross-entropy,
   ``zero_grad``, ``backward``, ``torch.optim.AdamW.step``); Keras ``train_on_batch``
   (its compiled step: XLA on TensorFlow);
b. one LMN checkpoint as the trainer runs it: ``layer_lmn`` at the three probes on
   ``--lmn-samples`` pairs (all 961 by default), 21 points per segment.

Run it on an idle machine (nothing else running): ``python benchmarks/bench_keras_vs_torch.py``
(``KERAS_BACKEND`` picks the Keras backend as usual).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import keras
import numpy as np
import torch
from torch.nn import functional

from adapters.keras import LayerLMN
from adapters.torch import layer_lmn as torch_layer_lmn
from reference_tasks.model.spec import PROBES
from reference_tasks.tasks import make_task, train_test_split
from reference_tasks.training import keras_engine, torch_engine
from reference_tasks.training.engine import TrainingData
from reference_tasks.training.recipe import TrainConfig


def median_seconds(run: Callable[[], object], repeats: int, per: int = 1) -> float:
    """Median over ``repeats`` timings of ``run``, divided by ``per``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) / per)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=500, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per measurement")
    parser.add_argument("--lmn-samples", type=int, default=961, help="N of the LMN checkpoint")
    parser.add_argument("--lmn-repeats", type=int, default=1, help="timings of the LMN checkpoint")
    args = parser.parse_args()

    config = TrainConfig()
    task = make_task("modadd")
    train_index, _ = train_test_split(task.n_samples, seed=config.seed)
    pairs, labels = task.pairs, task.labels
    lmn_inputs = pairs[np.linspace(0, task.n_samples - 1, args.lmn_samples).astype(np.int64)]

    model = torch_engine.build_model(config, TrainingData.for_configs([config]))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    x_train, y_train = torch.from_numpy(pairs[train_index]), torch.from_numpy(labels[train_index])

    def torch_steps() -> None:
        for _ in range(args.steps):
            loss = functional.cross_entropy(model(x_train), y_train)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        loss.item()

    torch_steps()
    rows = [("torch (autograd)", torch.__version__, median_seconds(torch_steps, args.repeats, args.steps))]

    engine = torch_engine.TorchEngine([config], TrainingData.for_configs([config]), "cpu")

    def trainer_steps() -> None:
        for _ in range(args.steps):
            engine.update(0, evaluate=False)

    trainer_steps()
    rows.insert(
        0, ("torch (trainer)", torch.__version__, median_seconds(trainer_steps, args.repeats, args.steps))
    )

    def torch_lmn() -> None:
        for probe in PROBES:
            torch_layer_lmn(model, lmn_inputs, probe)

    lmn_rows = [("torch", median_seconds(torch_lmn, args.lmn_repeats))]

    kmodel = keras_engine.build_model(config, TrainingData.for_configs([config]))
    kx, ky = pairs[train_index].astype(np.int32), labels[train_index].astype(np.int32)

    def keras_steps() -> None:
        for _ in range(args.steps):
            kmodel.train_on_batch(kx, ky, return_dict=True)

    keras_steps()
    name = f"keras ({keras.backend.backend()})"
    rows.append((name, keras.__version__, median_seconds(keras_steps, args.repeats, args.steps)))
    measures = [LayerLMN(kmodel, probe) for probe in PROBES]

    def keras_lmn() -> None:
        for measure in measures:
            measure(lmn_inputs)

    lmn_rows.append((name, median_seconds(keras_lmn, args.lmn_repeats)))

    print(
        f"training step, addition mod 31, full batch of {len(train_index)}, float32, median of {args.repeats}"
    )
    for framework, version, seconds in rows:
        print(f"  {framework:<20} {version:<16} {seconds * 1e3:8.2f} ms/step")
    print(f"one LMN checkpoint: probes {', '.join(PROBES)}, N = {args.lmn_samples}, T = 21")
    for framework, seconds in lmn_rows:
        print(f"  {framework:<20} {seconds:8.2f} s")


if __name__ == "__main__":
    main()
