"""Starting, resuming and rewinding a run folder; its JSON files.

Resuming a run from its checkpoint at step ``s`` drops the rows and snapshots of steps
``>= s`` and measures them again from the restored state, so nothing is lost or
written twice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reference_tasks.runfolder.metrics import truncate_metrics
from reference_tasks.runfolder.schema import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LEGACY_CONFIG_VALUES,
    METRICS_FILE,
    SNAPSHOT_DIR,
    SUMMARY_FILE,
    VOLATILE_CONFIG_KEYS,
    WEIGHTS_STEM,
)
from reference_tasks.runfolder.weights import remove_snapshots_from


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a config's criterion
        return _json_safe(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def write_json(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON atomically (non-finite floats become ``null``, dataclasses
    their fields)."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON file of the run folder."""
    return json.loads(Path(path).read_text())


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The ``config.json`` entries on which two runs differ (volatile entries ignored).

    Both are compared as JSON would store them (tuples as lists); an entry that ``saved``
    lacks because it was written before the entry existed counts as its legacy value
    (``LEGACY_CONFIG_VALUES``).
    """
    legacy = {key: value for key, value in LEGACY_CONFIG_VALUES.items() if key in current}
    saved_json = json.loads(json.dumps(_json_safe({**legacy, **saved})))
    current_json = json.loads(json.dumps(_json_safe(dict(current))))
    keys = (set(saved_json) | set(current_json)) - VOLATILE_CONFIG_KEYS
    return sorted(
        f"{key}: saved {saved_json.get(key)!r}, now {current_json.get(key)!r}"
        for key in keys
        if saved_json.get(key) != current_json.get(key)
    )


def is_finished(run_dir: str | Path) -> bool:
    """Whether the run in ``run_dir`` ran to its end (its ``summary.json`` exists)."""
    return (Path(run_dir) / SUMMARY_FILE).exists()


def check_resumable(run_dir: str | Path, record: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` if ``run_dir`` holds a checkpoint of a run other than ``record``'s."""
    run_dir = Path(run_dir)
    if (run_dir / CHECKPOINT_FILE).exists():
        differences = config_differences(read_json(run_dir / CONFIG_FILE), record)
        if differences:
            raise ValueError(
                f"cannot resume {run_dir}: it holds a different run ({'; '.join(differences)}); "
                "start it afresh or choose another folder"
            )


def start_run(run_dir: str | Path, record: Mapping[str, Any], *, resume: bool) -> bool:
    """Prepare ``run_dir`` for a trainer; return whether to resume from its checkpoint.

    With ``resume`` and a checkpoint present, the saved ``config.json`` must describe the
    same run as ``record``. Otherwise the files a trainer writes (config, metrics, summary,
    snapshots, checkpoint, final weights ``model.*``) are removed, nothing else in the
    folder is touched, and ``record`` is written as ``config.json``.

    Raises
    ------
    ValueError
        If resuming a run whose saved config differs from ``record`` (the message lists
        the differences).
    """
    run_dir = Path(run_dir)
    if resume and (run_dir / CHECKPOINT_FILE).exists():
        check_resumable(run_dir, record)
        return True
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (METRICS_FILE, SUMMARY_FILE, CONFIG_FILE, CHECKPOINT_FILE):
        (run_dir / name).unlink(missing_ok=True)
    for weights in run_dir.glob(f"{WEIGHTS_STEM}.*"):
        weights.unlink()
    shutil.rmtree(run_dir / SNAPSHOT_DIR, ignore_errors=True)
    write_json(run_dir / CONFIG_FILE, record)
    return False


def forget_progress(run_dir: str | Path) -> None:
    """Make the run in ``run_dir`` start afresh when it next trains: drop its checkpoint and summary.

    The trainer then replaces the files it writes (:func:`start_run`), and nothing else.
    """
    for name in (CHECKPOINT_FILE, SUMMARY_FILE):
        (Path(run_dir) / name).unlink(missing_ok=True)


def rewind_run(run_dir: str | Path, step: int) -> None:
    """Drop the metrics rows and snapshots of steps ``>= step``: a resumed run redoes them."""
    run_dir = Path(run_dir)
    truncate_metrics(run_dir / METRICS_FILE, step)
    remove_snapshots_from(run_dir, step)
