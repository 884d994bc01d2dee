"""Phases, fits and the run summary, from metrics rows alone (no framework)."""

from reference_tasks.analysis.claims import claim_sentence, paired_difference, population_claims
from reference_tasks.analysis.fits import LinearFit, linear_fit, pearson
from reference_tasks.analysis.phases import (
    Phases,
    Rebound,
    generalizing_rows,
    lowest_train_acc_after_memorization,
    measured,
    phases,
    rebound,
    row_at_or_after,
    unstable_step,
)
from reference_tasks.analysis.summary import build_summary, run_summary, write_run_summary

__all__ = [
    "LinearFit",
    "Phases",
    "Rebound",
    "build_summary",
    "claim_sentence",
    "generalizing_rows",
    "linear_fit",
    "lowest_train_acc_after_memorization",
    "measured",
    "paired_difference",
    "pearson",
    "phases",
    "population_claims",
    "rebound",
    "row_at_or_after",
    "run_summary",
    "unstable_step",
    "write_run_summary",
]
