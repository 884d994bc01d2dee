"""Weight snapshots of a run: the model's weights at every LMN checkpoint, framework-free.

A snapshot is ``snapshots/step_{step:06d}.npz`` in the run folder, one array per weight,
keyed by the parameter names of ``reference_tasks.model.torch_model.GrokMLP`` (PyTorch layout,
whatever framework trained it): ``embedding.tables.0.weight`` (and
``embedding.tables.1.weight`` with one table per operand) of shape ``(n_tokens, dim)``,
then ``linear1``, ``linear2``, ``output`` as ``.weight`` ``(out, in)`` and ``.bias``
``(out,)``, in the run's dtype. They let a report recompute anything about a checkpoint
(its connectivity matrix, say) with NumPy alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from reference_tasks.runfolder.schema import SNAPSHOT_DIR

_SNAPSHOT_NAME = re.compile(r"step_(\d{6,})\.npz")


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    """The file of the snapshot at ``step`` in ``run_dir``."""
    return Path(run_dir) / SNAPSHOT_DIR / f"step_{int(step):06d}.npz"


def save_snapshot(run_dir: str | Path, step: int, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write the weights at ``step`` atomically (a complete file or none); return its path."""
    path = snapshot_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.stem + ".tmp.npz")
    np.savez(temporary, **{name: np.asarray(array) for name, array in arrays.items()})
    os.replace(temporary, path)
    return path


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
