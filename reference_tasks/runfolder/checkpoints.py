"""The resume checkpoint of a run folder: framework-free named arrays in one ``.npz`` file.

At every LMN checkpoint step ``s`` the trainer replaces ``checkpoint.npz`` atomically with
the state that begins step ``s``: the engine's named arrays (weights and optimizer state,
see ``training.engine.Engine.state``) and the time spent so far. A finished run removes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference_tasks.runfolder.schema import CHECKPOINT_FILE

_STEP, _SECONDS = "__step__", "__seconds__"


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """The state that begins ``step``, and the seconds spent before it (in all, and on LMN)."""

    step: int
    state: dict[str, np.ndarray]
    seconds_total: float
    seconds_lmn: float


def save(run_dir: str | Path, checkpoint: Checkpoint) -> Path:
    """Replace ``run_dir/checkpoint.npz`` with ``checkpoint`` atomically; return its path."""
    path = Path(run_dir) / CHECKPOINT_FILE
    reserved = {_STEP, _SECONDS} & set(checkpoint.state)
    if reserved:
        raise ValueError(f"checkpoint state names {sorted(reserved)} are reserved")
    temporary = path.with_name(path.stem + ".tmp.npz")
    seconds = np.asarray([checkpoint.seconds_total, checkpoint.seconds_lmn], dtype=np.float64)
    np.savez(temporary, **{_STEP: np.int64(checkpoint.step), _SECONDS: seconds}, **checkpoint.state)
    os.replace(temporary, path)
    return path


def load(run_dir: str | Path) -> Checkpoint:
    """Read ``run_dir/checkpoint.npz``.

    Raises
    ------
    ValueError
        If it does not load or lacks the step or the timings.
    """
    path = Path(run_dir) / CHECKPOINT_FILE
    try:
        with np.load(path) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as error:
        raise ValueError(f"cannot resume {run_dir}: {path} does not load ({error})") from error
    if _STEP not in arrays or _SECONDS not in arrays:
        raise ValueError(f"cannot resume {run_dir}: {path} is not a checkpoint of this trainer")
    step, seconds = int(arrays.pop(_STEP)), arrays.pop(_SECONDS)
    return Checkpoint(step, arrays, float(seconds[0]), float(seconds[1]))
