"""Progress measures beside the LMN in every monitor and callback, written once and framework-free.

Every monitor and callback takes ``measures=[...]`` (docs/design.md, section 6.1): built-in
names, ``module:function``, ``path/to/file.py:function`` or entry points of ``lmn.measures``,
resolved by :func:`lmn_core.measure_registry.select_measures` against what a monitor supplies
(:data:`MONITOR_SUPPLIES`: never labels nor ``task:`` inputs). :class:`MonitorMeasures`
computes them at a checkpoint from what the framework hands it: a getter of the parameters
as NumPy arrays, the samples, and one :class:`adapters.layer.LayerProbe` per layer (the
representations, the head's pre-activations, its piecewise-linear form, and the model's
outputs). The values are keyed by :meth:`lmn_core.Measure.column` (``effective_rank_hidden1``,
``weight_movement``); :func:`adapters.schedule.measure_logger_key` gives a trainer logger's key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

import lmn_core
from adapters.schedule import N_SAMPLES_KEY, lmn_key
from lmn_core.measure_registry import select_measures
from lmn_core.progress import PROBE_NEEDS, Measure, MeasureError, compute_measure, measure_columns

#: What a monitor supplies a measure: the parameters now and when it began, the samples, the
#: model's outputs on them, and at each probe what the probe gives (where its head gives it).
MONITOR_SUPPLIES = frozenset({"weights", "initial_weights", "samples", "outputs", *PROBE_NEEDS})

Weights = Callable[[], Mapping[str, np.ndarray]]


class Probe(Protocol):
    """What a layer gives the measures (:class:`adapters.layer.LayerProbe`)."""

    supplies: frozenset[str]

    def measure_inputs(self, inputs: Any, *, step: int | None = None) -> lmn_core.MeasureInputs: ...

    def outputs(self, inputs: Any) -> np.ndarray: ...


def selected_measures(names: Sequence[str] | None) -> list[Measure]:
    """The measures ``names`` stand for (none for ``None``), refused when a monitor cannot supply them.

    Raises
    ------
    lmn_core.MeasureError
        Naming an unknown measure or one that needs what a monitor does not supply (labels,
        ``task:`` inputs).
    """
    return [] if names is None else select_measures(names, MONITOR_SUPPLIES)


def snapshot(weights: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A copy of ``weights`` as float64 arrays, which later training does not change."""
    return {name: np.array(value, dtype=np.float64, copy=True) for name, value in weights.items()}


class MonitorMeasures:
    """The selected measures of one monitor at its probes: one value per column at a checkpoint.

    Parameters
    ----------
    measures : sequence of lmn_core.Measure
        As :func:`selected_measures` gives them.
    probes : mapping of str to Probe
        One probe per layer, in the monitor's order of layers.
    weights : callable
        ``() -> {name: array}``: the parameters now. They are read once here: the initial
        weights of ``weight_movement`` are those at this object's making.
    samples : numpy.ndarray
        The samples' inputs the monitor measures on.

    Raises
    ------
    lmn_core.MeasureError
        A per-probe measure whose needs a layer's head does not meet, naming both.
    """

    def __init__(
        self, measures: Sequence[Measure], probes: Mapping[str, Probe], weights: Weights, samples: Any
    ) -> None:
        self.measures, self.probes, self.weights, self.samples = (
            list(measures),
            dict(probes),
            weights,
            samples,
        )
        for measure in self.measures:
            for layer, probe in self.probes.items() if measure.per_probe else ():
                missing = measure.missing(probe.supplies | (MONITOR_SUPPLIES - PROBE_NEEDS))
                if missing:
                    raise MeasureError(
                        f"measure {measure.name!r} needs {missing} at layer {layer!r}, which the head "
                        f"after it does not give (it gives {sorted(probe.supplies)})"
                    )
        self.needs = frozenset().union(*(measure.needs for measure in self.measures))
        self.initial_weights = snapshot(weights()) if "initial_weights" in self.needs else None
        self.columns = measure_columns(self.measures, list(self.probes))
        self._refuse_clashes()

    def _refuse_clashes(self) -> None:
        """Refuse a column that is a key logged already or a layer (whose logger key is ``lmn/<layer>``)."""
        taken = {"step", N_SAMPLES_KEY, *self.probes, *(lmn_key(layer) for layer in self.probes)}
        clashes = sorted(set(self.columns) & taken)
        if clashes:
            raise MeasureError(
                f"the measures' columns {clashes} clash with the LMN's keys or the layers' names "
                f"({sorted(taken)}): rename the measure"
            )

    def values(self, inputs: Any, step: int | None = None) -> dict[str, float]:
        """``{column: value}`` of every measure at the checkpoint ``step``, on ``inputs``."""
        if not self.measures:
            return {}
        needs = self.needs
        checkpoint = lmn_core.MeasureInputs(
            step=step,
            weights=self.weights() if "weights" in needs else None,
            initial_weights=self.initial_weights,
            samples=self.samples if "samples" in needs else None,
            outputs=next(iter(self.probes.values())).outputs(inputs) if "outputs" in needs else None,
        )
        at_probe: dict[str, lmn_core.MeasureInputs] = {}
        values = {}
        for measure in self.measures:
            if not measure.per_probe:
                values[measure.column()] = compute_measure(measure, checkpoint)
                continue
            for layer, probe in self.probes.items():
                if layer not in at_probe:
                    given = probe.measure_inputs(inputs, step=step)
                    at_probe[layer] = dataclasses.replace(
                        checkpoint,
                        probe=layer,
                        **{need: getattr(given, need) for need in PROBE_NEEDS},
                    )
                values[measure.column(layer)] = compute_measure(measure, at_probe[layer])
        return values
