"""The progress measures of a run: chosen before training, computed from its snapshots at its end.

Each value is checked against ``lmn_core`` computed by hand on the snapshot's weights.
"""

import csv
import dataclasses

import numpy as np
import pytest
import torch
from quiet_training import train
from torch_threads import one_thread  # noqa: F401 (an autouse fixture)

import lmn_core
from lmn_core import fourier
from reference_tasks.cli import main
from reference_tasks.runfolder import read_metrics
from reference_tasks.runfolder.schema import split_header
from reference_tasks.runfolder.weights import load_snapshot, snapshot_path, snapshot_steps
from reference_tasks.tasks import modular_addition, train_test_split
from reference_tasks.training.engine import TrainingData
from reference_tasks.training.recipe import TrainConfig, probes_at
from reference_tasks.training.remeasure import measure_folder
from reference_tasks.training.torch_engine import build_model

CONFIG = TrainConfig(steps=60, lmn_samples=24, n_checkpoints=5, side_probe_every=1)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("measured")
    train(CONFIG, run_dir)
    return run_dir


def header(run_dir):
    with (run_dir / "metrics.csv").open() as file:
        return next(csv.reader(file))


def model_at(run_dir, step):
    model = build_model(CONFIG, TrainingData.for_configs([CONFIG]))
    model.load_state_dict(
        {name: torch.from_numpy(value) for name, value in load_snapshot(run_dir, step).items()}
    )
    return model.eval()


def test_every_applicable_measure_has_a_column_after_the_schema(measured):
    probes, regions, measures = split_header(header(measured))
    assert probes == ("embedding", "hidden1", "hidden2") and not regions
    assert "l2" not in measures and "l2_norm" in header(measured)  # the l2 measure is the l2_norm column
    for expected in (
        "weight_movement",
        "effective_rank_hidden1",
        "local_complexity_hidden1",
        "fourier_share",
    ):
        assert expected in measures
    assert {"restricted_loss", "excluded_loss"} <= set(measures)
    assert "fourier_gap" not in measures  # needs a parity task
    # a per-probe measure only where the head after the probe supplies its needs: the head
    # after hidden2 is one affine layer (no activation), the SiLU heads are not piecewise linear
    assert "local_complexity_hidden2" not in measures and "local_complexity_embedding" in measures
    assert "pieces_mean_hidden2" in measures and "pieces_mean_hidden1" not in measures


def test_measures_fill_the_checkpoint_rows_only(measured):
    checkpoints = set(probes_at(CONFIG))
    for row in read_metrics(measured / "metrics.csv"):
        assert (row["weight_movement"] is not None) == (row["step"] in checkpoints), row["step"]


def test_values_equal_lmn_core_on_the_snapshots(measured):
    rows = {row["step"]: row for row in read_metrics(measured / "metrics.csv")}
    data = TrainingData.for_configs([CONFIG])
    final = load_snapshot(measured, CONFIG.steps)
    keys = fourier.top_frequencies(final["embedding.tables.0.weight"])
    train_rows, _ = train_test_split(961, train_fraction=CONFIG.train_fraction, seed=0)
    mask = np.zeros(961, dtype=bool)
    mask[train_rows] = True
    for step in snapshot_steps(measured):
        weights, model = load_snapshot(measured, step), model_at(measured, step)
        row = rows[step]
        assert row["weight_movement"] == pytest.approx(
            lmn_core.weight_movement(weights, load_snapshot(measured, 0)), rel=1e-12
        )
        assert row["l2_norm"] == pytest.approx(lmn_core.l2(weights), rel=1e-6)
        with torch.no_grad():
            hidden = model.hidden1(model.linear1(model.embedding(torch.from_numpy(data.lmn_inputs[0]))))
            logits = model(torch.from_numpy(modular_addition().inputs)).double().numpy()
        assert row["effective_rank_hidden1"] == pytest.approx(
            lmn_core.effective_rank(hidden.numpy()), rel=1e-5
        )
        embedding = weights["embedding.tables.0.weight"]
        share = fourier.fourier_norm_share(embedding, fourier.top_frequencies(embedding))
        assert row["fourier_share"] == pytest.approx(share, rel=1e-12)
        assert row["restricted_loss"] == pytest.approx(fourier.restricted_loss(logits, 31, keys), rel=1e-5)
        assert row["excluded_loss"] == pytest.approx(fourier.excluded_loss(logits, 31, keys, mask), rel=1e-5)


