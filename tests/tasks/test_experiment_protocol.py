"""The experiment protocol without a framework: resolution of names, data checks, recipes, configs
(docs/design.md, section 2.6)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tomllib
from hypothesis import given
from hypothesis import strategies as st

from reference_tasks.experiment import (
    ENTRY_POINT_GROUP,
    Criterion,
    ExperimentError,
    Model,
    Recipe,
    Task,
    TaskData,
    registered_experiments,
    resolve_task,
)
from reference_tasks.experiment.registry import PACKAGE_EXPERIMENTS
from reference_tasks.training.recipe import TrainConfig, batch_indices, train_config_from_json

ROOT = Path(__file__).resolve().parents[2]
BITS = ROOT / "tests" / "experiments" / "bits_experiment.py"


def write_distribution(folder: Path, entries: dict[str, str]) -> None:
    """An installed distribution's metadata in ``folder`` (on sys.path), registering ``entries``."""
    info = folder / "lmn_test_experiments-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lmn-test-experiments\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")


def test_the_package_registers_its_experiments_in_pyproject_as_in_the_registry():
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert table == PACKAGE_EXPERIMENTS
    assert list(registered_experiments())[:3] == ["modadd", "s4", "xor"]


def test_the_paper_tasks_are_tasks_of_the_reference_mlp():
    s4 = resolve_task("s4")
    assert (s4.name, s4.loss, s4.recipe.weight_decay, s4.criterion) == (
        "s4",
        "cross_entropy",
        1.0,
        Criterion(),
    )
    assert resolve_task("modadd").recipe.probes == ("embedding", "hidden1", "hidden2")
    assert resolve_task("xor").model is resolve_task("modadd").model
    assert resolve_task("modadd").model.headline_probe == "hidden1"
    assert resolve_task("modadd").make_data().n_samples == 961


def test_a_file_and_a_module_function_resolve_to_the_same_task(monkeypatch):
    monkeypatch.syspath_prepend(str(BITS.parent))
    from_file = resolve_task(f"{BITS}:task")
    from_module = resolve_task("bits_experiment:task")
    assert from_file.name == from_module.name == "bits"
    assert from_file.recipe == from_module.recipe and from_file.criterion == Criterion(1.0, 0.9)
    data = from_file.make_data()
    assert data.inputs.shape == (64, 6) and data.labels.tolist()[:8] == [0, 1, 1, 0, 1, 0, 0, 1]


def test_an_entry_point_registers_a_task_by_name(tmp_path, monkeypatch):
    write_distribution(tmp_path, {"bits-by-name": "bits_experiment:task"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(BITS.parent))
    assert registered_experiments()["bits-by-name"] == "bits_experiment:task"
    assert resolve_task("bits-by-name").name == "bits"
    config = TrainConfig.for_task("bits-by-name", seed=3)
    assert (config.task, config.task_source) == ("bits", "bits-by-name")


def test_a_name_registered_twice_is_refused(tmp_path, monkeypatch):
    write_distribution(tmp_path, {"xor": "elsewhere:task"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ExperimentError, match=r"task 'xor' is registered twice .*experiment.paper:bitwise_xor_task"
    ):
        registered_experiments()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("division", r"task 'division' is not registered; registered tasks: modadd, s4, xor"),
        ("no_such_module_here:task", r"cannot import module 'no_such_module_here'"),
        (f"{BITS}:nothing", r"has no function 'nothing'"),
        (f"{BITS}:not_a_task", r"not_a_task\(\) returned dict, not a reference_tasks.experiment.Task"),
        (
            f"{BITS}:unknown_loss",
            r"task 'bad_loss': loss 'hinge' is not known; choose one of cross_entropy, mse",
        ),
        ("/no/such/file.py:task", r"no file /no/such/file.py"),
        ("module:", r"expected module:function or path/to/file.py:function"),
    ],
)
def test_sources_that_name_no_task_are_refused(source, message):
    with pytest.raises(ExperimentError, match=message):
        resolve_task(source)


