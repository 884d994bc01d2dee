"""The run folder's metrics schema, writer and JSON files (no framework needed)."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_tasks.runfolder import (
    CHECKPOINT_FILE,
    METRIC_COLUMNS,
    METRICS_FILE,
    MetricsWriter,
    config_differences,
    lmn_column,
    read_json,
    read_metrics,
    rewind_run,
    start_run,
    write_json,
)
from reference_tasks.runfolder.weights import save_snapshot, snapshot_steps

REQUIRED = (
    "step, train_loss, test_loss, train_acc, test_acc, l2_norm, lmn_embedding, lmn_hidden1, lmn_hidden2"
)


def test_schema_has_the_required_columns_in_order():
    assert METRIC_COLUMNS[:9] == tuple(REQUIRED.split(", "))
    assert "lmn_n_samples" in METRIC_COLUMNS
    assert lmn_column("hidden1") == "lmn_hidden1"
    assert lmn_column("blocks.0.mlp") == "lmn_blocks.0.mlp"  # any model's probe names a column
    with pytest.raises(ValueError, match="probe 'a,b' cannot name a metrics column"):
        lmn_column("a,b")


def test_rows_are_flushed_as_written_and_unmeasured_cells_are_empty(tmp_path):
    path = tmp_path / "metrics.csv"
    with MetricsWriter(path) as writer:
        writer.write({"step": 0, "train_loss": 1.5, "lmn_hidden1": 2.25, "lmn_n_samples": 10})
        lines = path.read_text().splitlines()
        assert lines[0] == ",".join(METRIC_COLUMNS)
        assert lines[1] == "0,1.5,,,,,,2.25,,10"
        writer.write({"step": 10, "test_acc": float("nan")})
        assert path.read_text().splitlines()[2] == "10,,,,nan,,,,,"
    rows = read_metrics(path)
    assert rows[0]["step"] == 0 and rows[0]["lmn_hidden1"] == 2.25 and rows[0]["test_loss"] is None
    assert math.isnan(rows[1]["test_acc"])


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"step": st.integers(0, 10**6)},
            optional={"train_loss": finite, "l2_norm": finite, "lmn_hidden2": finite},
        )
    )
)
def test_rows_round_trip_exactly(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("run") / "metrics.csv"
    with MetricsWriter(path) as writer:
        for row in rows:
            writer.write(row)
    expected = [{column: row.get(column) for column in METRIC_COLUMNS} for row in rows]
    assert read_metrics(path) == expected


def test_append_keeps_rows_and_checks_the_header(tmp_path):
    path = tmp_path / "metrics.csv"
    with MetricsWriter(path) as writer:
        writer.write({"step": 0})
    with MetricsWriter(path, append=True) as writer:
        writer.write({"step": 1})
    assert [row["step"] for row in read_metrics(path)] == [0, 1]
    with MetricsWriter(path) as writer:
        writer.write({"step": 2})
    assert [row["step"] for row in read_metrics(path)] == [2]
    path.write_text("step,loss\n")
    with pytest.raises(ValueError, match="has columns"):
        MetricsWriter(path, append=True)


def test_bad_rows_are_refused(tmp_path):
    with MetricsWriter(tmp_path / "metrics.csv") as writer:
        with pytest.raises(ValueError, match=r"\['accuracy'\] are not in the metrics schema"):
            writer.write({"step": 0, "accuracy": 1.0})
        with pytest.raises(ValueError, match="needs a step"):
            writer.write({"train_loss": 1.0})


def test_json_is_written_atomically_with_non_finite_as_null(tmp_path):
    path = tmp_path / "summary.json"
    write_json(path, {"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": 2}})
    assert read_json(path) == {"a": None, "b": [1.0, None], "c": {"d": 2}}
    assert json.loads(path.read_text())["c"] == {"d": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_rewinding_drops_later_rows_a_cut_row_and_later_snapshots(tmp_path):
    with MetricsWriter(tmp_path / METRICS_FILE) as writer:
        for step in range(6):
            writer.write({"step": step, "train_loss": 0.5})
    with (tmp_path / METRICS_FILE).open("a") as file:
        file.write("1")  # a row cut short by a kill, its step cut too
    for step in (0, 3, 5):
        save_snapshot(tmp_path, step, {"w": [float(step)]})
    rewind_run(tmp_path, 3)
    assert [row["step"] for row in read_metrics(tmp_path / METRICS_FILE)] == [0, 1, 2]
    assert snapshot_steps(tmp_path) == [0]


def test_start_run_resumes_only_the_same_config_and_clears_only_its_own_files(tmp_path):
    record = {"framework": "torch", "steps": 10, "device": "cpu", "torch_version": "a"}
    assert not start_run(tmp_path, record, resume=True)  # nothing to resume
    (tmp_path / CHECKPOINT_FILE).write_text("state")
    (tmp_path / "notes.txt").write_text("mine")
    volatile_only = {**record, "device": "cuda", "torch_version": "b"}
    assert start_run(tmp_path, volatile_only, resume=True)
    with pytest.raises(ValueError, match=r"steps: saved 10, now 20"):
        start_run(tmp_path, {**record, "steps": 20}, resume=True)
    assert not start_run(tmp_path, {**record, "steps": 20}, resume=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.json", "notes.txt"]
    assert json.loads((tmp_path / "config.json").read_text())["steps"] == 20


def test_a_folder_written_before_a_config_entry_existed_reads_as_its_legacy_value(tmp_path):
    current = {"framework": "torch", "steps": 10, "init_scale": 1.0, "side_probe_every": 4}
    old = {"framework": "torch", "steps": 10}  # written before init_scale and side_probe_every
    assert config_differences(old, current) == ["side_probe_every: saved 1, now 4"]
    assert config_differences(old, {**current, "side_probe_every": 1}) == []
    assert config_differences({**old, "init_scale": 2.0}, {**current, "side_probe_every": 1}) == [
        "init_scale: saved 2.0, now 1.0"
    ]
