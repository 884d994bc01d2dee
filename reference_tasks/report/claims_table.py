"""The paper's claims over seeds as a Markdown section: one line per framework and task.

Reads the dictionaries of :func:`reference_tasks.analysis.population_claims`; the
definitions (ratios, interval, test, thresholds) are stated in the section's preamble.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reference_tasks.analysis import claim_sentence
from reference_tasks.analysis.claims import (
    BOOTSTRAP_RESAMPLES,
    PAPER,
    REBOUND_MIN_RISE,
    SIGNIFICANCE,
    STABLE_TRAIN_ACC,
    PaperStatement,
    mean_std_text,
)
from reference_tasks.experiment import task_title

PREAMBLE = (
    "Over the seeds of each task. *Grokked*: seeds whose test accuracy reached the task's criterion "
    "(100% for the paper's tasks) within the run. "
    "*N*: samples of the LMN. *Rise*: LMN at the headline probe (the MLP's hidden1) at the memorization "
    "point over its value at "
    "initialization; *fall*: at the "
    "memorization point over the generalization point (mean ± sample std over seeds). *R²*: of the "
    "least-squares line against test loss over the generalizing phase, per seed that grokked; "
    "*difference*: the "
    "mean over seeds of R²(LMN) − R²(L2), its 95% bias-corrected bootstrap interval "
    f"({BOOTSTRAP_RESAMPLES} resamples) and the two-sided Wilcoxon signed-rank p-value; the claim is "
    f"called held or reversed only when the interval is clear of zero and p < {SIGNIFICANCE}. *Rebound*: "
    f"seeds whose LMN rises by at least {REBOUND_MIN_RISE:.0%} of its trough after generalizing "
    f"(trough → peak, steps). *Blow-ups*: seeds whose train accuracy fell below {STABLE_TRAIN_ACC:.0%} "
    "after memorization."
)


def _steps(claims: Mapping[str, Any]) -> str:
    steps = claims["generalization_steps"]
    text = "–" if steps["median"] is None else f"{steps['median']:.0f} [{steps['min']}, {steps['max']}]"
    paper = PAPER.get(claims["task"], PaperStatement()).generalization_step
    return text + ("" if paper is None else f" (paper: {paper})")


def _difference(claims: Mapping[str, Any]) -> str:
    difference = claims["r2_difference"]
    if difference["mean"] is None:
        return "–"
    text = f"{difference['mean']:+.3f}"
    if difference["low"] is not None:
        text += f" [{difference['low']:+.3f}, {difference['high']:+.3f}]"
    if difference["p_value"] is not None:
        text += f", p = {difference['p_value']:.3g}"
    return text


def _r2(values: Sequence[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values) or "–"


def _rebounds(claims: Mapping[str, Any]) -> str:
    found = claims["rebounds"]
    text = f"{len(found)}/{claims['n_runs']}"
    details = "; ".join(
        f"seed {r['seed']}: {r['min']:.1f} → {r['max']:.1f} ({r['min_step']} → {r['max_step']})"
        for r in found
    )
    paper = PAPER.get(claims["task"], PaperStatement()).rebound_turning_points
    if paper is not None:
        details += ("; " if details else "") + f"paper: {paper[0]:g} → {paper[1]:g}"
    return text + (f" ({details})" if details else "")


def _blow_ups(claims: Mapping[str, Any]) -> str:
    found = claims["blow_ups"]
    details = ", ".join(f"seed {b['seed']} at step {b['step']} (to {b['min_train_acc']:.2f})" for b in found)
    return f"{len(found)}/{claims['n_runs']}" + (f": {details}" if details else "")


def claims_markdown(claims_by_group: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """The section's lines: a table of every claim, then one sentence per framework and task."""
    if not claims_by_group:
        return []
    lines = [
        "## The paper's claims over seeds",
        "",
        PREAMBLE,
        "",
        "| task | framework | seeds | N | grokked | generalization step: median [range] | rise | fall "
        "| R² LMN (per seed) | R² L2 (per seed) | R²(LMN) − R²(L2) [95%], p | rebound | blow-ups |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for framework, claims in claims_by_group:
        lines.append(
            f"| {task_title(claims['task'])} | {framework} | {claims['n_runs']} "
            f"| {'/'.join(str(n) for n in claims['lmn_n_samples']) or '–'} "
            f"| {claims['grokked']}/{claims['n_runs']} | {_steps(claims)} "
            f"| {mean_std_text(claims['lmn_rise_memorizing'])} "
            f"| {mean_std_text(claims['lmn_fall_generalizing'])} "
            f"| {_r2(claims['r2_lmn'])} | {_r2(claims['r2_l2'])} | {_difference(claims)} "
            f"| {_rebounds(claims)} | {_blow_ups(claims)} |"
        )
    lines.append("")
    for framework, claims in claims_by_group:
        lines.append(
            f"- **{task_title(claims['task'])}, {framework}**: the claim that LMN is more linear in "
            "test loss than the L2 norm " + claim_sentence(claims)
        )
    return [*lines, ""]
