"""adapters.torch.regions: PyTorch heads read as affine maps and hinges, and the regions of a run."""

import numpy as np
import pytest
import torch
from quiet_training import train
from run_folder_checks import check_run_folder
from torch import nn
from torch.nn import functional
from torch_threads import one_thread  # noqa: F401 (an autouse fixture)

import lmn_core
from adapters.torch import LayerRegions, layer_regions, split
from adapters.torch.regions import piecewise_linear_head
from reference_tasks.model.numpy_model import NumpyGrokMLP
from reference_tasks.model.torch_model import build_model
from reference_tasks.runfolder import read_metrics
from reference_tasks.runfolder.weights import load_snapshot
from reference_tasks.tasks import lmn_sample_indices, make_task
from reference_tasks.training.recipe import TrainConfig


def numpy_head(
    model: NumpyGrokMLP, probe: str, slope: float
) -> tuple[lmn_core.PiecewiseLinearHead, np.ndarray]:
    """The reference MLP's head after ``probe``, written out from its weights, and its samples."""
    start = ["embedding", "hidden1", "hidden2"].index(probe)
    layers = []
    for index in range(start, 3):
        layers.append(lmn_core.Affine(model.weights[index], model.biases[index]))
        if index < 2:
            layers.append(lmn_core.Hinge(slope))
    return lmn_core.PiecewiseLinearHead(layers), model.activations(make_task("modadd").pairs[::7], probe)


@pytest.mark.parametrize(("activation", "slope"), [("relu", 0.0), ("leaky_relu", 0.01)])
def test_the_reference_mlp_gives_the_regions_of_its_written_out_head(activation, slope):
    model = build_model(31, 31, activation=activation, dtype=torch.float64, init_scale=2.0, seed=3)
    written = NumpyGrokMLP.from_snapshot({k: v.numpy() for k, v in model.state_dict().items()}, activation)
    pairs = make_task("modadd").pairs[::7]
    for probe in ("embedding", "hidden1", "hidden2"):
        head, samples = numpy_head(written, probe, slope)
        expected = lmn_core.linear_regions(head, samples)
        assert layer_regions(model, pairs, probe) == expected, probe
    assert expected.n_regions == 1 and expected.pieces_mean == 1.0  # hidden2: only the output layer is left
    _, folded = split(model, "hidden1", fold=True)
    assert [type(layer).__name__ for layer in piecewise_linear_head(folded).layers] == ["Hinge", "Affine"]


def test_chains_of_every_module_kind_are_read_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(3, 6),
        nn.PReLU(6, init=0.2),
        nn.Sequential(nn.Linear(6, 5, bias=False), nn.LeakyReLU(0.3), nn.Identity()),
        nn.Linear(5, 4),
        nn.PReLU(),
        nn.ReLU(),
        nn.Linear(4, 2),
    ).double()
    head = piecewise_linear_head(model)
    x = torch.randn(50, 3, dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(head(x.numpy()), model(x).numpy(), rtol=1e-12, atol=1e-12)
    assert [type(layer).__name__ for layer in head.layers] == [
        "Affine", "Hinge", "Affine", "Hinge", "Affine", "Hinge", "Hinge", "Affine",
    ]  # fmt: skip


class FunctionalHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second, self.third = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x):
        x = functional.relu(self.first(x))
        x = functional.leaky_relu(self.second(x), negative_slope=0.2)
        return self.third(torch.relu(x))


class Residual(FunctionalHead):
    def forward(self, x):
        hidden = torch.relu(self.first(x))
        return self.third(hidden + self.second(hidden))


def test_a_traced_graph_of_relu_calls_is_read_and_a_residual_is_refused_by_name():
    torch.manual_seed(1)
    model = FunctionalHead().double()
    x = torch.randn(40, 4, dtype=torch.float64)
    summary = layer_regions(model, x, "first")
    _, head = split(model, "first", fold=True)
    body, _ = split(model, "first", fold=True)
    with torch.no_grad():
        samples = body(x).numpy()
    assert summary == lmn_core.linear_regions(piecewise_linear_head(head), samples)
    with pytest.raises(ValueError, match=r"node 'add' \(call_function add\)"):
        layer_regions(Residual(), x.float(), "first")


