"""build_report on small synthetic run folders: files, numbers, warnings, no framework import."""

import json
import logging
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

import lmn_core
from reference_tasks.model.numpy_model import NumpyGrokMLP
from reference_tasks.report.build import _progress, build_report
from reference_tasks.report.tables import aggregate_values
from reference_tasks.runfolder import MetricsWriter, write_json
from reference_tasks.runfolder.run_summary import TABLE_QUANTITIES, RunFacts, RunSummary
from reference_tasks.runfolder.weights import save_snapshot
from reference_tasks.tasks import lmn_sample_indices, make_task
from reference_tasks.training.recipe import TrainConfig, train_config_from_json

EMBEDDING, HIDDEN, STEPS, N_LMN = 4, 6, 100, 40
CHECKPOINTS = list(range(0, STEPS + 1, 10))
OPTIONS = {"modadd": {"p": 7}, "s4": {"n": 4}, "xor": {"n_bits": 3}}
TASKS = {name: make_task(name, **options) for name, options in OPTIONS.items()}


def assert_png(path):
    """The report wrote a picture at ``path`` (what each figure draws: tests/tasks/test_task_figures.py)."""
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200


def config_for(task, seed):
    return TrainConfig(
        task=task,
        task_options=OPTIONS[task],
        seed=seed,
        steps=STEPS,
        embedding_dim=EMBEDDING,
        hidden_dim=HIDDEN,
        lmn_samples=N_LMN,
        checkpoint_steps=tuple(CHECKPOINTS),
    )


def random_snapshot(task, seed, step):
    rng = np.random.default_rng([seed, step])
    data = TASKS[task]
    shapes = {
        "embedding.tables.0.weight": (data.n_tokens, EMBEDDING),
        "linear1.weight": (HIDDEN, 2 * EMBEDDING),
        "linear1.bias": (HIDDEN,),
        "linear2.weight": (HIDDEN, HIDDEN),
        "linear2.bias": (HIDDEN,),
        "output.weight": (data.n_classes, HIDDEN),
        "output.bias": (data.n_classes,),
    }
    return {name: (2.0 * rng.standard_normal(shape)).astype(np.float32) for name, shape in shapes.items()}


def true_lmn(config, snapshot):
    """The LMN of a snapshot, computed here without the report's code path."""
    data = TASKS[config.task]
    model = NumpyGrokMLP.from_snapshot(snapshot)
    pairs = data.pairs[lmn_sample_indices(data.n_samples, size=config.lmn_samples, seed=config.seed)]
    return lmn_core.lmn(model.head("hidden1"), model.activations(pairs, "hidden1")).lmn


def loss_at(step):
    return 5.0 - step / 25


def make_run(
    runs_dir, framework, task, seed, *, memorization, generalization, snapshots, finished=True, **lmn_at
):
    """A run folder: LMN exactly linear in test loss in the generalizing phase, L2 a parabola there.

    ``snapshots`` are the steps with random weight snapshots; the LMN recorded at a phase
    point is that snapshot's true LMN (times ``lmn_at["factor"]`` at step 0 if given).
    ``lmn_at["after"]`` gives the LMN at the checkpoints after generalization.
    """
    config = config_for(task, seed)
    folder = Path(runs_dir) / framework / f"{task}-seed{seed}"
    folder.mkdir(parents=True)
    write_json(
        folder / "config.json", {"framework": framework, f"{framework}_version": "x", **asdict(config)}
    )
    truth = {}
    for step in snapshots:
        snapshot = random_snapshot(task, seed, step)
        save_snapshot(folder, step, snapshot)
        truth[step] = true_lmn(config, snapshot)
    end = generalization if generalization is not None else STEPS
    a, b = truth.get(memorization, 30.0), truth.get(end, 10.0)
    slope = (a - b) / (loss_at(memorization) - loss_at(end))
    after = iter(lmn_at.get("after", [b - k for k in range(1, 11)]))  # by default LMN falls on
    middle = (memorization + end) / 2
    with MetricsWriter(folder / "metrics.csv") as writer:
        for step in range(STEPS + 1):
            row = {
                "step": step,
                "train_loss": 0.1,
                "test_loss": loss_at(step),
                "train_acc": 1.0 if step >= memorization else step / (2 * memorization),
                "test_acc": 1.0 if generalization is not None and step >= generalization else 0.5,
                "l2_norm": 40.0 + ((step - middle) / 10) ** 2,
            }
            if step in CHECKPOINTS:
                if step == 0:
                    lmn = truth.get(0, 20.0) * lmn_at.get("factor", 1.0)
                elif step < memorization:
                    lmn = 25.0
                elif step <= end:
                    lmn = b + slope * (loss_at(step) - loss_at(end))
                else:
                    lmn = next(after)
                row.update(lmn_embedding=50.0, lmn_hidden1=lmn, lmn_hidden2=1.0, lmn_n_samples=N_LMN)
            writer.write(row)
    if finished:
        stale = RunSummary(task, framework, seed, STEPS, memorization_step=-1)  # rebuilt from metrics.csv
        write_json(folder / "summary.json", stale.with_facts(RunFacts(seconds_total=1.0)).to_json())
    return folder


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    make_run(runs_dir, "torch", "modadd", 0, memorization=30, generalization=70, snapshots=[0, 30, 70])
    make_run(runs_dir, "torch", "modadd", 1, memorization=40, generalization=80, snapshots=[0, 40, 80])
    make_run(
        runs_dir,
        "torch",
        "xor",
        0,
        memorization=20,
        generalization=60,
        snapshots=[],
        after=[8.0, 9.5, 7.0, 7.5],
    )
    make_run(runs_dir, "torch", "s4", 0, memorization=20, generalization=None, snapshots=[0], finished=False)
    make_run(runs_dir, "keras", "s4", 0, memorization=30, generalization=None, snapshots=[0, 30, 100])
    make_run(
        runs_dir,
        "keras",
        "xor",
        0,
        memorization=20,
        generalization=60,
        snapshots=[0, 20, 60],
        factor=1.01,
        after=[8.0, 9.5, 7.0, 7.5],
    )
    logger = logging.getLogger("reference_tasks")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        result = build_report(runs_dir)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    summary = json.loads(result.summary_json.read_text())
    return runs_dir, result, summary, [record.getMessage() for record in records]


