"""The PyTorch adapter on graphs that are not chains: residual blocks, tuple and dict outputs,
a Transformer encoder, and LMNMonitor in a hand-written training loop."""

import numpy as np
import pytest
import torch
from torch import nn

import lmn_core
from adapters.torch import LMNMonitor, TorchFunction, layer_lmn, read_monitor_csv, split

torch.manual_seed(0)


class Block(nn.Module):
    """A residual block: ``x + f(x)``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.inner(x))


class ResNetLike(nn.Module):
    def __init__(self, width: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Linear(4, width)
        self.layer1 = Block(width)
        self.layer2 = Block(width)
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layer2(self.layer1(self.stem(x))))


class Heads(nn.Module):
    """Image-like input, ``permute`` and ``flatten`` in ``forward``, a tuple of two heads."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.act = nn.PReLU()
        self.dense = nn.Linear(3 * 4 * 4, 16)
        self.act2 = nn.PReLU()
        self.classes = nn.Linear(16, 2)
        self.boxes = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.act(self.conv(x)).permute(0, 3, 2, 1).flatten(1)
        h = self.act2(self.dense(h))
        return self.classes(h), self.boxes(h)


class DictModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(3, 8), nn.Tanh())
        self.logits = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.hidden(x)
        return {"logits": self.logits(h), "features": h}


def rows(shape: tuple[int, ...], n: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32))


@pytest.mark.parametrize("layer", ["stem", "layer1", "layer2"])
def test_a_residual_network_is_cut_exactly_between_blocks(layer):
    model = ResNetLike().eval()
    x = rows((4,))
    body, head = split(model, layer, example_inputs=x)
    with torch.no_grad():
        assert torch.equal(head(body(x)), model(x))


def test_a_cut_inside_a_residual_block_is_refused_naming_the_skip():
    model = ResNetLike().eval()
    message = (
        r"'layer1\.inner\.0' is not a cut.*skip connection jumps over it, from node 'stem'.*to node 'add'"
    )
    with pytest.raises(ValueError, match=message):
        split(model, "layer1.inner.0", example_inputs=rows((4,)))


def test_the_lmn_through_a_graph_cut_equals_the_lmn_of_the_hand_built_head():
    model = ResNetLike().eval()
    x = rows((4,), n=20)
    with torch.no_grad():
        samples = model.layer1(model.stem(x)).numpy()
    hand_built = TorchFunction(nn.Sequential(model.layer2, model.fc))
    expected = lmn_core.lmn(hand_built, samples)
    result = layer_lmn(model, x, "layer1", fold=False)
    np.testing.assert_allclose(result.connectivity, expected.connectivity, rtol=0, atol=1e-6)
    assert result.lmn == pytest.approx(expected.lmn, rel=1e-5)


def test_a_tuple_of_heads_needs_output_and_then_measures_the_chosen_head():
    model = Heads().eval()
    x = rows((2, 4, 4), n=16)
    body, head = split(model, "act", example_inputs=x)
    with torch.no_grad():
        both = head(body(x))
        assert isinstance(both, tuple) and all(torch.equal(a, b) for a, b in zip(both, model(x), strict=True))
    with pytest.raises(ValueError, match="output="):
        layer_lmn(model, x, "act2")
    result = layer_lmn(model, x, "act2", output=1, fold=False)
    with torch.no_grad():
        samples = model.act2(model.dense(model.act(model.conv(x)).permute(0, 3, 2, 1).flatten(1))).numpy()
    expected = lmn_core.lmn(TorchFunction(model.boxes), samples)
    assert result.lmn == pytest.approx(expected.lmn, rel=1e-6)
    assert result.n_outputs == 4


def test_a_dict_output_is_chosen_by_key_or_by_a_callable():
    model = DictModel().eval()
    x = rows((3,), n=16)
    by_key = layer_lmn(model, x, "hidden.0", output="logits", fold=False)
    by_callable = layer_lmn(model, x, "hidden.0", output=lambda out: out["features"], fold=False)
    assert by_key.n_outputs == 2 and by_callable.n_outputs == 8
    with pytest.raises(ValueError, match="output='missing'"):
        layer_lmn(model, x, "hidden.0", output="missing")


