"""The summary of a run, typed: :class:`RunSummary`, whose serialization is ``summary.json``.

One record holds what the analysis reads off a run's ``metrics.csv`` (its phases, the
headline probe's LMN at the phase points, the lines of LMN and of the L2 norm against test
loss, the rebound, the linear regions of a piecewise-linear run) and the run's facts that
``metrics.csv`` does not hold (:class:`RunFacts`: sizes, timings). Every key of
``summary.json`` is spelled in this module and nowhere else: readers use the fields. A
``summary.json`` written before a key existed reads with that entry ``None``; one written
before the headline LMN's keys were ``lmn_headline_*`` reads from its ``lmn_hidden1_*`` keys.

Which summary is the truth: ``metrics.csv`` is. ``summary.json`` is the summary computed
from it when the run ended (its presence marks a run finished), and every reader takes
a finished run's summary from :func:`reference_tasks.analysis.summary.run_summary`,
which computes it again from ``metrics.csv`` and keeps only the facts of
``summary.json``: an analysis added since a run trained applies to it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Where the headline probe's LMN is read off a run: the first checkpoint at or after each.
PHASE_POINTS = ("init", "memorization", "generalization", "end")
#: The quantities fitted against test loss over the generalizing phase.
FITTED = ("lmn", "l2")
#: The two ends of a rebound: its trough, then its peak.
REBOUND_ENDS = ("min", "max")
# The prefix of the headline LMN's keys (``lmn_headline_<point>``, ...), at the run's ``headline_probe``.
_LMN_KEY_PREFIX = "lmn_headline"
# Their prefix in a ``summary.json`` written before ``headline_probe`` was recorded (the reference
# MLP's headline column, whatever the run's headline probe): read, never written.
_LEGACY_LMN_KEY_PREFIX = "lmn_hidden1"


@dataclass(frozen=True)
class LineFit:
    """A least-squares line ``y = slope * x + intercept`` and its coefficient of determination."""

    slope: float
    intercept: float
    r2: float


@dataclass(frozen=True)
class RunFacts:
    """What a run's ``metrics.csv`` does not hold: its task's options, dtype, sizes and timings."""

    task_options: Mapping[str, int] = field(default_factory=dict)
    dtype: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    lmn_checkpoints: int | None = None
    seconds_total: float | None = None
    seconds_lmn: float | None = None
    batched_runs: int | None = None


def _none_at(names: tuple[str, ...]) -> dict[str, Any]:
    return dict.fromkeys(names)


@dataclass(frozen=True)
class RunSummary:
    """The summary of one run (docs/design.md, section 2.4 for the phases, 2.5 for the claims).

    Attributes
    ----------
    task, framework, seed, steps
        Which run.
    headline_probe
        The probe whose LMN the phase points, fits and rebound read (``None``: a summary
        written before it was recorded).
    memorization_step, generalization_step
        The first step with 100% train, resp. test, accuracy (``None``: never).
    max_test_acc, final_train_acc, final_test_acc
        Accuracies.
    lmn_n_samples
        ``N`` of the LMN.
    train_acc_min_after_memorization, unstable_step
        The lowest train accuracy after memorization, and the first step below 100% then.
    lmn, lmn_steps
        The headline probe's LMN at each of :data:`PHASE_POINTS`, and the steps read at.
    pearson, pearson_n_points
        Pearson r of the LMN, resp. the L2 norm (:data:`FITTED`), against test loss over
        the generalizing phase, and the number of rows it is taken over.
    fits
        The least-squares line of each of :data:`FITTED` against test loss (``None``: none).
    rebound, rebound_steps
        The LMN's largest rise after generalization: its trough and peak
        (:data:`REBOUND_ENDS`) and their steps; all ``None`` without one.
    regions
        For a piecewise-linear run, the region summary of each probe
        (:func:`reference_tasks.analysis.regions.region_summary`); ``None`` otherwise.
    facts
        :class:`RunFacts`.
    """

    task: str
    framework: str
    seed: int
    steps: int
    headline_probe: str | None = None
    memorization_step: int | None = None
    generalization_step: int | None = None
    max_test_acc: float | None = None
    final_train_acc: float | None = None
    final_test_acc: float | None = None
    lmn_n_samples: int | None = None
    train_acc_min_after_memorization: float | None = None
    unstable_step: int | None = None
    lmn: Mapping[str, float | None] = field(default_factory=lambda: _none_at(PHASE_POINTS))
    lmn_steps: Mapping[str, int | None] = field(default_factory=lambda: _none_at(PHASE_POINTS))
    pearson: Mapping[str, float | None] = field(default_factory=lambda: _none_at(FITTED))
    pearson_n_points: int | None = None
    fits: Mapping[str, LineFit | None] = field(default_factory=lambda: _none_at(FITTED))
    rebound: Mapping[str, float | None] = field(default_factory=lambda: _none_at(REBOUND_ENDS))
    rebound_steps: Mapping[str, int | None] = field(default_factory=lambda: _none_at(REBOUND_ENDS))
    regions: Mapping[str, Any] | None = None
    facts: RunFacts = field(default_factory=RunFacts)

    @property
    def grokked(self) -> bool:
        """Whether the run generalized (reached 100% test accuracy)."""
        return self.generalization_step is not None

    def fit_r2(self, name: str) -> float | None:
        """The R² of the line of ``name`` (one of :data:`FITTED`) against test loss, if any."""
        fit = self.fits.get(name)
        return None if fit is None else fit.r2

    def lmn_ratio(self, top: str, bottom: str) -> float | None:
        """The LMN at phase point ``top`` over the LMN at ``bottom`` (``None`` if either is missing)."""
        high, low = self.lmn.get(top), self.lmn.get(bottom)
        return None if high is None or low is None or low == 0 else high / low

    def with_facts(self, facts: RunFacts) -> RunSummary:
        """This summary with other :class:`RunFacts`."""
        return dataclasses.replace(self, facts=facts)

    def to_json(self) -> dict[str, Any]:
        """``summary.json``'s record (its keys, in its order)."""
        record: dict[str, Any] = {name: getattr(self, name) for name in _PLAIN_FIELDS}
        record.update({_lmn_key(point): self.lmn.get(point) for point in PHASE_POINTS})
        record[_lmn_key("steps")] = dict(self.lmn_steps)
        record.update({_pearson_key(name): self.pearson.get(name) for name in FITTED})
        record["pearson_n_points"] = self.pearson_n_points
        for name in FITTED:
            fit = self.fits.get(name)
            record[_fit_key(name)] = None if fit is None else dataclasses.asdict(fit)
        record.update({_lmn_key(f"rebound_{end}"): self.rebound.get(end) for end in REBOUND_ENDS})
        record[_lmn_key("rebound_steps")] = dict(self.rebound_steps)
        if self.regions is not None:
            record[REGIONS_KEY] = self.regions
        record.update(dataclasses.asdict(self.facts))
        return record

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> RunSummary:
        """A summary from ``summary.json``'s record (a key it lacks reads as ``None``)."""
        fits = {name: record.get(_fit_key(name)) for name in FITTED}
        facts = {f.name: record[f.name] for f in dataclasses.fields(RunFacts) if f.name in record}
        return cls(
            **{name: record.get(name) for name in _PLAIN_FIELDS},
            lmn={point: _read_lmn(record, point) for point in PHASE_POINTS},
            lmn_steps=_points(_read_lmn(record, "steps"), PHASE_POINTS),
            pearson={name: record.get(_pearson_key(name)) for name in FITTED},
            pearson_n_points=record.get("pearson_n_points"),
            fits={name: None if fit is None else LineFit(**fit) for name, fit in fits.items()},
            rebound={end: _read_lmn(record, f"rebound_{end}") for end in REBOUND_ENDS},
            rebound_steps=_points(_read_lmn(record, "rebound_steps"), REBOUND_ENDS),
            regions=record.get(REGIONS_KEY),
            facts=RunFacts(**facts),
        )

    def csv_row(self) -> dict[str, Any]:
        """The results of a sweep's ``summary.csv`` row (:data:`CSV_COLUMNS`)."""
        row: dict[str, Any] = {name: getattr(self, name) for name in _CSV_PLAIN}
        row.update({_lmn_key(point): self.lmn.get(point) for point in PHASE_POINTS})
        row.update({_r2_key(name): self.fit_r2(name) for name in FITTED})
        return row


