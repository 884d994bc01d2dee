"""The paper's claims over seeds: paired R² differences, rises, rebounds and blow-ups."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from reference_tasks.analysis import (
    build_summary,
    claim_sentence,
    lowest_train_acc_after_memorization,
    paired_difference,
    population_claims,
)
from reference_tasks.runfolder.run_summary import LineFit, RunSummary


def _summary(seed: int, *, r2_lmn: float | None, r2_l2: float | None, **values: object) -> RunSummary:
    fits = {
        name: None if r2 is None else LineFit(1.0, 0.0, r2) for name, r2 in (("lmn", r2_lmn), ("l2", r2_l2))
    }
    summary = RunSummary(
        task="xor",
        framework="torch",
        seed=seed,
        steps=20000,
        memorization_step=100,
        generalization_step=3000 + 100 * seed,
        lmn={"init": 30.0, "memorization": 60.0, "generalization": 20.0, "end": 20.0},
        fits=fits,
        train_acc_min_after_memorization=1.0,
    )
    return dataclasses.replace(summary, **values)


def test_paired_difference_matches_scipy_and_numpy() -> None:
    lmn = [0.98, 0.95, 0.97, 0.99, 0.96, 0.94, 0.99, 0.97]
    l2 = [0.90, 0.93, 0.80, 0.97, 0.85, 0.95, 0.70, 0.88]
    result = paired_difference(lmn, l2)
    differences = np.subtract(lmn, l2)
    assert result.n == 8
    assert result.mean == pytest.approx(differences.mean())
    assert result.p_value == pytest.approx(stats.wilcoxon(differences).pvalue)
    assert result.low < result.mean < result.high
    assert result.low == paired_difference(lmn, l2).low  # seeded: the same interval every time


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=3, max_size=12, unique=True))
@example([0.0, 1.9645234290077028e-131, 2.1154431196399008e-246])  # BCa is NaN here
def test_bootstrap_interval_lies_within_the_differences(differences: list[float]) -> None:
    result = paired_difference(differences, [0.0] * len(differences))
    assert min(differences) - 1e-12 <= result.low <= result.high <= max(differences) + 1e-12


def test_paired_difference_refuses_unpaired_values() -> None:
    with pytest.raises(ValueError, match="equal lengths, got 3 and 2"):
        paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])


def test_population_claims_counts_grokking_ratios_rebounds_and_blow_ups() -> None:
    summaries = [_summary(seed, r2_lmn=0.95 + 0.005 * seed, r2_l2=0.5 + 0.01 * seed) for seed in range(4)]
    summaries[1] = dataclasses.replace(
        summaries[1], rebound={"min": 18.0, "max": 19.8}, rebound_steps={"min": 5000, "max": 9000}
    )  # a 10% rise: counts
    summaries[2] = dataclasses.replace(
        summaries[2], rebound={"min": 18.0, "max": 18.5}, rebound_steps={"min": 5000, "max": 5400}
    )  # under 5%: does not
    summaries[3] = dataclasses.replace(
        summaries[3],
        generalization_step=None,
        fits={"lmn": None, "l2": summaries[3].fits["l2"]},
        train_acc_min_after_memorization=0.4,
        unstable_step=17000,
    )
    claims = population_claims(summaries)
    assert claims["grokked"] == 3
    assert claims["generalization_steps"] == {"median": 3100, "min": 3000, "max": 3200}
    assert claims["lmn_rise_memorizing"]["mean"] == pytest.approx(2.0)
    assert claims["lmn_fall_generalizing"]["mean"] == pytest.approx(3.0)
    assert claims["r2_seeds"] == [0, 1, 2]
    assert claims["r2_difference"]["mean"] == pytest.approx(np.mean([0.45, 0.445, 0.44]))
    assert [rebound["seed"] for rebound in claims["rebounds"]] == [1]
    assert claims["blow_ups"] == [{"seed": 3, "step": 17000, "min_train_acc": 0.4}]
    # three seeds agree, but the signed-rank test cannot be below 0.05 with so few
    assert claim_sentence(claims).startswith("is not shown: Wilcoxon's p = 0.25 is not below 0.05; 3 seeds")
    eight = population_claims([_summary(s, r2_lmn=0.95 + 0.005 * s, r2_l2=0.5 + 0.01 * s) for s in range(8)])
    assert claim_sentence(eight).startswith("holds (R²(LMN) − R²(L2) = +0.432")
    assert claim_sentence(eight).endswith("Wilcoxon p = 0.0078).")


def test_claim_sentence_says_when_the_claim_fails() -> None:
    reversed_ = population_claims([_summary(s, r2_lmn=0.5 + 0.01 * s, r2_l2=0.9) for s in range(6)])
    assert claim_sentence(reversed_).startswith("is reversed")
    even = population_claims([_summary(s, r2_lmn=0.9 + 0.02 * (-1) ** s * s, r2_l2=0.9) for s in range(6)])
    assert claim_sentence(even).startswith("is not shown")
    one = population_claims([_summary(0, r2_lmn=0.9, r2_l2=0.5)])
    assert claim_sentence(one).startswith("cannot be told: 1 seed(s)")


def test_summary_records_a_blow_up_after_memorization() -> None:
    base = {"train_loss": 0.1, "test_loss": 1.0, "test_acc": 0.5, "l2_norm": 10.0, "lmn_hidden1": None}
    accuracies = [0.5, 1.0, 1.0, 0.97, 1.0]
    rows = [
        {**base, "step": step, "train_acc": acc}
        for step, acc in zip(range(0, 50, 10), accuracies, strict=True)
    ]
    assert lowest_train_acc_after_memorization(rows) == 0.97
    summary = build_summary(rows, task="xor", framework="torch", seed=0, steps=40)
    assert summary.unstable_step == 30
    assert summary.train_acc_min_after_memorization == 0.97
    assert lowest_train_acc_after_memorization(rows[:1]) is None
