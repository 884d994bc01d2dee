"""The training schedule, written once for every framework and for several seeds at once.

``train(config, out_dir)`` writes into ``out_dir``: ``config.json`` first, ``metrics.csv``
row by row, a weight snapshot per LMN checkpoint, ``checkpoint.npz`` while it runs (the
state that begins the last LMN checkpoint step), then the final weights and
``summary.json``. ``train_batched(configs, out_dirs)`` trains configs that differ only in
their seed as one engine (PyTorch stacks them with ``torch.func``); each folder gets what
``train`` would write for it alone, up to the rounding of the batched products. Once
training has ended, each run's progress measures are computed from its snapshots and
written into its ``metrics.csv`` (``training.measures``).

Step ``s`` is measured with the weights after ``s`` updates; a row's train loss and
accuracy come from the forward pass of the update that follows (with mini-batches, from the
whole training set before it). Training on the CPU is deterministic (mini-batches come from
a seeded stream, ``recipe.batch_indices``), and ``resume=True`` continues a killed run from
its checkpoint at step ``s``: its rows and snapshots from ``s`` on are dropped and measured again, so its
``metrics.csv`` ends byte for byte as the uninterrupted run's. Runs whose folders resume
from different steps train as separate groups.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from reference_tasks.analysis.summary import write_run_summary
from reference_tasks.runfolder.folder import check_resumable, rewind_run, start_run
from reference_tasks.runfolder.metrics import MetricsWriter
from reference_tasks.runfolder.run_summary import RunFacts, RunSummary
from reference_tasks.runfolder.schema import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    N_SAMPLES_COLUMN,
    Row,
    lmn_column,
    metric_columns,
    region_column,
)
from reference_tasks.runfolder.weights import Checkpoint, load_checkpoint, save_checkpoint, save_snapshot
from reference_tasks.training.engine import Engine, Evaluation, TrainingData
from reference_tasks.training.measures import measure_run, plan_measures
from reference_tasks.training.recipe import RunOptions, TrainConfig, eval_steps, probes_at

logger = logging.getLogger(__name__)

FRAMEWORKS = ("torch", "keras")


@dataclass(frozen=True)
class RunResult:
    """What training leaves behind: the folder, the summary and the trained model."""

    out_dir: Path
    summary: RunSummary
    model: Any


@dataclass(frozen=True)
class _Start:
    """Where a run starts: afresh (``state`` is ``None``) or from its checkpoint."""

    step: int
    state: dict[str, np.ndarray] | None
    seconds_total: float = 0.0
    seconds_lmn: float = 0.0


def engine_class(framework: str) -> type:
    """The :class:`~reference_tasks.training.engine.Engine` of ``framework`` (imports it).

    Raises
    ------
    ImportError
        If the framework is not installed, naming the extra that installs it.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; choose one of {FRAMEWORKS}")
    try:
        if framework == "torch":
            from reference_tasks.training.torch_engine import TorchEngine

            return TorchEngine
        from reference_tasks.training.keras_engine import KerasEngine

        return KerasEngine
    except ModuleNotFoundError as error:
        raise ImportError(
            f"training in {framework} needs {error.name}, which is not installed: "
            f"pip install 'linear-mapping-number[{framework}]'"
        ) from error


def check_experiment(config: TrainConfig, framework: str = "torch") -> None:
    """Refuse, before training, a run whose task or model breaks the protocol.

    Builds the task's data (labels in range, ...) and its model in ``framework`` on the CPU,
    and cuts the model at each of the config's probes.

    Raises
    ------
    reference_tasks.experiment.ExperimentError
        Naming the task and what is wrong.
    """
    engine_class(framework).check_experiment(config, TrainingData.for_configs([config]))


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    framework: str = "torch",
    options: RunOptions | None = None,
    resume: bool = False,
) -> RunResult:
    """Train one run of ``config`` into ``out_dir`` (created if needed).

    Parameters
    ----------
    config : TrainConfig
        The run.
    out_dir : str or Path
        Its folder.
    framework : {"torch", "keras"}
        Who trains it.
    options : RunOptions
        Device and progress bars; a run may resume under other options.
    resume : bool
        Continue from the folder's checkpoint if it has one (its ``config.json`` must
        describe the same run); otherwise start afresh, replacing the files a previous
        run left there and nothing else.

    Returns
    -------
    RunResult

    Raises
    ------
    ValueError
        If resuming a folder that holds a different run.
    """
    return train_batched([config], [out_dir], framework=framework, options=options, resume=resume)[0]


