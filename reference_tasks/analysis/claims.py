"""The paper's claims over a population of seeds, from the runs' summaries alone.

:func:`population_claims` takes the ``summary.json`` of every seed of one task (one
framework, one recipe) and answers, with numbers, what the paper states for that task:
how many seeds grok and when (beside the paper's steps), how much the LMN rises while
memorizing and falls while generalizing, whether LMN is more linear in test loss than
the L2 norm (the paired difference of their R² over seeds, with a bootstrap interval
and a Wilcoxon signed-rank test, :func:`paired_difference`), how many seeds show the XOR
rebound, and how many blow up after memorization. :func:`claim_sentence` says in one
plain sentence whether the R² claim holds. For piecewise-linear runs, :func:`region_claims`
takes each seed's correlation over training of the LMN with its exact region counts
(``reference_tasks.analysis.regions``) over the seeds in the same way.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from reference_tasks.analysis.regions import SPANS, span_checkpoints, span_correlation
from reference_tasks.runfolder.run_summary import RunSummary
from reference_tasks.runfolder.schema import REGION_QUANTITIES


# What the paper states per task: the generalization step of addition mod 31 (its
# Appendix B, Figure 4) and the two LMN values at the XOR rebound's turning points.
@dataclass(frozen=True)
class PaperStatement:
    """What the paper states for a task (``None``: nothing)."""

    memorization_step: int | None = None
    generalization_step: int | None = None
    rebound_turning_points: tuple[float, float] | None = None


PAPER = {
    "modadd": PaperStatement(memorization_step=200, generalization_step=7600),
    "xor": PaperStatement(rebound_turning_points=(15.0, 20.0)),
}
# A rebound counts when the LMN rises by at least this fraction of its trough.
REBOUND_MIN_RISE = 0.05
# A run "blows up" when its train accuracy falls below this after memorization.
STABLE_TRAIN_ACC = 0.99
CONFIDENCE = 0.95
# A verdict needs Wilcoxon's p below this as well as an interval clear of zero: with fewer
# than 6 seeds the signed-rank test cannot get there (its smallest two-sided p is 2 / 2**n),
# and a bootstrap interval of so few values is no 95% interval.
SIGNIFICANCE = 0.05
BOOTSTRAP_RESAMPLES = 10_000


@dataclass(frozen=True)
class PairedDifference:
    """``R²(LMN) - R²(L2)`` over seeds: its mean, bootstrap interval and Wilcoxon p-value.

    ``low``/``high`` are ``None`` below 2 seeds, ``p_value`` below 2 nonzero differences.
    """

    n: int
    mean: float | None
    low: float | None
    high: float | None
    p_value: float | None
    differences: tuple[float, ...]


def aggregate_values(values: Iterable[Any]) -> dict[str, float | int | None]:
    """``{"mean", "std", "n"}`` of the values that are not ``None`` or NaN.

    ``std`` is the sample standard deviation (``ddof=1``), ``None`` with fewer than 2
    values; ``mean`` is ``None`` with none.
    """
    present = np.array([float(v) for v in values if v is not None and math.isfinite(float(v))])
    return {
        "mean": float(present.mean()) if present.size else None,
        "std": float(present.std(ddof=1)) if present.size > 1 else None,
        "n": int(present.size),
    }


def mean_std_text(stats: Mapping[str, Any], spec: str = ".2f") -> str:
    """``mean ± std`` of :func:`aggregate_values`'s numbers (the mean alone for one value, "–" for none)."""
    if stats["mean"] is None:
        return "–"
    text = format(stats["mean"], spec)
    return text if stats["std"] is None else f"{text} ± {format(stats['std'], spec)}"


def _bootstrap_interval(values: np.ndarray, method: str, seed: int) -> tuple[float, float]:
    """The 95% bootstrap interval of the mean of ``values`` by scipy's ``method``."""
    interval = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method=method,
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return float(interval.low), float(interval.high)


