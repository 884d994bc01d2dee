"""`lmn report`'s comparison of progress measures with the LMN, on synthetic run folders.

The measure columns are known functions of the test loss or of the step, so their R², verdicts
and leads are known; the phases come from each task's criterion (config.json).
"""

import json
import math
import statistics
from dataclasses import asdict
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from reference_tasks.experiment import Criterion
from reference_tasks.report.build import build_report
from reference_tasks.runfolder import MetricsWriter, write_json
from reference_tasks.runfolder.run_summary import RunFacts, RunSummary
from reference_tasks.runfolder.schema import PROBES, metric_columns
from reference_tasks.training.recipe import TrainConfig

STEPS = 200
HEADLINE_EVERY, SIDE_EVERY = 5, 10  # the headline LMN at every 5th step, the other probes at every 10th
OPTIONS = {"modadd": {"p": 7}, "s4": {"n": 4}, "xor": {"n_bits": 3}}
MEASURES = ("weight_movement", "effective_rank_embedding", "effective_rank_hidden1")
MEASURES += ("effective_rank_hidden2", "my_score", "rare_score")  # hidden2's never measured
DROP = 40  # my_score falls from 1 to 0 at this step: after memorization, long before generalization


def loss(step):
    return 0.1 + 4.0 * math.exp(-step / 60)


def phase_steps(seed):
    """The memorization and generalization steps of a seed of the measured population."""
    return 20 + seed, 140 + 3 * seed


def write_run(runs_dir, framework, task, seed, *, rows, columns, **settings):
    config = TrainConfig(task=task, task_options=OPTIONS[task], seed=seed, steps=STEPS, **settings)
    folder = Path(runs_dir) / framework / f"{task}-seed{seed}"
    folder.mkdir(parents=True)
    write_json(folder / "config.json", {"framework": framework, **asdict(config)})
    with MetricsWriter(folder / "metrics.csv", columns=columns) as writer:
        for row in rows:
            writer.write(row)
    summary = RunSummary(task, framework, seed, STEPS)  # rebuilt from metrics.csv by the report
    write_json(folder / "summary.json", summary.with_facts(RunFacts(seconds_total=1.0)).to_json())


def base_row(step, memorization, generalization, test_acc=1.0):
    return {
        "step": step,
        "train_loss": 0.01,
        "test_loss": loss(step),
        "train_acc": 1.0 if step >= memorization else 0.5,
        "test_acc": test_acc if generalization is not None and step >= generalization else 0.3,
        "l2_norm": 40.0 + (loss(step) - 2.0) ** 2,
    }


def measured_rows(seed, noise):
    """A modadd seed: generalization at test accuracy 0.95 only (its criterion asks 0.9).

    At each headline checkpoint: the LMN an affine function of the loss with noise,
    ``weight_movement`` an exact affine one, ``effective_rank_hidden1`` exp of the loss,
    ``my_score`` a step down at ``DROP``; at the side checkpoints the other probes.
    """
    memorization, generalization = phase_steps(seed)
    rows = []
    for step in range(STEPS + 1):
        row = base_row(step, memorization, generalization, test_acc=0.95)
        if step % HEADLINE_EVERY == 0:
            value = loss(step)
            row.update(lmn_hidden1=10.0 + 3.0 * value + noise[step], lmn_n_samples=40)
            row.update(weight_movement=1.0 + 2.0 * value, effective_rank_hidden1=math.exp(value))
            row.update(my_score=1.0 if step < DROP else 0.0)  # a user's measure
            if seed == 0:  # a measure of one seed only: leads by 115 steps there, but is not ranked
                row.update(rare_score=1.0 if step < 25 else 0.0)
            if step % SIDE_EVERY == 0:
                row.update(lmn_embedding=50.0 + 5.0 * value**3, lmn_hidden2=1.0)
                row.update(effective_rank_embedding=3.0 + value**0.5)
        rows.append(row)
    return rows


def plain_rows(memorization, generalization, *, regions):
    """The headline LMN falling with the loss, and for a ReLU run the mean pieces, at hidden1 only."""
    rows = []
    for step in range(STEPS + 1):
        row = base_row(step, memorization, generalization)
        if step % HEADLINE_EVERY == 0:
            row.update(lmn_hidden1=5.0 + loss(step) ** 2, lmn_n_samples=40)
            if regions:
                row.update(regions_hidden1=30, region_perplexity_hidden1=20.0)
                row.update(pieces_mean_hidden1=1.0 + loss(step), pieces_median_hidden1=1.0)
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    columns = metric_columns(False, PROBES, MEASURES)
    for seed in range(8):
        rows = measured_rows(seed, rng.normal(scale=0.05, size=STEPS + 1))
        criterion = Criterion(train_acc=1.0, test_acc=0.9)
        write_run(runs_dir, "torch", "modadd", seed, rows=rows, columns=columns, criterion=criterion)
    for seed in range(3):
        rows = plain_rows(30, 150, regions=True)
        columns = metric_columns(True, PROBES)
        write_run(runs_dir, "torch", "xor", seed, rows=rows, columns=columns, activation="relu")
    for seed in range(2):
        rows = plain_rows(30, None, regions=False)
        write_run(runs_dir, "keras", "s4", seed, rows=rows, columns=metric_columns(False, PROBES))
    result = build_report(runs_dir)
    summary = json.loads(result.summary_json.read_text())
    entries = summary["progress_measures"]
    return result, {(entry["framework"], entry["task"]): entry for entry in entries}, summary


def expected_r2(seed, function):
    memorization, generalization = phase_steps(seed)
    steps = [s for s in range(0, STEPS + 1, HEADLINE_EVERY) if memorization <= s <= generalization]
    losses = np.array([loss(step) for step in steps])
    return np.corrcoef(losses, [function(value) for value in losses])[0, 1] ** 2


