"""On a CUDA device: the measurement where the model is, and training there (marked ``gpu``).

Run on a GPU machine with ``pytest -m gpu tests/torch``; without CUDA they are skipped.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import lmn_core
from adapters.torch import TorchFunction, layer_lmn
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.runfolder.metrics import read_metrics
from reference_tasks.runfolder.schema import METRICS_FILE
from reference_tasks.tasks import make_task
from reference_tasks.training.engine import TrainingData
from reference_tasks.training.loop import train, train_batched
from reference_tasks.training.recipe import RunOptions, TrainConfig
from reference_tasks.training.torch_engine import TorchEngine

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def pairs() -> np.ndarray:
    return make_task("modadd").pairs[::4]  # 241 samples


@pytest.mark.parametrize("probe", ["embedding", "hidden1", "hidden2"])
def test_layer_lmn_on_cuda_matches_the_host_in_float64(pairs, probe):
    torch.manual_seed(0)
    model = GrokMLP(31, 31).double()
    host = layer_lmn(model, pairs, probe, reduction="host")
    on_gpu = layer_lmn(model.cuda(), pairs, probe)
    assert on_gpu.matrix.device.type == "cuda"
    np.testing.assert_allclose(on_gpu.connectivity, host.connectivity, rtol=0, atol=1e-10)
    assert on_gpu.lmn == pytest.approx(host.lmn, rel=1e-10)


def test_layer_lmn_on_cuda_matches_the_host_in_float32(pairs):
    torch.manual_seed(1)
    model = GrokMLP(31, 31)
    host = layer_lmn(model, pairs, "hidden1", reduction="host")
    on_gpu = layer_lmn(model.cuda(), pairs, "hidden1")
    np.testing.assert_allclose(on_gpu.connectivity, host.connectivity, rtol=0, atol=1e-4)
    assert on_gpu.lmn == pytest.approx(host.lmn, rel=1e-5)


def test_the_spectrum_on_the_device_matches_numpys():
    rng = np.random.default_rng(2)
    half = rng.uniform(size=(500, 500))
    L = (half + half.T) / 2
    np.fill_diagonal(L, 1.0)
    on_gpu = lmn_core.spectrum(torch.from_numpy(L).cuda())
    on_host = lmn_core.spectrum(L)
    np.testing.assert_allclose(on_gpu.eigenvalues, on_host.eigenvalues, rtol=0, atol=1e-10)
    assert on_gpu.lmn == pytest.approx(on_host.lmn, rel=1e-12)


def test_running_out_of_memory_halves_the_block_on_cuda(caplog):
    torch.manual_seed(3)
    head = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(100, 31)).cuda()
    X = np.random.default_rng(3).normal(size=(2000, 100)).astype(np.float32)
    expected = lmn_core.connectivity_matrix(TorchFunction(head, reduction="device"), X)
    torch.cuda.empty_cache()
    limit = (torch.cuda.memory_allocated() + 2 * 2**30) / torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(limit)
    try:
        with caplog.at_level(logging.WARNING, logger="lmn_core.device"):
            measured = lmn_core.connectivity_matrix(TorchFunction(head), X, memory_budget=2**40)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert "ran out of memory" in caplog.text
    np.testing.assert_allclose(measured, expected, rtol=0, atol=1e-12)


def test_the_graphed_update_matches_the_eager_one():
    configs = [TrainConfig(task="xor", probes=(), seed=seed) for seed in (0, 1)]
    data = TrainingData.for_configs(configs)
    graphed, eager = TorchEngine(configs, data, "cuda"), TorchEngine(configs, data, "cuda")
    eager.graphed = False
    for step in range(30):
        first, second = graphed.update(step, step % 10 == 0), eager.update(step, step % 10 == 0)
        if first is not None:
            np.testing.assert_allclose(first.loss, second.loss, rtol=1e-5)
    for name, value in graphed.params.items():
        torch.testing.assert_close(value, eager.params[name], rtol=1e-5, atol=1e-6)


def test_training_on_cuda_starts_where_the_cpu_does(tmp_path):
    config = TrainConfig(task="xor", steps=300, n_checkpoints=4, lmn_samples=128)
    on_cpu = train(config, tmp_path / "cpu", options=RunOptions(progress=False))
    on_gpu = train(config, tmp_path / "gpu", options=RunOptions(device="cuda", progress=False))
    cpu_rows, gpu_rows = (
        read_metrics(on_cpu.out_dir / METRICS_FILE),
        read_metrics(on_gpu.out_dir / METRICS_FILE),
    )
    assert len(cpu_rows) == len(gpu_rows)
    assert gpu_rows[0]["lmn_hidden1"] == pytest.approx(cpu_rows[0]["lmn_hidden1"], rel=1e-5)
    assert gpu_rows[0]["train_loss"] == pytest.approx(cpu_rows[0]["train_loss"], rel=1e-6)
    assert gpu_rows[-1]["train_acc"] == pytest.approx(cpu_rows[-1]["train_acc"], abs=0.02)


def test_batched_training_on_cuda(tmp_path):
    configs = [
        TrainConfig(task="xor", steps=200, n_checkpoints=3, lmn_samples=64, seed=seed) for seed in range(3)
    ]
    folders = [tmp_path / f"seed{seed}" for seed in range(3)]
    results = train_batched(configs, folders, options=RunOptions(device="cuda", progress=False))
    alone = train(configs[2], tmp_path / "alone", options=RunOptions(device="cuda", progress=False))
    assert all(result.summary.facts.batched_runs == 3 for result in results)
    batched_rows, alone_rows = (
        read_metrics(results[2].out_dir / METRICS_FILE),
        read_metrics(alone.out_dir / METRICS_FILE),
    )
    assert batched_rows[0]["lmn_hidden1"] == pytest.approx(alone_rows[0]["lmn_hidden1"], rel=1e-5)
    assert batched_rows[-1]["train_loss"] == pytest.approx(alone_rows[-1]["train_loss"], rel=1e-2)


def test_a_users_mini_batch_experiment_trains_on_cuda_as_on_the_cpu(tmp_path):
    from pathlib import Path

    bits = Path(__file__).resolve().parents[1] / "experiments" / "bits_experiment.py"
    config = TrainConfig.for_task(f"{bits}:task", steps=20, n_checkpoints=3, probes=("linear", "hidden"))
    rows = {}
    for device in ("cpu", "cuda"):
        train(config, tmp_path / device, options=RunOptions(device=device, progress=False))
        rows[device] = read_metrics(tmp_path / device / METRICS_FILE)
    assert [row["step"] for row in rows["cuda"]] == [row["step"] for row in rows["cpu"]]
    cpu, cuda = rows["cpu"][0], rows["cuda"][0]  # the same weights; later steps drift in float32
    for column in ("train_loss", "test_loss", "l2_norm", "lmn_linear", "lmn_hidden", "regions_linear"):
        assert cuda[column] == pytest.approx(cpu[column], rel=1e-5), column
    assert rows["cuda"][-1]["train_acc"] == pytest.approx(rows["cpu"][-1]["train_acc"], abs=0.1)


def test_progress_measures_of_a_cuda_run_match_the_cpus(tmp_path):
    config = TrainConfig(steps=40, lmn_samples=32, n_checkpoints=4, dtype="float64")
    for device in ("cpu", "cuda"):
        train(config, tmp_path / device, options=RunOptions(device=device, progress=False))
    cpu, cuda = (read_metrics(tmp_path / device / METRICS_FILE) for device in ("cpu", "cuda"))
    columns = ["weight_movement", "effective_rank_hidden1", "fourier_share", "restricted_loss"]
    measured = [(a, b) for a, b in zip(cpu, cuda, strict=True) if a["weight_movement"] is not None]
    assert len(measured) == 4
    for on_cpu, on_cuda in measured:
        for column in columns:
            assert on_cuda[column] == pytest.approx(on_cpu[column], rel=1e-6), (on_cpu["step"], column)