class TwoInputsTwoOutputs(nn.Module):
    """A ``forward(mask, x)`` whose samples go to ``x`` and which returns ``(logits, hidden)``."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second, self.third = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, mask, x):
        hidden = torch.relu(self.first(x * mask))
        return self.third(torch.relu(self.second(hidden))), hidden


def test_layer_regions_honour_output_and_input():
    torch.manual_seed(2)
    model = TwoInputsTwoOutputs().double()
    x = torch.randn(60, 4, dtype=torch.float64)
    mask = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    options = {"input": "x", "fixed_inputs": {"mask": mask}, "output": 0}
    summary = layer_regions(model, x, "first", **options)
    written = nn.Sequential(nn.ReLU(), model.second, nn.ReLU(), model.third)
    with torch.no_grad():
        samples = model.first(x * mask).numpy()
    assert summary == lmn_core.linear_regions(piecewise_linear_head(written), samples)
    assert summary.n_regions > 1
    with pytest.raises(ValueError, match=r"fixed_inputs=\{'mask'"):
        LayerRegions(model, "first", input="x", output=0)


@pytest.mark.parametrize(
    ("module", "named"),
    [
        (nn.Sequential(nn.Linear(2, 3), nn.SiLU(), nn.Linear(3, 1)), "SiLU"),
        (nn.Sequential(nn.Linear(2, 3), nn.Dropout(), nn.Linear(3, 1)), "Dropout"),
        (nn.Sequential(nn.Linear(2, 3), nn.Hardtanh(), nn.Linear(3, 1)), "Hardtanh"),
    ],
)
def test_other_modules_are_refused_by_name(module, named):
    with pytest.raises(ValueError, match=rf"cannot count linear regions through module '1' \({named}\)"):
        piecewise_linear_head(module)
    with pytest.raises(ValueError, match=rf"through module '0' \({named}\)"):
        LayerRegions(nn.Sequential(nn.Identity(), *module), "0")


def test_a_hook_that_changes_a_module_is_caught_on_the_samples():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    model[1].register_forward_hook(lambda module, inputs, output: output * 2.0)
    with pytest.raises(ValueError, match=r"does not compute what its modules say"):
        layer_regions(model, torch.randn(10, 2), "0")


def test_a_relu_run_records_the_regions_of_its_snapshots(tmp_path):
    config = TrainConfig(
        task="xor",
        steps=60,
        lmn_samples=24,
        n_checkpoints=4,
        activation="relu",
        probes=("embedding", "hidden1"),
    )
    result = train(config, tmp_path)
    rows = check_run_folder(config, result, "torch", "model.pt")
    task = make_task("xor")
    pairs = task.pairs[lmn_sample_indices(task.n_samples, size=config.lmn_samples, seed=config.seed)]
    measured = [row for row in rows if row["regions_hidden1"] is not None]
    assert [row["step"] for row in measured] == [0, 1, 8, 60]
    for row in measured:
        model = NumpyGrokMLP.from_snapshot(load_snapshot(tmp_path, row["step"]), "relu")
        head, _ = numpy_head(model, "hidden1", 0.0)
        expected = lmn_core.linear_regions(head, model.activations(pairs, "hidden1"))
        assert row["regions_hidden1"] == expected.n_regions <= 24
        assert row["pieces_mean_hidden1"] == pytest.approx(expected.pieces_mean, abs=0.05)
        assert row["region_perplexity_hidden1"] == pytest.approx(expected.region_perplexity, rel=1e-9)
        assert (row["regions_embedding"] is None) == (row["lmn_embedding"] is None)
    assert set(result.summary.regions) == {"embedding", "hidden1"}
    silu = train(TrainConfig(task="xor", steps=5, lmn_samples=6, n_checkpoints=2), tmp_path / "silu")
    assert "regions_hidden1" not in read_metrics(silu.out_dir / "metrics.csv")[0]
    assert silu.summary.regions is None


def test_the_old_module_warns_naming_the_new_home_and_still_works():
    with pytest.warns(
        DeprecationWarning,
        match=r"adapters\.torch_regions\.layer_regions moved: import it from adapters\.torch$",
    ):
        from adapters.torch_regions import layer_regions as old
    assert old is layer_regions
    with pytest.warns(DeprecationWarning, match=r"import it from adapters\.torch\.regions"):
        from adapters.torch_regions import piecewise_linear_head as old_head
    assert old_head is piecewise_linear_head
