"""reference_tasks.cli without training: argument parsing, the run plan, refusals."""

from pathlib import Path

import pytest

from reference_tasks import cli
from reference_tasks.runfolder import write_json
from reference_tasks.training.recipe import TrainConfig


def _args(*argv):
    return cli._parser().parse_args(["reproduce", *argv])


def test_default_plan_is_the_paper_experiment():
    runs = cli.plan_runs(_args())
    assert [(run.framework, run.config.task, run.config.seed) for run in runs] == [
        ("torch", "modadd", 0),
        ("torch", "s4", 0),
        ("torch", "xor", 0),
    ]
    assert all(run.config == TrainConfig(task=run.config.task) for run in runs)
    tasks = ("modadd", "s4", "xor")
    assert [run.out_dir for run in runs] == [Path("runs/torch") / f"{task}-seed0" for task in tasks]


def test_quick_and_explicit_settings():
    quick = cli.plan_runs(_args("--quick", "--task", "xor", "--seeds", "3", "1", "3", "--out", "r"))
    assert [(run.config.seed, run.config.steps, run.config.lmn_samples) for run in quick] == [
        (3, 8000, 256),
        (1, 8000, 256),
    ]
    assert quick[0].out_dir == Path("r/torch/xor-seed3")
    explicit = cli.plan_runs(_args("--quick", "--steps", "50", "--lmn-samples", "9", "--framework", "keras"))
    settings = {(run.framework, run.config.steps, run.config.lmn_samples) for run in explicit}
    assert settings == {("keras", 50, 9)}


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(
        SystemExit, match="lmn: division-seed0: task 'division' is not registered; registered "
    ):
        cli.main(["reproduce", "--task", "division", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--batched trains PyTorch models only"):
        cli.main(["reproduce", "--framework", "keras", "--batched", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--workers must be at least 1, got 0"):
        cli.main(["reproduce", "--jobs", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--threads must be at least 1, got 0"):
        cli.main(["reproduce", "--threads", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="is not a folder of runs"):
        cli.main(["report", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit, match=r"^lmn: no finished runs under .*0 unfinished"):
        cli.main(["report", str(tmp_path)])


def test_a_finished_run_of_another_config_is_not_overwritten(tmp_path):
    folder = tmp_path / "torch" / "modadd-seed0"
    folder.mkdir(parents=True)
    config = {"framework": "torch", **TrainConfig(steps=30).__dict__}
    write_json(folder / "config.json", config)
    write_json(folder / "summary.json", {"note": "written by a finished run"})
    with pytest.raises(SystemExit, match=r"steps: saved 30, now 40.*--fresh"):
        cli.main(["reproduce", "--task", "modadd", "--steps", "40", "--out", str(tmp_path), "--no-report"])
    assert (folder / "summary.json").read_text().count("written by a finished run") == 1
