"""reference_tasks.training with the PyTorch engine: short runs of the paper's recipe."""

import numpy as np
import pytest
import torch
from quiet_training import train
from run_folder_checks import check_run_folder
from torch.nn import functional
from torch_threads import one_thread  # noqa: F401 (an autouse fixture)

from reference_tasks.model.torch_model import GrokMLP, build_model
from reference_tasks.runfolder import read_metrics
from reference_tasks.tasks import make_task, train_test_split
from reference_tasks.training.recipe import TrainConfig


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    config = TrainConfig(steps=300, lmn_samples=16, n_checkpoints=6)
    return config, train(config, tmp_path_factory.mktemp("modadd"))


def test_short_run_memorizes_addition_mod_31(short_run):
    _, result = short_run
    assert result.summary.memorization_step is not None and result.summary.memorization_step <= 300
    assert result.summary.final_train_acc == 1.0


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
    config = TrainConfig(steps=40, lmn_samples=8, n_checkpoints=3)
    rng_state = torch.random.get_rng_state()
    first = train(config, tmp_path / "a").out_dir / "metrics.csv"
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    second = train(config, tmp_path / "b").out_dir / "metrics.csv"
    other = train(TrainConfig(steps=40, lmn_samples=8, n_checkpoints=3, seed=1), tmp_path / "c")
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != (other.out_dir / "metrics.csv").read_bytes()


@pytest.mark.parametrize(
    ("task", "options"),
    [("s4", {"task": "s4", "dtype": "float64"}), ("xor", {"task": "xor", "shared_embedding": False})],
)
def test_other_tasks_dtypes_and_embeddings(tmp_path, task, options):
    config = TrainConfig(steps=20, lmn_samples=6, checkpoint_steps=(0, 20), probes=("hidden1",), **options)
    result = train(config, tmp_path)
    rows = read_metrics(tmp_path / "metrics.csv")
    measured = [row["step"] for row in rows if row["lmn_hidden1"] is not None]
    assert measured == [0, 20]
    assert all(row["lmn_embedding"] is None for row in rows)
    parameter = next(result.model.parameters())
    assert parameter.dtype == (torch.float64 if config.dtype == "float64" else torch.float32)
    assert result.summary.task == task
    assert np.isfinite(rows[-1]["train_loss"])


def textbook_rows(config, steps):
    """The recipe as a tutorial writes it: autograd, torch.optim.AdamW, one row per step."""
    task = make_task(config.task)
    train_index, test_index = train_test_split(task.n_samples, seed=config.seed)
    pairs, labels = torch.from_numpy(task.pairs), torch.from_numpy(task.labels)
    model = build_model(task.n_tokens, task.n_classes, dtype=getattr(torch, config.dtype), seed=config.seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    rows = []
    for _ in range(steps + 1):
        optimizer.zero_grad()
        logits = model(pairs[train_index])
        loss = functional.cross_entropy(logits, labels[train_index])
        with torch.no_grad():
            test_logits = model(pairs[test_index])
            norm = torch.linalg.vector_norm(torch.cat([p.flatten() for p in model.parameters()]))
        rows.append(
            {
                "train_loss": loss.item(),
                "test_loss": functional.cross_entropy(test_logits, labels[test_index]).item(),
                "train_acc": (logits.argmax(1) == labels[train_index]).sum().item() / train_index.size,
                "test_acc": (test_logits.argmax(1) == labels[test_index]).sum().item() / test_index.size,
                "l2_norm": norm.item(),
            }
        )
        loss.backward()
        optimizer.step()
    return rows


def test_the_trainer_follows_the_textbook_recipe(tmp_path):
    config = TrainConfig(steps=60, dtype="float64", probes=())
    rows = read_metrics(train(config, tmp_path).out_dir / "metrics.csv")
    expected = textbook_rows(config, 60)
    assert [row["step"] for row in rows] == list(range(61))
    for row, want in zip(rows, expected, strict=True):
        for column, value in want.items():
            assert row[column] == pytest.approx(value, rel=1e-10), (row["step"], column)
    assert (
        rows[-1]["train_loss"] < 0.9 * rows[0]["train_loss"]
        and rows[-1]["train_acc"] > 2 * rows[0]["train_acc"]
    )


def test_a_float32_model_takes_its_loss_in_float64(tmp_path):
    config = TrainConfig(steps=1, probes=())  # float32 weights, float64 loss: the reference recipe
    rows = read_metrics(train(config, tmp_path).out_dir / "metrics.csv")
    task = make_task("modadd")
    train_index, _ = train_test_split(task.n_samples, seed=0)
    model = build_model(task.n_tokens, task.n_classes, seed=0)
    with torch.no_grad():
        logits = model(torch.from_numpy(task.pairs[train_index]))
    labels = torch.from_numpy(task.labels[train_index])
    in_float64 = functional.cross_entropy(logits.double(), labels).item()
    in_float32 = functional.cross_entropy(logits, labels).item()
    assert logits.dtype == torch.float32 and in_float32 != in_float64
    assert rows[0]["train_loss"] == pytest.approx(in_float64, rel=1e-13)
