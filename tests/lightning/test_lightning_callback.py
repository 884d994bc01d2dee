"""The Lightning callback: the LMN at the scheduled steps of a real Trainer run, in its CSV logger."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning_modules import Grokking, WeightsAt

from adapters.lightning import LMNCallback
from adapters.schedule import read_monitor_csv
from adapters.torch import layer_lmn
from reference_tasks.model.torch_model import build_model

STEPS = 200
SCHEDULE = 50
N = 96


def trainer_for(tmp_path, callbacks, steps=STEPS, **options) -> pl.Trainer:
    return pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=CSVLogger(tmp_path, name="run"),
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
        **options,
    )


def test_csv_logger_holds_the_lmn_of_the_weights_at_each_scheduled_step(tmp_path) -> None:
    torch.manual_seed(0)
    module = Grokking()
    inputs = module.task.pairs[:N]
    callback = LMNCallback(inputs, ["hidden1"], every_n_steps=SCHEDULE, module="net")
    weights = WeightsAt(set(range(0, STEPS + 1, SCHEDULE)))
    trainer = trainer_for(tmp_path, [callback, weights])
    trainer.fit(module, module.loader(STEPS))

    table = read_monitor_csv(next(tmp_path.glob("run/version_*/metrics.csv")))
    measured = ~np.isnan(table["lmn/hidden1"])
    steps = table["step"][measured].tolist()
    assert steps == [0, 50, 100, 150, 200]
    assert table["lmn_n_samples"][measured].tolist() == [N] * 5
    assert np.isfinite(table["train_loss"]).sum() >= 10  # the module's own logging goes on beside it
    reference = build_model(module.task.n_tokens, module.task.n_classes)
    for step, logged in zip(steps, table["lmn/hidden1"][measured], strict=True):
        reference.load_state_dict(weights.weights[step])
        assert logged == pytest.approx(layer_lmn(reference, inputs, "hidden1").lmn, rel=1e-12)
    values = [row["lmn/hidden1"] for row in callback.measurements]
    assert values[0] != values[-1]  # training moved the LMN


def test_modes_and_gradients_are_restored_after_a_measurement(tmp_path) -> None:
    module = Grokking()

    seen = []

    class Check(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            grads = [parameter.grad is not None for parameter in pl_module.parameters()]
            seen.append((pl_module.net.training, all(grads)))

    callback = LMNCallback(module.task.pairs[:32], "hidden1", every_n_steps=1, module="net")
    trainer = trainer_for(tmp_path, [callback, Check()], steps=3)
    trainer.fit(module, module.loader(3))
    assert [row["step"] for row in callback.measurements] == [0, 1, 2, 3]
    assert seen == [(True, True)] * 3


def test_epochs_and_steps_together_log_each_step_once(tmp_path) -> None:
    module = Grokking()
    callback = LMNCallback(
        module.task.pairs[:32], "hidden1", every_n_steps={0, 4}, every_n_epochs=1, module="net"
    )
    trainer = trainer_for(tmp_path, [callback], steps=8, max_epochs=2)
    trainer.fit(module, module.loader(4))  # 4 steps an epoch
    assert [row["step"] for row in callback.measurements] == [0, 4, 8]


def test_bad_schedules_and_layers_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="every_n_steps must be at least 1"):
        LMNCallback(np.zeros((4, 2), dtype=np.int64), "hidden1", every_n_steps=0)
    with pytest.raises(ValueError, match="needs a schedule"):
        LMNCallback(np.zeros((4, 2), dtype=np.int64), "hidden1", every_n_steps=None)
    with pytest.raises(ValueError, match="at least one layer"):
        LMNCallback(np.zeros((4, 2), dtype=np.int64), [])
    module = Grokking()
    callback = LMNCallback(module.task.pairs[:8], "hidden3", module="net")
    with pytest.raises(ValueError, match="no layer 'hidden3'"):
        trainer_for(tmp_path, [callback], steps=1).fit(module, module.loader(1))
