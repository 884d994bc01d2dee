"""A run's summary (:class:`RunSummary`), computed from its metrics rows alone."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from reference_tasks.analysis.fits import linear_fit, pearson
from reference_tasks.analysis.phases import (
    PAPER_CRITERION,
    generalizing_rows,
    lowest_train_acc_after_memorization,
    measured,
    phases,
    rebound,
    row_at_or_after,
    unstable_step,
)
from reference_tasks.analysis.regions import region_summary
from reference_tasks.experiment import Criterion
from reference_tasks.model.spec import HEADLINE_PROBE
from reference_tasks.runfolder.folder import read_json, write_json
from reference_tasks.runfolder.metrics import read_metrics
from reference_tasks.runfolder.run_summary import LineFit, RunFacts, RunSummary
from reference_tasks.runfolder.schema import (
    CONFIG_FILE,
    LEGACY_CONFIG_VALUES,
    METRICS_FILE,
    N_SAMPLES_COLUMN,
    SUMMARY_FILE,
    Row,
    lmn_column,
)

logger = logging.getLogger(__name__)


def build_summary(
    rows: Sequence[Row],
    *,
    task: str,
    framework: str,
    seed: int,
    steps: int,
    facts: RunFacts | None = None,
    headline_probe: str = HEADLINE_PROBE,
    criterion: Criterion = PAPER_CRITERION,
) -> RunSummary:
    """The run summary from its metrics rows (its fields: :class:`RunSummary`).

    The phase points are the first LMN checkpoint at or after initialization,
    memorization and generalization (by the task's ``criterion``), and the last, of the
    LMN column of ``headline_probe`` (the reference MLP's ``hidden1`` unless given); the
    fits and Pearson coefficients are taken over the generalizing phase
    (:func:`generalizing_rows`); the rebound is :func:`rebound`'s.
    """
    headline = lmn_column(headline_probe)
    phase = phases(rows, criterion)
    lmn_rows = measured(rows, headline)
    points = {
        "init": row_at_or_after(lmn_rows, headline, 0),
        "memorization": row_at_or_after(lmn_rows, headline, phase.memorization_step),
        "generalization": row_at_or_after(lmn_rows, headline, phase.generalization_step),
        "end": lmn_rows[-1] if lmn_rows else None,
    }
    window = generalizing_rows(rows, headline, criterion)
    test_loss = [row["test_loss"] for row in window]
    fits = {}
    fitted = {"lmn": headline, "l2": "l2_norm"}
    for name, column in fitted.items():
        fit = linear_fit(test_loss, [row[column] for row in window])
        fits[name] = None if fit is None else LineFit(fit.slope, fit.intercept, fit.r2)
    turn = rebound(rows, headline, criterion)
    return RunSummary(
        task=task,
        framework=framework,
        seed=seed,
        steps=steps,
        headline_probe=headline_probe,
        memorization_step=phase.memorization_step,
        generalization_step=phase.generalization_step,
        max_test_acc=max((row["test_acc"] for row in measured(rows, "test_acc")), default=None),
        final_train_acc=rows[-1]["train_acc"] if rows else None,
        final_test_acc=rows[-1]["test_acc"] if rows else None,
        lmn_n_samples=lmn_rows[-1][N_SAMPLES_COLUMN] if lmn_rows else None,
        train_acc_min_after_memorization=lowest_train_acc_after_memorization(rows, criterion),
        unstable_step=unstable_step(rows, criterion),
        lmn={name: None if row is None else row[headline] for name, row in points.items()},
        lmn_steps={name: None if row is None else row["step"] for name, row in points.items()},
        pearson={
            name: pearson([row[column] for row in window], test_loss) for name, column in fitted.items()
        },
        pearson_n_points=len(window),
        fits=fits,
        rebound={
            "min": None if turn is None else turn.min_value,
            "max": None if turn is None else turn.max_value,
        },
        rebound_steps={
            "min": None if turn is None else turn.min_step,
            "max": None if turn is None else turn.max_step,
        },
        regions=region_summary(rows, criterion) or None,
        facts=facts or RunFacts(),
    )


def write_run_summary(out_dir: Path, *, framework: str, facts: RunFacts) -> RunSummary:
    """Build a finished run's summary from its ``metrics.csv`` and ``config.json``, write
    ``summary.json``, return it."""
    summary = _summary_of(out_dir, framework, facts)
    write_json(out_dir / SUMMARY_FILE, summary.to_json())
    logger.info(
        "%s %s seed %d: memorized at %s, generalized at %s, max test acc %.4f",
        framework,
        summary.task,
        summary.seed,
        summary.memorization_step,
        summary.generalization_step,
        summary.max_test_acc,
    )
    return summary


def run_summary(run_dir: str | Path) -> RunSummary:
    """The summary of the finished run in ``run_dir``: from its ``metrics.csv``, with its saved facts.

    The one way every reader takes a finished run's summary (the report, a sweep's tables):
    computed again from ``metrics.csv`` and ``config.json``, so an analysis added since the
    run trained applies to it too; only the facts (sizes, timings) come from ``summary.json``.
    """
    run_dir = Path(run_dir)
    saved = RunSummary.from_json(read_json(run_dir / SUMMARY_FILE))
    return _summary_of(run_dir, None, saved.facts)


def _summary_of(run_dir: Path, framework: str | None, facts: RunFacts) -> RunSummary:
    """:func:`build_summary` of a run folder: its metrics, and the task, headline probe and
    criterion its ``config.json`` names (the paper's where it predates them)."""
    record = read_json(run_dir / CONFIG_FILE)
    legacy = {
        key: value for key, value in LEGACY_CONFIG_VALUES.items() if key in ("headline_probe", "criterion")
    }
    record = {**legacy, **record}
    return build_summary(
        read_metrics(run_dir / METRICS_FILE),
        task=record["task"],
        framework=framework or str(record.get("framework", run_dir.parent.name)),
        seed=record["seed"],
        steps=record["steps"],
        facts=facts,
        headline_probe=record["headline_probe"],
        criterion=Criterion(**record["criterion"]),
    )
