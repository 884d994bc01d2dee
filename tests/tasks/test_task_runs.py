"""The run folder's metrics schema, writer and JSON files (no framework needed)."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_tasks.runs import (
    METRIC_COLUMNS,
    MetricsWriter,
    lmn_column,
    read_json,
    read_metrics,
    write_json,
)

REQUIRED = (
    "step, train_loss, test_loss, train_acc, test_acc, l2_norm, lmn_embedding, lmn_hidden1, lmn_hidden2"
)


def test_schema_has_the_required_columns_in_order():
    assert METRIC_COLUMNS[:9] == tuple(REQUIRED.split(", "))
    assert "lmn_n_samples" in METRIC_COLUMNS
    assert lmn_column("hidden1") == "lmn_hidden1"
    with pytest.raises(ValueError, match="unknown probe 'hidden3'"):
        lmn_column("hidden3")


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
