"""reference_tasks.model.numpy_model: the reference MLP's forward pass in NumPy from a snapshot."""

import numpy as np
import pytest

import lmn_core
from reference_tasks.model.numpy_model import ACTIVATION_FUNCTIONS, NumpyGrokMLP, silu

N_TOKENS, DIM, HIDDEN, CLASSES = 7, 3, 5, 4


def random_snapshot(seed=0, *, shared=True, dtype=np.float32):
    rng = np.random.default_rng(seed)
    snapshot = {"embedding.tables.0.weight": rng.normal(size=(N_TOKENS, DIM))}
    if not shared:
        snapshot["embedding.tables.1.weight"] = rng.normal(size=(N_TOKENS, DIM))
    for name, (out, inp) in {
        "linear1": (HIDDEN, 2 * DIM),
        "linear2": (HIDDEN, HIDDEN),
        "output": (CLASSES, HIDDEN),
    }.items():
        snapshot[f"{name}.weight"] = rng.normal(size=(out, inp))
        snapshot[f"{name}.bias"] = rng.normal(size=out)
    return {name: array.astype(dtype) for name, array in snapshot.items()}


def loop_forward(snapshot, a, b):
    """The network for one pair, written out scalar by scalar in float64."""
    s = {name: array.astype(np.float64) for name, array in snapshot.items()}
    second = s.get("embedding.tables.1.weight", s["embedding.tables.0.weight"])
    x = list(s["embedding.tables.0.weight"][a]) + list(second[b])
    layers = []
    for name in ("linear1", "linear2", "output"):
        weight, bias = s[f"{name}.weight"], s[f"{name}.bias"]
        x = [sum(weight[i, j] * x[j] for j in range(len(x))) + bias[i] for i in range(weight.shape[0])]
        if name != "output":
            x = [v / (1 + np.exp(-v)) for v in x]
        layers.append(np.array(x))
    return layers  # hidden1, hidden2, logits


PAIRS = np.array([[0, 0], [1, 2], [6, 3], [2, 1], [5, 5]])


@pytest.mark.parametrize("shared", [True, False])
def test_activations_and_logits_match_a_scalar_forward_pass(shared):
    snapshot = random_snapshot(1, shared=shared, dtype=np.float64)
    model = NumpyGrokMLP.from_snapshot(snapshot)
    expected = [loop_forward(snapshot, a, b) for a, b in PAIRS]
    np.testing.assert_allclose(model.activations(PAIRS, "hidden1"), [e[0] for e in expected], rtol=1e-12)
    np.testing.assert_allclose(model.activations(PAIRS, "hidden2"), [e[1] for e in expected], rtol=1e-12)
    np.testing.assert_allclose(model.logits(PAIRS), [e[2] for e in expected], rtol=1e-12)
    embedding = model.activations(PAIRS, "embedding")
    second = snapshot["embedding.tables.1.weight" if not shared else "embedding.tables.0.weight"]
    np.testing.assert_array_equal(embedding[:, DIM:], second[PAIRS[:, 1]])


@pytest.mark.parametrize("probe", ["embedding", "hidden1", "hidden2"])
def test_head_of_a_probe_completes_the_network(probe):
    model = NumpyGrokMLP.from_snapshot(random_snapshot(2))
    out = model.head(probe)(model.activations(PAIRS, probe))
    assert out.dtype == np.float32 and out.shape == (len(PAIRS), CLASSES)
    np.testing.assert_allclose(out, model.logits(PAIRS), rtol=1e-6, atol=1e-6)


def test_float32_stays_float32():
    model = NumpyGrokMLP.from_snapshot(random_snapshot(3))
    assert model.dtype == np.float32
    assert model.activations(PAIRS, "hidden1").dtype == np.float32
    assert model.head("hidden1")(np.zeros((2, HIDDEN))).dtype == np.float32


