"""The Lightning callback under DDP: two CPU processes (gloo); rank 0 measures, rank 1 does nothing."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
from lightning.pytorch.loggers import CSVLogger
from lightning_modules import Grokking, RankReport

from adapters.lightning import LMNCallback
from adapters.schedule import read_monitor_csv
from adapters.torch import layer_lmn

STEPS = 20


def test_only_rank_zero_measures_and_the_logger_gets_each_step_once(tmp_path) -> None:
    module = Grokking()
    inputs = module.task.pairs[:64]
    callback = LMNCallback(inputs, "hidden1", every_n_steps=10, module="net")
    trainer = pl.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        logger=CSVLogger(tmp_path, name="run"),
        callbacks=[callback, RankReport(callback, str(tmp_path))],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, module.loader(2 * STEPS))  # two items a step: one full batch per rank
    assert (tmp_path / "rank0.txt").read_text() == "0 10 20"
    assert (tmp_path / "rank1.txt").read_text() == ""
    table = read_monitor_csv(next(tmp_path.glob("run/version_*/metrics.csv")))
    measured = ~np.isnan(table["lmn/hidden1"])
    assert table["step"][measured].tolist() == [0, 10, 20]
    # ddp_spawn hands rank 0's final weights back to this process: the last value is theirs (to
    # rounding: Lightning runs each of the two processes on one torch thread, this one on two)
    final = layer_lmn(module.net, inputs, "hidden1").lmn
    assert table["lmn/hidden1"][measured][-1] == pytest.approx(final, rel=1e-9)