def train_batched(
    configs: Sequence[TrainConfig],
    out_dirs: Sequence[str | Path],
    *,
    framework: str = "torch",
    options: RunOptions | None = None,
    resume: bool = False,
) -> list[RunResult]:
    """Train runs that differ only in their seed at once, each into its own folder.

    Parameters are those of :func:`train`, one config and folder per run. Keras trains
    one run at a time (a batch of several is trained one after another).

    Returns
    -------
    list of RunResult
        In the order of ``configs``.

    Raises
    ------
    ValueError
        If the configs differ in more than the seed, the folders are not distinct, or a
        folder to resume holds another run (nothing is changed then).
    """
    options = options or RunOptions()
    paths = [Path(out_dir) for out_dir in out_dirs]
    _check_batch(configs, paths)
    engine_type = engine_class(framework)
    check_experiment(configs[0], framework)
    records = [{**engine_type.record(), **_config_record(config)} for config in configs]
    starts = _prepare(paths, records, resume)
    results: dict[int, RunResult] = {}
    for step in sorted({start.step for start in starts}):
        members = [k for k, start in enumerate(starts) if start.step == step]
        groups = [members] if engine_type.batches else [[k] for k in members]
        for group in groups:
            picked = [configs[k] for k in group]
            engine = engine_type(picked, TrainingData.for_configs(picked), options.device)
            done = _Training(engine, picked, [paths[k] for k in group], [starts[k] for k in group], options)
            results.update(zip(group, done.run(), strict=True))
    return [results[k] for k in range(len(configs))]


def _config_record(config: TrainConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields(config)}


def _check_batch(configs: Sequence[TrainConfig], out_dirs: Sequence[Path]) -> None:
    if not configs:
        raise ValueError("train_batched needs at least one config")
    if len(configs) != len(out_dirs):
        raise ValueError(f"got {len(configs)} configs but {len(out_dirs)} output folders")
    if len({path.resolve() for path in out_dirs}) != len(out_dirs):
        raise ValueError("every run of a batch needs its own output folder")
    for config in configs[1:]:
        if replace(config, seed=configs[0].seed) != configs[0]:
            differing = [
                f.name for f in fields(config) if getattr(config, f.name) != getattr(configs[0], f.name)
            ]
            raise ValueError(
                f"the runs of a batch may differ only in their seed; seed {config.seed} differs from "
                f"seed {configs[0].seed} in {sorted(set(differing) - {'seed'})}"
            )


def _prepare(out_dirs: Sequence[Path], records: Sequence[dict[str, Any]], resume: bool) -> list[_Start]:
    """Check every folder first, then start or rewind each; return where each run starts."""
    if resume:
        for out_dir, record in zip(out_dirs, records, strict=True):
            check_resumable(out_dir, record)
    starts = []
    for out_dir, record in zip(out_dirs, records, strict=True):
        if start_run(out_dir, record, resume=resume):
            saved = load_checkpoint(out_dir)
            rewind_run(out_dir, saved.step)
            starts.append(_Start(saved.step, saved.state, saved.seconds_total, saved.seconds_lmn))
            logger.info("%s: resuming from step %d", out_dir, saved.step)
        else:
            starts.append(_Start(0, None))
    return starts