def test_files_and_paths(report):
    runs_dir, result, summary, _ = report
    assert result.out_dir == runs_dir / "report"
    names = sorted(path.name for path in result.figures)
    expected = [f"fig2_training_{fw}.png" for fw in ("keras", "torch")]
    expected += [f"fig2_training_{fw}_linear.png" for fw in ("keras", "torch")]
    expected += [f"fig3_probes_{fw}.png" for fw in ("keras", "torch")]
    expected += [f"fig_claim_{fw}.png" for fw in ("keras", "torch")]
    expected += [f"fig_claim_r2_{fw}.png" for fw in ("keras", "torch")]
    expected += ["fig4_connectivity_keras_s4.png", "fig4_connectivity_keras_xor.png"]
    expected += ["fig4_connectivity_torch_modadd.png"]
    expected += [f"fig_measures_{run}.png" for run in ("keras_s4", "keras_xor", "torch_modadd", "torch_xor")]
    assert names == sorted(expected)
    for path in result.figures:
        assert path.parent == result.out_dir
        assert_png(path)
    assert result.summary_md.exists() and result.summary_json.exists()
    assert [path.relative_to(runs_dir).as_posix() for path in result.runs] == [
        "keras/s4-seed0",
        "keras/xor-seed0",
        "torch/modadd-seed0",
        "torch/modadd-seed1",
        "torch/xor-seed0",
    ]
    assert [path.relative_to(runs_dir).as_posix() for path in result.skipped] == ["torch/s4-seed0"]
    assert summary["figures"] == [path.name for path in result.figures]


def test_warnings(report):
    _, _, _, messages = report
    assert any("torch/s4-seed0: the run is not finished" in m for m in messages)
    assert any("Figure 4 of torch xor is skipped: no run folder has weight snapshots" in m for m in messages)
    mismatches = [m for m in messages if "recomputed from the snapshot" in m]
    assert len(mismatches) == 1 and "keras/xor-seed0 step 0" in mismatches[0]


def runs_of(summary, framework, task):
    """The summaries of a table's runs, by seed."""
    runs = [RunSummary.from_json(record) for record in summary["runs"]]
    return sorted((r for r in runs if (r.framework, r.task) == (framework, task)), key=lambda r: r.seed)


def test_each_table_quantity_is_its_mean_and_std_over_seeds(report):
    _, _, summary, _ = report
    for entry in summary["tables"]:
        runs = runs_of(summary, entry["framework"], entry["task"])
        assert [run.seed for run in runs] == entry["seeds"]
        assert [quantity.key for quantity in TABLE_QUANTITIES] == list(entry["quantities"])
        for quantity in TABLE_QUANTITIES:
            values = [quantity.read(run) for run in runs if quantity.read(run) is not None]
            assert entry["quantities"][quantity.key] == {
                "mean": pytest.approx(np.mean(values)) if values else None,
                "std": pytest.approx(np.std(values, ddof=1)) if len(values) > 1 else None,
                "n": len(values),
            }


def test_phase_steps_rebuilt_from_metrics(report):
    _, _, summary, _ = report
    modadd = runs_of(summary, "torch", "modadd")
    assert [run.memorization_step for run in modadd] == [30, 40]
    assert [run.generalization_step for run in modadd] == [70, 80]
    assert [run.lmn_n_samples for run in modadd] == [40, 40]
    (s4,) = runs_of(summary, "keras", "s4")
    assert (s4.memorization_step, s4.generalization_step) == (30, None)
    assert modadd[0].lmn_steps == {"init": 0, "memorization": 30, "generalization": 70, "end": 100}
    assert modadd[0].facts.seconds_total == 1.0  # the facts of summary.json, the rest from metrics.csv


