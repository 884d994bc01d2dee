"""Train several seeds of one PyTorch reference run at once, each into its own run folder.

``train_batched(configs, out_dirs)`` trains configs that differ only in their seed (and
``progress``) as one :class:`~reference_tasks.torch_stacked.StackedGrokMLP`: every seed
keeps its own train/test split, initial weights and LMN subset, and its folder gets
what :func:`reference_tasks.torch_trainer.train` writes for it alone (``train`` is this
loop with one seed): ``config.json``, ``metrics.csv`` row by row, a weight snapshot per
LMN checkpoint, ``checkpoint.pt`` while it runs, then ``model.pt`` and ``summary.json``.
The rows equal those of separate runs up to the float rounding of the batched products
(about 1e-7 relative in float32 over a few hundred steps); on the CPU a stack of the same
size repeats itself bit for bit.

Resuming. At every LMN checkpoint step ``s``, before measuring it, each folder gets its
snapshot ``snapshots/step_{s:06d}.npz`` and then ``checkpoint.pt``, replaced atomically:
the state that begins step ``s`` (``step``, the ``GrokMLP`` ``state_dict`` as ``model``,
its ``torch.optim.AdamW`` ``state_dict`` as ``optimizer``, and the ``seconds_total`` and
``seconds_lmn`` spent so far). A seed's checkpoint is the one ``train`` writes, so a run
started batched can be resumed alone and the other way round. With ``resume=True`` a
folder holding a checkpoint is checked against its config (``runs.start_run``), its
rows and snapshots of steps ``>= s`` are dropped (``runs.rewind_run``) and it continues
from ``s``; other folders start afresh. Seeds whose folders resume from different steps
(say the process stopped while the checkpoints of step ``s`` were being replaced) are
trained as separate stacks, one per starting step. A finished run removes its
checkpoint; a run without probes has no LMN checkpoint, so nothing to resume from. Time
spent after the last checkpoint of an interrupted run is not counted in ``seconds_total``.

Timing. ``seconds_total`` is the wall time of the stack the seed was trained in (shared
by its seeds) and ``seconds_lmn`` the time of the seed's own LMN measurements;
``summary.json`` records the stack's size as ``batched_runs``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from adapters.torch import layer_lmn
from reference_tasks.analysis import write_run_summary
from reference_tasks.datasets import make_task, train_test_split
from reference_tasks.recipe import TrainConfig, eval_steps, lmn_checkpoints, lmn_sample_indices
from reference_tasks.runs import (
    CHECKPOINT_STEM,
    CONFIG_FILE,
    METRICS_FILE,
    MetricsWriter,
    Row,
    config_differences,
    lmn_column,
    read_json,
    rewind_run,
    start_run,
)
from reference_tasks.snapshots import save_snapshot
from reference_tasks.torch_model import GrokMLP
from reference_tasks.torch_stacked import Evaluation, StackedGrokMLP

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.pt"
CHECKPOINT_FILE = f"{CHECKPOINT_STEM}.pt"
# TrainConfig fields that may differ between the runs of one batch.
PER_RUN_FIELDS = frozenset({"seed", "progress"})


@dataclass(frozen=True)
class RunResult:
    """What a trainer leaves behind: the folder, the summary and the trained model."""

    out_dir: Path
    summary: dict[str, Any]
    model: GrokMLP


@dataclass(frozen=True)
class _Start:
    """Where one run starts: afresh (``checkpoint`` is ``None``) or from its checkpoint."""

    step: int
    checkpoint: dict[str, Any] | None


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


def run_record(config: TrainConfig) -> dict[str, Any]:
    """What ``config.json`` of a PyTorch run holds."""
    return {"framework": "torch", "torch_version": torch.__version__, **asdict(config)}


def _check_batch(configs: Sequence[TrainConfig], out_dirs: Sequence[Path]) -> None:
    if not configs:
        raise ValueError("train_batched needs at least one config")
    if len(configs) != len(out_dirs):
        raise ValueError(f"got {len(configs)} configs but {len(out_dirs)} output folders")
    if len({path.resolve() for path in out_dirs}) != len(out_dirs):
        raise ValueError("every run of a batch needs its own output folder")
    shared = [f.name for f in fields(TrainConfig) if f.name not in PER_RUN_FIELDS]
    for config in configs[1:]:
        differing = [name for name in shared if getattr(config, name) != getattr(configs[0], name)]
        if differing:
            raise ValueError(
                f"the runs of a batch may differ only in {sorted(PER_RUN_FIELDS)}; seed {config.seed} "
                f"differs from seed {configs[0].seed} in {differing}"
            )


def _load_checkpoint(out_dir: Path) -> dict[str, Any]:
    path = out_dir / CHECKPOINT_FILE
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot resume {out_dir}: {path} does not load ({error})") from error
    missing = {"step", "model", "optimizer", "seconds_total", "seconds_lmn"} - set(checkpoint)
    if missing:
        raise ValueError(f"cannot resume {out_dir}: {path} lacks {sorted(missing)}")
    return checkpoint


def _prepare(configs: Sequence[TrainConfig], out_dirs: Sequence[Path], resume: bool) -> list[_Start]:
    """Check every folder first, then start or rewind each; return where each run starts."""
    records = [run_record(config) for config in configs]
    if resume:
        for out_dir, record in zip(out_dirs, records, strict=True):
            if (out_dir / CHECKPOINT_FILE).exists():
                differences = config_differences(read_json(out_dir / CONFIG_FILE), record)
                if differences:
                    raise ValueError(
                        f"cannot resume {out_dir}: it holds a different run ({'; '.join(differences)}); "
                        "start it afresh or choose another folder"
                    )
    starts = []
    for out_dir, record in zip(out_dirs, records, strict=True):
        if start_run(out_dir, record, checkpoint=CHECKPOINT_FILE, resume=resume):
            checkpoint = _load_checkpoint(out_dir)
            rewind_run(out_dir, int(checkpoint["step"]))
            starts.append(_Start(int(checkpoint["step"]), checkpoint))
            logger.info("%s: resuming from step %d", out_dir, checkpoint["step"])
        else:
            starts.append(_Start(0, None))
    return starts


def train_batched(
    configs: Sequence[TrainConfig], out_dirs: Sequence[str | Path], *, resume: bool = False
) -> list[RunResult]:
    """Train the runs of ``configs`` together, each into its folder of ``out_dirs``.

    Parameters
    ----------
    configs : sequence of TrainConfig
        Runs that differ only in ``seed`` (and ``progress``).
    out_dirs : sequence of str or Path
        One folder per run (created if needed).
    resume : bool
        Continue the runs whose folders hold a checkpoint of the same config (see the
        module docstring); otherwise every folder starts afresh.

    Returns
    -------
    list of RunResult
        In the order of ``configs``.

    Raises
    ------
    ValueError
        If the configs differ in more than the seed, the folders are not distinct, or a
        folder to resume holds another config's run (nothing is changed then).
    """
    paths = [Path(out_dir) for out_dir in out_dirs]
    _check_batch(configs, paths)
    starts = _prepare(configs, paths, resume)
    results: list[RunResult | None] = [None] * len(configs)
    for step in sorted({start.step for start in starts}):
        members = [k for k, start in enumerate(starts) if start.step == step]
        stack = _Stack(
            [configs[k] for k in members], [paths[k] for k in members], [starts[k] for k in members]
        )
        for k, result in zip(members, stack.train(), strict=True):
            results[k] = result
    return [result for result in results if result is not None]


def _stack_rows(arrays: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).to(device)


class _Stack:
    """The runs that start from one step, trained as one :class:`StackedGrokMLP`."""

    def __init__(
        self, configs: Sequence[TrainConfig], out_dirs: Sequence[Path], starts: Sequence[_Start]
    ) -> None:
        self.configs, self.out_dirs = list(configs), list(out_dirs)
        self.config = configs[0]
        self.start_step = starts[0].step
        task = make_task(self.config.task, **self.config.task_options)
        self.task = task
        device = torch.device(self.config.device)
        splits = [
            train_test_split(task.n_samples, train_fraction=config.train_fraction, seed=config.seed)
            for config in configs
        ]
        self.n_train, self.n_test = int(np.size(splits[0][0])), int(np.size(splits[0][1]))
        train_pairs = _stack_rows([task.pairs[train] for train, _ in splits], device)
        test_pairs = _stack_rows([task.pairs[test] for _, test in splits], device)
        self.train_labels = _stack_rows([task.labels[train] for train, _ in splits], device)
        self.test_labels = _stack_rows([task.labels[test] for _, test in splits], device)
        pairs = torch.from_numpy(task.pairs).to(device)
        self.lmn_inputs = [pairs[lmn_sample_indices(task.n_samples, config)] for config in configs]

        self.models = [build_model(config, task.n_tokens, task.n_classes) for config in configs]
        for model, start in zip(self.models, starts, strict=True):
            if start.checkpoint is not None:
                model.load_state_dict(start.checkpoint["model"])
        self.engine = StackedGrokMLP(
            self.models, learning_rate=self.config.learning_rate, weight_decay=self.config.weight_decay
        )
        if starts[0].checkpoint is not None:
            self.engine.load_optimizer_state([start.checkpoint["optimizer"] for start in starts])
        self.train_rows = self.engine.rows(train_pairs)
        self.test_rows = self.engine.rows(test_pairs)
        self.seconds_before = [
            0.0 if s.checkpoint is None else float(s.checkpoint["seconds_total"]) for s in starts
        ]
        self.seconds_lmn = [
            0.0 if s.checkpoint is None else float(s.checkpoint["seconds_lmn"]) for s in starts
        ]

    def _save_checkpoints(self, step: int, seconds: float) -> None:
        for k, out_dir in enumerate(self.out_dirs):
            weights = self.engine.state_dict(k)
            save_snapshot(out_dir, step, {name: value.cpu().numpy() for name, value in weights.items()})
            state = {
                "step": step,
                "model": weights,
                "optimizer": self.engine.optimizer_state(k),
                "seconds_total": self.seconds_before[k] + seconds,
                "seconds_lmn": self.seconds_lmn[k],
            }
            temporary = out_dir / f"{CHECKPOINT_FILE}.tmp"
            torch.save(state, temporary)
            os.replace(temporary, out_dir / CHECKPOINT_FILE)

    def _measure_lmn(self) -> list[Row]:
        """Each run's LMN at its probes, with the weights of now."""
        values: list[Row] = []
        for k, (model, inputs) in enumerate(zip(self.models, self.lmn_inputs, strict=True)):
            started = time.perf_counter()
            self.engine.copy_to(k, model)
            row: Row = {"lmn_n_samples": int(inputs.shape[0])}
            for probe in self.config.probes:
                result = layer_lmn(
                    model, inputs, probe, n_points=self.config.lmn_points, progress=self.config.progress
                )
                row[lmn_column(probe)] = result.lmn
            values.append(row)
            self.seconds_lmn[k] += time.perf_counter() - started
        return values

    def _rows(self, step: int, train: Evaluation, test: Evaluation, l2: torch.Tensor) -> list[Row]:
        """The metrics rows of ``step``, one per run, read back to the host at once."""
        values = torch.stack(
            [train.loss, test.loss, train.correct.to(l2.dtype), test.correct.to(l2.dtype), l2], dim=1
        ).tolist()
        return [
            {
                "step": step,
                "train_loss": train_loss,
                "test_loss": test_loss,
                "train_acc": int(train_correct) / self.n_train,
                "test_acc": int(test_correct) / self.n_test,
                "l2_norm": l2_norm,
            }
            for train_loss, test_loss, train_correct, test_correct, l2_norm in values
        ]

    def train(self) -> list[RunResult]:
        """Run the loop from the start step to the end; write the final files."""
        config, engine = self.config, self.engine
        to_eval = set(eval_steps(config).tolist())
        checkpoints = set(lmn_checkpoints(config).tolist())
        seeds = [c.seed for c in self.configs]
        label = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {','.join(map(str, seeds))}"
        started = time.perf_counter()
        with contextlib.ExitStack() as stack:
            resuming = self.start_step > 0
            writers = [
                stack.enter_context(MetricsWriter(out_dir / METRICS_FILE, append=resuming))
                for out_dir in self.out_dirs
            ]
            bar = stack.enter_context(
                tqdm(
                    total=config.steps,
                    initial=self.start_step,
                    disable=not any(c.progress for c in self.configs),
                    desc=f"{config.task} {label}",
                )
            )
            for step in range(self.start_step, config.steps + 1):
                evaluate = step in to_eval
                if evaluate:
                    test = engine.evaluate(engine.logits(self.test_rows, self.n_test), self.test_labels)
                    l2 = engine.l2_norms()
                lmn_values = None
                if step in checkpoints:
                    self._save_checkpoints(step, time.perf_counter() - started)
                    lmn_values = self._measure_lmn()
                if step < config.steps:
                    train = engine.step(self.train_rows, self.train_labels, evaluate=evaluate)
                    bar.update()
                else:
                    train = engine.evaluate(engine.logits(self.train_rows, self.n_train), self.train_labels)
                if evaluate:
                    rows = self._rows(step, train, test, l2)
                    for row, values in zip(rows, lmn_values or [{}] * len(rows), strict=True):
                        row.update(values)
                    logger.debug("step %d: %s", step, rows)
                    for writer, row in zip(writers, rows, strict=True):
                        writer.write(row)
                    bar.set_postfix(
                        train_acc=rows[0]["train_acc"], test_acc=rows[0]["test_acc"], refresh=False
                    )
        seconds = time.perf_counter() - started
        return [self._finish(k, seconds, len(checkpoints)) for k in range(len(self.configs))]

    def _finish(self, k: int, seconds: float, n_checkpoints: int) -> RunResult:
        out_dir, config = self.out_dirs[k], self.configs[k]
        model = self.engine.copy_to(k, self.models[k])
        torch.save(model.state_dict(), out_dir / WEIGHTS_FILE)
        summary = write_run_summary(
            out_dir,
            config=config,
            framework="torch",
            extra={
                "n_train": self.n_train,
                "n_test": self.n_test,
                "lmn_checkpoints": n_checkpoints,
                "seconds_total": self.seconds_before[k] + seconds,
                "seconds_lmn": self.seconds_lmn[k],
                "batched_runs": len(self.configs),
            },
        )
        (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
        return RunResult(out_dir, summary, model)
