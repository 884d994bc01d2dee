"""Training speed of the PyTorch trainer against a textbook loop: one seed, then K seeds batched.

Addition mod 31, float32, CPU, the paper's recipe (full batch of 769 pairs, AdamW lr 1e-3,
weight decay 0.2). Every variant runs from the same initial weights; the variants take
turns within each repeat and the table shows medians over the repeats.

- *textbook step*: what a tutorial writes, ``optimizer.zero_grad(); loss =
  cross_entropy(model(x), y); loss.backward(); optimizer.step(); loss.item()`` with
  ``torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.2)`` (PyTorch's default
  implementation) on ``GrokMLP``.
- *trainer step*: one ``TorchEngine.update(evaluate=False)`` of one run: autograd through
  ``functional_call`` on the stacked parameters (``torch.vmap`` only for several runs) and
  ``torch.optim.AdamW``, the update that ``train`` takes on the steps that write no row;
  its loss in float64 (the recipe's ``loss_dtype``), and once more in float32 for the
  cost of that choice.
- *compiled step*: the trainer step with the model call ``torch.compile``d (its compile
  time printed apart).
- *run without LMN*: a whole run of ``--steps`` steps with the metrics rows of the recipe's
  schedule but no LMN checkpoint (``probes=()``). Textbook: the loop above plus, at each
  row, a test-set forward pass, both accuracies and the parameters' L2 norm read with
  ``.item()`` into a list. Trainer: ``train(config, folder)``, which also writes the
  run folder (config, ``metrics.csv`` flushed per row, summary, weights).
- *K seeds*: K such runs of seeds ``0 .. K-1``, one after the other (``train`` each, and
  the textbook loop each) against one ``train_batched`` of the K; in seed-steps per second.

Run it on an idle machine (nothing else running): ``python benchmarks/bench_train.py``;
``--threads 1`` (or 2) sets PyTorch's thread count first.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional

from reference_tasks.tasks import make_task, train_test_split
from reference_tasks.training import RunOptions, TrainConfig, train, train_batched
from reference_tasks.training.engine import TrainingData
from reference_tasks.training.recipe import eval_steps
from reference_tasks.training.torch_engine import TorchEngine, build_model

TASK = make_task("modadd")


def config(steps: int, seed: int = 0, loss_dtype: str | None = "float64") -> TrainConfig:
    """The recipe for ``steps`` steps with no LMN checkpoint (its float64 loss unless told)."""
    return TrainConfig(task="modadd", seed=seed, steps=steps, probes=(), loss_dtype=loss_dtype)


QUIET = RunOptions(progress=False)


def split(seed: int) -> tuple[torch.Tensor, ...]:
    """``x_train, y_train, x_test, y_test`` of ``seed``'s split."""
    train_index, test_index = train_test_split(TASK.n_samples, seed=seed)
    pairs, labels = torch.from_numpy(TASK.pairs), torch.from_numpy(TASK.labels)
    return pairs[train_index], labels[train_index], pairs[test_index], labels[test_index]


def textbook_run(steps: int, seed: int, *, with_rows: bool) -> None:
    """The textbook loop of ``steps`` steps, with the recipe's metrics rows if ``with_rows``."""
    recipe = config(steps, seed)
    x, y, x_test, y_test = split(seed)
    model = build_model(recipe, TASK.n_tokens, TASK.n_classes)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay
    )
    to_eval = set(eval_steps(recipe).tolist()) if with_rows else set()
    rows = []
    for step in range(steps):
        optimizer.zero_grad()
        logits = model(x)
        loss = functional.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        train_loss = loss.item()
        if step in to_eval:
            with torch.no_grad():
                test_logits = model(x_test)
                norm = torch.linalg.vector_norm(torch.cat([p.flatten() for p in model.parameters()]))
                rows.append(
                    (
                        train_loss,
                        functional.cross_entropy(test_logits, y_test).item(),
                        (logits.argmax(1) == y).sum().item() / y.numel(),
                        (test_logits.argmax(1) == y_test).sum().item() / y_test.numel(),
                        norm.item(),
                    )
                )


