"""reference_tasks.training.train_batched: several seeds trained at once, each as if alone."""

import pytest
import torch
from quiet_training import train, train_batched
from run_folder_checks import check_run_folder, without_timings
from torch_threads import one_thread  # noqa: F401 (an autouse fixture)

from reference_tasks.runfolder import METRIC_COLUMNS, read_metrics
from reference_tasks.runfolder.weights import load_snapshot, snapshot_steps
from reference_tasks.training.recipe import TrainConfig

CONFIG = TrainConfig(steps=200, lmn_samples=12, n_checkpoints=4)
SEEDS = (0, 1, 2)


def seed_config(seed, config=CONFIG):
    return TrainConfig(**{**config.__dict__, "seed": seed})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batched")
    batched = train_batched([seed_config(s) for s in SEEDS], [folder / f"batched-{s}" for s in SEEDS])
    alone = [train(seed_config(s), folder / f"alone-{s}") for s in SEEDS]
    return batched, alone


def test_each_seed_matches_its_run_alone(runs):
    batched, alone = runs
    for together, single in zip(batched, alone, strict=True):
        rows, expected = (
            read_metrics(together.out_dir / "metrics.csv"),
            read_metrics(single.out_dir / "metrics.csv"),
        )
        assert [row["step"] for row in rows] == [row["step"] for row in expected]
        for column in METRIC_COLUMNS[1:]:
            got = [row[column] for row in rows]
            want = [row[column] for row in expected]
            assert [v is None for v in got] == [v is None for v in want]
            assert [v for v in got if v is not None] == pytest.approx(
                [v for v in want if v is not None], rel=1e-4, abs=1e-9
            ), column
        batched_record = without_timings(together.summary, batched=True).to_json()
        alone_record = without_timings(single.summary, batched=True).to_json()
        assert set(batched_record) == set(alone_record)
        for key, value in batched_record.items():
            expected = alone_record[key]
            assert value == (pytest.approx(expected, rel=1e-4) if isinstance(value, float) else expected), key
        assert (together.summary.facts.batched_runs, single.summary.facts.batched_runs) == (3, 1)


def test_seeds_differ_and_their_folders_have_the_schema(runs):
    batched, _ = runs
    rows = [
        check_run_folder(seed_config(s), result, "torch", "model.pt")
        for s, result in zip(SEEDS, batched, strict=True)
    ]
    assert len({seed_rows[-1]["train_loss"] for seed_rows in rows}) == len(SEEDS)
    for seed, result in zip(SEEDS, batched, strict=True):
        assert result.summary.seed == seed
        final = load_snapshot(result.out_dir, CONFIG.steps)
        assert all(torch.equal(torch.from_numpy(final[k]), v) for k, v in result.model.state_dict().items())
        assert snapshot_steps(result.out_dir)[0] == 0


def test_each_seed_keeps_its_own_split_and_lmn_subset(runs):
    batched, alone = runs
    assert len({result.summary.lmn["init"] for result in batched}) == len(SEEDS)
    assert [r.summary.facts.n_train for r in batched] == [r.summary.facts.n_train for r in alone] == [769] * 3


def test_float64_and_two_tables_batch_too(tmp_path):
    config = TrainConfig(
        task="xor", steps=12, dtype="float64", shared_embedding=False, checkpoint_steps=(0, 12),
        probes=("hidden1",), lmn_samples=6,
    )  # fmt: skip
    batched = train_batched([seed_config(s, config) for s in (3, 4)], [tmp_path / "3", tmp_path / "4"])
    alone = train(seed_config(4, config), tmp_path / "alone")
    got, want = read_metrics(tmp_path / "4" / "metrics.csv"), read_metrics(alone.out_dir / "metrics.csv")
    for row, other in zip(got, want, strict=True):
        for column in ("train_loss", "test_loss", "l2_norm"):
            assert row[column] == pytest.approx(other[column], rel=1e-12)
    assert next(batched[1].model.parameters()).dtype == torch.float64


def test_batches_of_different_runs_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"may differ only in their seed; seed 1 differs .* \['steps'\]"):
        train_batched(
            [CONFIG, TrainConfig(**{**CONFIG.__dict__, "seed": 1, "steps": 10})],
            [tmp_path / "a", tmp_path / "b"],
        )
    with pytest.raises(ValueError, match="its own output folder"):
        train_batched([CONFIG, seed_config(1)], [tmp_path / "a", tmp_path / "a"])
    with pytest.raises(ValueError, match="2 configs but 1 output folders"):
        train_batched([CONFIG, seed_config(1)], [tmp_path / "a"])
    with pytest.raises(ValueError, match="at least one config"):
        train_batched([], [])
    assert not (tmp_path / "a").exists()


def test_every_stacked_tensor_lands_on_the_engines_device():
    # "meta" stands in for an accelerator: the models are built on the CPU, stacked there, then moved
    from reference_tasks.training.engine import TrainingData
    from reference_tasks.training.torch_engine import TorchEngine

    configs = [seed_config(seed) for seed in SEEDS]
    engine = TorchEngine(configs, TrainingData.for_configs(configs), "meta")
    tensors = [*engine.params.values(), *engine.model.parameters(), engine.train_inputs, *engine.lmn_inputs]
    assert {tensor.device.type for tensor in tensors} == {"meta"}
    assert all(value.shape[0] == len(SEEDS) for value in engine.params.values())
