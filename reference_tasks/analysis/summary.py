"""A finished run's ``summary.json``, built from its metrics rows alone."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reference_tasks.analysis.fits import linear_fit, pearson
from reference_tasks.analysis.phases import (
    generalizing_rows,
    lowest_train_acc_after_memorization,
    measured,
    phases,
    rebound,
    row_at_or_after,
    unstable_step,
)
from reference_tasks.analysis.regions import region_summary
from reference_tasks.runfolder.folder import write_json
from reference_tasks.runfolder.metrics import read_metrics
from reference_tasks.runfolder.schema import HEADLINE_COLUMN, METRICS_FILE, SUMMARY_FILE, Row

logger = logging.getLogger(__name__)


def fit_key(name: str) -> str:
    """The summary key of the least-squares line of ``name`` (``"lmn"`` or ``"l2"``) against test loss."""
    return f"linear_fit_{name}_test_loss"


def fit_r2(summary: Mapping[str, Any], name: str) -> float | None:
    """The R² of that line in a run summary, ``None`` when the run has none."""
    fit = summary.get(fit_key(name))
    return None if fit is None else fit["r2"]


def build_summary(
    rows: Sequence[Row],
    *,
    task: str,
    framework: str,
    seed: int,
    steps: int,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run summary (``summary.json``) from its metrics rows.

    Keys: ``task, framework, seed, steps, memorization_step, generalization_step,
    max_test_acc, final_train_acc, final_test_acc, lmn_n_samples``, the lowest train
    accuracy after memorization ``train_acc_min_after_memorization`` and the first step
    below 100% ``unstable_step`` (a blow-up; ``None`` if none, see :func:`unstable_step`),
    ``lmn_hidden1_{init,memorization,generalization,end}`` with the steps they were
    read at in ``lmn_hidden1_steps``, ``pearson_lmn_test_loss``,
    ``pearson_l2_test_loss`` and ``pearson_n_points``, the least-squares lines
    ``linear_fit_lmn_test_loss`` and ``linear_fit_l2_test_loss`` (``{"slope",
    "intercept", "r2"}`` of LMN, resp. L2 norm, against test loss over the same rows as
    Pearson, or ``None``), the rebound after generalization ``lmn_hidden1_rebound_min``,
    ``lmn_hidden1_rebound_max`` with their steps in ``lmn_hidden1_rebound_steps``
    (``{"min", "max"}``; all ``None`` without a rebound, see :func:`rebound`), for a
    piecewise-linear run ``regions`` (:func:`~reference_tasks.analysis.regions.region_summary`),
    then ``extra``'s items.
    """
    phase = phases(rows)
    lmn_rows = measured(rows, HEADLINE_COLUMN)
    points = {
        "init": row_at_or_after(lmn_rows, HEADLINE_COLUMN, 0),
        "memorization": row_at_or_after(lmn_rows, HEADLINE_COLUMN, phase.memorization_step),
        "generalization": row_at_or_after(lmn_rows, HEADLINE_COLUMN, phase.generalization_step),
        "end": lmn_rows[-1] if lmn_rows else None,
    }
    window = generalizing_rows(rows)
    test_loss = [row["test_loss"] for row in window]
    test_accuracies = [row["test_acc"] for row in measured(rows, "test_acc")]
    summary: dict[str, Any] = {
        "task": task,
        "framework": framework,
        "seed": seed,
        "steps": steps,
        "memorization_step": phase.memorization_step,
        "generalization_step": phase.generalization_step,
        "max_test_acc": max(test_accuracies, default=None),
        "final_train_acc": rows[-1]["train_acc"] if rows else None,
        "final_test_acc": rows[-1]["test_acc"] if rows else None,
        "lmn_n_samples": lmn_rows[-1]["lmn_n_samples"] if lmn_rows else None,
        "train_acc_min_after_memorization": lowest_train_acc_after_memorization(rows),
        "unstable_step": unstable_step(rows),
    }
    for name, row in points.items():
        summary[f"{HEADLINE_COLUMN}_{name}"] = None if row is None else row[HEADLINE_COLUMN]
    summary[f"{HEADLINE_COLUMN}_steps"] = {
        name: None if row is None else row["step"] for name, row in points.items()
    }
    summary["pearson_lmn_test_loss"] = pearson([row[HEADLINE_COLUMN] for row in window], test_loss)
    summary["pearson_l2_test_loss"] = pearson([row["l2_norm"] for row in window], test_loss)
    summary["pearson_n_points"] = len(window)
    for name, column in (("lmn", HEADLINE_COLUMN), ("l2", "l2_norm")):
        fit = linear_fit(test_loss, [row[column] for row in window])
        summary[fit_key(name)] = None if fit is None else fit.as_dict()
    turn = rebound(rows)
    summary[f"{HEADLINE_COLUMN}_rebound_min"] = None if turn is None else turn.min_value
    summary[f"{HEADLINE_COLUMN}_rebound_max"] = None if turn is None else turn.max_value
    summary[f"{HEADLINE_COLUMN}_rebound_steps"] = {
        "min": None if turn is None else turn.min_step,
        "max": None if turn is None else turn.max_step,
    }
    summary.update(region_summary(rows))
    summary.update(extra or {})
    return summary


def write_run_summary(
    out_dir: Path, *, config: Any, framework: str, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Build a finished run's summary from its ``metrics.csv``, write ``summary.json``, return it.

    ``config`` is the run's ``TrainConfig``; ``extra`` adds run facts (sizes, timings).
    """
    summary = build_summary(
        read_metrics(out_dir / METRICS_FILE),
        task=config.task,
        framework=framework,
        seed=config.seed,
        steps=config.steps,
        extra={"task_options": dict(config.task_options), "dtype": config.dtype, **extra},
    )
    write_json(out_dir / SUMMARY_FILE, summary)
    logger.info(
        "%s %s seed %d: memorized at %s, generalized at %s, max test acc %.4f",
        framework,
        config.task,
        config.seed,
        summary["memorization_step"],
        summary["generalization_step"],
        summary["max_test_acc"],
    )
    return summary
