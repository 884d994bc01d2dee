"""Spectral ordering of connectivity matrices and the figure functions of the report."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.testing.compare import compare_images

from reference_tasks.report import figures as figures_module
from reference_tasks.report.clustering import by_size, figure4_clustering, spectral_clustering
from reference_tasks.report.figures import (
    ConnectivityPanel,
    aggregate,
    connectivity_figure,
    figure_probes,
    probes_figure,
    training_figure,
)
from reference_tasks.report.run_data import RunData
from reference_tasks.runfolder import METRIC_COLUMNS
from reference_tasks.runfolder.run_summary import RunSummary
from reference_tasks.training.recipe import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
# RMS difference of the pixels (0 to 255) that a reference picture allows: a font or antialiasing
# change moves it by a few units, a line drawn elsewhere by tens
REFERENCE_TOLERANCE = 8


def blocks(sizes, off=0.1):
    """Block-diagonal connectivity: 1 inside blocks, ``off`` between them; and the labels."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    matrix = np.where(labels[:, None] == labels[None, :], 1.0, off)
    return matrix, labels


def test_spectral_clustering_recovers_shuffled_blocks():
    matrix, truth = blocks([12, 9, 6, 3])
    shuffle = np.random.default_rng(0).permutation(truth.size)
    result = spectral_clustering(matrix[np.ix_(shuffle, shuffle)], 4, seed=0)
    found = result.labels
    # clusters are numbered by decreasing size: they are exactly the blocks
    np.testing.assert_array_equal(found, truth[shuffle])
    np.testing.assert_array_equal(result.sizes, [12, 9, 6, 3])
    ordered = found[result.order]
    assert np.all(np.diff(ordered) >= 0) and sorted(result.order) == list(range(truth.size))


def test_spectral_clustering_is_seeded_and_sees_the_symmetric_part():
    rng = np.random.default_rng(1)
    matrix = rng.uniform(-0.2, 1.0, size=(40, 40))
    first = spectral_clustering(matrix, 10, seed=3)
    np.testing.assert_array_equal(first.labels, spectral_clustering(matrix, 10, seed=3).labels)
    np.testing.assert_array_equal(first.labels, spectral_clustering(matrix.T, 10, seed=3).labels)
    assert first.sizes.sum() == 40 and np.all(np.diff(first.sizes) <= 0)


def test_clusters_are_numbered_by_size_then_first_sample():
    result = by_size(np.array([5, 5, 2, 9, 9, 9, 7]))
    np.testing.assert_array_equal(result.labels, [1, 1, 2, 0, 0, 0, 3])
    np.testing.assert_array_equal(result.order, [3, 4, 5, 0, 1, 2, 6])
    np.testing.assert_array_equal(result.sizes, [3, 2, 1, 1])


def test_spectral_clustering_errors():
    with pytest.raises(ValueError, match=r"n_clusters must be in 1\.\.3"):
        spectral_clustering(np.eye(3), 4)
    with pytest.raises(ValueError, match="square"):
        spectral_clustering(np.ones((2, 3)), 1)


def fake_run(seed, steps=(0, 10, 20, 30), lmn_shift=0.0, memorization=10, generalization=20):
    rows = []
    for step in steps:
        row = {column: None for column in METRIC_COLUMNS}
        row.update(
            step=step,
            train_loss=1.0,
            test_loss=1.0 - step / 100,
            train_acc=1.0 if step >= memorization else 0.5,
            test_acc=1.0 if generalization is not None and step >= generalization else 0.5,
            l2_norm=10.0 + step,
            lmn_embedding=5.0,
            lmn_hidden1=2.0 + step / 10 + lmn_shift,
            lmn_hidden2=1.0,
            lmn_n_samples=40,
        )
        rows.append(row)
    summary = RunSummary(
        task="modadd",
        framework="torch",
        seed=seed,
        steps=steps[-1],
        memorization_step=memorization,
        generalization_step=generalization,
        lmn_n_samples=40,
    )
    return RunData(Path(f"runs/torch/modadd-seed{seed}"), "torch", TrainConfig(seed=seed), rows, summary)


def test_aggregate_is_mean_and_min_max_over_common_steps(caplog):
    runs = [
        fake_run(0, lmn_shift=0.0),
        fake_run(1, lmn_shift=2.0),
        fake_run(2, steps=(0, 10, 30), lmn_shift=4.0),
    ]
    curve = aggregate(runs, "lmn_hidden1")
    np.testing.assert_array_equal(curve.steps, [0, 10, 30])
    np.testing.assert_allclose(curve.mean, [4.0, 5.0, 7.0])
    np.testing.assert_allclose(curve.low, [2.0, 3.0, 5.0])
    np.testing.assert_allclose(curve.high, [6.0, 7.0, 9.0])
    assert curve.n_runs == 3
    assert "not measured in every run" in caplog.text


