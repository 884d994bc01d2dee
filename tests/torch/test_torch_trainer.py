"""reference_tasks.torch_trainer: short runs of the paper's recipe."""

import numpy as np
import pytest
import torch
from run_folder_checks import check_run_folder

from reference_tasks.recipe import TrainConfig
from reference_tasks.runs import read_metrics
from reference_tasks.torch_model import GrokMLP
from reference_tasks.torch_trainer import train


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    config = TrainConfig(steps=300, lmn_samples=16, n_checkpoints=6, progress=False)
    return config, train(config, tmp_path_factory.mktemp("modadd"))


def test_short_run_memorizes_addition_mod_31(short_run):
    _, result = short_run
    assert result.summary["memorization_step"] is not None and result.summary["memorization_step"] <= 300
    assert result.summary["final_train_acc"] == 1.0


def test_run_folder_has_the_schema(short_run):
    config, result = short_run
    check_run_folder(config, result, "torch", "model.pt")


def test_saved_weights_reload_into_the_model(short_run):
    _, result = short_run
    model = GrokMLP(31, 31)
    model.load_state_dict(torch.load(result.out_dir / "model.pt"))
    pairs = torch.arange(31).repeat(2, 1).T
    with torch.no_grad():
        assert torch.equal(model(pairs), result.model(pairs))


def test_same_seed_gives_identical_metrics_and_leaves_the_global_rng_alone(tmp_path):
    config = TrainConfig(steps=40, lmn_samples=8, n_checkpoints=3, progress=False)
    rng_state = torch.random.get_rng_state()
    first = train(config, tmp_path / "a").out_dir / "metrics.csv"
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    second = train(config, tmp_path / "b").out_dir / "metrics.csv"
    other = train(
        TrainConfig(steps=40, lmn_samples=8, n_checkpoints=3, progress=False, seed=1), tmp_path / "c"
    )
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != (other.out_dir / "metrics.csv").read_bytes()


@pytest.mark.parametrize(
    ("task", "options"),
    [("s4", {"task": "s4", "dtype": "float64"}), ("xor", {"task": "xor", "shared_embedding": False})],
)
def test_other_tasks_dtypes_and_embeddings(tmp_path, task, options):
    config = TrainConfig(
        steps=20, lmn_samples=6, checkpoint_steps=(0, 20), probes=("hidden1",), progress=False, **options
    )
    result = train(config, tmp_path)
    rows = read_metrics(tmp_path / "metrics.csv")
    measured = [row["step"] for row in rows if row["lmn_hidden1"] is not None]
    assert measured == [0, 20]
    assert all(row["lmn_embedding"] is None for row in rows)
    parameter = next(result.model.parameters())
    assert parameter.dtype == (torch.float64 if config.dtype == "float64" else torch.float32)
    assert result.summary["task"] == task
    assert np.isfinite(rows[-1]["train_loss"])
