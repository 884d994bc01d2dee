"""What README.md's code blocks take as given: the models, inputs and files they name.

Each function here is a ``setup=`` of a block (see :mod:`readme_blocks`): it returns the
names the block uses and writes, into ``folder``, the files it reads. Models are small and
randomly initialised: the blocks show how to call the library, not results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def grok_torch(folder: Path) -> dict[str, Any]:
    """The reference MLP of addition mod 31 (random weights) and a quarter of its pairs."""
    import torch

    from reference_tasks.model.torch_model import build_model
    from reference_tasks.tasks import make_task

    torch.manual_seed(0)
    return {"model": build_model(31, 31, seed=0), "inputs": make_task("modadd").pairs[::4]}


def torch_models(folder: Path) -> dict[str, Any]:
    """A residual network, a detector, an encoder returning a dict, a tagger returning a tuple."""
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(width, width, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.conv(x))

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.layer1, self.layer2, self.layer3 = Residual(4), Residual(4), Residual(4)
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.layer3(self.layer2(self.layer1(self.stem(x))))
            return self.fc(x.mean(dim=(2, 3)))

    class Detector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 16), nn.Tanh())
            self.linear2, self.act2 = nn.Linear(16, 16), nn.SiLU()
            self.classes, self.boxes = nn.Linear(16, 5), nn.Linear(16, 4)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.act2(self.linear2(self.features(x)))
            return self.classes(h), self.boxes(h)

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 16), nn.GELU())
            self.head = nn.Linear(16, 3)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            hidden = self.encoder(x)
            return {"logits": self.head(hidden), "hidden": hidden}

    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed, self.hidden, self.out = nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2 * 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            tags = self.out(self.hidden(self.embed(x))).reshape(-1, 2, 3)
            return tags, tags.argmax(-1)

    torch.manual_seed(0)
    resnet = ResNet()
    images, tokens = torch.randn(16, 3, 8, 8), torch.randn(16, 6)
    return {
        "resnet": resnet,
        "detector": Detector(),
        "encoder": Encoder(),
        "tagger": Tagger(),
        "images": images,
        "tokens": tokens,
        "labels": torch.randint(0, 3, (16,)),
        "steps": 3,
        "optimizer": torch.optim.AdamW(resnet.parameters()),
        "loss_fn": nn.CrossEntropyLoss(),
        **grok_torch(folder),
    }


def grok_keras(folder: Path) -> dict[str, Any]:
    """The reference MLP of addition mod 31 in Keras (random weights, compiled) and its data."""
    import keras

    from reference_tasks.model.keras_model import build_model
    from reference_tasks.tasks import make_task

    task = make_task("modadd")
    model = build_model(31, 31, seed=0)
    model.compile(optimizer="adamw", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pairs = task.pairs.astype(np.int32)
    return {"model": model, "inputs": pairs[::8], "x": pairs, "y": task.labels.astype(np.int32)}


def plot_inputs(folder: Path) -> None:
    """The three CSVs ``lmn plot`` reads: a monitor's, a Lightning CSVLogger's, a run folder's."""
    from adapters.torch import LMNMonitor
    from reference_tasks.training import RunOptions, TrainConfig, train

    config = TrainConfig(task="modadd", steps=20, lmn_samples=8, n_checkpoints=4)
    run = train(config, folder / "runs" / "torch" / "modadd-seed0", options=RunOptions(progress=False))
    monitor = LMNMonitor(
        run.model, grok_torch(folder)["inputs"][:20], "hidden1", every_n_steps=5, csv_path=folder / "lmn.csv"
    )
    for step in range(11):
        monitor.step(step)
    logs = folder / "logs" / "lightning_logs" / "version_0"
    logs.mkdir(parents=True)
    rows = ["epoch,step,train_loss,lmn/net.1,lmn/net.3"]
    rows += [
        f"0,{step},{1.0 / (step + 1)},{'' if step % 5 else 2.0 + step},{'' if step % 5 else 1.0}"
        for step in range(11)
    ]
    (logs / "metrics.csv").write_text("\n".join(rows) + "\n")


def grok_relu_torch(folder: Path) -> dict[str, Any]:
    """The reference MLP of addition mod 31 with ReLU (random weights) and a quarter of its pairs."""
    from reference_tasks.model.torch_model import build_model
    from reference_tasks.tasks import make_task

    return {"model": build_model(31, 31, seed=0, activation="relu"), "inputs": make_task("modadd").pairs[::4]}


def relu_head_arrays(folder: Path) -> dict[str, Any]:
    """A ReLU head's weights and 40 samples, as NumPy arrays."""
    rng = np.random.default_rng(0)
    W1, W2 = rng.normal(size=(16, 8)), rng.normal(size=(3, 16))  # (out, in), as nn.Linear
    return {
        "W1": W1,
        "b1": rng.normal(size=16),
        "W2": W2,
        "b2": rng.normal(size=3),
        "X": rng.normal(size=(40, 8)),
    }
