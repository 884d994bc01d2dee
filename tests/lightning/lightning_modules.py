"""A LightningModule around the reference MLP, shared by the Lightning tests (and their DDP processes)."""

from __future__ import annotations

import copy

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from reference_tasks.model.torch_model import build_model
from reference_tasks.tasks import make_task, train_test_split


class FullBatch(Dataset):
    """One item, the whole training set: every step is one full-batch step, as the paper's recipe."""

    def __init__(self, pairs: torch.Tensor, labels: torch.Tensor, steps: int) -> None:
        self.pairs, self.labels, self.steps = pairs, labels, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pairs, self.labels


class Grokking(pl.LightningModule):
    """The reference MLP of addition mod ``p`` as ``self.net``, trained with AdamW."""

    def __init__(self, p: int = 31, seed: int = 0) -> None:
        super().__init__()
        task = make_task("modadd", p=p)
        self.net = build_model(task.n_tokens, task.n_classes, seed=seed)
        self.task = task

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.net(pairs)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        pairs, labels = batch
        loss = nn.functional.cross_entropy(self(pairs[0]), labels[0])
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=0.2)

    def loader(self, steps: int) -> DataLoader:
        train, _ = train_test_split(self.task.n_samples, seed=0)
        pairs = torch.as_tensor(self.task.pairs[train])
        labels = torch.as_tensor(self.task.labels[train])
        return DataLoader(FullBatch(pairs, labels, steps), batch_size=1)


class WeightsAt(pl.Callback):
    """Keeps a copy of the network's weights at the given global steps (0 = before training)."""

    def __init__(self, steps: set[int]) -> None:
        self.steps, self.weights = steps, {}

    def _keep(self, trainer: pl.Trainer, pl_module: Grokking) -> None:
        if trainer.global_step in self.steps and trainer.global_step not in self.weights:
            self.weights[trainer.global_step] = copy.deepcopy(pl_module.net.state_dict())

    def on_train_start(self, trainer: pl.Trainer, pl_module: Grokking) -> None:
        self._keep(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._keep(trainer, pl_module)


class RankReport(pl.Callback):
    """Writes, per rank, how many measurements the LMN callback made there (``rank<k>.txt``)."""

    def __init__(self, lmn_callback: pl.Callback, folder: str) -> None:
        self.lmn_callback, self.folder = lmn_callback, folder

    def on_train_end(self, trainer: pl.Trainer, pl_module: Grokking) -> None:
        steps = [str(row["step"]) for row in self.lmn_callback.measurements]
        with open(f"{self.folder}/rank{trainer.global_rank}.txt", "w") as file:
            file.write(" ".join(steps))
