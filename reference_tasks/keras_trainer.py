"""Train the paper's MLP on a reference task in Keras 3, measuring LMN as it goes.

``train(config, out_dir)`` writes into ``out_dir`` what the PyTorch trainer writes:
``config.json`` first (with ``"framework": "keras"``, the Keras version and backend),
``metrics.csv`` row by row in the schema of ``reference_tasks.runs``, a weight snapshot
at every LMN checkpoint (``reference_tasks.snapshots``, PyTorch layout), a resume
checkpoint ``checkpoint.npz``, then the final model ``model.keras``
(``keras.saving.load_model`` reads it back) and ``summary.json`` (the same keys as the
PyTorch trainer's, ``"framework": "keras"``).

The recipe is the PyTorch trainer's: full batch, ``keras.optimizers.AdamW`` with the
config's learning rate and weight decay (``epsilon=1e-8``, PyTorch's default), sparse
cross-entropy on the logits, the same evaluation and LMN schedule. Each update is one
call of Keras's compiled train step (``train_on_batch``; with XLA on TensorFlow, the
fastest measured on a 2-core CPU), whose loss and accuracy, computed on the weights
before the update, are the row's train metrics. The initial weights come from
``config.seed`` alone (seeded initializers), so the global random state is left as it
is, and on the CPU the same config gives the same ``metrics.csv``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from adapters.keras import LayerLMN
from reference_tasks import keras_model
from reference_tasks.analysis import write_run_summary
from reference_tasks.datasets import make_task, train_test_split
from reference_tasks.recipe import TrainConfig, eval_steps, lmn_checkpoints, lmn_sample_indices
from reference_tasks.runs import (
    CHECKPOINT_STEM,
    METRICS_FILE,
    MetricsWriter,
    Row,
    lmn_column,
    rewind_run,
    start_run,
)
from reference_tasks.snapshots import save_snapshot

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.keras"
CHECKPOINT_FILE = f"{CHECKPOINT_STEM}.npz"
ADAM_EPSILON = 1e-8
DENSE_LAYERS = ("linear1", "linear2", "output")


@dataclass(frozen=True)
class RunResult:
    """What :func:`train` leaves behind: the folder, the summary and the trained model."""

    out_dir: Path
    summary: dict[str, Any]
    model: keras.Model


def build_model(config: TrainConfig, n_tokens: int, n_classes: int) -> keras.Model:
    """The config's model (its dtype, weights drawn from ``config.seed``), compiled with its AdamW.

    Compiled with ``jit_compile=True`` (XLA) on TensorFlow and Keras's default elsewhere.
    """
    model = keras_model.build_model(
        n_tokens,
        n_classes,
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        shared_embedding=config.shared_embedding,
        dtype=config.dtype,
        seed=config.seed,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=config.learning_rate, weight_decay=config.weight_decay, epsilon=ADAM_EPSILON
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=config.dtype),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=True if keras.backend.backend() == "tensorflow" else "auto",
    )
    return model


def _loss_and_accuracy(logs: dict[str, Any], n_rows: int) -> tuple[float, float]:
    """Loss and the exact fraction correct from a ``*_on_batch`` result (accuracy is float32)."""
    return float(logs["loss"]), round(float(logs["accuracy"]) * n_rows) / n_rows


def _l2_norm(model: keras.Model) -> float:
    return math.sqrt(
        sum(float(np.sum(np.square(weight.numpy(), dtype=np.float64))) for weight in model.trainable_weights)
    )


def snapshot_arrays(model: keras.Model) -> dict[str, np.ndarray]:
    """The reference model's weights in the snapshot layout (PyTorch names and shapes)."""
    arrays = {
        f"embedding.tables.{index}.weight": table.numpy()
        for index, table in enumerate(model.get_layer("embedding").tables)
    }
    for name in DENSE_LAYERS:
        dense = model.get_layer(name)
        arrays[f"{name}.weight"] = np.ascontiguousarray(dense.kernel.numpy().T)
        arrays[f"{name}.bias"] = dense.bias.numpy()
    return arrays


def _save_checkpoint(path: Path, model: keras.Model, step: int, seconds: tuple[float, float]) -> None:
    """Write the state that begins ``step`` (weights, optimizer variables, timings) atomically."""
    arrays = {f"weight_{index}": weight.numpy() for index, weight in enumerate(model.weights)}
    arrays.update(
        {f"optimizer_{index}": variable.numpy() for index, variable in enumerate(model.optimizer.variables)}
    )
    temporary = path.with_name(path.stem + ".tmp.npz")
    np.savez(temporary, step=step, seconds=np.asarray(seconds), **arrays)
    os.replace(temporary, path)


