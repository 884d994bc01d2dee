"""adapters.transformer_lens on a two-layer TransformerBridge built offline (random weights)."""

import numpy as np
import pytest
import torch
from torch_threads import one_thread  # noqa: F401 (an autouse fixture)
from transformer_lens.model_bridge import TransformerBridge

import lmn_core
from adapters.transformer_lens import LayerLMN, LMNMonitor, cut_points, layer_lmn, refusals

CONFIG = {
    "n_layers": 2,
    "d_model": 16,
    "n_ctx": 4,
    "d_head": 4,
    "n_heads": 4,
    "d_vocab": 11,
    "act_fn": "relu",
    "d_mlp": 32,
    "normalization_type": "LN",
    "seed": 0,
}
HOOKS = ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")


@pytest.fixture(scope="module")
def model():
    return TransformerBridge.boot_native(CONFIG).eval()


@pytest.fixture(scope="module")
def tokens():
    return np.random.default_rng(0).integers(0, CONFIG["d_vocab"], size=(14, CONFIG["n_ctx"]))


def by_hand(model, tokens: np.ndarray, hook: str) -> lmn_core.LMNResult:
    """The LMN with the body from ``run_with_cache`` and the head from ``run_with_hooks``."""
    ids = torch.as_tensor(tokens)
    with torch.no_grad():
        _, cache = model.run_with_cache(ids)
    samples = cache[hook].numpy()
    placeholder = ids[:1]

    def head(activations: np.ndarray) -> np.ndarray:
        value = torch.as_tensor(activations)

        def replace(activation, hook):
            return value

        with torch.no_grad():
            logits = model.run_with_hooks(placeholder.expand(len(value), -1), fwd_hooks=[(hook, replace)])
        return logits.numpy()

    return lmn_core.lmn(head, samples, n_points=5)


@pytest.mark.parametrize("hook", HOOKS)
def test_layer_lmn_at_a_hook_point_equals_the_hand_written_body_and_head(model, tokens, hook):
    measured = layer_lmn(model, tokens, hook, n_points=5)
    expected = by_hand(model, tokens, hook)
    assert measured.n_samples == len(tokens) and measured.lmn > 1.0
    assert measured.lmn == pytest.approx(expected.lmn, rel=1e-6)
    np.testing.assert_allclose(measured.connectivity, expected.connectivity, rtol=1e-5, atol=1e-7)


def test_head_of_body_is_the_models_logits(model, tokens):
    measure = LayerLMN(model, HOOKS[0], example_inputs=tokens)
    ids = torch.as_tensor(tokens)
    with torch.no_grad():
        logits = model(ids)
    samples = measure.samples(tokens)
    np.testing.assert_array_equal(measure.head(samples), logits.numpy())


def test_the_residual_stream_is_cut_and_activations_inside_a_block_are_not(model, tokens):
    found = cut_points(model, tokens[:6])
    for hook in ("hook_embed", "blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", *HOOKS, "hook_unembed"):
        assert hook in found
    reasons = refusals(model, tokens[:6])
    assert [hook for hook, reason in reasons.items() if not reason] == found
    # inside a block, and the bridge's hook_resid_mid (the input of ln2, which the residual stream bypasses)
    inside = (
        "blocks.0.hook_attn_out",
        "blocks.0.mlp.hook_post",
        "blocks.1.attn.hook_z",
        "blocks.1.hook_resid_mid",
    )
    for hook in inside:
        assert hook not in found
        assert "the model reads that input beside the layer" in reasons[hook]
    assert "not a floating-point tensor" in reasons["embed.hook_in"]
    with pytest.raises(ValueError, match=r"no hook point 'blocks\.7\.hook_resid_post'"):
        LayerLMN(model, "blocks.7.hook_resid_post", example_inputs=tokens)


def test_the_monitor_measures_hook_points_on_its_schedule(model, tokens, tmp_path):
    monitor = LMNMonitor(
        model, tokens, list(HOOKS), every_n_steps=2, csv_path=tmp_path / "lmn.csv", n_points=5
    )
    assert monitor.step(1) == {}
    results = monitor.step(2)
    assert results[HOOKS[0]].lmn == pytest.approx(
        layer_lmn(model, tokens, HOOKS[0], n_points=5).lmn, rel=1e-12
    )
    assert (tmp_path / "lmn.csv").read_text().splitlines()[
        0
    ] == f"step,lmn_{HOOKS[0]},lmn_{HOOKS[1]},lmn_n_samples"


def test_the_monitor_logs_a_measure_of_the_hook_points_activations(model, tokens):
    monitor = LMNMonitor(model, tokens, HOOKS[0], measures=["effective_rank", "l2"], n_points=5)
    monitor.step(0)
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.as_tensor(tokens))
    activations = cache[HOOKS[0]].numpy().reshape(len(tokens), -1)
    assert monitor.last_measures[f"effective_rank_{HOOKS[0]}"] == pytest.approx(
        lmn_core.effective_rank(activations), rel=1e-6
    )
    weights = {name: p.detach().numpy() for name, p in model.named_parameters()}
    assert monitor.last_measures["l2"] == pytest.approx(lmn_core.l2(weights), rel=1e-9)
