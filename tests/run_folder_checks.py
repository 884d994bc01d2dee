"""Checks shared by every trainer's tests: the run folder and summary schema of issue 3."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from reference_tasks.model.spec import is_piecewise_linear
from reference_tasks.runfolder import METRIC_COLUMNS, read_metrics
from reference_tasks.runfolder.run_summary import RunSummary
from reference_tasks.runfolder.schema import metric_columns, split_header
from reference_tasks.runfolder.weights import load_snapshot, snapshot_steps
from reference_tasks.training.recipe import TrainConfig, eval_steps, lmn_checkpoints, probes_at

# The weights of a snapshot of the shared-embedding reference model, by PyTorch name.
SNAPSHOT_KEYS = sorted(
    ["embedding.tables.0.weight"]
    + [f"{layer}.{part}" for layer in ("linear1", "linear2", "output") for part in ("weight", "bias")]
)


def check_run_folder(config: TrainConfig, result: Any, framework: str, weights_file: str) -> list[dict]:
    """Assert a finished short modadd run's folder has the common schema; return its rows.

    A finished run keeps a weight snapshot per LMN checkpoint and no resume checkpoint.
    """
    folder = result.out_dir
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["config.json", "metrics.csv", weights_file, "summary.json", "snapshots"]
    )
    columns = metric_columns(is_piecewise_linear(config.activation))
    header = (folder / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[: len(columns)] == list(columns)  # then the progress measures' columns
    assert split_header(header)[2] == tuple(header[len(columns) :])
    rows = read_metrics(folder / "metrics.csv")
    assert [row["step"] for row in rows] == eval_steps(config).tolist()
    checkpoints = set(lmn_checkpoints(config).tolist())
    assert {0, config.steps} <= checkpoints
    measured_at = probes_at(config)
    assert snapshot_steps(folder) == sorted(checkpoints)
    assert sorted(load_snapshot(folder, 0)) == SNAPSHOT_KEYS
    for row in rows:
        assert all(row[column] is not None for column in METRIC_COLUMNS[:6])
        lmn_values = {probe: row[f"lmn_{probe}"] for probe in ("embedding", "hidden1", "hidden2")}
        if row["step"] in checkpoints:
            n = config.lmn_samples
            probes = measured_at[row["step"]]
            assert row["lmn_n_samples"] == n and all(1.0 - 1e-3 <= lmn_values[p] <= n for p in probes)
            assert all(value is None for probe, value in lmn_values.items() if probe not in probes)
        else:
            assert [*lmn_values.values(), row["lmn_n_samples"]] == [None] * 4
    summary = RunSummary.from_json(json.loads((folder / "summary.json").read_text()))
    assert (summary.task, summary.framework, summary.seed, summary.steps) == (
        config.task,
        framework,
        config.seed,
        config.steps,
    )
    assert summary == result.summary  # summary.json is its serialization
    assert summary.facts.n_train is not None and summary.lmn["init"] is not None
    saved = json.loads((folder / "config.json").read_text())
    assert saved["framework"] == framework and saved["steps"] == config.steps
    assert saved["lmn_samples"] == config.lmn_samples
    return rows


def without_timings(summary: RunSummary, *, batched: bool = False) -> RunSummary:
    """``summary`` with its wall times (and, with ``batched``, its batch size) left out, to compare runs."""
    facts = dataclasses.replace(summary.facts, seconds_total=None, seconds_lmn=None)
    if batched:
        facts = dataclasses.replace(facts, batched_runs=None)
    return summary.with_facts(facts)