class _Training:
    """The schedule of one group of runs that start from the same step."""

    def __init__(
        self,
        engine: Engine,
        configs: Sequence[TrainConfig],
        out_dirs: Sequence[Path],
        starts: Sequence[_Start],
        options: RunOptions,
    ) -> None:
        self.engine, self.configs, self.out_dirs, self.options = (
            engine,
            list(configs),
            list(out_dirs),
            options,
        )
        self.config = configs[0]
        self.first_step = starts[0].step
        if starts[0].state is not None:
            engine.load_states([start.state for start in starts])
        self.seconds_before = [start.seconds_total for start in starts]
        self.seconds_lmn = [start.seconds_lmn for start in starts]
        self.probes_at = probes_at(self.config)
        self.eval_steps = set(eval_steps(self.config).tolist())
        self.model = engine.data.task.model
        self.regions = self.model.is_piecewise_linear(self.config)
        self.plan = plan_measures(self.config, engine, self.regions)

    def run(self) -> list[RunResult]:
        """Train from the first step to the end; write the final files."""
        started = time.perf_counter()
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.engine.running())
            writers = [
                stack.enter_context(
                    MetricsWriter(
                        out_dir / METRICS_FILE,
                        append=self.first_step > 0,
                        columns=metric_columns(self.regions, self.model.probes, self.plan.columns),
                    )
                )
                for out_dir in self.out_dirs
            ]
            bar = stack.enter_context(self._progress_bar())
            for step in range(self.first_step, self.config.steps + 1):
                rows = self._step(step, time.perf_counter() - started)
                if rows is not None:
                    for writer, row in zip(writers, rows, strict=True):
                        writer.write(row)
                    bar.set_postfix(
                        train_acc=rows[0]["train_acc"], test_acc=rows[0]["test_acc"], refresh=False
                    )
                bar.update(int(step < self.config.steps))
        seconds = time.perf_counter() - started
        return [self._finish(k, seconds) for k in range(len(self.configs))]

    def _progress_bar(self) -> Any:
        from tqdm.auto import tqdm

        seeds = ",".join(str(config.seed) for config in self.configs)
        label = f"seed{'s' if len(self.configs) > 1 else ''} {seeds}"
        return tqdm(
            total=self.config.steps,
            initial=self.first_step,
            disable=not self.options.progress,
            desc=f"{self.engine.framework} {self.config.task} {label}",
        )

    def _step(self, step: int, seconds: float) -> list[Row] | None:
        """Everything that happens at ``step``; the metrics rows if it is evaluated."""
        evaluate = step in self.eval_steps
        if evaluate:
            test, l2 = self.engine.evaluate("test"), self.engine.l2_norms()
        lmn_values: list[Row] = [{} for _ in self.configs]
        if step in self.probes_at:
            self._checkpoint(step, seconds)
            if step == self.options.pause_at_step and step != self.first_step:
                logger.warning("paused at step %d until this process is killed (pause_at_step)", step)
                threading.Event().wait()
            lmn_values = self._measure_lmn(self.probes_at[step])
        last = step == self.config.steps
        if last or (evaluate and self.config.batch_size is not None):  # a mini-batch is not the train set
            train = self.engine.evaluate("train")
            if not last:
                self.engine.update(step, False)
        else:
            train = self.engine.update(step, evaluate)
        if train is None:
            return None
        return [{**self._row(step, k, train, test, l2), **lmn_values[k]} for k in range(len(self.configs))]

    def _row(self, step: int, k: int, train: Evaluation, test: Evaluation, l2: np.ndarray) -> Row:
        n_train, n_test = self.engine.data.train_labels.shape[1], self.engine.data.test_labels.shape[1]
        return {
            "step": step,
            "train_loss": float(train.loss[k]),
            "test_loss": float(test.loss[k]),
            "train_acc": int(train.correct[k]) / n_train,
            "test_acc": int(test.correct[k]) / n_test,
            "l2_norm": float(l2[k]),
        }

    def _checkpoint(self, step: int, seconds: float) -> None:
        """Each run's snapshot, then its resume checkpoint: the state that begins ``step``."""
        for k, out_dir in enumerate(self.out_dirs):
            save_snapshot(out_dir, step, self.engine.weights(k))
            save_checkpoint(
                out_dir,
                Checkpoint(step, self.engine.state(k), self.seconds_before[k] + seconds, self.seconds_lmn[k]),
            )

    def _measure_lmn(self, probes: tuple[str, ...]) -> list[Row]:
        values: list[Row] = []
        for k in range(len(self.configs)):
            started = time.perf_counter()
            results = self.engine.lmn(k, probes, self.config.lmn_points, self.options.progress)
            row: Row = {lmn_column(probe): result.lmn for probe, result in results.items()}
            row[N_SAMPLES_COLUMN] = len(self.engine.data.lmn_inputs[k])
            values.append(row)
            self.seconds_lmn[k] += time.perf_counter() - started
            if self.regions:
                row.update(self._region_values(k, probes))
        return values

    def _region_values(self, k: int, probes: tuple[str, ...]) -> Row:
        """A piecewise-linear model's linear regions at each probe (docs/design.md, section 1.6)."""
        values: Row = {}
        for probe, summary in self.engine.regions(k, probes, self.options.progress).items():
            values[region_column("regions", probe)] = summary.n_regions
            values[region_column("region_perplexity", probe)] = summary.region_perplexity
            values[region_column("pieces_mean", probe)] = summary.pieces_mean
            values[region_column("pieces_median", probe)] = summary.pieces_median
        return values

    def _finish(self, k: int, seconds: float) -> RunResult:
        out_dir, config = self.out_dirs[k], self.configs[k]
        model = self.engine.save(k, out_dir)
        measure_run(self.plan, config, self.engine, k, out_dir, progress=self.options.progress)
        facts = RunFacts(
            task_options=dict(config.task_options),
            dtype=config.dtype,
            n_train=int(self.engine.data.train_labels.shape[1]),
            n_test=int(self.engine.data.test_labels.shape[1]),
            lmn_checkpoints=len(self.probes_at),
            seconds_total=self.seconds_before[k] + seconds,
            seconds_lmn=self.seconds_lmn[k],
            batched_runs=len(self.configs),
        )
        summary = write_run_summary(out_dir, framework=self.engine.framework, facts=facts)
        (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
        return RunResult(out_dir, summary, model)