def test_lmn_through_the_heads():
    model = NumpyGrokMLP.from_snapshot(random_snapshot(4, dtype=np.float64))
    pairs = np.stack(np.meshgrid(range(N_TOKENS), range(N_TOKENS), indexing="ij"), -1).reshape(-1, 2)
    # after hidden2 only an affine map is left: LMN 1 (docs/design.md identity 2)
    assert lmn_core.lmn(model.head("hidden2"), model.activations(pairs, "hidden2")).lmn == pytest.approx(1.0)
    result = lmn_core.lmn(model.head("hidden1"), model.activations(pairs, "hidden1"))
    assert result.n_samples == 49 and 1.0 < result.lmn < 49


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_activation_is_its_formula_in_the_inputs_dtype(dtype):
    x = np.array([-3.0, -0.5, 0.0, 0.25, 2.0], dtype=dtype)
    expected = {
        "silu": x / (1 + np.exp(-x.astype(np.float64))),
        "relu": np.array([0, 0, 0, 0.25, 2.0]),
        "leaky_relu": np.array([-0.03, -0.005, 0, 0.25, 2.0]),
        "gelu": np.array(
            [-0.00404969409489, -0.15426876936299, 0, 0.14967658142073, 1.95449973610364]
        ),  # x Φ(x)
        "tanh": np.tanh(x.astype(np.float64)),
    }
    for name, function in ACTIVATION_FUNCTIONS.items():
        y = function(x)
        assert y.dtype == dtype, name
        rtol = 1e-5 if dtype == np.float32 else 1e-12  # float32: 1 + erf(x) cancels below -2
        np.testing.assert_allclose(y, expected[name], rtol=rtol, atol=1e-15, err_msg=name)


def test_the_snapshots_activation_is_the_runs():
    snapshot = random_snapshot(5, dtype=np.float64)
    relu = NumpyGrokMLP.from_snapshot(snapshot, "relu")
    hidden = relu.activations(PAIRS, "hidden1")
    assert hidden.min() == 0.0 and relu.activation == "relu"
    np.testing.assert_allclose(relu.head("hidden1")(hidden), relu.logits(PAIRS), rtol=1e-12)
    assert not np.allclose(NumpyGrokMLP.from_snapshot(snapshot).logits(PAIRS), relu.logits(PAIRS))
    with pytest.raises(ValueError, match=r"unknown activation 'elu'"):
        NumpyGrokMLP.from_snapshot(snapshot, "elu")


def test_silu_is_stable():
    x = np.array([-1000.0, -20.0, -1.0, 0.0, 1.0, 20.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = silu(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[1:-1], x[1:-1] / (1 + np.exp(-x[1:-1].astype(np.float64))), rtol=1e-6)
    assert y[0] == 0.0 and y[-1] == 1000.0


def test_snapshot_errors_name_the_problem():
    snapshot = random_snapshot()
    del snapshot["linear2.bias"]
    with pytest.raises(ValueError, match=r"missing \['linear2.bias'\]"):
        NumpyGrokMLP.from_snapshot(snapshot)
    snapshot = random_snapshot()
    snapshot["linear2.weight"] = snapshot["linear2.weight"].T[:, :3].copy()
    with pytest.raises(ValueError, match="linear2"):
        NumpyGrokMLP.from_snapshot(snapshot)
    snapshot = random_snapshot()
    snapshot["output.bias"] = snapshot["output.bias"].astype(np.float64)
    with pytest.raises(ValueError, match="one floating dtype"):
        NumpyGrokMLP.from_snapshot(snapshot)
    model = NumpyGrokMLP.from_snapshot(random_snapshot())
    with pytest.raises(ValueError, match=r"0\.\.6"):
        model.activations(np.array([[0, 7]]), "hidden1")
    with pytest.raises(ValueError, match="unknown probe 'hidden3'"):
        model.head("hidden3")


@pytest.mark.parametrize("probe", ["embedding", "hidden1", "hidden2"])
def test_folded_head_composes_to_the_head_and_keeps_the_connectivity(probe):
    model = NumpyGrokMLP.from_snapshot(random_snapshot(3, dtype=np.float64))
    pairs = np.array([[0, 1], [2, 3], [4, 4], [1, 5], [5, 0], [3, 3]])
    samples = model.activations(pairs, probe)
    prefix, rest = model.folded_head(probe)
    np.testing.assert_allclose(rest(prefix(samples)), model.head(probe)(samples), rtol=1e-12, atol=1e-12)
    folded = lmn_core.connectivity_matrix(rest, prefix(samples))
    np.testing.assert_allclose(folded, lmn_core.connectivity_matrix(model.head(probe), samples), atol=1e-10)
