"""adapters.torch.split on chains and small graphs: exact cuts, refusal of non-cuts."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import fx, nn
from torch_threads import one_thread  # noqa: F401 (an autouse fixture)

from adapters.torch import TorchFunction, split
from adapters.torch.modules import changes_its_input
from reference_tasks.model.torch_model import GrokMLP
from reference_tasks.tasks import make_task

ACTIVATIONS = [nn.SiLU, nn.Tanh, nn.ReLU, nn.Identity]


def assert_exact_cut(model, layer, x, **kwargs):
    body, head = split(model, layer, **kwargs)
    with torch.no_grad():
        assert torch.equal(head(body(x)), model(x)), layer
    return body, head


class Chain(nn.Module):
    """A custom module whose forward is the chain of its children (a ModuleList among them)."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, 8)
        self.act = nn.Tanh()
        self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.SiLU(), nn.Sequential(nn.Linear(8, 8), nn.Tanh())])
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        x = self.act(self.inp(x))
        for block in self.blocks:
            x = block(x)
        return self.out(x)


class Residual(nn.Module):
    """``out(act(h + f(h)))`` with ``h = inp(x)``: the skip connection jumps over ``f``."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, 8)
        self.f = nn.Linear(8, 8)
        self.act = nn.Tanh()
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        h = self.inp(x)
        return self.out(self.act(h + self.f(h)))


class InPlace(nn.Module):
    """Passes each child's output on as the same tensor object, but changes it in place."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, x):
        h = self.a(x)
        h.mul_(2.0)
        return self.b(h)


class Reordered(nn.Module):
    """Calls its children in another order than they were registered."""

    def __init__(self):
        super().__init__()
        self.act = nn.Tanh()
        self.a = nn.Linear(3, 3)

    def forward(self, x):
        return self.act(self.a(x))


@pytest.fixture
def x():
    return torch.randn(16, 3, generator=torch.Generator().manual_seed(0))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 9), st.sampled_from(ACTIVATIONS)), min_size=1, max_size=4),
    st.integers(0, 2**31 - 1),
)
def test_any_sequential_is_cut_exactly_at_every_layer(widths, seed):
    torch.manual_seed(seed)
    layers, previous = [], 4
    for width, activation in widths:
        layers += [nn.Linear(previous, width), activation()]
        previous = width
    model = nn.Sequential(*layers)
    x = torch.randn(10, 4)
    for k in range(len(model)):
        body, head = assert_exact_cut(model, str(k), x)
        assert len(body) == k + 1 and len(head) == len(model) - k - 1


def test_nested_sequential_is_cut_at_every_named_layer(x):
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 6)),
        nn.ReLU(),
        nn.Sequential(nn.Linear(6, 5), nn.Sequential(nn.SiLU(), nn.Linear(5, 2))),
    )
    names = [name for name, _ in model.named_modules() if name]
    assert "2.1.0" in names
    for name in names:
        assert_exact_cut(model, name, x)
    body, head = split(model, "0.1")
    assert [type(m) for m in body] == [nn.Linear, nn.Tanh]
    assert [type(m) for m in head] == [nn.Linear, nn.ReLU, nn.Sequential]


def test_body_and_head_share_the_models_modules(x):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    body, head = split(model, "1")
    assert body[0] is model[0] and head[0] is model[2]
    body, head = split(model, "2")
    assert len(head) == 0 and torch.equal(head(x), x)


def test_a_module_used_twice_in_a_sequential(x):
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    for name in ["0", "1", "2"]:
        assert_exact_cut(model, name, x)
    assert len(split(model, "2")[0]) == 3


def test_custom_chain_with_a_module_list_is_checked_and_cut(x):
    torch.manual_seed(2)
    model = Chain()
    for name in ["inp", "act", "blocks.0", "blocks.1", "blocks.2", "blocks.2.0", "out"]:
        assert_exact_cut(model, name, x, example_inputs=x)
    with pytest.raises(ValueError, match=r"layer 'blocks' is a container \(ModuleList\)"):
        split(model, "blocks", example_inputs=x)


