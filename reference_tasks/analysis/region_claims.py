"""The correlation over training of the LMN with the exact region counts, over the seeds of a task.

Each piecewise-linear run's summary holds, per probe, the Pearson r of its LMN with each
region quantity (``reference_tasks.analysis.regions``); :func:`region_claims` gives their
mean over seeds, its 95% bootstrap interval and the Wilcoxon signed-rank test of r
against zero, as the paper's claims do (:func:`~reference_tasks.analysis.claims.paired_difference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from reference_tasks.analysis.claims import paired_difference
from reference_tasks.analysis.regions import SPANS, span_checkpoints, span_correlation
from reference_tasks.model.spec import PROBES
from reference_tasks.runfolder.run_summary import RunSummary
from reference_tasks.runfolder.schema import REGION_QUANTITIES

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
    for probe in PROBES:
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
