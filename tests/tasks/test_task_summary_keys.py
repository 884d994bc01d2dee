"""The keys of ``summary.json``: the headline LMN under ``lmn_headline_*`` with the probe named,
and a ``summary.json`` written before (``lmn_hidden1_*``) read back into the same fields."""

import importlib.util
import json
from dataclasses import asdict, replace
from pathlib import Path

from reference_tasks.analysis import run_summary, write_run_summary
from reference_tasks.runfolder import MetricsWriter, write_json
from reference_tasks.runfolder.run_summary import CSV_COLUMNS, RunFacts, RunSummary
from reference_tasks.runfolder.schema import metric_columns
from reference_tasks.training.recipe import TrainConfig

STEPS = 100
HEADLINE_KEYS = {
    "lmn_headline_init": 10.0,
    "lmn_headline_memorization": 13.0,
    "lmn_headline_generalization": 16.0,
    "lmn_headline_end": 10.0,
    "lmn_headline_steps": {"init": 0, "memorization": 30, "generalization": 60, "end": 100},
    "lmn_headline_rebound_min": 8.0,
    "lmn_headline_rebound_max": 12.0,
    "lmn_headline_rebound_steps": {"min": 80, "max": 90},
}


def parity_rows() -> list[dict]:
    """Memorizes at step 30, generalizes at 60; the LMN at ``linear1`` every 10 steps rises
    to 16 at generalization, falls to 8 at step 80, rebounds to 12 at 90 and ends at 10."""
    lmn = {0: 10.0, 10: 11.0, 20: 12.0, 30: 13.0, 40: 14.0, 50: 15.0, 60: 16.0, 70: 12.0, 80: 8.0}
    lmn |= {90: 12.0, 100: 10.0}
    rows = []
    for step in range(0, STEPS + 1, 10):
        rows.append(
            {
                "step": step,
                "train_loss": 0.1,
                "test_loss": 5.0 - step / 25,
                "train_acc": 1.0 if step >= 30 else 0.5,
                "test_acc": 1.0 if step >= 60 else 0.5,
                "l2_norm": 40.0,
                "lmn_linear1": lmn[step],
                "lmn_n_samples": 32,
            }
        )
    return rows


def write_parity_run(runs_dir: Path) -> Path:
    """A finished sparse-parity run folder (headline probe ``linear1``) with its ``summary.json``."""
    config = TrainConfig(task="parity", seed=2, steps=STEPS)
    assert config.headline_probe == "linear1"
    folder = runs_dir / "torch" / "parity-seed2"
    folder.mkdir(parents=True)
    write_json(folder / "config.json", {"framework": "torch", **asdict(config)})
    with MetricsWriter(folder / "metrics.csv", columns=metric_columns(False, config.probes)) as writer:
        for row in parity_rows():
            writer.write(row)
    write_run_summary(folder, framework="torch", facts=RunFacts(seconds_total=1.0))
    return folder


def test_a_parity_summary_names_its_headline_probe_and_says_headline(tmp_path):
    folder = write_parity_run(tmp_path)
    record = json.loads((folder / "summary.json").read_text())
    assert record["headline_probe"] == "linear1"
    assert {key: record[key] for key in HEADLINE_KEYS} == HEADLINE_KEYS
    assert not [key for key in record if key.startswith("lmn_hidden1")]
    summary = run_summary(folder)
    assert summary == RunSummary.from_json(record)
    assert summary.headline_probe == "linear1" and summary.lmn["memorization"] == 13.0
    row = summary.csv_row()
    assert list(row) == list(CSV_COLUMNS)
    assert row["headline_probe"] == "linear1" and row["lmn_headline_memorization"] == 13.0


def test_a_new_sweep_table_spells_the_headline_columns_so():
    points = ("init", "memorization", "generalization", "end")
    columns = (
        *("memorization_step", "generalization_step", "max_test_acc", "headline_probe"),
        *(f"lmn_headline_{point}" for point in points),
        *("r2_lmn_test_loss", "r2_l2_test_loss"),
    )
    assert columns == CSV_COLUMNS


def legacy_record(record: dict) -> dict:
    """``record`` as a ``summary.json`` written before the rename: ``lmn_hidden1_*``, no probe."""
    renamed = {key.replace("lmn_headline_", "lmn_hidden1_"): value for key, value in record.items()}
    return {key: value for key, value in renamed.items() if key != "headline_probe"}


def test_a_legacy_summary_reads_back_into_the_same_fields(tmp_path):
    summary = run_summary(write_parity_run(tmp_path))
    legacy = legacy_record(summary.to_json())
    assert "lmn_hidden1_rebound_steps" in legacy and "lmn_headline_end" not in legacy
    read = RunSummary.from_json(legacy)
    assert read == replace(summary, headline_probe=None)
    assert (read.lmn, read.lmn_steps) == (
        {"init": 10.0, "memorization": 13.0, "generalization": 16.0, "end": 10.0},
        {"init": 0, "memorization": 30, "generalization": 60, "end": 100},
    )
    assert (read.rebound, read.rebound_steps) == ({"min": 8.0, "max": 12.0}, {"min": 80, "max": 90})


def test_a_committed_summary_reads_its_legacy_keys():
    # a run of the GPU populations, written before the rename
    folder = Path(__file__).resolve().parents[2] / "results" / "gpu" / "torch" / "xor-seed1"
    record = json.loads((folder / "summary.json").read_text())
    summary = RunSummary.from_json(record)
    assert summary.lmn["memorization"] == record["lmn_hidden1_memorization"] is not None
    assert summary.lmn_steps == record["lmn_hidden1_steps"]
    assert summary.headline_probe is None
    assert run_summary(folder).headline_probe == "hidden1"  # from its config.json's legacy value


def load_copy_runs():
    path = Path(__file__).resolve().parents[2] / "results" / "copy_runs.py"
    spec = importlib.util.spec_from_file_location("copy_runs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_copy_runs_takes_the_phase_point_snapshots_in_either_spelling(tmp_path):
    copy_runs = load_copy_runs()
    folder = write_parity_run(tmp_path / "runs")
    (folder / "snapshots").mkdir()
    for step in range(0, STEPS + 1, 10):
        (folder / "snapshots" / f"step_{step:06d}.npz").write_bytes(b"weights")
    wanted = ["step_000000.npz", "step_000030.npz", "step_000060.npz", "step_000100.npz"]
    copy_runs.copy_run(folder, tmp_path / "new", with_snapshots=True)
    assert sorted(path.name for path in (tmp_path / "new" / "snapshots").iterdir()) == wanted
    record = json.loads((folder / "summary.json").read_text())
    write_json(folder / "summary.json", legacy_record(record))
    copy_runs.copy_run(folder, tmp_path / "legacy", with_snapshots=True)
    assert sorted(path.name for path in (tmp_path / "legacy" / "snapshots").iterdir()) == wanted
