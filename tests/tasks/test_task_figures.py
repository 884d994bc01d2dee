"""Spectral ordering of connectivity matrices and the figure functions of the report."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from reference_tasks.report import figures as figures_module
from reference_tasks.report.clustering import by_size, spectral_clustering
from reference_tasks.report.figures import (
    ConnectivityPanel,
    aggregate,
    figure_connectivity,
    figure_probes,
    figure_training,
)
from reference_tasks.report.run_data import RunData
from reference_tasks.runfolder import METRIC_COLUMNS
from reference_tasks.training.recipe import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.05  # something is drawn


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
    summary = {"memorization_step": memorization, "generalization_step": generalization, "lmn_n_samples": 40}
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


def test_figures_write_pngs(tmp_path):
    runs = {"modadd": [fake_run(0), fake_run(1, lmn_shift=1.0)], "xor": [fake_run(0, generalization=None)]}
    assert_png(figure_training(runs, tmp_path / "fig2.png", framework="torch"))
    assert_png(figure_training(runs, tmp_path / "fig2_linear.png", framework="torch", log_steps=False))
    assert_png(figure_probes(runs, tmp_path / "fig3.png", framework="torch"))
    matrix, _ = blocks([5, 4, 3])
    panel = ConnectivityPanel("memorization", 10, matrix, np.linalg.eigvalsh(matrix), 3.0, None)
    assert_png(figure_connectivity([panel, panel], tmp_path / "fig4.png", title="test"))
    with pytest.raises(ValueError, match="no runs"):
        figure_training({"modadd": []}, tmp_path / "empty.png", framework="torch")


def test_side_probes_measured_on_seed_0_alone_are_drawn_over_it(tmp_path, caplog, monkeypatch):
    runs = [fake_run(seed, lmn_shift=seed) for seed in range(3)]
    for run in runs[1:]:  # seeds 1 and 2 measured hidden1 alone
        for row in run.rows:
            row.update(lmn_embedding=None, lmn_hidden2=None)
    drawn = {}
    plot = figures_module._plot_curve

    def recording(ax, curve, color, label, **options):
        drawn[label] = curve
        plot(ax, curve, color, label, **options)

    monkeypatch.setattr(figures_module, "_plot_curve", recording)
    assert_png(figure_probes({"modadd": runs}, tmp_path / "fig3.png", framework="torch"))
    assert sorted(drawn) == ["embedding (seed 0)", "hidden1", "hidden2 (seed 0)"]
    assert drawn["hidden1"].n_runs == 3 and drawn["embedding (seed 0)"].steps.tolist() == [0, 10, 20, 30]
    assert "not measured in every run" not in caplog.text


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
    assert_png(tmp_path / "f.png")