def trainer_steps(steps: int, loss_dtype: str | None = "float64") -> None:
    """``steps`` updates of the trainer's engine for seed 0, without evaluation."""
    recipe = config(steps, loss_dtype=loss_dtype)
    engine = TorchEngine([recipe], TrainingData.for_configs([recipe]), "cpu")
    for step in range(steps):
        engine.update(step, evaluate=False)


def compiled_engine() -> tuple[TorchEngine, float]:
    """A seed-0 engine whose model call is ``torch.compile``d, and the seconds its compile took."""
    recipe = config(1)
    engine = TorchEngine([recipe], TrainingData.for_configs([recipe]), "cpu")
    engine._logits = torch.compile(engine._logits)
    started = time.perf_counter()
    engine.update(0, evaluate=False)  # compiles
    return engine, time.perf_counter() - started


def seconds(run: Callable[[], object]) -> float:
    """Wall time of one call of ``run``."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each variant; the variants take turns within each repeat."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            times[name].append(seconds(run))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per timed run (default 2000)")
    parser.add_argument("--seeds", type=int, default=8, help="K, the seeds trained batched (default 8)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the median is shown (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads first")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    steps, k = args.steps, args.seeds
    folder = Path(tempfile.mkdtemp(prefix="bench_train_"))
    print(
        f"modadd float32 CPU, {torch.get_num_threads()} PyTorch thread(s), {steps} steps a run, "
        f"median of {args.repeats}"
    )

    textbook_steps = lambda: textbook_run(steps, 0, with_rows=False)  # noqa: E731
    trainer_step_loop = lambda: trainer_steps(steps)  # noqa: E731
    compiled, compile_seconds = compiled_engine()
    one = measure(
        {
            "textbook step": textbook_steps,
            "trainer step": trainer_step_loop,
            "float32-loss step": lambda: trainer_steps(steps, loss_dtype=None),
            "compiled step": lambda: [compiled.update(evaluate=False) for _ in range(steps)],
            "textbook run": lambda: textbook_run(steps, 0, with_rows=True),
            "trainer run": lambda: train(config(steps), folder / "one", options=QUIET),
        },
        args.repeats,
    )
    print(f"\n{'one seed, ms per step':32} {'textbook':>9} {'trainer':>9} {'ratio':>6}")
    for label, key in (("update only", "step"), ("run without LMN", "run")):
        textbook, trainer = one[f"textbook {key}"] / steps, one[f"trainer {key}"] / steps
        print(f"{label:32} {textbook * 1e3:9.3f} {trainer * 1e3:9.3f} {textbook / trainer:6.2f}")
    print(
        f"trainer step with its float64 loss / with a float32 loss: "
        f"{one['trainer step'] / one['float32-loss step']:.3f}"
    )
    compiled_step = one["compiled step"] / steps
    print(
        f"torch.compile'd trainer step: {compiled_step * 1e3:.3f} ms, trainer / compiled "
        f"{one['trainer step'] / steps / compiled_step:.2f}, after {compile_seconds:.1f} s of compiling"
    )

    configs = [config(steps, seed) for seed in range(k)]
    many = measure(
        {
            "textbook": lambda: [textbook_run(steps, seed, with_rows=True) for seed in range(k)],
            "sequential": lambda: [train(c, folder / f"seq-{c.seed}", options=QUIET) for c in configs],
            "batched": lambda: train_batched(
                configs, [folder / f"batch-{c.seed}" for c in configs], options=QUIET
            ),
        },
        args.repeats,
    )
    rate = {name: k * steps / value for name, value in many.items()}
    print(f"\n{k} seeds, runs without LMN, seed-steps per second")
    print(f"{f'{k} textbook runs one after the other':40} {rate['textbook']:9.0f}")
    print(f"{f'{k} trainer runs one after the other':40} {rate['sequential']:9.0f}")
    print(f"{f'one batched run of {k}':40} {rate['batched']:9.0f}")
    print(f"{'batched / sequential trainer runs':40} {rate['batched'] / rate['sequential']:9.2f}")
    print(f"{'batched / sequential textbook runs':40} {rate['batched'] / rate['textbook']:9.2f}")


if __name__ == "__main__":
    main()
