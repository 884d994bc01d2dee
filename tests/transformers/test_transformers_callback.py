"""Hugging Face models: the hook cut, its refusals, and LMNCallback in a real transformers.Trainer run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import transformers
from torch import nn
from torch.utils.data import Dataset

import lmn_core
from adapters.transformers import LMNCallback, cut_points, layer_lmn

VOCAB, LENGTH = 40, 8


def bert(seed: int = 0) -> transformers.BertForSequenceClassification:
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
        num_labels=3,
    )
    return transformers.BertForSequenceClassification(config)


def distilbert() -> transformers.DistilBertForSequenceClassification:
    torch.manual_seed(1)
    config = transformers.DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=16
    )
    config.num_labels = 3
    return transformers.DistilBertForSequenceClassification(config)


def tokens(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(2, VOCAB, size=(n, LENGTH))


class RandomTokens(Dataset):
    def __init__(self, n: int) -> None:
        self.ids = torch.as_tensor(tokens(n, seed=1))
        self.labels = torch.as_tensor(np.random.default_rng(2).integers(0, 3, size=n))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


class WeightsAt(transformers.TrainerCallback):
    def __init__(self, steps: set[int]) -> None:
        self.steps, self.weights = steps, {}

    def _keep(self, state, model) -> None:
        if state.global_step in self.steps and state.global_step not in self.weights:
            self.weights[state.global_step] = copy.deepcopy(model.state_dict())

    def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:
        self._keep(state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs) -> None:
        self._keep(state, model)


class Reporter(transformers.TrainerCallback):
    """Stands for TensorBoard, W&B, ...: records every ``logs`` a reporter is handed."""

    def __init__(self) -> None:
        self.logs: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        self.logs.append(dict(logs))


def trainer_for(model, tmp_path, callbacks, steps: int = 20) -> transformers.Trainer:
    arguments = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=steps,
        per_device_train_batch_size=16,
        learning_rate=1e-3,
        logging_steps=5,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    data = RandomTokens(64)
    return transformers.Trainer(model=model, args=arguments, train_dataset=data, callbacks=callbacks)


def test_a_trainer_run_has_the_lmn_in_its_log_history(tmp_path) -> None:
    model, inputs, layer = bert(), tokens(48), "bert.encoder.layer.0"
    callback = LMNCallback(inputs, [layer], every_n_steps=10)
    weights = WeightsAt({0, 10, 20})
    trainer = trainer_for(model, tmp_path, [callback, weights])
    trainer.train()
    rows = [row for row in trainer.state.log_history if f"lmn/{layer}" in row]
    assert [row["step"] for row in rows] == [0, 10, 20]
    assert all(row["lmn_n_samples"] == 48 for row in rows)
    assert any("loss" in row for row in trainer.state.log_history)  # the trainer's own rows stay
    reference = bert()
    for row in rows:
        reference.load_state_dict(weights.weights[row["step"]])
        expected = layer_lmn(reference, inputs, layer).lmn
        assert row[f"lmn/{layer}"] == pytest.approx(expected, rel=1e-12)
    assert rows[0][f"lmn/{layer}"] != rows[-1][f"lmn/{layer}"]
    assert model.training  # the trainer's mode, as it was


def test_given_the_trainer_the_values_reach_every_reporter(tmp_path) -> None:
    reporter = Reporter()
    trainer = trainer_for(bert(), tmp_path, [reporter], steps=10)
    callback = LMNCallback(tokens(24), "bert.encoder.layer.1", every_n_steps=5, trainer=trainer)
    trainer.add_callback(callback)
    trainer.train()
    reported = [logs for logs in reporter.logs if "lmn/bert.encoder.layer.1" in logs]
    assert len(reported) == 3  # steps 0, 5, 10
    history = [row for row in trainer.state.log_history if "lmn/bert.encoder.layer.1" in row]
    assert [row["step"] for row in history] == [0, 5, 10]
    assert [logs["lmn/bert.encoder.layer.1"] for logs in reported] == [
        row["lmn/bert.encoder.layer.1"] for row in callback.measurements
    ]


def test_the_head_is_the_rest_of_the_model() -> None:
    """At DistilBERT's pre_classifier the head is ReLU then the classifier: measured in NumPy alike."""
    model, inputs = distilbert().eval(), tokens(40)
    captured = []
    handle = model.pre_classifier.register_forward_hook(lambda m, a, out: captured.append(out.detach()))
    with torch.no_grad():
        model(input_ids=torch.as_tensor(inputs))
    handle.remove()
    weight = model.classifier.weight.detach().double().numpy()
    bias = model.classifier.bias.detach().double().numpy()

    def rest(x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.0) @ weight.T + bias

    expected = lmn_core.lmn(rest, captured[0].double().numpy())
    measured = layer_lmn(model, inputs, "pre_classifier")
    assert measured.lmn > 1.5
    assert measured.lmn == pytest.approx(expected.lmn, rel=1e-4)  # float32 model, float64 oracle


def test_cut_points_of_bert_and_distilbert() -> None:
    assert cut_points(distilbert(), tokens(8)) == [
        "distilbert.embeddings.word_embeddings",
        "distilbert.embeddings.LayerNorm",
        "distilbert.embeddings.dropout",
        "distilbert.embeddings",
        "distilbert.transformer.layer.0.sa_layer_norm",
        "distilbert.transformer.layer.0.output_layer_norm",
        "distilbert.transformer.layer.0",
        "distilbert.transformer.layer.1.sa_layer_norm",
        "distilbert.transformer.layer.1.output_layer_norm",
        "distilbert.transformer.layer.1",
        "pre_classifier",
        "dropout",
        "classifier",
    ]
    points = cut_points(bert(), tokens(8))
    assert {"bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1", "classifier"} <= set(points)
    assert "bert.encoder.layer.0.attention.self" not in points  # the residual jumps over it
    with pytest.raises(ValueError, match="output='scores'"):
        cut_points(bert(), tokens(8), output="scores")


class TokenPath(nn.Module):
    """Token ids pass a module of their own before the embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.ids = nn.Identity()
        self.embedding = nn.Embedding(VOCAB, 4)
        self.out = nn.Linear(4 * LENGTH, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.embedding(self.ids(input_ids))).flatten(1))


def test_a_layer_before_the_embedding_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'ids' outputs a torch.int64 tensor.*after the embedding"):
        layer_lmn(TokenPath(), tokens(8), "ids", output=None)
    assert layer_lmn(TokenPath(), tokens(8), "embedding", output=None).lmn >= 1.0


def test_a_model_that_reads_its_tokens_again_is_refused() -> None:
    """GPT-2's classifier finds each row's last token that is not padding from the token ids."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=16, n_layer=2, n_head=2, n_positions=16, num_labels=2, pad_token_id=0
    )
    model = transformers.GPT2ForSequenceClassification(config)
    padded = tokens(6)
    padded[1, 5:] = 0
    padded[2, 3:] = 0
    with pytest.raises(ValueError, match="not a cut of GPT2ForSequenceClassification"):
        layer_lmn(model, padded, "transformer.h.0")
    assert layer_lmn(model, tokens(6), "transformer.h.0").lmn >= 1.0  # no padding: a cut
