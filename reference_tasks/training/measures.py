"""The progress measures of a run (docs/design.md, section 6), from its snapshots, once it has ended.

A run's measures are chosen before it trains (:func:`plan_measures`: its config's
``measures``, or every measure whose needs it can supply) and their columns join
``metrics.csv`` then, empty. When training has ended, :func:`measure_run` reads each LMN
checkpoint's snapshot back into the engine and fills them: the measures of the whole network
at every checkpoint, a probe's measures where the LMN at that probe was measured. One pass
after training, because some measures need what only the end knows (the key frequencies of
modular addition are the final embedding's); ``lmn measure`` runs the same pass on a
finished run folder, to add a measure to runs already trained.

What a run supplies: ``weights`` (the snapshot), ``initial_weights`` (the snapshot of step
0), ``samples``, ``labels`` and ``outputs`` (every sample of the task, the model's logits on
them), at each probe what :class:`adapters.layer.LayerProbe` gives on the LMN's ``N`` samples
(representations, the head's pre-activations, its piecewise-linear form), and the task's own
inputs (``Task.measure_inputs``). The measure ``l2`` is the ``l2_norm`` column and
``pieces_mean`` the region column of that name, which the run records anyway: neither is
written twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmn_core import Measure, MeasureInputs, compute_measure
from lmn_core.measure_registry import select_measures
from reference_tasks.experiment.measure_inputs import MeasureContext
from reference_tasks.runfolder.metrics import write_measures
from reference_tasks.runfolder.schema import METRICS_FILE, Row
from reference_tasks.runfolder.weights import load_snapshot, snapshot_steps
from reference_tasks.tasks import train_test_split
from reference_tasks.training.engine import Engine
from reference_tasks.training.recipe import TrainConfig, probes_at

RUN_NEEDS = frozenset({"weights", "samples", "labels", "outputs"})


@dataclass(frozen=True)
class MeasurePlan:
    """The measures of a run and, for each per-probe measure, the probes that supply its needs."""

    measures: tuple[Measure, ...]
    probes: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def probes_of(self, measure: Measure) -> tuple[str, ...]:
        """The probes ``measure`` is written at (none for a whole-network measure)."""
        return self.probes.get(measure.name, ()) if measure.per_probe else ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Their ``metrics.csv`` columns, in order."""
        return tuple(
            column
            for measure in self.measures
            for column in (
                [measure.column(p) for p in self.probes_of(measure)]
                if measure.per_probe
                else [measure.column()]
            )
        )


def _task_inputs(config: TrainConfig, engine: Engine, weights: Mapping, final: Mapping) -> dict[str, Any]:
    provider = engine.data.task.measure_inputs
    if provider is None:
        return {}
    samples = engine.data.samples
    train, _ = train_test_split(samples.n_samples, train_fraction=config.train_fraction, seed=config.seed)
    mask = np.zeros(samples.n_samples, dtype=bool)
    mask[train] = True
    options = {**engine.data.task.options, **config.task_options}
    return dict(provider(MeasureContext(samples, options, weights, final, mask)))


def supplied_needs(config: TrainConfig, engine: Engine) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """What ``engine``'s run 0 can supply the measures (``lmn_core.progress.NEEDS`` and
    ``task:<key>``): the needs met at every checkpoint, and those each probe adds."""
    needs = set(RUN_NEEDS)
    if 0 in probes_at(config):
        needs.add("initial_weights")
    weights = engine.weights(0)
    needs |= {f"task:{key}" for key in _task_inputs(config, engine, weights, weights)}
    at_probes = {probe: engine.probe_inputs(0, probe).supplies() for probe in config.probes}
    return frozenset(needs), at_probes


