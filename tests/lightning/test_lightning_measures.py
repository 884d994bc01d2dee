"""The Lightning callback's measures=[...]: progress measures in the trainer's CSV logger, beside the LMN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning_modules import Grokking, WeightsAt
from test_lightning_callback import trainer_for

import lmn_core
from adapters.lightning import LMNCallback
from adapters.schedule import read_monitor_csv
from reference_tasks.model.torch_model import build_model

STEPS, SCHEDULE, N = 20, 10, 64


def hidden1(model, inputs):
    caught = []
    handle = model.get_submodule("hidden1").register_forward_hook(lambda _m, _a, out: caught.append(out))
    with torch.no_grad():
        model(torch.as_tensor(inputs))
    handle.remove()
    return caught[0].numpy()


def test_the_csv_logger_holds_the_selected_measures_at_each_scheduled_step(tmp_path) -> None:
    torch.manual_seed(0)
    module = Grokking()
    inputs = module.task.pairs[:N]
    callback = LMNCallback(
        inputs,
        ["hidden1"],
        every_n_steps=SCHEDULE,
        module="net",
        measures=["effective_rank", "weight_movement", "l2"],
        n_points=5,
    )
    weights = WeightsAt({0, 10, 20})
    trainer_for(tmp_path, [callback, weights], steps=STEPS).fit(module, module.loader(STEPS))

    table = read_monitor_csv(next(tmp_path.glob("run/version_*/metrics.csv")))
    measured = ~np.isnan(table["lmn/effective_rank_hidden1"])
    assert table["step"][measured].tolist() == [0, 10, 20]
    reference = build_model(module.task.n_tokens, module.task.n_classes)
    initial = {name: value.double().numpy() for name, value in weights.weights[0].items()}
    for row, step in zip(np.flatnonzero(measured), [0, 10, 20], strict=True):
        reference.load_state_dict(weights.weights[step])
        now = {name: value.double().numpy() for name, value in weights.weights[step].items()}
        assert table["lmn/l2"][row] == pytest.approx(lmn_core.l2(now), rel=1e-6)
        assert table["lmn/weight_movement"][row] == pytest.approx(
            lmn_core.weight_movement(now, initial), rel=1e-6, abs=1e-9
        )
        expected_rank = lmn_core.effective_rank(hidden1(reference, inputs))
        assert table["lmn/effective_rank_hidden1"][row] == pytest.approx(expected_rank, rel=1e-6)
    assert table["lmn/weight_movement"][measured][-1] > 0
    assert set(callback.measurements[-1]) == {
        "step",
        "lmn/hidden1",
        "lmn_n_samples",
        "lmn/effective_rank_hidden1",
        "lmn/weight_movement",
        "lmn/l2",
    }


def test_an_unknown_measure_is_refused_when_the_callback_is_made() -> None:
    with pytest.raises(lmn_core.MeasureError, match="unknown measure 'rankme'"):
        LMNCallback(np.zeros((4, 2), dtype=np.int64), "hidden1", measures=["rankme"])
