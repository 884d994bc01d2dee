"""The Hugging Face callback's measures=[...]: progress measures in the log history, beside the LMN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_transformers_callback import WeightsAt, bert, tokens, trainer_for

import lmn_core
from adapters.transformers import LMNCallback

LAYER = "bert.encoder.layer.0"


def block_output(model, inputs):
    caught = []
    handle = model.get_submodule(LAYER).register_forward_hook(lambda _m, _a, out: caught.append(out))
    with torch.no_grad():
        model.eval()(input_ids=torch.as_tensor(inputs))
    handle.remove()
    output = caught[0][0] if isinstance(caught[0], tuple) else caught[0]
    return output.reshape(len(inputs), -1).double().numpy()


def parameters(model):
    return {name: p.detach().double().numpy() for name, p in model.named_parameters()}


def test_the_log_history_holds_the_selected_measures(tmp_path) -> None:
    model, inputs = bert(), tokens(32)
    measures = ["l2", "weight_movement", "effective_rank"]
    callback = LMNCallback(inputs, [LAYER], every_n_steps=10, measures=measures, n_points=5)
    weights = WeightsAt({0, 10, 20})
    trainer = trainer_for(model, tmp_path, [callback, weights])
    trainer.train()
    rows = [row for row in trainer.state.log_history if f"lmn/{LAYER}" in row]
    assert [row["step"] for row in rows] == [0, 10, 20]
    reference = bert()
    initial = None
    for row in rows:
        reference.load_state_dict(weights.weights[row["step"]])
        now = parameters(reference)
        initial = now if initial is None else initial
        assert row["lmn/l2"] == pytest.approx(lmn_core.l2(now), rel=1e-6)
        assert row["lmn/weight_movement"] == pytest.approx(
            lmn_core.weight_movement(now, initial), rel=1e-6, abs=1e-9
        )
        expected = lmn_core.effective_rank(block_output(reference, inputs))
        assert row[f"lmn/effective_rank_{LAYER}"] == pytest.approx(expected, rel=1e-6)
    assert rows[-1]["lmn/weight_movement"] > 0
    assert model.training  # the trainer's mode, as it was


def test_without_measures_the_rows_hold_the_lmn_only(tmp_path) -> None:
    callback = LMNCallback(tokens(16), LAYER, every_n_steps=10, n_points=5)
    trainer_for(bert(), tmp_path, [callback], steps=10).train()
    assert set(callback.measurements[0]) == {"step", f"lmn/{LAYER}", "lmn_n_samples"}
    with pytest.raises(lmn_core.MeasureError, match="unknown measure"):
        LMNCallback(np.zeros((2, 4), dtype=np.int64), LAYER, measures=["nothing_like_it"])