REGIONS_KEY = "regions"
_PLAIN_FIELDS = (
    "task",
    "framework",
    "seed",
    "steps",
    "headline_probe",
    "memorization_step",
    "generalization_step",
    "max_test_acc",
    "final_train_acc",
    "final_test_acc",
    "lmn_n_samples",
    "train_acc_min_after_memorization",
    "unstable_step",
)
_CSV_PLAIN = ("memorization_step", "generalization_step", "max_test_acc", "headline_probe")


def _lmn_key(name: str) -> str:
    """The key of the headline LMN's ``name`` (a phase point, ``steps``, ``rebound_min``, ...)."""
    return f"{_LMN_KEY_PREFIX}_{name}"


def _read_lmn(record: Mapping[str, Any], name: str) -> Any:
    """The headline LMN's ``name`` in a ``summary.json`` record, under its legacy key if it has
    only that (``None`` under neither)."""
    key = _lmn_key(name)
    return record[key] if key in record else record.get(f"{_LEGACY_LMN_KEY_PREFIX}_{name}")


def _pearson_key(name: str) -> str:
    return f"pearson_{name}_test_loss"


def _r2_key(name: str) -> str:
    return f"r2_{name}_test_loss"


def _fit_key(name: str) -> str:
    return f"linear_fit_{name}_test_loss"


