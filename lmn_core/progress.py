"""Progress measures as an open protocol (docs/design.md, section 6.1).

A :class:`Measure` has a name, says what it needs (:data:`NEEDS`, and task-specific inputs as
``"task:<key>"``), and computes one number from a :class:`MeasureInputs` per checkpoint, and
per probe where it needs what a probe gives (the representations, the head's pre-activations,
the piecewise-linear head). :func:`compute_measure` runs one and refuses, naming the measure,
what it needs and the run did not supply, and a value that is not one finite number. The
built-in measures are in :mod:`lmn_core.progress_builtin`; the registry (entry points
``lmn.measures``, ``module:function``, ``path/to/file.py:function``) in
:mod:`lmn_core.measure_registry`.

Nothing here imports a framework: a trainer or an adapter converts what it has to NumPy
arrays and plain callables first.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

#: What a measure can need, beside ``"task:<key>"`` (a key of :attr:`MeasureInputs.task`).
NEEDS = {
    "weights": "the parameters now: a mapping of names to arrays",
    "initial_weights": "the parameters at initialisation, with the same names",
    "representations": "the (N, d) representations at a probe",
    "pre_activations": "a callable: points (M, d) at a probe -> the pre-activations of the head's layers",
    "pwl_head": "the head after a probe as an lmn_core.PiecewiseLinearHead (ReLU-like heads only)",
    "samples": "the task's samples (N, ...)",
    "labels": "the task's labels (N,)",
    "outputs": "the network's outputs (logits) on the task's samples (N, C)",
}
#: The needs that make a measure one number per probe rather than per checkpoint.
PROBE_NEEDS = frozenset({"representations", "pre_activations", "pwl_head"})
TASK_PREFIX = "task:"


class MeasureError(ValueError):
    """A measure cannot be selected or computed; the message names the measure."""


@dataclass(frozen=True, eq=False)
class MeasureInputs:
    """What a run hands a measure at one checkpoint (and probe); ``None``: not supplied.

    Attributes
    ----------
    step : int or None
        The training step of the checkpoint.
    probe : str or None
        The probe, for the inputs that belong to one.
    weights, initial_weights : mapping of str to numpy.ndarray, optional
    representations : numpy.ndarray, optional
    pre_activations : callable, optional
    pwl_head : lmn_core.PiecewiseLinearHead, optional
    samples, labels, outputs : numpy.ndarray, optional
    task : mapping
        Task-specific inputs by key (``"modulus"``, ``"key_frequencies"``, ...).
    """

    step: int | None = None
    probe: str | None = None
    weights: Mapping[str, Any] | None = None
    initial_weights: Mapping[str, Any] | None = None
    representations: Any = None
    pre_activations: Callable[[np.ndarray], Any] | None = None
    pwl_head: Any = None
    samples: Any = None
    labels: Any = None
    outputs: Any = None
    task: Mapping[str, Any] = field(default_factory=dict)

    def supplies(self) -> frozenset[str]:
        """The needs these inputs meet (:data:`NEEDS` and ``"task:<key>"``)."""
        given = {f.name for f in fields(self) if f.name in NEEDS and getattr(self, f.name) is not None}
        return frozenset(given | {TASK_PREFIX + key for key in self.task})


def checked_needs(name: str, needs: Iterable[str]) -> frozenset[str]:
    """``needs`` as a frozenset, each a known need or ``"task:<key>"``, or a :class:`MeasureError`."""
    if isinstance(needs, str):
        raise MeasureError(f"measure {name!r}: needs must be a collection of names, got the string {needs!r}")
    needs = frozenset(needs)
    unknown = sorted(n for n in needs if n not in NEEDS and not (n.startswith(TASK_PREFIX) and len(n) > 5))
    if unknown:
        raise MeasureError(
            f"measure {name!r} needs {unknown}, which no run supplies: a need is one of "
            f"{sorted(NEEDS)} or 'task:<key>'"
        )
    return needs


@dataclass(frozen=True, eq=False)
class Measure:
    """A progress measure: ``compute(inputs) -> float``, given what it ``needs``.

    Attributes
    ----------
    name : str
        The column it is logged under (``<name>_<probe>`` for a per-probe measure).
    compute : callable
        ``MeasureInputs -> float``.
    needs : frozenset of str
        Keys of :data:`NEEDS` and ``"task:<key>"``.
    description : str
        One line for tables and ``--help``.
    """

    name: str
    compute: Callable[[MeasureInputs], Any]
    needs: frozenset[str]
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise MeasureError(
                f"a measure's name must be an identifier (it names a column), got {self.name!r}"
            )
        if not callable(self.compute):
            raise MeasureError(
                f"measure {self.name!r}: compute must be callable, got {type(self.compute).__name__}"
            )
        object.__setattr__(self, "needs", checked_needs(self.name, self.needs))

    @property
    def per_probe(self) -> bool:
        """Whether it gives one number per probe (it needs what a probe gives)."""
        return bool(self.needs & PROBE_NEEDS)

    def column(self, probe: str | None = None) -> str:
        """The column (and logged key) of its value: ``name``, or ``name_<probe>`` per probe.

        Raises
        ------
        MeasureError
            For a per-probe measure without a probe.
        """
        if not self.per_probe:
            return self.name
        if not probe:
            raise MeasureError(f"measure {self.name!r} gives one number per probe: name the probe")
        return f"{self.name}_{probe}"

    def missing(self, supplied: Iterable[str]) -> list[str]:
        """What it needs beyond ``supplied``, sorted."""
        return sorted(self.needs - frozenset(supplied))


def measure_columns(measures: Iterable[Measure], probes: Iterable[str]) -> list[str]:
    """The columns of ``measures`` in order: ``name_<probe>`` for each of ``probes`` for a
    per-probe measure, ``name`` for the others (:meth:`Measure.column`)."""
    probes = list(probes)
    return [
        column
        for measure in measures
        for column in (
            [measure.column(probe) for probe in probes] if measure.per_probe else [measure.column()]
        )
    ]


def progress_measure(
    needs: Iterable[str], *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[[MeasureInputs], Any]], Measure]:
    """Decorator: a function ``MeasureInputs -> float`` becomes a :class:`Measure`.

    The name defaults to the function's, the description to its docstring's first line.
    """

    def wrap(function: Callable[[MeasureInputs], Any]) -> Measure:
        doc = (function.__doc__ or "").strip().splitlines()
        return Measure(
            name or function.__name__,
            function,
            frozenset(needs) if not isinstance(needs, str) else needs,  # a string is refused by Measure
            description if description is not None else (doc[0] if doc else ""),
        )

    return wrap


def _scalar(measure: Measure, value: Any) -> float:
    array = np.asarray(value)
    if array.ndim != 0 or not isinstance(array.item(), numbers.Real) or isinstance(array.item(), bool):
        raise MeasureError(
            f"measure {measure.name!r} returned {type(value).__name__} of shape {array.shape}: "
            "a measure returns one real number"
        )
    result = float(array.item())
    if not math.isfinite(result):
        raise MeasureError(f"measure {measure.name!r} returned {result} (not finite)")
    return result


def compute_measure(measure: Measure, inputs: MeasureInputs) -> float:
    """``measure.compute(inputs)`` as a finite float, or a :class:`MeasureError` naming the measure.

    Refused before the call when ``inputs`` lacks something the measure needs; an exception
    raised inside the measure comes back as a :class:`MeasureError` with it chained.
    """
    missing = measure.missing(inputs.supplies())
    if missing:
        where = f" at probe {inputs.probe!r}" if inputs.probe else ""
        raise MeasureError(f"measure {measure.name!r} needs {missing}, which the run did not supply{where}")
    try:
        value = measure.compute(inputs)
    except MeasureError:
        raise
    except Exception as error:
        raise MeasureError(f"measure {measure.name!r} raised {type(error).__name__}: {error}") from error
    return _scalar(measure, value)