def test_a_transformer_encoder_that_fx_cannot_trace_is_cut_with_hooks_or_refused_with_the_ways_out():
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=3, enable_nested_tensor=False).eval()
    message = (
        r"cannot cut TransformerEncoder at 'layers\.0': torch\.fx cannot trace it.*give example_inputs"
        r".*lmn_core\.lmn\(f, X\)"
    )
    with pytest.raises(ValueError, match=message):
        split(model, "layers.0")
    with pytest.raises(ValueError, match=message):
        split(model, "layers.0", example_inputs=rows((5, 8), n=6), cut_by=("chain", "graph"))
    x = torch.as_tensor(rows((5, 8), n=6))
    body, head = split(model, "layers.0", example_inputs=x)  # the graph fails, forward hooks cut it
    with torch.no_grad():
        torch.testing.assert_close(head(body(x)), model(x), rtol=0, atol=0)
    by_hooks = layer_lmn(model, x, "layers.1", n_points=5)
    samples = TorchFunction(nn.Sequential(model.layers[0], model.layers[1]))(x).reshape(6, -1)
    rest = TorchFunction(model.layers[2])
    by_hand = lmn_core.lmn(lambda flat: rest(flat.reshape(-1, 5, 8)), samples, n_points=5)
    assert by_hooks.lmn == pytest.approx(by_hand.lmn, rel=1e-9)


def test_a_stack_of_encoder_layers_in_a_sequential_is_cut_exactly_between_layers():
    def encoder_layer():
        return nn.TransformerEncoderLayer(
            d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True
        )

    model = nn.Sequential(encoder_layer(), encoder_layer(), nn.Flatten(), nn.Linear(40, 3)).eval()
    x = rows((5, 8), n=6)
    body, head = split(model, "0", example_inputs=x)
    with torch.no_grad():
        assert torch.equal(head(body(x)), model(x))
    assert layer_lmn(model, x, "1").n_outputs == 3


class Recorder:
    """A stand-in for TensorBoard's ``SummaryWriter``."""

    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))


def test_lmn_monitor_in_a_plain_loop_measures_on_schedule_and_leaves_training_alone(tmp_path):
    model = ResNetLike()
    x, y = rows((4,), n=24), torch.arange(24) % 3
    writer = Recorder()
    monitor = LMNMonitor(
        model, x[:10], ["layer1", "layer2"], every_n_steps=3, csv_path=tmp_path / "lmn.csv", writer=writer
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    measured = []
    for step in range(7):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        grads = [parameter.grad.clone() for parameter in model.parameters()]
        results = monitor.step(step)
        assert model.training and all(parameter.requires_grad for parameter in model.parameters())
        assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
        optimizer.step()
        if results:
            measured.append(step)
            assert set(results) == {"layer1", "layer2"}
    assert measured == [0, 3, 6]
    table = read_monitor_csv(tmp_path / "lmn.csv")
    assert table["step"].tolist() == [0, 3, 6] and table["lmn_n_samples"].tolist() == [10, 10, 10]
    assert [(tag, step) for tag, _, step in writer.scalars] == [
        (f"lmn_{layer}", step) for step in (0, 3, 6) for layer in ("layer1", "layer2")
    ]
    assert table["lmn_layer2"][-1] == monitor.last_results["layer2"].lmn
    assert writer.scalars[-1][1] == monitor.last_results["layer2"].lmn


class Masked(nn.Module):
    """``forward(x, mask)``: two inputs, the second the same for every sample."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.act = nn.Tanh()
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.hidden(x)) * mask)


def test_a_second_input_is_fixed_and_the_samples_replace_the_named_one():
    model = Masked().eval()
    x, mask = rows((4,), n=16), (torch.arange(8) % 2).float()
    result = layer_lmn(model, x, "act", input="x", fixed_inputs={"mask": mask}, fold=False)
    with torch.no_grad():
        samples = model.act(model.hidden(x)).numpy()
    expected = lmn_core.lmn(lambda h: model.out(torch.from_numpy(h) * mask).detach().numpy(), samples)
    assert result.lmn == pytest.approx(expected.lmn, rel=1e-6)
    with pytest.raises((ValueError, TypeError), match="mask"):
        layer_lmn(model, x, "act")
