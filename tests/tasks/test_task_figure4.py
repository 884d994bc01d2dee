"""Figure 4's matrices kept beside the snapshots: computed once, recomputed when a snapshot changes."""

from __future__ import annotations

import numpy as np
import pytest
from tasks.test_task_report import make_run, random_snapshot

from reference_tasks.report import figure4
from reference_tasks.report.build import build_report
from reference_tasks.report.clustering import figure4_clustering
from reference_tasks.report.figure4 import CACHE_DIR, cached_checkpoint_lmn, checkpoint_lmn, prepare_figure4
from reference_tasks.report.run_data import load_run
from reference_tasks.runfolder.weights import save_snapshot


@pytest.fixture
def run_dir(tmp_path):
    return make_run(tmp_path, "torch", "xor", 3, memorization=20, generalization=60, snapshots=[0, 20, 60])


@pytest.fixture
def counted(monkeypatch):
    """Count the recomputations from snapshots."""
    calls = []

    def counting(run, step):
        calls.append(step)
        return checkpoint_lmn(run, step)

    monkeypatch.setattr(figure4, "checkpoint_lmn", counting)
    return calls


def test_prepare_computes_each_panel_once_and_the_report_reuses_it(run_dir, counted):
    assert prepare_figure4(run_dir) == 3
    assert counted == [0, 20, 60]
    assert sorted(path.name for path in (run_dir / CACHE_DIR).iterdir()) == [
        "hidden1_step_000000.npz",
        "hidden1_step_000020.npz",
        "hidden1_step_000060.npz",
    ]
    build_report(run_dir.parent.parent, run_dir.parent.parent / "report")
    assert counted == [0, 20, 60]  # the report drew from the cache


def test_cached_results_equal_fresh_ones(run_dir):
    run = load_run(run_dir)
    first, first_order = cached_checkpoint_lmn(run, 20)
    again, again_order = cached_checkpoint_lmn(run, 20)
    fresh = checkpoint_lmn(run, 20)
    assert again.lmn == first.lmn == fresh.lmn
    np.testing.assert_array_equal(again.connectivity, fresh.connectivity)
    np.testing.assert_array_equal(again.eigenvalues, fresh.eigenvalues)
    assert (again.n_samples, again.n_points, again.n_outputs) == (
        fresh.n_samples,
        fresh.n_points,
        fresh.n_outputs,
    )
    np.testing.assert_array_equal(again_order.order, figure4_clustering(fresh.connectivity, run.seed).order)
    np.testing.assert_array_equal(again_order.labels, first_order.labels)


def test_a_changed_snapshot_is_recomputed(run_dir, counted):
    run = load_run(run_dir)
    before, _ = cached_checkpoint_lmn(run, 20)
    save_snapshot(run_dir, 20, random_snapshot("xor", 99, 20))  # the run was rewound and trained again
    after, _ = cached_checkpoint_lmn(run, 20)
    assert counted == [20, 20]
    assert after.lmn != before.lmn
    assert after.lmn == checkpoint_lmn(run, 20).lmn


def test_a_damaged_cache_file_is_recomputed(run_dir, counted):
    run = load_run(run_dir)
    cached_checkpoint_lmn(run, 0)
    (run_dir / CACHE_DIR / "hidden1_step_000000.npz").write_bytes(b"not an npz file")
    result, _ = cached_checkpoint_lmn(run, 0)
    assert counted == [0, 0] and result.lmn == checkpoint_lmn(run, 0).lmn


def test_a_run_folder_that_cannot_hold_a_cache_is_drawn_without_one(run_dir):
    (run_dir / CACHE_DIR).write_text("a file where the cache folder would go")
    run = load_run(run_dir)
    result, _ = cached_checkpoint_lmn(run, 0)
    assert result.lmn == checkpoint_lmn(run, 0).lmn
    assert (run_dir / CACHE_DIR).read_text() == "a file where the cache folder would go"


def test_prepare_skips_an_unfinished_run(tmp_path):
    folder = make_run(
        tmp_path, "torch", "s4", 0, memorization=20, generalization=None, snapshots=[0], finished=False
    )
    assert prepare_figure4(folder) == 0
    assert not (folder / CACHE_DIR).exists()