def test_broken_data_is_refused_naming_the_task_and_the_sample():
    with pytest.raises(ExperimentError, match=r"task 'bad_labels': label 2 of sample 5 is out of range 0..1"):
        resolve_task(f"{BITS}:labels_out_of_range").make_data()
    model = resolve_task("xor").model

    def task_of(data: TaskData) -> Task:
        return Task("broken", data=lambda: data, model=model)

    cases = [
        (TaskData(np.zeros((3, 2)), np.zeros(4, dtype=int), 2), r"inputs \(3, 2\) and labels \(4,\)"),
        (
            TaskData(np.zeros((3, 2)), np.zeros(3), 2),
            "labels must be integer class indices, got dtype float64",
        ),
        (TaskData(np.zeros((3, 2)), np.zeros(3, dtype=int), 1), "n_classes must be an integer >= 2"),
        (TaskData(np.array([[0.0], [np.nan]]), np.zeros(2, dtype=int), 2), "input of sample 1 is not finite"),
        (TaskData(np.array([[0, 7]]), np.zeros(1, dtype=int), 2, n_tokens=5), r"token 7 of sample 0 .* 0..4"),
    ]
    for data, message in cases:
        with pytest.raises(ExperimentError, match=f"task 'broken': {message}"):
            task_of(data).make_data()


def test_models_and_recipes_that_break_the_protocol_are_refused():
    build = resolve_task("xor").model.torch
    with pytest.raises(ValueError, match="headline probe 'out' is not one of its probes a, b"):
        Model("m", probes=("a", "b"), headline_probe="out", torch=build)
    with pytest.raises(ValueError, match="model 'm' has no builder"):
        Model("m", probes=("a",), headline_probe="a")
    with pytest.raises(ValueError, match="optimizer 'adam' is not known; choose one of adamw, sgd"):
        Recipe(optimizer="adam")
    with pytest.raises(ValueError, match="batch_size must be None"):
        Recipe(batch_size=0)
    with pytest.raises(ValueError, match=r"criterion test_acc must be a number in \(0, 1\]"):
        Criterion(test_acc=1.5)
    model = resolve_task("xor").model
    with pytest.raises(
        ExperimentError, match=r"task 't': recipe probes \['hidden3'\] are not probes of model"
    ):
        Task("t", data=resolve_task("xor").data, model=model, recipe=Recipe(probes=("hidden3",)))
    with pytest.raises(
        ValueError, match=r"task 'xor': unknown probes \['hidden3'\]; model 'reference MLP' has"
    ):
        TrainConfig.for_task("xor", probes=("hidden3",))


def test_a_config_starts_from_its_tasks_recipe_and_settings_override_it():
    config = TrainConfig.for_task(f"{BITS}:task", steps=7, seed=2)
    assert (config.task, config.task_source) == ("bits", f"{BITS}:task")
    assert (config.steps, config.optimizer, config.batch_size, config.learning_rate) == (7, "sgd", 8, 0.5)
    assert (config.probes, config.headline_probe, config.criterion) == (
        ("linear",),
        "linear",
        Criterion(1.0, 0.9),
    )
    assert TrainConfig.for_task("s4") == TrainConfig(task="s4")  # the paper's defaults are its recipe
    relative = TrainConfig.for_task("tests/experiments/bits_experiment.py:task")  # from the repository root
    assert relative.task_source == f"{BITS}:task"  # recorded by its absolute path


def test_config_json_written_before_the_protocol_reads_as_the_papers_run():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    new = {
        "task_source",
        "optimizer",
        "betas",
        "batch_size",
        "loss",
        "model_options",
        "headline_probe",
        "criterion",
    }
    record = {k: v for k, v in dataclasses.asdict(TrainConfig(task="xor")).items() if k not in new}
    assert set(record) == fields - new
    config = train_config_from_json(record)
    assert config == TrainConfig(task="xor")
    assert (config.loss, config.criterion, config.headline_probe, config.batch_size) == (
        "cross_entropy",
        Criterion(),
        "hidden1",
        None,
    )


@given(
    n_train=st.integers(1, 60),
    batch_size=st.integers(1, 70),
    seed=st.integers(0, 2**31),
    epochs=st.integers(1, 3),
)
def test_the_mini_batch_stream_covers_each_epoch_once_and_depends_on_the_step_alone(
    n_train, batch_size, seed, epochs
):
    if batch_size >= n_train:
        assert batch_indices(n_train, batch_size, seed, 5).tolist() == list(range(n_train))
        return
    steps = -(-epochs * n_train // batch_size)
    stream = np.concatenate([batch_indices(n_train, batch_size, seed, step) for step in range(steps)])
    assert all(batch_indices(n_train, batch_size, seed, step).size == batch_size for step in range(steps))
    for epoch in range(epochs):
        assert sorted(stream[epoch * n_train : (epoch + 1) * n_train].tolist()) == list(range(n_train))
    assert np.array_equal(batch_indices(n_train, batch_size, seed, steps - 1), stream[-batch_size:])
