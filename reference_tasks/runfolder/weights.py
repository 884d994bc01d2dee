"""The weights a run folder keeps, framework-free: a snapshot per LMN checkpoint, and the resume checkpoint.

A snapshot is ``snapshots/step_{step:06d}.npz`` in the run folder, one array per weight,
keyed by the parameter names of ``reference_tasks.model.torch_model.GrokMLP`` (PyTorch layout,
whatever framework trained it): ``embedding.tables.0.weight`` (and
``embedding.tables.1.weight`` with one table per operand) of shape ``(n_tokens, dim)``,
then ``linear1``, ``linear2``, ``output`` as ``.weight`` ``(out, in)`` and ``.bias``
``(out,)``, in the run's dtype. They let a report recompute anything about a checkpoint
(its connectivity matrix, say) with NumPy alone.

At every LMN checkpoint step ``s`` the trainer also replaces ``checkpoint.npz`` with the
state that begins step ``s``: the engine's named arrays (weights and optimizer state, see
``training.engine.Engine.state``) and the time spent so far. A finished run removes it.
Both are written atomically: a complete file or none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference_tasks.runfolder.schema import CHECKPOINT_FILE, SNAPSHOT_DIR

_SNAPSHOT_NAME = re.compile(r"step_(\d{6,})\.npz")
_STEP, _SECONDS = "__step__", "__seconds__"


def _save_atomically(path: Path, arrays: Mapping[str, np.ndarray]) -> Path:
    temporary = path.with_name(path.stem + ".tmp.npz")
    np.savez(temporary, **{name: np.asarray(array) for name, array in arrays.items()})
    os.replace(temporary, path)
    return path


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    """The file of the snapshot at ``step`` in ``run_dir``."""
    return Path(run_dir) / SNAPSHOT_DIR / f"step_{int(step):06d}.npz"


def save_snapshot(run_dir: str | Path, step: int, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write the weights at ``step``; return its path."""
    path = snapshot_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save_atomically(path, arrays)


def load_snapshot(run_dir: str | Path, step: int) -> dict[str, np.ndarray]:
    """The weights saved at ``step``, by parameter name.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` has no snapshot at ``step`` (the message lists the steps it has).
    """
    path = snapshot_path(run_dir, step)
    if not path.exists():
        raise FileNotFoundError(
            f"{run_dir} has no snapshot at step {step}; it has steps {snapshot_steps(run_dir)}"
        )
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def snapshot_steps(run_dir: str | Path) -> list[int]:
    """The steps that ``run_dir`` holds snapshots of, in increasing order."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    if not folder.is_dir():
        return []
    matches = (_SNAPSHOT_NAME.fullmatch(path.name) for path in folder.iterdir())
    return sorted(int(match.group(1)) for match in matches if match)


def remove_snapshots_from(run_dir: str | Path, step: int) -> None:
    """Delete the snapshots of steps ``>= step`` (a resumed run writes them again)."""
    for later in snapshot_steps(run_dir):
        if later >= step:
            snapshot_path(run_dir, later).unlink()


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """The state that begins ``step``, and the seconds spent before it (in all, and on LMN)."""

    step: int
    state: dict[str, np.ndarray]
    seconds_total: float
    seconds_lmn: float


def save_checkpoint(run_dir: str | Path, checkpoint: Checkpoint) -> Path:
    """Replace ``run_dir/checkpoint.npz`` with ``checkpoint``; return its path."""
    reserved = {_STEP, _SECONDS} & set(checkpoint.state)
    if reserved:
        raise ValueError(f"checkpoint state names {sorted(reserved)} are reserved")
    seconds = np.asarray([checkpoint.seconds_total, checkpoint.seconds_lmn], dtype=np.float64)
    arrays = {_STEP: np.int64(checkpoint.step), _SECONDS: seconds, **checkpoint.state}
    return _save_atomically(Path(run_dir) / CHECKPOINT_FILE, arrays)


def load_checkpoint(run_dir: str | Path) -> Checkpoint:
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
