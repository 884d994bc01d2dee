"""The comparison of progress measures with the LMN (docs/design.md, section 6.7), on synthetic series."""

import numpy as np
import pytest

from reference_tasks.analysis.progress import (
    SeedSeries,
    Series,
    compare_measures,
    compression_r2,
    lead,
)
from reference_tasks.report.measure_figures import figure_measures, normalised, normalised_curve

STEPS = np.arange(0, 101)
MEMORIZATION, GENERALIZATION = 10, 60


def _run(seed, columns, loss=None, generalization=GENERALIZATION):
    loss = np.linspace(5.0, 0.1, STEPS.size) if loss is None else loss
    return SeedSeries(
        seed,
        Series(STEPS, loss),
        {name: Series(STEPS, values) for name, values in columns.items()},
        MEMORIZATION,
        generalization,
    )


def _drop_at(step, high=10.0, low=0.0):
    return np.where(step > STEPS, high, low)


def test_compression_r2_is_one_for_an_affine_function_of_the_loss_and_uses_the_phase_only():
    loss = np.linspace(5.0, 0.1, STEPS.size)
    curved = np.where(STEPS < MEMORIZATION, 1e6, loss**2)  # wild before memorization: not counted
    run = _run(0, {"affine": 3.0 - 2.0 * loss, "curved": curved})
    assert compression_r2(run, "affine") == pytest.approx(1.0)
    phase = (STEPS >= MEMORIZATION) & (STEPS <= GENERALIZATION)
    expected = np.corrcoef(loss[phase], loss[phase] ** 2)[0, 1] ** 2
    assert compression_r2(run, "curved") == pytest.approx(expected, rel=1e-12)
    assert compression_r2(run, "absent") is None


def test_compression_r2_counts_only_steps_where_both_were_measured():
    loss = np.linspace(5.0, 0.1, STEPS.size)
    sparse = np.full(STEPS.size, np.nan)
    sparse[::10] = loss[::10] ** 3
    run = _run(0, {"sparse": sparse}, loss)
    keep = (STEPS % 10 == 0) & (STEPS >= MEMORIZATION) & (STEPS <= GENERALIZATION)
    assert compression_r2(run, "sparse") == pytest.approx(np.corrcoef(loss[keep], loss[keep] ** 3)[0, 1] ** 2)


def test_lead_is_the_generalization_step_minus_the_half_way_step():
    run = _run(
        0, {"early": _drop_at(31), "late": _drop_at(80), "rising": 10.0 - _drop_at(45), "flat": np.ones(101)}
    )
    assert lead(run, "early") == 29.0
    assert lead(run, "late") == -20.0
    assert lead(run, "rising") == 15.0
    assert lead(run, "flat") is None
    assert lead(_run(0, {"early": _drop_at(31)}, generalization=None), "early") is None


def test_the_comparison_over_seeds_gives_the_paired_difference_verdict_and_lead_range():
    rng = np.random.default_rng(0)
    loss = np.linspace(5.0, 0.1, STEPS.size)
    runs = []
    for seed, step in enumerate([31, 41, 21, 35, 30, 33, 25, 28]):
        noise = rng.normal(scale=1e-3, size=STEPS.size)
        columns = {"lmn_hidden1": 2.0 * loss + noise, "bent": np.exp(loss) + noise, "early": _drop_at(step)}
        runs.append(_run(seed, columns, loss))
    lmn, bent, early = compare_measures(runs, ["lmn_hidden1", "bent", "early"])
    assert lmn.verdict == "not shown" and lmn.difference.mean == 0.0
    assert bent.verdict == "lmn better" and bent.difference.n == 8
    assert bent.difference.p_value == pytest.approx(2 / 2**8)  # every difference positive
    assert bent.difference.low > 0
    assert all(value == pytest.approx(1.0, abs=1e-5) for value in lmn.r2.values())
    assert (early.lead_median, early.lead_min, early.lead_max) == (GENERALIZATION - 30.5, 19.0, 39.0)
    [reverse] = compare_measures(runs, ["lmn_hidden1"], reference="bent")
    assert reverse.verdict == "measure better"


def test_the_figure_normalises_each_seed_and_shades_the_phases(tmp_path):
    series = Series([0, 5, 9], [4.0, 2.0, 3.0])
    assert normalised(series).values.tolist() == [1.0, 0.0, 0.5]
    assert normalised(Series([0, 1], [2.0, 2.0])).values.tolist() == [0.0, 0.0]
    runs = [_run(0, {"early": _drop_at(31, high=50.0)}), _run(1, {"early": _drop_at(41, low=-3.0)})]
    curve = normalised_curve(runs, "early")
    assert curve.n_seeds == 2 and curve.steps.tolist() == STEPS.tolist()
    assert curve.mean[35] == pytest.approx(0.5) and (curve.low[35], curve.high[35]) == (0.0, 1.0)
    path = figure_measures(runs, ["early", "missing"], tmp_path / "measures.png", title="addition mod 31")
    assert path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="increase"):
        Series([0, 0], [1.0, 2.0])