def _points(values: Mapping[str, Any] | None, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: (values or {}).get(name) for name in names}


#: The results columns of a sweep's ``summary.csv`` (:meth:`RunSummary.csv_row`).
CSV_COLUMNS = (
    *_CSV_PLAIN,
    *(_lmn_key(point) for point in PHASE_POINTS),
    *(_r2_key(name) for name in FITTED),
)


@dataclass(frozen=True)
class Quantity:
    """One number of a run's summary that a report averages over seeds.

    Attributes
    ----------
    key : str
        Its name in the report's tables.
    description : str
        What it is, for a reader.
    read : callable
        Reads it off a :class:`RunSummary` (``None`` where the run has none).
    spec : str
        Its format.
    """

    key: str
    description: str
    read: Callable[[RunSummary], Any]
    spec: str


def _plain(name: str, description: str, spec: str) -> Quantity:
    return Quantity(name, description, lambda summary: getattr(summary, name), spec)


#: The numbers of a run summary the report's tables average over seeds, in their order.
TABLE_QUANTITIES = (
    _plain("memorization_step", "memorization step (train acc at the criterion)", ".0f"),
    _plain("generalization_step", "generalization step (test acc at the criterion)", ".0f"),
    _plain("max_test_acc", "max test accuracy", ".4f"),
    _plain("lmn_n_samples", "N of the LMN", ".0f"),
    *(
        Quantity(_lmn_key(point), f"LMN (headline probe) at {label}", lambda s, p=point: s.lmn[p], ".2f")
        for point, label in zip(
            PHASE_POINTS, ("initialization", "memorization", "generalization", "the last step"), strict=True
        )
    ),
    _plain("pearson_n_points", "checkpoints in the generalizing phase", ".0f"),
    Quantity(_pearson_key("lmn"), "Pearson r, LMN vs test loss", lambda s: s.pearson["lmn"], ".3f"),
    Quantity(_r2_key("lmn"), "linear-fit R², LMN vs test loss", lambda s: s.fit_r2("lmn"), ".3f"),
    Quantity(_pearson_key("l2"), "Pearson r, L2 norm vs test loss", lambda s: s.pearson["l2"], ".3f"),
    Quantity(_r2_key("l2"), "linear-fit R², L2 norm vs test loss", lambda s: s.fit_r2("l2"), ".3f"),
    Quantity("rebound_min_step", "LMN rebound: step of the minimum", lambda s: s.rebound_steps["min"], ".0f"),
    Quantity("rebound_min", "LMN rebound: minimum", lambda s: s.rebound["min"], ".2f"),
    Quantity("rebound_max_step", "LMN rebound: step of the maximum", lambda s: s.rebound_steps["max"], ".0f"),
    Quantity("rebound_max", "LMN rebound: maximum", lambda s: s.rebound["max"], ".2f"),
)
