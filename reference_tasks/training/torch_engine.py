"""PyTorch training: autograd and ``torch.optim.AdamW``, ``K`` seeds stacked with ``torch.func``.

The ``K`` runs' parameters are stacked on a leading axis (``torch.func.stack_module_state``)
and the model runs on all of them at once as ``torch.vmap(torch.func.functional_call)``.
The loss is the sum of the runs' mean cross-entropies, so one ``backward`` gives every run
its own gradient, and one ``torch.optim.AdamW`` over the stacked tensors updates each run
exactly as its own optimizer would (AdamW is elementwise). With ``K = 1`` the model is
called without ``vmap`` (the same numbers, a fifth less time on a small step): a plain
training loop on one model.

On a GPU the whole update (forward, loss, backward, AdamW) is captured once as a CUDA
graph (``torch.cuda.graph``, with AdamW's ``capturable`` state on the device) and
replayed at every step, so a step costs the GPU's time rather than hundreds of kernel
launches from Python, and nothing waits for the GPU but the evaluation steps
(``benchmarks/bench_gpu.py``). The first :data:`EAGER_STEPS` updates after a start or a
resume run eagerly, on a side stream, as the capture requires. On the CPU the update is
the plain one, whose results the committed runs hold bit for bit.

Threads: while other processes keep the cores busy, PyTorch's OpenMP threads spin against
them; on the 2-core development machine a shared-machine step ran several times slower on
two threads than on one. Give each training process one thread there
(``torch.set_num_threads(1)``, what ``lmn reproduce --threads 1`` does);
``benchmarks/bench_train.py`` measures both.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.func import functional_call, stack_module_state
from torch.nn import functional

from adapters.torch import LayerLMN, LayerRegions
from reference_tasks.model import torch_model
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.runfolder.schema import WEIGHTS_STEM
from reference_tasks.training.engine import Evaluation, TrainingData
from reference_tasks.training.recipe import TrainConfig

ADAM_EPSILON = 1e-8
OPTIMIZER_PREFIX = "optimizer."
#: Updates run eagerly on a side stream before an update is captured as a CUDA graph.
EAGER_STEPS = 3


class TorchEngine:
    """``K`` runs of one recipe as stacked parameters (see the module docstring)."""

    framework = "torch"
    batches = True

    def __init__(self, configs: Sequence[TrainConfig], data: TrainingData, device: str) -> None:
        config = configs[0]
        self.data, self.device = data, torch.device(device)
        self.loss_dtype = getattr(torch, config.computed_loss_dtype)
        models = [build_model(c, data.n_tokens, data.n_classes) for c in configs]
        stacked, _ = stack_module_state(models)  # on the CPU, where the models are built
        self.model = models[0].to(self.device)  # the architecture; holds one run's weights to measure
        self.params = {
            name: value.to(self.device).detach().requires_grad_() for name, value in stacked.items()
        }
        self.graphed = self.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(
            list(self.params.values()),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            eps=ADAM_EPSILON,
            capturable=self.graphed,
        )
        self._graph: _GraphedUpdate | None = None
        self._measures: dict[str, LayerLMN] = {}
        self._regions: dict[str, LayerRegions] = {}
        # vmap costs about a fifth of a small step; one run needs no batching.
        self._logits = torch.vmap(self._logits_of_one) if len(configs) > 1 else self._logits_of_single
        tensors = (data.train_pairs, data.train_labels, data.test_pairs, data.test_labels)
        self.train_pairs, self.train_labels, self.test_pairs, self.test_labels = (
            torch.from_numpy(array).to(self.device) for array in tensors
        )
        self.lmn_pairs = [torch.from_numpy(pairs).to(self.device) for pairs in data.lmn_pairs]

    @classmethod
    def record(cls) -> dict[str, Any]:
        """``config.json``'s framework entries."""
        return {"framework": cls.framework, "torch_version": torch.__version__}

    @staticmethod
    def use_threads(threads: int) -> None:
        """``torch.set_num_threads(threads)`` (one per process on a shared machine: module docstring)."""
        torch.set_num_threads(threads)

    @staticmethod
    def devices(device: str) -> list[str] | None:
        """The devices of one worker process each for runs on ``device``: every GPU for ``"cuda"``.

        ``None`` for the CPU (one process per CPU).

        Raises
        ------
        ValueError
            For ``"cuda"`` on a machine where PyTorch sees no CUDA device.
        """
        kind = torch.device(device)
        if kind.type == "cpu":
            return None
        if kind.type == "cuda" and kind.index is None:
            count = torch.cuda.device_count()
            if count == 0:
                raise ValueError(f"--device {device}: PyTorch sees no CUDA device on this machine")
            return [f"cuda:{index}" for index in range(count)]
        return [str(kind)]

    def running(self) -> contextlib.AbstractContextManager[Any]:
        """Nothing to enter: tensors carry their device."""
        return contextlib.nullcontext()

    def _logits_of_one(self, params: dict[str, torch.Tensor], pairs: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, params, (pairs,))

    def _logits_of_single(self, params: dict[str, torch.Tensor], pairs: torch.Tensor) -> torch.Tensor:
        """The logits of the only run, with the run axis kept."""
        weights = {name: value[0] for name, value in params.items()}
        return functional_call(self.model, weights, (pairs[0],)).unsqueeze(0)

    def _losses(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Every run's mean cross-entropy, its log-softmax computed in the loss dtype."""
        return functional.cross_entropy(
            logits.to(self.loss_dtype).transpose(1, 2), labels, reduction="none"
        ).mean(dim=1)

    @staticmethod
    def _host(losses: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> Evaluation:
        correct = (logits.detach().argmax(dim=-1) == labels).sum(dim=1)
        return Evaluation(losses.detach().cpu().numpy(), correct.cpu().numpy())

    def _update(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One AdamW step of every run on its full training set; the losses and logits before it."""
        self.optimizer.zero_grad(set_to_none=True)
        logits = self._logits(self.params, self.train_pairs)
        losses = self._losses(logits, self.train_labels)
        losses.sum().backward()
        self.optimizer.step()
        return losses, logits

    def update(self, evaluate: bool) -> Evaluation | None:
        """One AdamW step of every run on its full training set (a CUDA graph's replay on a GPU)."""
        if self.graphed:
            if self._graph is None:
                self._graph = _GraphedUpdate(self._update)
            losses, logits = self._graph.step()
        else:
            losses, logits = self._update()
        return self._host(losses, logits, self.train_labels) if evaluate else None

    @torch.no_grad()
    def evaluate(self, split: str) -> Evaluation:
        """Metrics on ``"train"`` or ``"test"`` with the weights of now."""
        if split == "train":
            pairs, labels = self.train_pairs, self.train_labels
        else:
            pairs, labels = self.test_pairs, self.test_labels
        logits = self._logits(self.params, pairs)
        return self._host(self._losses(logits, labels), logits, labels)

    @torch.no_grad()
    def l2_norms(self) -> np.ndarray:
        """The L2 norm of all parameters of every run, in float64."""
        squares = sum(value.double().square().flatten(1).sum(dim=1) for value in self.params.values())
        return squares.sqrt().cpu().numpy()

    def weights(self, run: int) -> dict[str, np.ndarray]:
        """Run ``run``'s weights by ``state_dict`` name (the snapshot layout)."""
        return {name: value[run].detach().cpu().numpy() for name, value in self.params.items()}

    def state(self, run: int) -> dict[str, np.ndarray]:
        """Weights, then AdamW's state of every parameter (``optimizer.{name}.{key}``)."""
        arrays = self.weights(run)
        for name, value in self.params.items():
            for key, tensor in self.optimizer.state.get(value, {}).items():
                part = tensor if tensor.ndim == 0 else tensor[run]
                arrays[f"{OPTIMIZER_PREFIX}{name}.{key}"] = part.detach().cpu().numpy()
        return arrays

    def load_states(self, states: Sequence[dict[str, np.ndarray]]) -> None:
        """Restore every run's weights and AdamW state from :meth:`state`'s arrays."""
        self._graph = None  # the optimizer's state tensors are replaced: capture anew
        with torch.no_grad():
            for name, value in self.params.items():
                value.copy_(torch.from_numpy(np.stack([state[name] for state in states])))
        saved = self.optimizer.state_dict()
        for index, name in enumerate(self.params):
            prefix = f"{OPTIMIZER_PREFIX}{name}."
            keys = [key for key in states[0] if key.startswith(prefix)]
            if keys:
                saved["state"][index] = {key[len(prefix) :]: _stacked(states, key) for key in keys}
        self.optimizer.load_state_dict(saved)

    def _load_run(self, run: int) -> GrokMLP:
        """:attr:`model` holding run ``run``'s weights of now."""
        with torch.no_grad():
            for name, parameter in self.model.named_parameters():
                parameter.copy_(self.params[name][run])
        return self.model

    def lmn(self, run: int, probes: Sequence[str], n_points: int, progress: bool) -> dict[str, Any]:
        """Run ``run``'s LMN at each probe, on the engine's device (``adapters.torch.LayerLMN``).

        Each probe is cut once per engine; :attr:`model` holds the run's weights of now.
        """
        self._load_run(run)
        for probe in probes:
            if probe not in self._measures:
                self._measures[probe] = LayerLMN(self.model, probe, example_inputs=self.lmn_pairs[run])
        return {
            probe: self._measures[probe](self.lmn_pairs[run], n_points=n_points, progress=progress)
            for probe in probes
        }

    def regions(self, run: int, probes: Sequence[str], progress: bool) -> dict[str, Any]:
        """Run ``run``'s linear regions at each probe (``adapters.torch.LayerRegions``, cut once)."""
        self._load_run(run)
        for probe in probes:
            if probe not in self._regions:
                self._regions[probe] = LayerRegions(self.model, probe)
        return {probe: self._regions[probe](self.lmn_pairs[run], progress=progress) for probe in probes}

    def save(self, run: int, out_dir: Path) -> GrokMLP:
        """Write ``model.pt`` (a ``state_dict``); return a copy of run ``run``'s model."""
        model = copy.deepcopy(self._load_run(run))
        torch.save(model.state_dict(), out_dir / f"{WEIGHTS_STEM}.pt")
        return model


class _GraphedUpdate:
    """An update captured once as a CUDA graph and replayed (the module docstring says why).

    Parameters
    ----------
    update : callable
        One real update on static tensors, returning the losses and logits before it.
    """

    def __init__(self, update: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.update = update
        self.eager_left = EAGER_STEPS
        self.captured: tuple[torch.cuda.CUDAGraph, tuple[torch.Tensor, torch.Tensor]] | None = None

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One update: eager on a side stream for the first ones, then the captured graph's replay."""
        if self.eager_left > 0:
            self.eager_left -= 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                outputs = self.update()
            torch.cuda.current_stream().wait_stream(side)
            return outputs
        if self.captured is None:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):  # records the update without running it
                self.captured = graph, self.update()
        graph, outputs = self.captured
        graph.replay()
        return outputs


def build_model(config: TrainConfig, n_tokens: int, n_classes: int) -> GrokMLP:
    """The config's model: its dtype and shape, initial weights drawn from ``config.seed``."""
    return torch_model.build_model(
        n_tokens,
        n_classes,
        dtype=getattr(torch, config.dtype),
        **config.model_options(),
    )


def _stacked(states: Sequence[dict[str, np.ndarray]], key: str) -> torch.Tensor:
    """One optimizer entry of every run, stacked (a scalar such as AdamW's ``step`` is shared)."""
    first = states[0][key]
    if first.ndim == 0:
        return torch.from_numpy(first.copy())
    return torch.from_numpy(np.stack([state[key] for state in states]))
