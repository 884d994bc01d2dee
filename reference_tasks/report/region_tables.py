"""The LMN against the exact linear regions over seeds, as a Markdown section and JSON.

Reads the ``regions`` entry of each run summary (``reference_tasks.analysis.regions``) and
the claims over seeds of :func:`reference_tasks.analysis.region_claims.region_claims`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reference_tasks.analysis.claims import BOOTSTRAP_RESAMPLES, aggregate_values, population_claims
from reference_tasks.analysis.region_claims import region_claims
from reference_tasks.analysis.regions import value_at
from reference_tasks.report.figures import task_title
from reference_tasks.report.run_data import RunData
from reference_tasks.runfolder.run_summary import PHASE_POINTS

PREAMBLE = (
    "Piecewise-linear runs only. *r*: Pearson correlation over training of the LMN with a region "
    "quantity at the same probe, per seed, over the checkpoints of the generalizing phase "
    "(memorization to generalization step, seeds that grokked) or of the whole run; the cell gives its "
    f"mean over seeds, the 95% bias-corrected bootstrap interval of that mean ({BOOTSTRAP_RESAMPLES} "
    "resamples) and the two-sided Wilcoxon signed-rank p-value of r against zero. A seed whose region "
    "quantity (or LMN) did not move over the span has no r: it is counted as *undefined* (for example "
    "when every sample lies in a region of its own at every checkpoint). *Pieces*: linear pieces along a "
    "segment between two samples, mean over all N(N-1)/2 pairs; *regions*: distinct activation patterns "
    "of the N samples; *perplexity*: 2^H of their occupancy (the LMN of the region connectivity matrix). "
    "A span with fewer than 3 checkpoints in a seed (the embedding's generalizing phase, measured at "
    "about one checkpoint in 10) gives that seed no r and is left out."
)
# The region quantities in the order the table gives them.
QUANTITY_NAMES = {
    "pieces_mean": "mean pieces",
    "region_perplexity": "region perplexity",
    "regions": "occupied regions",
    "pieces_median": "median pieces",
}


def _cell(entry: Mapping[str, Any] | None) -> str:
    if entry is None or (entry["mean"] is None and not entry["undefined_seeds"]):
        return "–"
    text = "undefined" if entry["mean"] is None else f"{entry['mean']:+.2f}"
    if entry["low"] is not None:
        text += f" [{entry['low']:+.2f}, {entry['high']:+.2f}]"
    if entry["p_value"] is not None:
        text += f", p = {entry['p_value']:.2g}"
    if entry["undefined_seeds"]:
        text += f" ({len(entry['undefined_seeds'])} undefined)"
    return text


def _per_seed(entry: Mapping[str, Any]) -> str:
    values = [f"{seed}: {r:+.3f}" for seed, r in zip(entry["seeds"], entry["r"], strict=True)]
    values += [f"{seed}: undefined" for seed in entry["undefined_seeds"]]
    return ", ".join(values) or "–"


def _phase_values(runs: Sequence[RunData], probe: str, quantity: str) -> str:
    """Mean over seeds of a quantity at each phase point, ``init → memorization → generalization → end``."""
    values = []
    for point in PHASE_POINTS:
        at = [value_at(run.summary.regions[probe], point) for run in runs if probe in run.summary.regions]
        mean = aggregate_values([entry[quantity] for entry in at if entry is not None])["mean"]
        values.append("–" if mean is None else f"{mean:.1f}")
    return " → ".join(values)


def region_section(
    runs_by_group: Sequence[tuple[str, str, Sequence[RunData]]],
) -> tuple[list[str], list[dict]]:
    """The Markdown lines and the JSON entries for every framework and task with region runs."""
    groups = [
        (framework, task, [run for run in runs if run.summary.regions])
        for framework, task, runs in runs_by_group
    ]
    groups = [(framework, task, runs) for framework, task, runs in groups if runs]
    if not groups:
        return [], []
    lines = ["", "## The LMN and the exact linear regions", "", PREAMBLE, ""]
    header = "| task | framework | seeds | grokked | generalization step: median [range] | probe | span | "
    lines += [
        header + " | ".join(QUANTITY_NAMES.values()) + " |",
        "| --- " * (7 + len(QUANTITY_NAMES)) + "|",
    ]
    entries = []
    for framework, task, runs in groups:
        summaries = [run.summary for run in runs]
        claims, population = region_claims(summaries), population_claims(summaries)
        steps = population["generalization_steps"]
        step = "–" if steps["median"] is None else f"{steps['median']:.0f} [{steps['min']}, {steps['max']}]"
        for probe, spans in claims.items():
            for span, by_quantity in spans.items():
                cells = " | ".join(_cell(by_quantity.get(q)) for q in QUANTITY_NAMES)
                lines.append(
                    f"| {task_title(task)} | {framework} | {len(runs)} | {population['grokked']}/{len(runs)} "
                    f"| {step} | {probe} | {span} | {cells} |"
                )
        entries.append({"framework": framework, "task": task, "seeds": population["seeds"], "claims": claims})
    lines += ["", "Per seed, hidden1, generalizing phase (seed: r):", ""]
    for entry in entries:
        spans = entry["claims"].get("hidden1", {}).get("generalizing", {})
        for quantity in ("pieces_mean", "region_perplexity"):
            if quantity in spans:
                what = f"{task_title(entry['task'])}, {entry['framework']}, {QUANTITY_NAMES[quantity]}"
                lines.append(f"- {what}: {_per_seed(spans[quantity])}")
    lines += ["", "Mean over seeds at initialization → memorization → generalization → the last step:", ""]
    lines += ["| task | framework | probe | LMN | mean pieces | occupied regions | region perplexity |"]
    lines += ["| --- | --- | --- | --- | --- | --- | --- |"]
    for framework, task, runs in groups:
        for probe in ("hidden1", "embedding"):
            if any(probe in run.summary.regions for run in runs):
                cells = " | ".join(
                    _phase_values(runs, probe, quantity)
                    for quantity in ("lmn", "pieces_mean", "regions", "region_perplexity")
                )
                lines.append(f"| {task_title(task)} | {framework} | {probe} | {cells} |")
    return [*lines, ""], entries
