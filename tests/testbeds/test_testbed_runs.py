"""``lmn reproduce --task NAME`` on each testbed: a short PyTorch run, its folder and its report."""

import json
import os
import subprocess
import sys

import pytest

from reference_tasks.runfolder import read_metrics
from reference_tasks.testbeds import experiments

pytestmark = pytest.mark.slow

TESTBEDS = {
    "transformer": experiments.transformer_task,
    "parity": experiments.parity_task,
    "digits": experiments.digits_task,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One short run of each testbed (30 steps, N = 8), then the report of all three."""
    out = tmp_path_factory.mktemp("runs")
    command = [sys.executable, "-m", "reference_tasks.cli", "reproduce", "--task", *TESTBEDS]
    command += ["--steps", "30", "--lmn-samples", "8", "--workers", "1", "--out", str(out), "--quiet"]
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return out


@pytest.mark.parametrize("name", TESTBEDS)
def test_a_short_run_measures_the_lmn_at_the_recipes_probes(runs, name):
    task = TESTBEDS[name]()
    run = runs / "torch" / f"{name}-seed0"
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == name and config["headline_probe"] == task.model.headline_probe
    assert (
        config["learning_rate"] == task.recipe.learning_rate and config["optimizer"] == task.recipe.optimizer
    )
    rows = read_metrics(run / "metrics.csv")
    assert [row["step"] for row in rows][-1] == 30
    headline = [row[f"lmn_{task.model.headline_probe}"] for row in rows if row["step"] in (0, 30)]
    assert len(headline) == 2 and all(value > 1.0 for value in headline)
    summary = json.loads((run / "summary.json").read_text())
    # linear1 for parity, attn for the transformer
    assert summary["headline_probe"] == task.model.headline_probe
    assert summary["lmn_headline_init"] == headline[0] and summary["lmn_headline_steps"]["init"] == 0


def test_the_probes_after_the_last_nonlinearity_read_one(runs):
    for name, probe in (("transformer", "mlp"), ("digits", "hidden2")):
        values = [
            row[f"lmn_{probe}"] for row in read_metrics(runs / "torch" / f"{name}-seed0" / "metrics.csv")
        ]
        measured = [value for value in values if value is not None]  # the checkpoints that measured it
        assert measured and all(abs(value - 1.0) < 1e-4 for value in measured)


def test_the_report_has_a_claims_row_for_each_testbed(runs):
    summary = (runs / "report" / "summary.md").read_text()
    for task in TESTBEDS.values():
        assert f"| {task().display_title} | torch |" in summary