def test_custom_module_is_cut_in_its_graph_without_example_inputs(x):
    torch.manual_seed(2)
    model = Chain()
    body, head = assert_exact_cut(model, "act", x)
    assert isinstance(body, fx.GraphModule) and isinstance(head, fx.GraphModule)
    assert head.get_submodule("out") is model.out  # shared, not copied


def test_skip_connection_is_refused_naming_source_and_target(x):
    with pytest.raises(
        ValueError,
        match=r"layer 'f' is not a cut of Residual: a skip connection jumps over it, "
        r"from node 'inp' \(module inp\) to node 'add' \(function add\)",
    ):
        split(Residual(), "f", example_inputs=x)
    assert_exact_cut(Residual(), "act", x)
    assert_exact_cut(Residual(), "inp", x)


def test_skip_connection_inside_a_sequential(x):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 3), Residual(), nn.Tanh())
    assert_exact_cut(model, "0", x)
    assert_exact_cut(model, "1", x)
    assert_exact_cut(model, "1.act", x)
    with pytest.raises(
        ValueError, match=r"layer '1.f' is not a cut of Sequential: .* from node '_1_inp' \(module 1.inp\)"
    ):
        split(model, "1.f", example_inputs=x)


def test_in_place_work_after_the_layer_runs_in_the_head_on_a_copy(x):
    torch.manual_seed(5)
    model = InPlace()
    body, head = assert_exact_cut(model, "a", x)
    assert changes_its_input(head)
    samples = body(x).detach().numpy()
    kept = samples.copy()
    function = TorchFunction(head, copy_inputs=True)
    np.testing.assert_array_equal(function(samples), model(x).detach().numpy())
    np.testing.assert_array_equal(samples, kept)  # the caller's samples are not doubled in place
    assert not changes_its_input(split(model, "b")[1])


def test_children_in_any_order_are_cut_as_forward_calls_them(x):
    _, head = assert_exact_cut(Reordered(), "a", x)
    assert [node.op for node in head.graph.nodes] == ["placeholder", "call_module", "output"]


def test_the_check_on_examples_catches_what_tracing_misses(x):
    class Counter(nn.Module):
        """Python state outside the graph: forward adds how often it ran."""

        def __init__(self):
            super().__init__()
            self.a, self.b, self.calls = nn.Linear(3, 3), nn.Tanh(), 0

        def forward(self, x):
            self.calls += 1
            return self.b(self.a(x)) + self.calls

    split(Counter(), "a")  # traced once: the constant is baked into the graph
    with pytest.raises(ValueError, match=r"layer 'a' is not a cut of Counter: head\(body\(x\)\) differs"):
        split(Counter(), "a", example_inputs=x)


def test_unknown_layer_is_refused_with_the_known_ones():
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    with pytest.raises(ValueError, match=r"no layer 'hidden' in Sequential; its layers are \['0', '1'\]"):
        split(model, "hidden")
    with pytest.raises(ValueError, match="no layer ''"):
        split(model, "")


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("layer", ["embedding", "linear1", "hidden1", "linear2", "hidden2", "output"])
def test_reference_model_is_cut_exactly_at_each_probe(layer, shared):
    torch.manual_seed(4)
    model = GrokMLP(31, 31, shared_embedding=shared)
    pairs = torch.from_numpy(make_task("modadd").pairs)
    body, _ = assert_exact_cut(model, layer, pairs)
    width = {"embedding": 64, "linear1": 100, "hidden1": 100, "linear2": 100, "hidden2": 100, "output": 31}[
        layer
    ]
    assert body(pairs).shape == (961, width)


def test_reference_embedding_concatenates_both_operands():
    model = GrokMLP(7, 7)
    pairs = torch.tensor([[1, 5], [6, 0]])
    table = model.embedding.tables[0].weight
    expected = torch.cat([table[pairs[:, 0]], table[pairs[:, 1]]], dim=1)
    assert torch.equal(model.embedding(pairs), expected)
    assert np.array_equal(GrokMLP(7, 7, shared_embedding=False).embedding(pairs).shape, (2, 64))
