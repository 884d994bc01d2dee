"""Train the paper's MLP on a reference task in PyTorch, measuring LMN as it goes.

``train(config, out_dir)`` writes into ``out_dir``: ``config.json`` first,
``metrics.csv`` row by row (see ``reference_tasks.runs``), then the final weights
``model.pt`` (a ``state_dict``) and ``summary.json``. Full-batch training on the CPU
is deterministic: the same config gives the same ``metrics.csv``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional
from tqdm.auto import tqdm

from adapters.torch import layer_lmn
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
from reference_tasks.torch_model import GrokMLP

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.pt"


@dataclass(frozen=True)
class RunResult:
    """What :func:`train` leaves behind: the folder, the summary and the trained model."""

    out_dir: Path
    summary: dict[str, Any]
    model: GrokMLP


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return int((logits.argmax(dim=1) == labels).sum().item()) / labels.numel()


def _l2_norm(model: torch.nn.Module) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.cat([p.detach().flatten() for p in model.parameters()]))


def _lmn_values(model: GrokMLP, inputs: torch.Tensor, config: TrainConfig) -> Row:
    row: Row = {"lmn_n_samples": int(inputs.shape[0])}
    for probe in config.probes:
        result = layer_lmn(model, inputs, probe, n_points=config.lmn_points, progress=False)
        row[lmn_column(probe)] = result.lmn
    return row


def build_model(config: TrainConfig, n_tokens: int, n_classes: int) -> GrokMLP:
    """The config's model with weights drawn from ``config.seed``, on its device and dtype.

    The weights are drawn on the CPU inside a forked RNG, so they do not depend on the
    device nor change PyTorch's global random state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = GrokMLP(
            n_tokens,
            n_classes,
            embedding_dim=config.embedding_dim,
            hidden_dim=config.hidden_dim,
            shared_embedding=config.shared_embedding,
        )
    return model.to(device=config.device, dtype=getattr(torch, config.dtype))


def train(config: TrainConfig, out_dir: str | Path) -> RunResult:
    """Run the config's training from scratch into ``out_dir`` (created if needed).

    Step ``s`` is measured with the weights after ``s`` AdamW updates; the train loss
    and accuracy of a row come from the same full-batch forward pass as the update.

    Returns
    -------
    RunResult
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        out_dir / CONFIG_FILE, {"framework": "torch", "torch_version": torch.__version__, **asdict(config)}
    )
    task = make_task(config.task, **config.task_options)
    train_index, test_index = train_test_split(
        task.n_samples, train_fraction=config.train_fraction, seed=config.seed
    )
    device = torch.device(config.device)
    pairs = torch.from_numpy(task.pairs).to(device)
    labels = torch.from_numpy(task.labels).to(device)
    x_train, y_train = pairs[train_index], labels[train_index]
    x_test, y_test = pairs[test_index], labels[test_index]
    lmn_inputs = pairs[lmn_sample_indices(task.n_samples, config)]

    model = build_model(config, task.n_tokens, task.n_classes)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    to_eval = set(eval_steps(config).tolist())
    checkpoints = set(lmn_checkpoints(config).tolist())
    seconds_lmn = 0.0
    started = time.perf_counter()
    with (
        MetricsWriter(out_dir / METRICS_FILE) as writer,
        tqdm(
            total=config.steps, disable=not config.progress, desc=f"{config.task} seed {config.seed}"
        ) as bar,
    ):
        for step in range(config.steps + 1):
            logits = model(x_train)
            loss = functional.cross_entropy(logits, y_train)
            if step in to_eval:
                with torch.no_grad():
                    test_logits = model(x_test)
                    row: Row = {
                        "step": step,
                        "train_loss": loss.item(),
                        "test_loss": functional.cross_entropy(test_logits, y_test).item(),
                        "train_acc": _accuracy(logits, y_train),
                        "test_acc": _accuracy(test_logits, y_test),
                        "l2_norm": _l2_norm(model).item(),
                    }
                if step in checkpoints:
                    lmn_started = time.perf_counter()
                    row.update(_lmn_values(model, lmn_inputs, config))
                    seconds_lmn += time.perf_counter() - lmn_started
                    logger.debug("step %d: %s", step, row)
                writer.write(row)
                bar.set_postfix(train_acc=row["train_acc"], test_acc=row["test_acc"], refresh=False)
            if step == config.steps:
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update()
    seconds_total = time.perf_counter() - started

    torch.save(model.state_dict(), out_dir / WEIGHTS_FILE)
    summary = write_run_summary(
        out_dir,
        config=config,
        framework="torch",
        extra={
            "n_train": int(np.size(train_index)),
            "n_test": int(np.size(test_index)),
            "lmn_checkpoints": len(checkpoints),
            "seconds_total": seconds_total,
            "seconds_lmn": seconds_lmn,
        },
    )
    return RunResult(out_dir, summary, model)
