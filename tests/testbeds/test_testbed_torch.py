"""The testbeds' PyTorch models: each probe is a cut, and the transformer is Nanda et al.'s."""

import math
import types

import numpy as np
import pytest
import torch

import adapters.torch as adapters_torch
from reference_tasks.testbeds import experiments, torch_models
from reference_tasks.testbeds.data import modular_addition_sequences

TASKS = {
    "transformer": experiments.transformer_task,
    "parity": experiments.parity_task,
    "digits": experiments.digits_task,
}


def config(seed=0, init_scale=1.0, **model_options):
    return types.SimpleNamespace(
        seed=seed, init_scale=init_scale, model_options=model_options, dtype="float32"
    )


def small(name):
    """The task's model at a small size (the probes do not depend on the size), and a few samples."""
    task = TASKS[name]()
    options = {"transformer": {"p": 11}, "parity": {"n_samples": 64}, "digits": {}}[name]
    data = task.make_data(**options)
    shape = {"transformer": {"d_model": 16, "d_mlp": 32}, "parity": {"width": 24}, "digits": {"width": 20}}[
        name
    ]
    model = task.model.torch(config(**shape), data)
    return task, model, torch.as_tensor(data.inputs[:40])


@pytest.mark.parametrize("name", TASKS)
def test_every_probe_is_a_cut_and_head_of_body_is_the_model(name):
    task, model, inputs = small(name)
    assert set(task.model.probes) <= set(adapters_torch.cut_points(model, inputs))
    with torch.no_grad():
        expected = model(inputs)
        for probe in task.model.probes:
            body, head = adapters_torch.split(model, probe, example_inputs=inputs)
            torch.testing.assert_close(head(body(inputs)), expected, rtol=0, atol=0)


def test_the_mlps_hidden_activation_is_not_a_cut_of_the_transformer():
    _, model, inputs = small("transformer")
    with pytest.raises(ValueError, match=r"skip connection.*'attn' before it and 'mlp' after it"):
        adapters_torch.split(model, "mlp.hidden", example_inputs=inputs)


@pytest.mark.parametrize(
    ("name", "probe"), [("transformer", "mlp"), ("parity", "hidden1"), ("digits", "hidden2")]
)
def test_after_the_last_nonlinearity_the_lmn_is_one(name, probe):
    _, model, inputs = small(name)
    assert adapters_torch.layer_lmn(model, inputs, probe).lmn == pytest.approx(1.0, abs=1e-4)
    assert adapters_torch.layer_lmn(model, inputs, task_headline(name)).lmn > 1.5


def task_headline(name):
    return TASKS[name]().model.headline_probe


def full_sequence_logits(model, tokens):
    """Nanda et al.'s forward pass over every position (causal attention), read at the last one."""
    x = model.embed(tokens)
    batch, n_ctx, d_model = x.shape
    heads, d_head = model.attn.n_heads, model.attn.d_head
    q, k, v = (
        layer(x).reshape(batch, n_ctx, heads, d_head)
        for layer in (model.attn.query, model.attn.key, model.attn.value)
    )
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d_head)
    scores = scores.masked_fill(torch.triu(torch.ones(n_ctx, n_ctx, dtype=torch.bool), 1), float("-inf"))
    z = torch.einsum("bhqk,bkhd->bqhd", torch.softmax(scores, -1), v).reshape(batch, n_ctx, d_model)
    x = x + model.attn.out(z)
    x = x + model.mlp.outer(torch.relu(model.mlp.inner(x)))
    return model.unembed(x)[:, -1]


def test_the_transformer_reads_the_last_position_as_the_full_causal_model_does():
    data = modular_addition_sequences(13)
    model = torch_models.transformer(13, 32, 4, 64, seed=3)
    tokens = torch.as_tensor(data.inputs)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), full_sequence_logits(model, tokens), rtol=1e-5, atol=1e-5)


def test_nandas_initialisation_scales():
    model = torch_models.transformer(113, 128, 4, 512, seed=0, init_scale=2.0)
    assert model.attn.query.weight.std().item() == pytest.approx(2 / math.sqrt(128), rel=0.02)
    assert model.unembed.weight.std().item() == pytest.approx(2 / math.sqrt(113), rel=0.02)
    assert model.mlp.inner.bias.abs().max().item() == 0.0


def test_digits_weights_are_omnigroks_alpha_times_the_default_draw():
    data = TASKS["digits"]().make_data()
    scaled = TASKS["digits"]().model.torch(config(seed=5), data)
    plain = TASKS["digits"]().model.torch(config(seed=5, alpha=1.0), data)
    for big, small_ in zip(scaled.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(big, 8.0 * small_)
    bound = 8.0 / math.sqrt(64)
    assert 0.95 * bound < scaled.linear1.weight.abs().max().item() <= bound


def test_an_unknown_model_option_is_refused_naming_the_known_ones():
    data = modular_addition_sequences(7)
    with pytest.raises(
        ValueError,
        match=r"unknown model options \['width'\]; this model takes \['d_mlp', 'd_model', 'n_heads'\]",
    ):
        experiments.transformer_task().model.torch(config(width=3), data)


def test_the_same_seed_builds_the_same_weights():
    data = modular_addition_sequences(7)
    first, again = (experiments.transformer_task().model.torch(config(seed=2), data) for _ in range(2))
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_the_named_recipe_is_nandas_size():
    task = experiments.transformer_nanda_task()
    data = task.make_data()
    model = task.model.torch(config(), data)
    assert data.inputs.shape == (113 * 113, 3) and task.recipe.train_fraction == 0.3
    assert model.attn.query.weight.shape == (128, 128) and model.mlp.inner.weight.shape == (512, 128)
    assert model.attn.n_heads == 4 and model.unembed.weight.shape == (113, 128)
    assert (
        task.recipe.betas == (0.9, 0.98)
        and task.recipe.weight_decay == 1.0
        and task.recipe.batch_size is None
    )