def test_every_measure_against_the_lmn_at_the_headline_probe(report):
    _, entries, _ = report
    entry = entries[("torch", "modadd")]
    assert entry["reference"] == "lmn_hidden1"
    assert entry["grokked_seeds"] == list(range(8))  # by the task's criterion: test accuracy 0.9
    by_column = {measure["column"]: measure for measure in entry["measures"]}
    assert list(by_column) == [
        "lmn_hidden1",
        "lmn_embedding",
        "lmn_hidden2",
        "l2_norm",
        "weight_movement",
        "effective_rank_embedding",
        "effective_rank_hidden1",
        "my_score",
        "rare_score",
    ]  # effective_rank_hidden2 was never measured
    movement, rank = by_column["weight_movement"], by_column["effective_rank_hidden1"]
    assert all(value == pytest.approx(1.0, abs=1e-12) for value in movement["r2"])
    assert movement["verdict"] == "measure better" and movement["difference"]["n"] == 8
    assert movement["difference"]["p_value"] == pytest.approx(2 / 2**8)  # every seed: the LMN is less linear
    assert rank["verdict"] == "lmn better" and rank["difference"]["low"] > 0
    assert rank["r2"] == pytest.approx([expected_r2(seed, math.exp) for seed in range(8)], rel=1e-9)
    l2 = by_column["l2_norm"]  # read at the headline checkpoints only, as the claims do
    assert l2["r2"] == pytest.approx([expected_r2(s, lambda v: (v - 2.0) ** 2) for s in range(8)], rel=1e-9)
    assert by_column["lmn_hidden2"]["r2_median"] is None  # constant: no line to fit
    assert (by_column["effective_rank_hidden1"]["probe"], by_column["my_score"]["probe"]) == ("hidden1", None)
    assert entry["best_r2"] == "weight_movement"
    claims = next(table["claims"] for table in report[2]["tables"] if table["task"] == "modadd")
    assert l2["difference"] == claims["r2_difference"]  # the claims' R²(LMN) - R²(L2), the same numbers


def test_the_lead_of_each_seed_and_the_measure_that_leads_most(report):
    _, entries, _ = report
    entry = entries[("torch", "modadd")]
    score = next(measure for measure in entry["measures"] if measure["column"] == "my_score")
    leads = [phase_steps(seed)[1] - DROP for seed in range(8)]
    assert score["leads"] == leads
    assert (score["lead_median"], score["lead_min"], score["lead_max"]) == (
        statistics.median(leads),
        100,
        121,
    )
    rare = next(measure for measure in entry["measures"] if measure["column"] == "rare_score")
    assert rare["leads"] == [115.0] + [None] * 7
    assert entry["most_lead"] == "my_score"  # rare_score has a lead in 1 seed, the LMN in 8


def test_summary_md_states_the_table_and_where_the_lmn_loses(report):
    result, entries, _ = report
    text = result.summary_md.read_text().split("## Progress measures against the LMN")[1]
    modadd = text.split("### ")[2]
    assert modadd.startswith("addition mod 31, torch (seeds 0, 1, 2, 3, 4, 5, 6, 7; 8 grokked)")
    assert "![every measure normalised to [0, 1]](fig_measures_torch_modadd.png)" in modadd
    score = next(m for m in entries[("torch", "modadd")]["measures"] if m["column"] == "my_score")
    r2 = f"{score['r2_median']:.3f} [{score['r2_min']:.3f}, {score['r2_max']:.3f}]"
    assert f"| `my_score` | whole network | 8 | {r2} | +0." in modadd
    assert "| lmn better | 110.5 [100, 121] |" in modadd
    assert "| `lmn_hidden1` (reference) | hidden1 | 8 |" in modadd
    assert "| `lmn_hidden2` | hidden2 | 0 | – | – | – | – |" in modadd
    assert "- Tracks test loss best (highest median R²): `weight_movement`, 1.0000; the LMN" in modadd
    assert "- Leads most (largest median lead): `my_score`, 110.5 [100, 121] steps; the LMN" in modadd
    loses = modadd.split("- The LMN loses: these are more linear in test loss than it: ")[1].split("\n")[0]
    assert (
        loses.startswith("`weight_movement` (-") and "p = 0.0078" in loses and "effective_rank" not in loses
    )
    wins = modadd.split("- The LMN wins: it is more linear in test loss than these: ")[1].split("\n")[0]
    assert "`effective_rank_hidden1` (+0.0" in wins and "`l2_norm` (+0." in wins


def test_runs_without_measure_columns_compare_the_l2_norm_and_the_pieces(report):
    result, entries, _ = report
    xor = entries[("torch", "xor")]
    assert [measure["column"] for measure in xor["measures"]] == [
        "lmn_hidden1",
        "l2_norm",
        "pieces_mean_hidden1",
    ]
    pieces = xor["measures"][2]
    assert pieces["r2"] == pytest.approx([1.0, 1.0, 1.0]) and pieces["verdict"] == "not shown"  # 3 seeds
    s4 = entries[("keras", "s4")]
    assert s4["grokked_seeds"] == [] and s4["measures"] == [] and s4["columns"] == ["lmn_hidden1", "l2_norm"]
    text = result.summary_md.read_text()
    assert "No seed grokked: no compression phase to fit and no lead." in text.split("### ")[1]


def test_the_figure_of_each_task_is_written_and_linked(report):
    result, entries, _ = report
    names = {path.name for path in result.figures}
    for entry in entries.values():
        assert entry["figure"] in names
        image = matplotlib.image.imread(result.out_dir / entry["figure"])
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
        assert f"]({entry['figure']})" in result.summary_md.read_text()
