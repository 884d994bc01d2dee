"""Phases, Pearson coefficients and the run summary from metrics rows."""

import json

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from run_folder_checks import REQUIRED_SUMMARY_KEYS

from reference_tasks.analysis import build_summary, generalizing_rows, pearson, phases, row_at_or_after
from reference_tasks.runs import METRIC_COLUMNS


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
    assert set(summary) >= REQUIRED_SUMMARY_KEYS
    assert (summary["memorization_step"], summary["generalization_step"]) == (30, None)
    assert summary["max_test_acc"] == 0.9
    assert summary["lmn_hidden1_init"] == 10.0
    assert summary["lmn_hidden1_memorization"] == 14.0
    assert summary["lmn_hidden1_generalization"] is None
    assert summary["lmn_hidden1_end"] == 20.0
    assert summary["lmn_hidden1_steps"] == {"init": 0, "memorization": 40, "generalization": None, "end": 100}
    # LMN is linear in test loss over steps 40..100; the L2 norm is not
    assert summary["pearson_n_points"] == 4
    assert np.isclose(summary["pearson_lmn_test_loss"], -1.0)
    assert abs(summary["pearson_l2_test_loss"]) < 0.9
    assert summary["lmn_n_samples"] == 50
    json.dumps(summary, allow_nan=False)


def test_summary_of_a_generalizing_run_has_too_few_points_for_pearson():
    summary = build_summary(synthetic_run(), task="xor", framework="keras", seed=0, steps=100, extra={"x": 1})
    assert summary["lmn_hidden1_generalization"] == 18.0
    assert summary["pearson_lmn_test_loss"] is None and summary["pearson_n_points"] == 2
    assert summary["x"] == 1


@given(
    arrays(np.float64, st.integers(3, 30), elements=st.integers(-1000, 1000).map(float)), st.integers(0, 1000)
)
def test_pearson_matches_numpy(x, seed):
    y = np.random.default_rng(seed).standard_normal(x.size) + 0.5 * x
    expected = np.corrcoef(x, y)[0, 1]
    result = pearson(x.tolist(), y.tolist())
    if np.ptp(x) == 0:
        assert result is None
    else:
        assert np.isclose(result, expected, atol=1e-9)


def test_pearson_needs_three_points():
    assert pearson([1.0, 2.0], [3.0, 1.0]) is None