def drawn_lines(ax):
    """``{label: (x, y)}`` of the lines drawn on ``ax`` (matplotlib's own unlabelled lines left out)."""
    return {
        line.get_label(): (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }


def test_figure2_draws_the_runs_curves_against_the_step():
    runs = {"modadd": [fake_run(0), fake_run(1, lmn_shift=1.0)], "xor": [fake_run(0, generalization=None)]}
    figure = training_figure(runs, framework="torch")
    accuracy, lmn_axis, l2_axis = figure.axes[:3]  # the first row: addition mod 31
    lmn = aggregate(runs["modadd"], "lmn_hidden1")
    x, y = drawn_lines(lmn_axis)["LMN hidden1"]
    np.testing.assert_array_equal(x, lmn.steps + 1)  # log step axis: step + 1, so step 0 shows
    np.testing.assert_array_equal(y, lmn.mean)
    np.testing.assert_array_equal(drawn_lines(l2_axis)["L2 norm"][1], [10.0, 20.0, 30.0, 40.0])
    assert set(drawn_lines(accuracy)) == {"train", "test"}
    assert lmn_axis.get_xscale() == "log" and lmn_axis.get_ylabel() == "LMN (hidden1 → logits), N = 40"
    assert accuracy.get_title(loc="left").startswith("addition mod 31 (torch): mean of 2 seeds")
    assert figure.axes[3].get_title(loc="left").startswith("5-bit XOR (torch): seed 0")
    linear = training_figure(runs, framework="torch", log_steps=False)
    np.testing.assert_array_equal(drawn_lines(linear.axes[1])["LMN hidden1"][0], lmn.steps)
    with pytest.raises(ValueError, match="no runs"):
        training_figure({"modadd": []}, framework="torch")


def test_figure3_draws_each_probe_over_the_runs_that_measured_it(caplog):
    runs = [fake_run(seed, lmn_shift=seed) for seed in range(3)]
    for run in runs[1:]:  # seeds 1 and 2 measured hidden1 alone
        for row in run.rows:
            row.update(lmn_embedding=None, lmn_hidden2=None)
    (ax,) = probes_figure({"modadd": runs}, framework="torch").axes
    lines = drawn_lines(ax)
    assert sorted(lines) == ["embedding (seed 0)", "hidden1", "hidden2 (seed 0)"]
    np.testing.assert_array_equal(lines["hidden1"][1], aggregate(runs, "lmn_hidden1").mean)
    np.testing.assert_array_equal(lines["embedding (seed 0)"][0], [1, 11, 21, 31])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == figures_module.STEP_LABEL
    assert "not measured in every run" not in caplog.text


def test_figure4_draws_the_clustered_matrix_and_both_signs_of_the_spectrum():
    matrix, _ = blocks([5, 4, 3])
    eigenvalues = np.linalg.eigvalsh(matrix - 0.3 * np.eye(12))
    panel = ConnectivityPanel("memorization", 10, matrix, eigenvalues, 3.0, None)
    figure = connectivity_figure([panel], title="test")
    matrix_ax, spectrum_ax = figure.axes[:2]  # then the colorbar, an axes of its own
    order = figure4_clustering(matrix, 0).order
    np.testing.assert_array_equal(matrix_ax.get_images()[0].get_array(), matrix[np.ix_(order, order)])
    positive, negative = drawn_lines(spectrum_ax)  # in the order drawn
    assert positive.startswith("λ > 0: 3 eigenvalues") and negative.startswith("|λ|, λ < 0: 9 eigenvalues")
    np.testing.assert_allclose(drawn_lines(spectrum_ax)[negative][1], np.full(9, 0.3))
    assert figure.get_suptitle() == "test"


def test_figure3_looks_as_it_did(tmp_path):
    # one picture against a committed reference: tests/tasks/reference/fig3.png (regenerate it with
    # this figure's code when the drawing changes on purpose, and look at it)
    runs = {"modadd": [fake_run(0), fake_run(1, lmn_shift=1.0)], "xor": [fake_run(0, generalization=None)]}
    drawn = figure_probes(runs, tmp_path / "fig3.png", framework="torch")
    reference = Path(__file__).parent / "reference" / "fig3.png"
    assert compare_images(str(reference), str(drawn), tol=REFERENCE_TOLERANCE) is None


def test_drawing_leaves_the_users_matplotlib_backend_alone(tmp_path):
    script = f"""
import matplotlib
from tests.tasks.test_task_figures import fake_run
from reference_tasks.report.figures import figure_training
figure_training({{"modadd": [fake_run(0)]}}, {str(tmp_path / "f.png")!r}, framework="torch")
print(matplotlib.get_backend())
"""
    env = {**os.environ, "MPLBACKEND": "svg"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "svg"
    assert matplotlib.image.imread(tmp_path / "f.png").shape[2] in (3, 4)  # a PNG, drawn with Agg