def test_local_complexity_counts_the_heads_activation_inputs(measured):
    rows = {row["step"]: row for row in read_metrics(measured / "metrics.csv")}
    data = TrainingData.for_configs([CONFIG])
    step = CONFIG.steps
    model = model_at(measured, step)
    with torch.no_grad():
        hidden = model.hidden1(model.linear1(model.embedding(torch.from_numpy(data.lmn_inputs[0]))))

    def pre_activations(points):
        with torch.no_grad():
            return [model.linear2(torch.from_numpy(points).float()).double().numpy()]

    expected = lmn_core.local_complexity(hidden.double().numpy(), pre_activations)
    assert rows[step]["local_complexity_hidden1"] == pytest.approx(expected, abs=1e-12)


def test_no_measures_leaves_the_lmn_columns_byte_for_byte(measured, tmp_path):
    train(dataclasses.replace(CONFIG, measures=()), tmp_path)
    plain = (tmp_path / "metrics.csv").read_text().splitlines()
    _, _, measures = split_header(header(measured))
    with (measured / "metrics.csv").open() as file:
        full = [",".join(cells[: len(cells) - len(measures)]) for cells in csv.reader(file)]
    assert split_header(plain[0].split(","))[2] == ()
    assert plain == full


def test_lmn_measure_adds_the_same_columns_to_a_run_trained_without(measured, tmp_path):
    train(dataclasses.replace(CONFIG, measures=()), tmp_path)
    assert main(["measure", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "metrics.csv").read_text() == (measured / "metrics.csv").read_text()


def test_a_measure_the_run_cannot_supply_is_refused_before_training(tmp_path):
    config = dataclasses.replace(CONFIG, measures=("effective_rank", "fourier_gap"))
    with pytest.raises(lmn_core.MeasureError, match=r"'fourier_gap' needs \['task:parity_signs'"):
        train(config, tmp_path)
    assert not (tmp_path / "metrics.csv").exists()


def test_an_unknown_measure_is_refused_by_name(tmp_path):
    with pytest.raises(lmn_core.MeasureError, match="unknown measure 'rank_me'"):
        train(dataclasses.replace(CONFIG, measures=("rank_me",)), tmp_path)


def test_lmn_measure_refuses_a_run_without_its_snapshots(measured, tmp_path):
    with pytest.raises(ValueError, match="no finished run"):
        measure_folder(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in measured.rglob("*"):
        if path.is_file():
            target = copy / path.relative_to(measured)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    snapshot_path(copy, 15).unlink()
    with pytest.raises(FileNotFoundError, match=r"steps \[15\] have none"):
        measure_folder(copy)


USER_MEASURE = '''
import numpy as np
from lmn_core import progress_measure


@progress_measure(["representations"])
def mean_norm(inputs):
    """The mean L2 norm of the representations."""
    return float(np.linalg.norm(inputs.representations, axis=1).mean())
'''


def test_a_users_measure_from_a_file_is_a_column(tmp_path):
    source = tmp_path / "my_measures.py"
    source.write_text(USER_MEASURE)
    out = tmp_path / "runs"
    arguments = ["reproduce", "--task", "xor", "--steps", "30", "--lmn-samples", "16", "--out", str(out)]
    arguments += [
        "--measures",
        f"{source}:mean_norm",
        "weight_movement",
        "--batched",
        "--quiet",
        "--no-report",
    ]
    assert main(arguments) == 0
    rows = read_metrics(out / "torch" / "xor-seed0" / "metrics.csv")
    assert split_header(tuple(rows[0]))[2] == ("mean_norm_hidden1", "weight_movement")
    values = [row["mean_norm_hidden1"] for row in rows if row["mean_norm_hidden1"] is not None]
    assert len(values) == len(snapshot_steps(out / "torch" / "xor-seed0")) and min(values) > 0