def test_fits_pearson_and_lmn_at_phase_points(report):
    _, _, summary, _ = report
    modadd = runs_of(summary, "torch", "modadd")
    # LMN is exactly linear in test loss over the generalizing phase; the L2 norm is a
    # parabola symmetric about the middle of it, so it has no linear trend at all
    assert [run.fit_r2("lmn") for run in modadd] == [pytest.approx(1.0)] * 2
    assert [abs(run.pearson["lmn"]) for run in modadd] == [pytest.approx(1.0)] * 2
    assert [run.fit_r2("l2") for run in modadd] == [pytest.approx(0.0, abs=1e-12)] * 2
    assert [run.pearson["l2"] for run in modadd] == [pytest.approx(0.0, abs=1e-6)] * 2
    assert [run.pearson_n_points for run in modadd] == [5, 5]
    expected = [
        true_lmn(config_for("modadd", seed), random_snapshot("modadd", seed, step))
        for seed, step in ((0, 30), (1, 40))
    ]
    assert [run.lmn["memorization"] for run in modadd] == pytest.approx(expected, rel=1e-9)


def test_xor_rebound(report):
    _, _, summary, _ = report
    (xor,) = runs_of(summary, "torch", "xor")
    # after generalization at 60: ..., 8.0 @70, 9.5 @80, 7.0 @90, 7.5 @100
    assert xor.rebound_steps == {"min": 70, "max": 80}
    assert xor.rebound == {"min": 8.0, "max": 9.5}
    assert all(run.rebound == {"min": None, "max": None} for run in runs_of(summary, "torch", "modadd"))


def test_connectivity_checks(report):
    _, _, summary, _ = report
    checks = {(c["framework"], c["task"], c["seed"], c["point"]): c for c in summary["connectivity_checks"]}
    assert set(checks) == {
        ("torch", "modadd", 0, "init"),
        ("torch", "modadd", 0, "memorization"),
        ("torch", "modadd", 0, "generalization"),
        ("keras", "s4", 0, "init"),
        ("keras", "s4", 0, "memorization"),
        ("keras", "s4", 0, "generalization"),
        ("keras", "xor", 0, "init"),
        ("keras", "xor", 0, "memorization"),
        ("keras", "xor", 0, "generalization"),
    }
    assert checks[("keras", "s4", 0, "generalization")]["step"] == 100  # never generalized: last checkpoint
    # float32 snapshots: the report folds the head's first layer, which reorders float32 rounding
    assert checks[("keras", "xor", 0, "init")]["relative_difference"] == pytest.approx(0.01 / 1.01, abs=1e-4)
    for key, check in checks.items():
        assert check["n_samples"] == N_LMN
        if key != ("keras", "xor", 0, "init"):
            assert check["relative_difference"] < 1e-4


def test_summary_markdown(report):
    _, result, _, _ = report
    text = result.summary_md.read_text()
    headline = "The LMN is that at the headline probe, `hidden1`."
    assert f"## addition mod 31, torch (seeds 0, 1)\n\n{headline}" in text
    assert "| memorization step (train acc at the criterion) | 35 ± 7 | 2 |" in text
    assert "| generalization step (test acc at the criterion) | – | 0 |" in text
    assert "| LMN rebound: maximum | 9.50 | 1 |" in text
    # the claims over seeds come first: LMN exactly linear in test loss, L2 a parabola
    claims = text.index("## The paper's claims over seeds")
    assert claims < text.index("## Overview")
    assert "| addition mod 31 | torch | 2 | 40 | 2/2 | 75 [70, 80] (paper: 7600) |" in text
    assert "| 1.00, 1.00 | 0.00, 0.00 | +1.000 [+1.000, +1.000], p = 0.5 | 0/2 | 0/2 |" in text
    # the interval is clear of zero, but two seeds are too few for the signed-rank test
    assert (
        "- **addition mod 31, torch**: the claim that LMN is more linear in test loss than the L2 norm is "
        "not shown: Wilcoxon's p = 0.5 is not below 0.05; 2 seeds cannot reach it" in text
    )
    # the overview puts every task and framework side by side, task by task
    assert "| quantity | modadd torch | s4 keras | xor torch | xor keras |" in text
    assert "| memorization step (train acc at the criterion) | 35 ± 7 | 30 | 20 | " in text


def test_aggregate_values():
    assert aggregate_values([1.0, None, 3.0, float("nan")]) == {
        "mean": 2.0,
        "std": pytest.approx(2**0.5),
        "n": 2,
    }
    assert aggregate_values([]) == {"mean": None, "std": None, "n": 0}


def test_train_config_from_json_round_trip():
    config = config_for("xor", 3)
    assert train_config_from_json(json.loads(json.dumps({"framework": "torch", **asdict(config)}))) == config


def test_empty_runs_dir_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no finished runs"):
        build_report(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "missing")


def test_report_imports_no_framework():
    code = (
        "import sys, reference_tasks.report.build, reference_tasks.report.figures\n"
        "import reference_tasks.model.numpy_model\n"
        "bad = sorted(m for m in ('torch', 'tensorflow', 'keras', 'jax') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_progress_bars_pass_the_items_through():
    pytest.importorskip("tqdm")
    assert list(_progress(True, "test")(iter([3, 1, 2]))) == [3, 1, 2]
    assert list(_progress(False, "test")([3, 1, 2])) == [3, 1, 2]