def _load_checkpoint(path: Path, model: keras.Model) -> tuple[int, tuple[float, float]]:
    """Restore a checkpoint into ``model`` and its built optimizer; return its step and timings."""
    with np.load(path) as archive:
        targets = [(f"weight_{index}", weight) for index, weight in enumerate(model.weights)]
        targets += [
            (f"optimizer_{index}", variable) for index, variable in enumerate(model.optimizer.variables)
        ]
        saved = {name for name in archive.files if name.startswith(("weight_", "optimizer_"))}
        if saved != {name for name, _ in targets}:
            raise ValueError(f"{path} does not hold this model's weights and optimizer state")
        for name, variable in targets:
            if tuple(archive[name].shape) != tuple(variable.shape):
                raise ValueError(
                    f"{path}: {name} has shape {archive[name].shape}, the model's variable {variable.shape}"
                )
            variable.assign(archive[name])
        seconds_total, seconds_lmn = (float(value) for value in archive["seconds"])
        return int(archive["step"]), (seconds_total, seconds_lmn)


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False) -> RunResult:
    """Run the config's training into ``out_dir`` (created if needed).

    Step ``s`` is measured with the weights after ``s`` AdamW updates; the train loss
    and accuracy of a row come from the same full-batch forward pass as the update.
    ``config.device`` is a device name of the active backend (``keras.device``).

    Parameters
    ----------
    config : TrainConfig
        The run.
    out_dir : str or Path
        The run folder.
    resume : bool
        Continue an interrupted run of the same config from its last checkpoint (the
        steps from there on are measured again); without a checkpoint, or with
        ``resume=False``, the run starts over.

    Returns
    -------
    RunResult

    Raises
    ------
    ValueError
        If resuming a folder that holds a run of another config.
    """
    out_dir = Path(out_dir)
    record = {
        "framework": "keras",
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        **asdict(config),
    }
    resuming = start_run(out_dir, record, checkpoint=CHECKPOINT_FILE, resume=resume)
    task = make_task(config.task, **config.task_options)
    train_index, test_index = train_test_split(
        task.n_samples, train_fraction=config.train_fraction, seed=config.seed
    )
    pairs = task.pairs.astype(np.int32)
    labels = task.labels.astype(np.int32)
    x_train, y_train = pairs[train_index], labels[train_index]
    x_test, y_test = pairs[test_index], labels[test_index]
    lmn_inputs = pairs[lmn_sample_indices(task.n_samples, config)]

    to_eval = set(eval_steps(config).tolist())
    checkpoints = set(lmn_checkpoints(config).tolist())
    with keras.device(config.device):
        model = build_model(config, task.n_tokens, task.n_classes)
        model.optimizer.build(model.trainable_variables)
        first_step, (seconds_before, seconds_lmn) = 0, (0.0, 0.0)
        if resuming:
            first_step, (seconds_before, seconds_lmn) = _load_checkpoint(out_dir / CHECKPOINT_FILE, model)
            rewind_run(out_dir, first_step)
            logger.info("resuming %s from step %d", out_dir, first_step)
        measures = {probe: LayerLMN(model, probe) for probe in config.probes}
        started = time.perf_counter() - seconds_before
        with (
            MetricsWriter(out_dir / METRICS_FILE, append=resuming) as writer,
            tqdm(
                total=config.steps,
                initial=first_step,
                disable=not config.progress,
                desc=f"{config.task} seed {config.seed}",
            ) as bar,
        ):
            for step in range(first_step, config.steps + 1):
                row: Row = {"step": step}
                if step in checkpoints:
                    save_snapshot(out_dir, step, snapshot_arrays(model))
                    seconds = (time.perf_counter() - started, seconds_lmn)
                    _save_checkpoint(out_dir / CHECKPOINT_FILE, model, step, seconds)
                if step in to_eval:
                    test_loss, test_acc = _loss_and_accuracy(
                        model.test_on_batch(x_test, y_test, return_dict=True), y_test.size
                    )
                    row.update(test_loss=test_loss, test_acc=test_acc, l2_norm=_l2_norm(model))
                if step in checkpoints:
                    lmn_started = time.perf_counter()
                    row["lmn_n_samples"] = int(lmn_inputs.shape[0])
                    for probe, measure in measures.items():
                        row[lmn_column(probe)] = measure(
                            lmn_inputs, n_points=config.lmn_points, progress=config.progress
                        ).lmn
                    seconds_lmn += time.perf_counter() - lmn_started
                    logger.debug("step %d: %s", step, row)
                if step < config.steps:
                    train_logs = model.train_on_batch(x_train, y_train, return_dict=True)
                    bar.update()
                else:
                    train_logs = model.test_on_batch(x_train, y_train, return_dict=True)
                if step in to_eval:
                    row["train_loss"], row["train_acc"] = _loss_and_accuracy(train_logs, y_train.size)
                    writer.write(row)
                    bar.set_postfix(train_acc=row["train_acc"], test_acc=row["test_acc"], refresh=False)
    seconds_total = time.perf_counter() - started

    model.save(out_dir / WEIGHTS_FILE)
    summary = write_run_summary(
        out_dir,
        config=config,
        framework="keras",
        extra={
            "n_train": int(np.size(train_index)),
            "n_test": int(np.size(test_index)),
            "lmn_checkpoints": len(checkpoints),
            "seconds_total": seconds_total,
            "seconds_lmn": seconds_lmn,
        },
    )
    (out_dir / CHECKPOINT_FILE).unlink()
    return RunResult(out_dir, summary, model)
