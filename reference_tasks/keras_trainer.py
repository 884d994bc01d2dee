"""Train the paper's MLP on a reference task in Keras 3, measuring LMN as it goes.

``train(config, out_dir)`` writes into ``out_dir`` what the PyTorch trainer writes:
``config.json`` first (with ``"framework": "keras"``, the Keras version and backend),
``metrics.csv`` row by row in the schema of ``reference_tasks.runs``, then the final
model ``model.keras`` (``keras.saving.load_model`` reads it back) and ``summary.json``
(the same keys as the PyTorch trainer's, ``"framework": "keras"``).

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
    CONFIG_FILE,
    METRICS_FILE,
    MetricsWriter,
    Row,
    lmn_column,
    write_json,
)

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.keras"
ADAM_EPSILON = 1e-8


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


def train(config: TrainConfig, out_dir: str | Path) -> RunResult:
    """Run the config's training from scratch into ``out_dir`` (created if needed).

    Step ``s`` is measured with the weights after ``s`` AdamW updates; the train loss
    and accuracy of a row come from the same full-batch forward pass as the update.
    ``config.device`` is a device name of the active backend (``keras.device``).

    Returns
    -------
    RunResult
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        out_dir / CONFIG_FILE,
        {
            "framework": "keras",
            "keras_version": keras.__version__,
            "keras_backend": keras.backend.backend(),
            **asdict(config),
        },
    )
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
    seconds_lmn = 0.0
    started = time.perf_counter()
    with (
        keras.device(config.device),
        MetricsWriter(out_dir / METRICS_FILE) as writer,
        tqdm(
            total=config.steps, disable=not config.progress, desc=f"{config.task} seed {config.seed}"
        ) as bar,
    ):
        model = build_model(config, task.n_tokens, task.n_classes)
        measures = {probe: LayerLMN(model, probe) for probe in config.probes}
        for step in range(config.steps + 1):
            row: Row = {"step": step}
            if step in to_eval:
                test_loss, test_acc = _loss_and_accuracy(
                    model.test_on_batch(x_test, y_test, return_dict=True), y_test.size
                )
                row.update(test_loss=test_loss, test_acc=test_acc, l2_norm=_l2_norm(model))
            if step in checkpoints:
                lmn_started = time.perf_counter()
                row["lmn_n_samples"] = int(lmn_inputs.shape[0])
                for probe, measure in measures.items():
                    row[lmn_column(probe)] = measure(lmn_inputs, n_points=config.lmn_points).lmn
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
    return RunResult(out_dir, summary, model)