def plan_measures(config: TrainConfig, engine: Engine, regions: bool) -> MeasurePlan:
    """The measures a run of ``config`` writes (``config.measures``, ``None``: all it can supply);
    a per-probe measure is written at the probes whose head supplies its needs.

    Raises
    ------
    lmn_core.MeasureError
        Naming a measure that is unknown, cannot be loaded, or needs what the run cannot supply.
    """
    if config.measures == () or not config.probes:
        return MeasurePlan(())
    needs, at_probes = supplied_needs(config, engine)
    chosen = select_measures(config.measures, needs.union(*at_probes.values()))
    kept = tuple(m for m in chosen if not _recorded_elsewhere(m, regions))
    probes = {
        m.name: tuple(p for p, given in at_probes.items() if not m.missing(needs | given))
        for m in kept
        if m.per_probe
    }
    return MeasurePlan(kept, probes)


def _recorded_elsewhere(measure: Measure, regions: bool) -> bool:
    """Whether a run records the measure under a column of its own already: ``l2`` as
    ``l2_norm`` (every evaluated step), ``pieces_mean`` as the region column ``pieces_mean_<probe>``."""
    return measure.name == "l2" or (measure.name == "pieces_mean" and regions)


def _checkpoint_inputs(
    config: TrainConfig, engine: Engine, run: int, context: dict[str, Any]
) -> MeasureInputs:
    weights = context["weights"]
    engine.load_weights(run, weights)
    return MeasureInputs(
        step=context["step"],
        weights=weights,
        initial_weights=context["initial"],
        samples=engine.data.all_inputs,
        labels=np.asarray(engine.data.samples.labels),
        outputs=engine.outputs(run) if context["outputs"] else None,
        task=_task_inputs(config, engine, weights, context["final"]),
    )


def measure_checkpoint(
    plan: MeasurePlan, config: TrainConfig, engine: Engine, run: int, context: dict[str, Any]
) -> Row:
    """Every measure of ``plan`` at one checkpoint (``context``: its step, weights, the initial and
    final weights, whether outputs are needed); the probe's measures at the probes measured there."""
    inputs = _checkpoint_inputs(config, engine, run, context)
    row: Row = {}
    for measure in plan.measures:
        if not measure.per_probe:
            row[measure.column()] = compute_measure(measure, inputs)
    per_probe = [measure for measure in plan.measures if measure.per_probe]
    for probe in probes_at(config)[context["step"]] if per_probe else ():
        part = engine.probe_inputs(run, probe)
        at_probe = dataclasses.replace(
            inputs,
            probe=probe,
            representations=part.representations,
            pre_activations=part.pre_activations,
            pwl_head=part.pwl_head,
        )
        for measure in per_probe:
            if probe in plan.probes_of(measure):
                row[measure.column(probe)] = compute_measure(measure, at_probe)
    return row


def measure_run(
    plan: MeasurePlan, config: TrainConfig, engine: Engine, run: int, out_dir: Path, *, progress: bool = False
) -> None:
    """Fill ``out_dir``'s measure columns from its snapshots at every LMN checkpoint (see the module).

    The engine's run ``run`` holds the same weights after as before.

    Raises
    ------
    FileNotFoundError
        If a checkpoint's snapshot is missing from the folder (its steps are listed).
    """
    if not plan.measures:
        return
    checkpoints = sorted(probes_at(config))
    kept = set(snapshot_steps(out_dir))
    missing = [step for step in checkpoints if step not in kept]
    if missing:
        raise FileNotFoundError(
            f"{out_dir}: the progress measures need the snapshot of every LMN checkpoint; "
            f"steps {missing[:5]}{' ...' if len(missing) > 5 else ''} have none"
        )
    from tqdm.auto import tqdm

    final = load_snapshot(out_dir, checkpoints[-1])
    initial = load_snapshot(out_dir, 0) if 0 in kept else None
    outputs = any("outputs" in measure.needs for measure in plan.measures)
    values: dict[int, Row] = {}
    weights_now = engine.weights(run)
    for step in tqdm(checkpoints, desc=f"measures {out_dir.name}", disable=not progress, leave=False):
        context = {"step": step, "weights": load_snapshot(out_dir, step), "initial": initial}
        context.update(final=final, outputs=outputs)
        values[step] = measure_checkpoint(plan, config, engine, run, context)
    engine.load_weights(run, weights_now)
    write_measures(out_dir / METRICS_FILE, plan.columns, values)