def paired_difference(first: Sequence[float], second: Sequence[float], *, seed: int = 0) -> PairedDifference:
    """The mean of ``first - second`` over paired values, its 95% bootstrap interval, and Wilcoxon's p.

    The interval is scipy's bias-corrected and accelerated bootstrap of the mean (its
    percentile bootstrap where BCa is undefined, on nearly constant differences)
    (``BOOTSTRAP_RESAMPLES`` resamples from ``seed``); the p-value is the two-sided
    Wilcoxon signed-rank test of the differences against zero.
    """
    if len(first) != len(second):
        raise ValueError(f"paired values must have equal lengths, got {len(first)} and {len(second)}")
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    if differences.size == 0:
        return PairedDifference(0, None, None, None, None, ())
    low = high = p_value = None
    if differences.size > 1:
        if np.ptp(differences) == 0.0:
            low = high = float(differences[0])
        else:
            low, high = _bootstrap_interval(differences, "BCa", seed)
            if not (np.isfinite(low) and np.isfinite(high)):  # BCa degenerates on near-constant data
                low, high = _bootstrap_interval(differences, "percentile", seed)
    if np.count_nonzero(differences) > 1:
        p_value = float(stats.wilcoxon(differences).pvalue)
    return PairedDifference(
        int(differences.size), float(differences.mean()), low, high, p_value, tuple(differences.tolist())
    )


def _ratios(summaries: Sequence[RunSummary], top: str, bottom: str) -> list[float]:
    ratios = (summary.lmn_ratio(top, bottom) for summary in summaries)
    return [ratio for ratio in ratios if ratio is not None]


