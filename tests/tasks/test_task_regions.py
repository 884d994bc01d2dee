"""The region columns of piecewise-linear runs: their file, their summary, their claims and their report."""

from dataclasses import asdict
from pathlib import Path

import pytest
from test_task_report import assert_png

from reference_tasks.analysis import build_summary
from reference_tasks.analysis.claims import region_claims
from reference_tasks.analysis.regions import region_summary
from reference_tasks.report.build import build_report
from reference_tasks.runfolder import MetricsWriter, read_metrics, write_json
from reference_tasks.runfolder.run_summary import RunFacts, RunSummary
from reference_tasks.runfolder.schema import METRIC_COLUMNS, REGION_COLUMNS, SUMMARY_FILE, metric_columns
from reference_tasks.training.recipe import TrainConfig

N = 40
STEPS = 100
MEMORIZATION, GENERALIZATION = 20, 60


def relu_rows(seed: int) -> list[dict]:
    """A run whose LMN is 10 + seed + step / 10 at its checkpoints (every 10 steps).

    Mean pieces are affine in the LMN (r = +1), median pieces fall as it rises (r = -1), and
    every sample keeps a region of its own (regions and perplexity stay N: no r).
    """
    rows = []
    for step in range(STEPS + 1):
        row = dict.fromkeys(metric_columns(regions=True))
        row |= {
            "step": step,
            "train_loss": 0.1,
            "test_loss": 5.0 - step / 25,
            "train_acc": 1.0 if step >= MEMORIZATION else 0.5,
            "test_acc": 1.0 if step >= GENERALIZATION else 0.5,
            "l2_norm": 40.0,
        }
        if step % 10 == 0:
            lmn = 10.0 + seed + step / 10
            row.update(
                lmn_hidden1=lmn, lmn_n_samples=N, regions_hidden1=N, region_perplexity_hidden1=float(N)
            )
            row.update(pieces_mean_hidden1=2 * lmn + 1, pieces_median_hidden1=50.0 - lmn)
            if step % 50 == 0:
                row.update(lmn_embedding=3 * lmn, regions_embedding=N - step // 10, pieces_mean_embedding=lmn)
                row.update(region_perplexity_embedding=N - step / 20, pieces_median_embedding=lmn)
        rows.append(row)
    return rows


def write_run(runs_dir: Path, seed: int) -> Path:
    config = TrainConfig(
        task="xor", task_options={"n_bits": 3}, seed=seed, steps=STEPS, activation="relu", lmn_samples=N
    )
    folder = runs_dir / "torch" / f"xor-seed{seed}"
    folder.mkdir(parents=True)
    write_json(folder / "config.json", {"framework": "torch", **asdict(config)})
    with MetricsWriter(folder / "metrics.csv", columns=metric_columns(regions=True)) as writer:
        for row in relu_rows(seed):
            writer.write(row)
    summary = RunSummary("xor", "torch", seed, STEPS, facts=RunFacts(seconds_total=1.0))
    write_json(folder / SUMMARY_FILE, summary.to_json())
    return folder


def test_region_columns_are_written_and_read_back_and_refused_where_absent(tmp_path):
    folder = write_run(tmp_path, 0)
    assert (folder / "metrics.csv").read_text().splitlines()[0].split(",") == [
        *METRIC_COLUMNS,
        *REGION_COLUMNS,
    ]
    rows = read_metrics(folder / "metrics.csv")
    assert rows[10]["regions_hidden1"] == N and isinstance(rows[10]["regions_hidden1"], int)
    assert rows[1]["pieces_mean_hidden1"] is None
    refused = r"\['regions_hidden1'\] are not in the metrics schema of a model without"
    with MetricsWriter(tmp_path / "plain.csv") as writer, pytest.raises(ValueError, match=refused):
        writer.write({"step": 0, "regions_hidden1": 3})
    with pytest.raises(ValueError, match=r"has columns .* expected"):
        MetricsWriter(folder / "metrics.csv", append=True)  # a run without regions cannot continue this file


def test_region_summary_correlates_the_lmn_with_each_quantity():
    summary = region_summary(relu_rows(0))
    hidden1 = summary["hidden1"]
    assert hidden1["n_generalizing"] == 5 and hidden1["n_training"] == 11  # steps 20..60; 0..100
    for span in ("training", "generalizing"):
        correlations = hidden1[f"pearson_{span}"]
        assert correlations["pieces_mean"] == pytest.approx(1.0)
        assert correlations["pieces_median"] == pytest.approx(-1.0)
        assert correlations["regions"] is None and correlations["region_perplexity"] is None
    assert hidden1["at"]["generalization"] == {
        "step": 60,
        "lmn": 16.0,
        "regions": N,
        "region_perplexity": float(N),
        "pieces_mean": 33.0,
        "pieces_median": 34.0,
    }
    embedding = summary["embedding"]
    assert embedding["n_training"] == 3 and embedding["pearson_training"]["regions"] == pytest.approx(-1.0)
    assert (
        region_summary([{k: v for k, v in row.items() if k in METRIC_COLUMNS} for row in relu_rows(0)]) == {}
    )


def test_region_claims_take_the_correlations_over_seeds():
    summaries = [
        build_summary(relu_rows(seed), task="modadd", framework="torch", seed=seed, steps=100)
        for seed in range(6)
    ]
    assert all(
        summary.grokked and summary.regions == region_summary(relu_rows(summary.seed))
        for summary in summaries
    )
    claims = region_claims(summaries)
    mean_pieces = claims["hidden1"]["generalizing"]["pieces_mean"]
    assert mean_pieces["n"] == 6 and mean_pieces["mean"] == pytest.approx(1.0)
    assert mean_pieces["p_value"] == pytest.approx(0.03125)  # six positive r: 2 / 2**6
    saturated = claims["hidden1"]["generalizing"]["regions"]
    assert (saturated["n"], saturated["mean"], saturated["undefined_seeds"]) == (0, None, [0, 1, 2, 3, 4, 5])
    assert claims["embedding"]["training"]["regions"]["mean"] == pytest.approx(-1.0)


def test_the_report_draws_the_regions_and_tables_them(tmp_path):
    for seed in range(3):
        write_run(tmp_path, seed)
    result = build_report(tmp_path)
    names = [path.name for path in result.figures]
    assert {"fig_regions_torch.png", "fig_regions_lmn_torch.png"} <= set(names)
    for path in result.figures:
        if path.name.startswith("fig_regions"):
            assert_png(path)
    text = result.summary_md.read_text()
    assert "## The LMN and the exact linear regions" in text
    assert (
        "| 5-bit XOR | torch | 3 | 3/3 | 60 [60, 60] | hidden1 | generalizing "
        "| +1.00 [+1.00, +1.00], p = 0.25 | undefined (3 undefined) | undefined (3 undefined) "
        "| -1.00 [-1.00, -1.00], p = 0.25 |" in text
    )
    assert "| embedding | generalizing |" not in text  # 1 or 2 side checkpoints in that phase
    assert "- 5-bit XOR, torch, hidden1, mean pieces: 0: +1.000, 1: +1.000, 2: +1.000" in text
    assert "| 5-bit XOR | torch | hidden1 | 11.0 → 13.0 → 17.0 → 21.0 |" in text
