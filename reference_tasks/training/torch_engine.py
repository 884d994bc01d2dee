"""PyTorch training: autograd and ``torch.optim.AdamW`` or ``SGD``, ``K`` seeds stacked with ``torch.func``.

The model is the task's (``Model.torch`` built from the run's config, cast to its dtype).
The ``K`` runs' parameters are stacked on a leading axis (``torch.func.stack_module_state``)
and the model runs on all of them at once as ``torch.vmap(torch.func.functional_call)``.
The loss is the sum of the runs' mean losses (cross-entropy, or the squared error to one-hot
labels averaged over samples and classes), so one ``backward`` gives every run its own
gradient, and one optimizer over the stacked tensors updates each run exactly as its own
optimizer would (AdamW and SGD are elementwise). With ``K = 1`` the model is
called without ``vmap`` (the same numbers, a fifth less time on a small step): a plain
training loop on one model.

On a GPU the whole full-batch update (forward, loss, backward, optimizer) is captured once
as a CUDA graph (``torch.cuda.graph``, with AdamW's ``capturable`` state on the device) and
replayed at every step (mini-batches, whose rows change from step to step, run eagerly), so
a step costs the GPU's time rather than hundreds of kernel launches from Python, and nothing
waits for the GPU but the evaluation steps (``benchmarks/bench_gpu.py``). The first
:data:`EAGER_STEPS` updates after a start or a resume run eagerly, on a side stream, as the
capture requires. On the CPU the update is the plain one, whose results the committed runs
hold bit for bit.

Threads: while other processes keep the cores busy, PyTorch's OpenMP threads spin against
them; on the 2-core development machine a shared-machine step ran several times slower on
two threads than on one. Give each training process one thread there
(``torch.set_num_threads(1)``, what ``lmn reproduce --threads 1`` does);
``benchmarks/bench_train.py`` measures both.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state
from torch.nn import functional

import lmn_core
from adapters.torch import LayerLMN, LayerProbe, LayerRegions, eval_mode, split
from reference_tasks.runfolder.schema import WEIGHTS_STEM
from reference_tasks.training.engine import Evaluation, TrainingData, check_cuts
from reference_tasks.training.recipe import TrainConfig, batch_indices

ADAM_EPSILON = 1e-8
OPTIMIZER_PREFIX = "optimizer."
#: Updates run eagerly on a side stream before an update is captured as a CUDA graph.
EAGER_STEPS = 3


class TorchEngine:
    """``K`` runs of one recipe as stacked parameters (see the module docstring)."""

    framework = "torch"
    batches = True

    def __init__(self, configs: Sequence[TrainConfig], data: TrainingData, device: str) -> None:
        config = self.config = configs[0]
        self.seeds = [c.seed for c in configs]
        self.data, self.device = data, torch.device(device)
        self.loss_dtype = getattr(torch, config.computed_loss_dtype)
        models = [build_model(c, data) for c in configs]
        stacked, _ = stack_module_state(models)  # on the CPU, where the models are built
        self.model = models[0].to(self.device)  # the architecture; holds one run's weights to measure
        self.params = {
            name: value.to(self.device).detach().requires_grad_() for name, value in stacked.items()
        }
        self.graphed = self.device.type == "cuda" and config.batch_size is None
        self.optimizer = _optimizer(config, list(self.params.values()), capturable=self.graphed)
        self._graph: _GraphedUpdate | None = None
        self._measures: dict[str, LayerLMN] = {}
        self._regions: dict[str, LayerRegions] = {}
        self._probes: dict[str, LayerProbe] = {}
        # vmap costs about a fifth of a small step; one run needs no batching.
        self._logits = torch.vmap(self._logits_of_one) if len(configs) > 1 else self._logits_of_single
        tensors = (data.train_inputs, data.train_labels, data.test_inputs, data.test_labels)
        self.train_inputs, self.train_labels, self.test_inputs, self.test_labels = (
            self._tensor(array) for array in tensors
        )
        self.lmn_inputs = [self._tensor(inputs) for inputs in data.lmn_inputs]

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """Integers as they are, features in the run's dtype, on the device."""
        tensor = torch.from_numpy(array)
        if tensor.is_floating_point():
            tensor = tensor.to(getattr(torch, self.config.dtype))
        return tensor.to(self.device)

    @classmethod
    def check_experiment(cls, config: TrainConfig, data: TrainingData) -> None:
        """Refuse a model without a PyTorch version, a probe that ``adapters.torch.split`` cannot cut,
        or, for a piecewise-linear model, a head whose regions cannot be read there."""
        model = build_model(config, data)
        example = torch.from_numpy(data.lmn_inputs[0][:4])
        if example.is_floating_point():
            example = example.to(getattr(torch, config.dtype))
        regions = LayerRegions if data.task.model.is_piecewise_linear(config) else None
        check_cuts(
            data.task,
            config.probes,
            lambda probe: split(model, probe, example_inputs=example),
            None if regions is None else lambda probe: regions(model, probe),
        )

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
        """Every run's mean loss, computed in the loss dtype (a cross-entropy's log-softmax too)."""
        outputs = logits.to(self.loss_dtype)
        if self.config.loss == "mse":
            targets = functional.one_hot(labels, outputs.shape[-1]).to(self.loss_dtype)
            return (outputs - targets).square().mean(dim=(1, 2))
        return functional.cross_entropy(outputs.transpose(1, 2), labels, reduction="none").mean(dim=1)

    @staticmethod
    def _host(losses: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> Evaluation:
        correct = (logits.detach().argmax(dim=-1) == labels).sum(dim=1)
        return Evaluation(losses.detach().cpu().numpy(), correct.cpu().numpy())

    def _update(
        self, inputs: torch.Tensor | None = None, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step of every run on ``inputs`` (its full training set by default);
        the losses and logits before it."""
        inputs = self.train_inputs if inputs is None else inputs
        labels = self.train_labels if labels is None else labels
        self.optimizer.zero_grad(set_to_none=True)
        logits = self._logits(self.params, inputs)
        losses = self._losses(logits, labels)
        losses.sum().backward()
        self.optimizer.step()
        return losses, logits

    def _mini_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every run's mini-batch of the update after ``step`` (``recipe.batch_indices``)."""
        n_train, size = self.train_labels.shape[1], self.config.batch_size
        rows = torch.from_numpy(np.stack([batch_indices(n_train, size, seed, step) for seed in self.seeds]))
        rows = rows.to(self.device)
        runs = torch.arange(len(self.seeds), device=self.device)[:, None]
        return self.train_inputs[runs, rows], self.train_labels[runs, rows]

    def update(self, step: int, evaluate: bool) -> Evaluation | None:
        """The update after ``step``: full batch (a CUDA graph's replay on a GPU) or a mini-batch."""
        if self.config.batch_size is not None:
            inputs, labels = self._mini_batch(step)
            losses, logits = self._update(inputs, labels)
            return self._host(losses, logits, labels) if evaluate else None
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
            inputs, labels = self.train_inputs, self.train_labels
        else:
            inputs, labels = self.test_inputs, self.test_labels
        logits = self._logits(self.params, inputs)
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

    def _load_run(self, run: int) -> nn.Module:
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
                self._measures[probe] = LayerLMN(self.model, probe, example_inputs=self.lmn_inputs[run])
        return {
            probe: self._measures[probe](self.lmn_inputs[run], n_points=n_points, progress=progress)
            for probe in probes
        }

    def regions(self, run: int, probes: Sequence[str], progress: bool) -> dict[str, Any]:
        """Run ``run``'s linear regions at each probe (``adapters.torch.LayerRegions``, cut once)."""
        self._load_run(run)
        for probe in probes:
            if probe not in self._regions:
                self._regions[probe] = LayerRegions(self.model, probe)
        return {probe: self._regions[probe](self.lmn_inputs[run], progress=progress) for probe in probes}

    def load_weights(self, run: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Give run ``run`` the weights of a snapshot (:meth:`weights`' layout)."""
        missing = sorted(set(self.params) - set(arrays))
        if missing:
            raise ValueError(f"the snapshot holds no {missing}")
        with torch.no_grad():
            for name, value in self.params.items():
                value[run].copy_(torch.from_numpy(np.asarray(arrays[name])))

    def probe_inputs(self, run: int, probe: str) -> lmn_core.MeasureInputs:
        """What run ``run`` gives the progress measures at ``probe`` on its LMN inputs
        (``adapters.torch.LayerProbe``, cut once)."""
        self._load_run(run)
        if probe not in self._probes:
            self._probes[probe] = LayerProbe(self.model, probe, example_inputs=self.lmn_inputs[run])
        return self._probes[probe].measure_inputs(self.lmn_inputs[run])

    @torch.no_grad()
    def outputs(self, run: int) -> np.ndarray:
        """Run ``run``'s outputs on every sample of the task, in float64."""
        model = self._load_run(run)
        with eval_mode(model):
            logits = model(self._tensor(self.data.all_inputs))
        return logits.detach().to("cpu", torch.float64).numpy()

    def save(self, run: int, out_dir: Path) -> nn.Module:
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


def build_model(config: TrainConfig, data: TrainingData) -> nn.Module:
    """The task's model for ``config`` (``Model.torch``), cast to the config's dtype.

    Raises
    ------
    reference_tasks.experiment.ExperimentError
        If the task's model has no PyTorch version or its builder does not return a module.
    """
    model = data.task.model.build("torch", config, data.samples, task=data.task.name, expected=nn.Module)
    return model.to(dtype=getattr(torch, config.dtype))


def _optimizer(config: TrainConfig, params: list[torch.Tensor], *, capturable: bool) -> torch.optim.Optimizer:
    """The config's optimizer over ``params``: AdamW (its betas, epsilon 1e-8) or plain SGD."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        betas=tuple(config.betas),
        weight_decay=config.weight_decay,
        eps=ADAM_EPSILON,
        capturable=capturable,
    )


def _stacked(states: Sequence[dict[str, np.ndarray]], key: str) -> torch.Tensor:
    """One optimizer entry of every run, stacked (a scalar such as AdamW's ``step`` is shared)."""
    first = states[0][key]
    if first.ndim == 0:
        return torch.from_numpy(first.copy())
    return torch.from_numpy(np.stack([state[key] for state in states]))