def _rebounds(summaries: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """The seeds whose LMN rises by at least ``REBOUND_MIN_RISE`` of its trough after generalizing."""
    found = []
    for summary in summaries:
        low, high = summary.rebound["min"], summary.rebound["max"]
        if low is None or high is None or high - low < REBOUND_MIN_RISE * low:
            continue
        steps = summary.rebound_steps
        found.append(
            {
                "seed": summary.seed,
                "min_step": steps["min"],
                "min": low,
                "max_step": steps["max"],
                "max": high,
            }
        )
    return found


def _blow_ups(summaries: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """The seeds whose train accuracy fell below ``STABLE_TRAIN_ACC`` after memorization."""
    return [
        {"seed": s.seed, "step": s.unstable_step, "min_train_acc": s.train_acc_min_after_memorization}
        for s in summaries
        if s.train_acc_min_after_memorization is not None
        and s.train_acc_min_after_memorization < STABLE_TRAIN_ACC
    ]


def population_claims(summaries: Sequence[RunSummary]) -> dict[str, Any]:
    """Every claim of the paper for one task, over the seeds whose ``summaries`` are given.

    The R² of LMN and L2 are compared over the seeds that generalized (their generalizing
    phase ends at the generalization step; for the others it would run to the end).
    """
    if not summaries:
        raise ValueError("population_claims needs the summary of at least one run")
    task = summaries[0].task
    steps = [s.generalization_step for s in summaries if s.grokked]
    fitted = [
        s for s in summaries if s.grokked and s.fit_r2("lmn") is not None and s.fit_r2("l2") is not None
    ]
    r2_lmn = [s.fit_r2("lmn") for s in fitted]
    r2_l2 = [s.fit_r2("l2") for s in fitted]
    return {
        "task": task,
        "n_runs": len(summaries),
        "seeds": [s.seed for s in summaries],
        "lmn_n_samples": sorted({s.lmn_n_samples for s in summaries if s.lmn_n_samples is not None}),
        "paper": asdict(PAPER.get(task, PaperStatement())),
        "grokked": len(steps),
        "generalization_steps": {
            "median": statistics.median(steps) if steps else None,
            "min": min(steps, default=None),
            "max": max(steps, default=None),
        },
        "memorization_steps": aggregate_values(
            [s.memorization_step for s in summaries if s.memorization_step]
        ),
        "lmn_rise_memorizing": aggregate_values(_ratios(summaries, "memorization", "init")),
        "lmn_fall_generalizing": aggregate_values(_ratios(summaries, "memorization", "generalization")),
        "r2_lmn": r2_lmn,
        "r2_l2": r2_l2,
        "r2_seeds": [s.seed for s in fitted],
        "r2_difference": asdict(paired_difference(r2_lmn, r2_l2)),
        "rebounds": _rebounds(summaries),
        "blow_ups": _blow_ups(summaries),
    }


def claim_sentence(claims: Mapping[str, Any]) -> str:
    """Whether LMN is more linear in test loss than the L2 norm for this task: a verdict, its numbers."""
    difference = claims["r2_difference"]
    if difference["n"] < 2 or difference["low"] is None:
        return f"cannot be told: {difference['n']} seed(s) grokked with both fits, too few for an interval."
    interval = (
        f"R²(LMN) − R²(L2) = {difference['mean']:+.3f}, 95% interval [{difference['low']:+.3f}, "
        f"{difference['high']:+.3f}] over {difference['n']} seeds"
    )
    if difference["low"] <= 0 <= difference["high"]:
        return f"is not shown: the two are about as linear ({interval})."
    p_value = difference["p_value"]
    if p_value is None or p_value >= SIGNIFICANCE:
        few = f"; {difference['n']} seeds cannot reach it" if difference["n"] < 6 else ""
        shown = "" if p_value is None else f" = {p_value:.2g}"
        return f"is not shown: Wilcoxon's p{shown} is not below {SIGNIFICANCE}{few} ({interval})."
    if difference["low"] > 0:
        return f"holds ({interval}, Wilcoxon p = {p_value:.2g})."
    return f"is reversed: the L2 norm is the more linear ({interval}, Wilcoxon p = {p_value:.2g})."


# A correlation needs this many checkpoints in its span (fewer: the seed has none to give).
MIN_CHECKPOINTS = 3


def seed_correlations(summaries: Sequence[RunSummary], probe: str, span: str, quantity: str) -> list:
    """``(seed, r)`` of every run with at least ``MIN_CHECKPOINTS`` in the span (``r`` may be ``None``)."""
    found = []
    for summary in summaries:
        entry = (summary.regions or {}).get(probe)
        if entry is not None and span_checkpoints(entry, span) >= MIN_CHECKPOINTS:
            found.append((summary.seed, span_correlation(entry, span, quantity)))
    return found


def region_claims(summaries: Sequence[RunSummary]) -> dict[str, Any]:
    """Over the seeds of one task: the correlation of LMN with each region quantity, per probe and span.

    ``{probe: {span: {quantity: {"seeds", "r", "undefined_seeds", "mean", "low", "high",
    "p_value", "n"}}}}``: the seeds' r (those whose quantity or LMN had no spread are
    listed apart), their mean with its 95% bootstrap interval and the Wilcoxon p-value
    of r against zero. The generalizing span counts only the seeds that generalized, and
    a seed counts only with ``MIN_CHECKPOINTS`` or more in the span.
    """
    claims: dict[str, Any] = {}
    probes = dict.fromkeys(probe for summary in summaries for probe in (summary.regions or {}))
    for probe in probes:
        spans: dict[str, Any] = {}
        for span in SPANS:
            chosen = [s for s in summaries if span == "training" or s.grokked]
            entries = {}
            for quantity in REGION_QUANTITIES:
                pairs = seed_correlations(chosen, probe, span, quantity)
                defined = [(seed, r) for seed, r in pairs if r is not None]
                difference = asdict(paired_difference([r for _, r in defined], [0.0] * len(defined)))
                entries[quantity] = {
                    "seeds": [seed for seed, _ in defined],
                    "r": [r for _, r in defined],
                    "undefined_seeds": [seed for seed, r in pairs if r is None],
                    **{key: difference[key] for key in ("n", "mean", "low", "high", "p_value")},
                }
            if any(entry["n"] or entry["undefined_seeds"] for entry in entries.values()):
                spans[span] = entries
        if spans:
            claims[probe] = spans
    return claims
