"""Phases, Pearson coefficients and the run summary from metrics rows."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reference_tasks.analysis import (
    build_summary,
    generalizing_rows,
    linear_fit,
    pearson,
    phases,
    rebound,
    row_at_or_after,
    unstable_step,
)
from reference_tasks.runfolder import METRIC_COLUMNS, read_metrics
from reference_tasks.runfolder.run_summary import RunFacts, RunSummary


def row(step, train_acc, test_acc, test_loss, l2, lmn=None):
    values = {column: None for column in METRIC_COLUMNS}
    values.update(
        step=step, train_loss=0.1, test_loss=test_loss, train_acc=train_acc, test_acc=test_acc, l2_norm=l2
    )
    if lmn is not None:
        values.update(lmn_hidden1=lmn, lmn_n_samples=50)
    return values


def synthetic_run(generalizes=True):
    """Memorizes at step 30, generalizes at step 70 (or never); LMN measured every 20 steps."""
    rows = []
    for step in range(0, 101, 10):
        train_acc = 1.0 if step >= 30 else step / 40
        test_acc = 1.0 if generalizes and step >= 70 else min(0.9, step / 100)
        test_loss = 5.0 - step / 25
        lmn = 10.0 + step / 10 if step % 20 == 0 else None
        rows.append(row(step, train_acc, test_acc, test_loss, l2=40.0 + ((step - 70) / 10) ** 2, lmn=lmn))
    return rows


def test_phases():
    assert phases(synthetic_run()).memorization_step == 30
    assert phases(synthetic_run()).generalization_step == 70
    assert phases(synthetic_run(generalizes=False)).generalization_step is None
    assert phases([row(0, 0.5, 0.5, 1.0, 1.0)]).memorization_step is None


def test_phase_point_reads_the_first_measured_value_at_or_after():
    rows = synthetic_run()
    assert row_at_or_after(rows, "lmn_hidden1", 30)["step"] == 40
    assert row_at_or_after(rows, "lmn_hidden1", 40)["step"] == 40
    assert row_at_or_after(rows, "lmn_hidden1", 101) is None
    assert row_at_or_after(rows, "lmn_hidden1", None) is None


def test_generalizing_window_is_between_the_phase_steps_where_lmn_was_measured():
    assert [r["step"] for r in generalizing_rows(synthetic_run())] == [40, 60]
    assert [r["step"] for r in generalizing_rows(synthetic_run(generalizes=False))] == [40, 60, 80, 100]
    assert generalizing_rows([row(0, 0.5, 0.5, 1.0, 1.0, lmn=2.0)]) == []


def test_summary():
    summary = build_summary(
        synthetic_run(generalizes=False), task="modadd", framework="torch", seed=3, steps=100
    )
    assert (summary.memorization_step, summary.generalization_step) == (30, None)
    assert summary.max_test_acc == 0.9
    assert summary.lmn == {"init": 10.0, "memorization": 14.0, "generalization": None, "end": 20.0}
    assert summary.lmn_steps == {"init": 0, "memorization": 40, "generalization": None, "end": 100}
    # LMN is linear in test loss over steps 40..100; the L2 norm is not
    assert summary.pearson_n_points == 4
    assert np.isclose(summary.pearson["lmn"], -1.0)
    assert abs(summary.pearson["l2"]) < 0.9
    assert summary.lmn_n_samples == 50
    record = json.loads(json.dumps(summary.to_json(), allow_nan=False))
    assert RunSummary.from_json(record) == summary  # summary.json is its serialization


def test_summary_of_a_generalizing_run_has_too_few_points_for_pearson():
    facts = RunFacts(n_train=80, seconds_total=1.5)
    summary = build_summary(synthetic_run(), task="xor", framework="keras", seed=0, steps=100, facts=facts)
    assert summary.lmn["generalization"] == 18.0
    assert summary.pearson["lmn"] is None and summary.pearson_n_points == 2
    assert RunSummary.from_json(summary.to_json()).facts == facts


@given(
    arrays(np.float64, st.integers(3, 30), elements=st.integers(-1000, 1000).map(float)), st.integers(0, 1000)
)
def test_pearson_matches_numpy(x, seed):
    y = np.random.default_rng(seed).standard_normal(x.size) + 0.5 * x
    result = pearson(x.tolist(), y.tolist())
    if np.ptp(x) == 0:
        assert result is None
    else:
        assert np.isclose(result, np.corrcoef(x, y)[0, 1], atol=1e-9)


def test_pearson_needs_three_points():
    assert pearson([1.0, 2.0], [3.0, 1.0]) is None


def test_summary_linear_fits_over_the_generalizing_window():
    summary = build_summary(synthetic_run(generalizes=False), task="s4", framework="torch", seed=0, steps=100)
    # window steps 40..100: test loss 5 - step/25, LMN 10 + step/10 = 22.5 - 2.5 * test loss
    fit = summary.fits["lmn"]
    assert fit.slope == pytest.approx(-2.5) and fit.intercept == pytest.approx(22.5)
    assert fit.r2 == pytest.approx(1.0) and summary.fit_r2("lmn") == fit.r2
    steps = np.array([40.0, 60.0, 80.0, 100.0])
    l2 = 40.0 + ((steps - 70) / 10) ** 2
    expected = np.corrcoef(5.0 - steps / 25, l2)[0, 1] ** 2
    assert summary.fit_r2("l2") == pytest.approx(expected, abs=1e-12)
    assert summary.fit_r2("l2") == pytest.approx(summary.pearson["l2"] ** 2)


def test_summary_fits_need_three_points():
    summary = build_summary(synthetic_run(), task="xor", framework="torch", seed=0, steps=100)
    assert summary.fits == {"lmn": None, "l2": None}


def test_linear_fit():
    fit = linear_fit([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0])
    assert (fit.slope, fit.intercept, fit.r2) == (pytest.approx(2.0), pytest.approx(1.0), pytest.approx(1.0))
    fit = linear_fit([0.0, 1.0, 2.0], [0.0, 1.0, 0.0])  # no linear trend at all
    assert fit.slope == pytest.approx(0.0) and fit.r2 == pytest.approx(0.0)
    assert linear_fit([1.0, 2.0], [1.0, 2.0]) is None
    assert linear_fit([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert linear_fit([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]) is None
    with pytest.raises(ValueError, match="equally long"):
        linear_fit([1.0, 2.0, 3.0], [1.0, 2.0])


@given(
    arrays(np.float64, st.integers(3, 30), elements=st.integers(-1000, 1000).map(float)), st.integers(0, 1000)
)
def test_linear_fit_r2_is_pearson_squared(x, seed):
    y = np.random.default_rng(seed).standard_normal(x.size) + 0.5 * x
    fit, r = linear_fit(x, y), pearson(x, y)
    if r is None:
        assert fit is None
    else:
        slope, intercept = np.polyfit(x, y, 1)
        assert fit.r2 == pytest.approx(r**2, abs=1e-9)
        assert fit.slope == pytest.approx(slope, rel=1e-6, abs=1e-9)
        assert fit.intercept == pytest.approx(intercept, rel=1e-6, abs=1e-6)


def run_with_lmn(values, generalization_step=20, blow_up_step=None):
    """LMN measured every 10 steps; memorizes at 10, generalizes at ``generalization_step``.

    At ``blow_up_step`` train accuracy drops to 0.9 for one row, as in a float32 blow-up.
    """
    rows = []
    for index, lmn in enumerate(values):
        step = 10 * index
        test_acc = 1.0 if generalization_step is not None and step >= generalization_step else 0.5
        train_acc = 0.9 if step == blow_up_step else 1.0 if step >= 10 else 0.5
        rows.append(row(step, train_acc, test_acc, 1.0, 1.0, lmn=lmn))
    return rows


def test_rebound_is_the_largest_rise_after_generalization():
    # before generalization (steps 0, 10) LMN rises by 30: not counted
    values = [10.0, 40.0, 30.0, 25.0, 20.3, 20.8, 21.1, 20.0, 1.4, 1.7]
    turn = rebound(run_with_lmn(values))
    assert (turn.min_step, turn.min_value, turn.max_step, turn.max_value) == (40, 20.3, 60, 21.1)
    assert turn.rise == pytest.approx(0.8)
    summary = build_summary(run_with_lmn(values), task="xor", framework="torch", seed=0, steps=90)
    assert summary.rebound == {"min": 20.3, "max": 21.1}
    assert summary.rebound_steps == {"min": 40, "max": 60}


def test_rebound_leaves_out_the_recovery_from_a_blow_up():
    values = [10.0, 40.0, 30.0, 20.0, 20.5, 19.0, 1.2, 8.0, 9.0]
    rows = run_with_lmn(values, blow_up_step=60)
    assert unstable_step(rows) == 60
    turn = rebound(rows)
    assert (turn.min_step, turn.min_value, turn.max_step, turn.max_value) == (30, 20.0, 40, 20.5)
    whole = rebound(run_with_lmn(values))  # without the drop in train accuracy, the recovery counts
    assert (whole.min_step, whole.max_step) == (60, 80)
    assert unstable_step(run_with_lmn(values)) is None


def test_rebound_ties_take_the_earliest_pair():
    turn = rebound(run_with_lmn([5.0, 5.0, 4.0, 3.0, 4.0, 3.0, 4.0]))
    assert (turn.min_step, turn.max_step) == (30, 40)


def test_no_rebound_without_generalization_or_rise():
    assert rebound(run_with_lmn([1.0, 2.0, 3.0, 4.0], generalization_step=None)) is None
    assert rebound(run_with_lmn([9.0, 8.0, 7.0, 7.0, 6.0])) is None
    summary = build_summary(run_with_lmn([9.0, 8.0, 7.0]), task="xor", framework="torch", seed=0, steps=20)
    assert summary.rebound == {"min": None, "max": None}
    assert summary.rebound_steps == {"min": None, "max": None}


def test_rebound_of_a_committed_xor_run_is_its_double_descent():
    path = Path(__file__).resolve().parents[2] / "results" / "torch" / "xor-seed1" / "metrics.csv"
    turn = rebound(read_metrics(path))
    assert (turn.min_step, turn.max_step) == (4490, 11020)
    assert turn.min_value == pytest.approx(17.580, abs=1e-3) and turn.max_value == pytest.approx(
        41.243, abs=1e-3
    )
