"""reference_tasks.torch_stacked: the hand-written step against autograd and torch.optim.AdamW."""

import pytest
import torch
from torch.nn import functional

from reference_tasks.torch_model import GrokMLP
from reference_tasks.torch_stacked import StackedGrokMLP

N_TOKENS, N_CLASSES, BATCH = 7, 5, 23


def models(n, *, shared=True, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return [
        GrokMLP(N_TOKENS, N_CLASSES, embedding_dim=4, hidden_dim=6, shared_embedding=shared).to(dtype)
        for _ in range(n)
    ]


def copies(originals):
    out = models(len(originals), shared=len(originals[0].embedding.tables) == 1)
    for copy, original in zip(out, originals, strict=True):
        copy.load_state_dict(original.state_dict())
    return out


def data(n, seed=1):
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.randint(0, N_TOKENS, (n, BATCH, 2), generator=generator)
    return pairs, torch.randint(0, N_CLASSES, (n, BATCH), generator=generator)


@pytest.mark.parametrize("shared", [True, False])
def test_steps_follow_autograd_and_adamw_for_every_model(shared):
    stacked_models = models(3, shared=shared)
    plain = copies(stacked_models)
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.2) for m in plain]
    engine = StackedGrokMLP(stacked_models, learning_rate=1e-2, weight_decay=0.2)
    pairs, labels = data(3)
    rows = engine.rows(pairs)
    for _ in range(4):
        evaluation = engine.step(rows, labels, evaluate=True)
        for k, (model, optimizer) in enumerate(zip(plain, optimizers, strict=True)):
            logits = model(pairs[k])
            loss = functional.cross_entropy(logits, labels[k])
            assert evaluation.loss[k].item() == pytest.approx(loss.item(), rel=1e-13)
            assert evaluation.correct[k].item() == (logits.argmax(1) == labels[k]).sum().item()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for k, model in enumerate(plain):
        weights = engine.state_dict(k)
        assert list(weights) == list(model.state_dict())
        for name, value in model.state_dict().items():
            torch.testing.assert_close(weights[name], value, rtol=1e-12, atol=1e-15)
        saved = optimizers[k].state_dict()["state"]
        mine = engine.optimizer_state(k)["state"]
        for index, entry in saved.items():
            assert mine[index]["step"].item() == entry["step"].item() == 4
            for key in ("exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(mine[index][key], entry[key], rtol=1e-10, atol=1e-18)


def test_logits_and_l2_norms_are_each_models_own():
    stacked_models = models(2)
    engine = StackedGrokMLP(stacked_models, learning_rate=1e-3, weight_decay=0.2)
    pairs, _ = data(2)
    logits = engine.logits(engine.rows(pairs), BATCH)
    for k, model in enumerate(stacked_models):
        with torch.no_grad():
            torch.testing.assert_close(logits[k], model(pairs[k]), rtol=1e-12, atol=1e-14)
            norm = torch.linalg.vector_norm(torch.cat([p.flatten() for p in model.parameters()]))
        assert engine.l2_norms()[k].item() == pytest.approx(norm.item(), rel=1e-14)


def test_optimizer_state_round_trips_into_a_new_stack():
    engine = StackedGrokMLP(models(2), learning_rate=1e-2, weight_decay=0.2)
    pairs, labels = data(2)
    rows = engine.rows(pairs)
    for _ in range(3):
        engine.step(rows, labels)
    restored_models = models(2, seed=5)
    for k, model in enumerate(restored_models):
        model.load_state_dict(engine.state_dict(k))
    restored = StackedGrokMLP(restored_models, learning_rate=1e-2, weight_decay=0.2)
    restored.load_optimizer_state([engine.optimizer_state(k) for k in range(2)])
    plain = models(1, seed=6)[0]
    plain.load_state_dict(engine.state_dict(1))
    optimizer = torch.optim.AdamW(plain.parameters())
    optimizer.load_state_dict(engine.optimizer_state(1))
    engine.step(rows, labels)
    restored.step(rows, labels)
    assert torch.equal(restored.flat, engine.flat)
    assert restored.optimizer.state[restored.flat]["step"].dtype == torch.float32
    functional.cross_entropy(plain(pairs[1]), labels[1]).backward()
    optimizer.step()
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(value, engine.state_dict(1)[name], rtol=1e-12, atol=1e-15)


def test_a_fresh_stack_has_an_empty_optimizer_state_that_loads_back():
    engine = StackedGrokMLP(models(1), learning_rate=1e-3, weight_decay=0.2)
    state = engine.optimizer_state(0)
    assert state["state"] == {} and state["param_groups"][0]["params"] == list(range(7))
    engine.load_optimizer_state([state])
    assert not engine.optimizer.state


def test_mismatched_models_and_states_are_refused():
    with pytest.raises(ValueError, match="at least one model"):
        StackedGrokMLP([], learning_rate=1e-3, weight_decay=0.2)
    with pytest.raises(ValueError, match="one shape"):
        StackedGrokMLP(models(1) + models(1, shared=False), learning_rate=1e-3, weight_decay=0.2)
    with pytest.raises(ValueError, match="one dtype"):
        StackedGrokMLP(models(1) + models(1, dtype=torch.float32), learning_rate=1e-3, weight_decay=0.2)
    engine = StackedGrokMLP(models(2), learning_rate=1e-3, weight_decay=0.2)
    pairs, labels = data(2)
    engine.step(engine.rows(pairs), labels)
    states = [engine.optimizer_state(0), engine.optimizer_state(1)]
    with pytest.raises(ValueError, match="expected 2 optimizer states"):
        engine.load_optimizer_state(states[:1])
    states[1]["state"][0]["step"] = torch.tensor(7.0)
    with pytest.raises(ValueError, match=r"share one optimizer step, got \[1.0, 7.0\]"):
        engine.load_optimizer_state(states)
