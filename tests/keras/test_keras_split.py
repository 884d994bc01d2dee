"""adapters.keras.split: exact cuts of Sequential and functional models, refusal of non-cuts."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.keras import split
from reference_tasks.model.keras_model import build_model
from reference_tasks.tasks import make_task

ACTIVATIONS = ["silu", "tanh", "relu", "linear"]


def run(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def assert_exact_cut(model, layer, x):
    body, head = split(model, layer)
    np.testing.assert_array_equal(run(head, run(body, x)), run(model, x), err_msg=layer)
    return body, head


@settings(max_examples=8, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 8), st.sampled_from(ACTIVATIONS)), min_size=1, max_size=4),
    st.booleans(),
    st.data(),
)
def test_sequential_cut_at_any_layer_is_exact(widths, with_input, data):
    layers = []
    for index, (width, activation) in enumerate(widths):
        layers.append(keras.layers.Dense(width, name=f"dense{index}"))
        layers.append(keras.layers.Activation(activation, name=f"act{index}"))
    model = keras.Sequential(([keras.Input((3,))] if with_input else []) + layers)
    x = np.random.default_rng(len(widths)).standard_normal((5, 3)).astype(np.float32)
    run(model, x)
    layer = data.draw(st.sampled_from([layer.name for layer in layers]))
    body, head = assert_exact_cut(model, layer, x)
    assert body.layers[-1].name == layer
    assert all(a is b for a, b in zip(body.layers + head.layers, model.layers, strict=False))


def test_sequential_cut_shares_the_weights_and_its_last_layer_gives_the_identity():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(2, name="b")]
    )
    x = np.ones((2, 3), dtype=np.float32)
    body, head = assert_exact_cut(model, "b", x)
    np.testing.assert_array_equal(run(head, x[:, :2]), x[:, :2])
    body, head = split(model, "a")
    model.get_layer("b").kernel.assign(np.zeros((4, 2), dtype=np.float32))
    np.testing.assert_array_equal(run(head, run(body, x)), run(model, x))
    assert not np.any(run(head, run(body, x)) - model.get_layer("b").bias.numpy())


def test_unbuilt_sequential_is_cut_at_its_layers():
    model = keras.Sequential([keras.layers.Dense(4, name="a"), keras.layers.Activation("tanh", name="t")])
    body, head = split(model, "t")
    x = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_array_equal(run(head, run(body, x)), run(model, x))


def test_reference_model_is_cut_at_every_layer():
    model = build_model(31, 31, shared_embedding=False, seed=2)
    pairs = make_task("modadd").pairs[::10].astype(np.int32)
    for layer in ["pairs", "embedding", "linear1", "hidden1", "linear2", "hidden2", "output"]:
        body, _ = assert_exact_cut(model, layer, pairs)
        assert body.outputs[0].shape[1] == {"pairs": 2, "embedding": 64, "output": 31}.get(layer, 100)


def residual_model():
    """``out(act(h + f(h)))`` with ``h = inp(x)``: the skip connection jumps over ``f``."""
    x = keras.Input((3,))
    h = keras.layers.Dense(8, name="inp")(x)
    s = keras.layers.Add(name="add")([h, keras.layers.Dense(8, name="f")(h)])
    return keras.Model(x, keras.layers.Dense(2, name="out")(keras.layers.Activation("tanh", name="act")(s)))


def test_functional_cuts_before_and_after_a_skip_connection():
    model = residual_model()
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    for layer in ["inp", "add", "act", "out"]:
        assert_exact_cut(model, layer, x)


def test_a_layer_inside_a_skip_connection_is_refused_by_name():
    with pytest.raises(ValueError, match=r"layer 'f' is not a cut of .*skip connection or another branch"):
        split(residual_model(), "f")


def test_a_layer_called_twice_and_unknown_names_are_refused():
    x = keras.Input((3,))
    shared = keras.layers.Dense(3, name="shared")
    model = keras.Model(x, shared(keras.layers.Activation("tanh")(shared(x))), name="twice")
    with pytest.raises(ValueError, match="layer 'shared' is not a cut of 'twice': it is called 2 times"):
        split(model, "shared")
    with pytest.raises(ValueError, match=r"no layer 'nope' in 'twice'; its layers are \["):
        split(model, "nope")


def test_a_subclassed_model_is_refused():
    class Custom(keras.Model):
        def __init__(self):
            super().__init__(name="custom")
            self.a = keras.layers.Dense(2, name="a")

        def call(self, x):
            return self.a(x) + x[:, :2]

    model = Custom()
    model(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(
        ValueError, match=r"cannot cut 'custom' \(Custom\) at layer 'a': it is a subclassed model"
    ):
        split(model, "a")
