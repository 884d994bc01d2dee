"""Train the paper's MLP on a reference task in PyTorch, measuring LMN as it goes.

``train(config, out_dir)`` writes into ``out_dir``: ``config.json`` first,
``metrics.csv`` row by row (see ``reference_tasks.runs``), a weight snapshot per LMN
checkpoint (``reference_tasks.snapshots``), the resume checkpoint ``checkpoint.pt``
while it runs, then the final weights ``model.pt`` (a ``state_dict``) and
``summary.json``. Full-batch training on the CPU is deterministic: the same config gives
the same ``metrics.csv``. ``train(config, out_dir, resume=True)`` continues an
interrupted run from its last checkpoint, and on the CPU its ``metrics.csv`` ends up byte
for byte as the uninterrupted run's.

A run is a batch of one of ``reference_tasks.torch_batched`` (which documents the
checkpoint and resume protocol): the update is a hand-written full-batch step (forward,
gradients and PyTorch's fused AdamW, checked against autograd in the tests) that reads
nothing back to the host except on the steps that write a metrics row.

Threads: the trainer leaves PyTorch's thread count as it finds it. While other processes
keep the cores busy, PyTorch's OpenMP threads wait for each other, spinning: on the 2-core
development machine under a load of about 6, a step of 8 batched seeds took about 100 ms
with two threads against 12 ms with one, and a ``(769, 100) x (100, 100)`` product 1.2 ms
against 0.32 ms. On a shared machine give each training process one thread
(``torch.set_num_threads(1)``, as ``lmn reproduce --jobs`` does);
``benchmarks/bench_train.py --threads 1`` (or ``2``) measures both.
"""

from __future__ import annotations

from pathlib import Path

from reference_tasks.recipe import TrainConfig
from reference_tasks.torch_batched import (
    CHECKPOINT_FILE,
    WEIGHTS_FILE,
    RunResult,
    build_model,
    train_batched,
)

__all__ = ["CHECKPOINT_FILE", "WEIGHTS_FILE", "RunResult", "build_model", "train"]


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False) -> RunResult:
    """Run the config's training into ``out_dir`` (created if needed).

    Step ``s`` is measured with the weights after ``s`` AdamW updates; the train loss
    and accuracy of a row come from the same full-batch forward pass as the update.

    Parameters
    ----------
    config : TrainConfig
        The run.
    out_dir : str or Path
        Its folder.
    resume : bool
        Continue from the folder's ``checkpoint.pt`` if it has one (its ``config.json``
        must describe the same run); otherwise start afresh, replacing the files a
        previous run left there.

    Returns
    -------
    RunResult

    Raises
    ------
    ValueError
        If resuming a folder that holds a different run's checkpoint.
    """
    return train_batched([config], [out_dir], resume=resume)[0]
