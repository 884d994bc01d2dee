"""A sweep's report: its phase diagram is drawn over the fields swept over several values."""

from __future__ import annotations

import shutil

from tasks.test_task_report import make_run

from reference_tasks.report import sweep_report
from reference_tasks.sweep.plan import Sweep


def finished_runs(sweep: Sweep, out, scratch) -> None:
    """Every run of ``sweep`` finished under ``out`` (a generalizing run folder each)."""
    for run in sweep.runs(out):
        make_run(scratch, "torch", "xor", run.config.seed, memorization=20, generalization=60, snapshots=[])
        run.out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(scratch / "torch" / f"xor-seed{run.config.seed}", run.out_dir)


def test_a_field_given_one_value_is_a_setting_not_an_axis(tmp_path, monkeypatch):
    sweep = Sweep(("xor",), (0, 1), "torch", {"weight_decay": (0.2,), "learning_rate": (0.001, 0.003)})
    assert sweep.fields == ("weight_decay", "learning_rate") and sweep.axes == ("learning_rate",)
    finished_runs(sweep, tmp_path / "out", tmp_path / "scratch")
    drawn, draw = [], sweep_report.figure_phase_diagram

    def recording(cells, fields, path, **kwargs):
        drawn.append((cells, fields))
        return draw(cells, fields, path, **kwargs)

    monkeypatch.setattr(sweep_report, "figure_phase_diagram", recording)
    report = sweep_report.write_sweep_report(sweep, tmp_path / "out")
    assert [path.name for path in report.figures] == ["phase_diagram_torch.png"]
    [(cells, fields)] = drawn
    assert fields == ("learning_rate", "")
    assert sorted(cells["xor"]) == [(0.001, ""), (0.003, "")]
    assert all(cell["n_runs"] == 2 and cell["grokked_fraction"] == 1.0 for cell in cells["xor"].values())
    assert "weight_decay" in report.summary_md.read_text()  # the setting stays in the tables


def test_fields_of_one_value_alone_give_the_report_over_seeds(tmp_path):
    sweep = Sweep(("xor",), (0, 1), "torch", {"weight_decay": (0.2,)})
    assert sweep.axes == ()
    finished_runs(sweep, tmp_path / "out", tmp_path / "scratch")
    report = sweep_report.write_sweep_report(sweep, tmp_path / "out")
    names = [path.name for path in report.figures]
    assert "fig2_training_torch.png" in names and not any(name.startswith("phase_diagram") for name in names)
    assert not (tmp_path / "out" / "sweep" / "phase_diagram_torch.png").exists()
