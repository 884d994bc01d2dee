"""Figure 4's connectivity matrices, recomputed from a run's snapshots once and kept beside them.

Figure 4 recomputes the ``hidden1`` connectivity matrix with NumPy from the weight
snapshots at a run's phase points (an independent check of the LMN that the trainer
recorded) and orders its samples by spectral clustering. :func:`cached_checkpoint_lmn`
keeps each result and its clustering in the run folder under
``report-cache/`` with the SHA-256 of the snapshot it came from, so a report drawn again,
or drawn after :func:`prepare_figure4` ran as soon as the run finished (``lmn reproduce``
does that on a free Dask worker while other runs still train), does not compute it twice.
A cached result whose snapshot changed (a run rewound and trained again) is recomputed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

import lmn_core
from reference_tasks.report.clustering import Clustering, by_size, figure4_clustering
from reference_tasks.report.run_data import RunData, checkpoint_lmn, load_run
from reference_tasks.runfolder.run_summary import PHASE_POINTS
from reference_tasks.runfolder.snapshots import snapshot_path

logger = logging.getLogger(__name__)

CACHE_DIR = "report-cache"
#: The phase points Figure 4 draws (the first three of ``PHASE_POINTS``) and how it names them.
FIGURE4_POINTS = dict(
    zip(PHASE_POINTS[:3], ("initialization", "memorization", "generalization"), strict=True)
)


#: The scalar fields of an ``LMNResult`` kept in a cache file, beside ``connectivity`` and ``eigenvalues``.
_SCALARS = ("lmn", "entropy_bits", "negative_mass", "n_samples", "n_points", "n_outputs")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_path(run: RunData, step: int) -> Path:
    return run.path / CACHE_DIR / f"hidden1_step_{int(step):06d}.npz"


def _load(path: Path, digest: str, run: RunData) -> tuple[lmn_core.LMNResult, Clustering] | None:
    try:
        with np.load(path) as data:
            key = (str(data["snapshot_sha256"]), int(data["n_points"]), int(data["clustering_seed"]))
            if key != (digest, run.config.lmn_points, run.seed):
                return None
            scalars = {name: data[name].item() for name in _SCALARS}
            result = lmn_core.LMNResult(
                matrix=data["connectivity"], eigenvalues=data["eigenvalues"], **scalars
            )
            labels = data["cluster_labels"]
    except (OSError, KeyError, ValueError):
        return None
    return result, by_size(labels)


def cached_checkpoint_lmn(run: RunData, step: int) -> tuple[lmn_core.LMNResult, Clustering]:
    """:func:`checkpoint_lmn` at ``hidden1`` and its Figure 4 clustering, from the cache if still valid.

    The clustering is :func:`figure4_clustering` from the run's seed.
    """
    digest = _digest(snapshot_path(run.path, step))
    path = _cache_path(run, step)
    if path.exists():
        cached = _load(path, digest, run)
        if cached is not None:
            return cached
        logger.info("%s: stale or unreadable, recomputed", path)
    result = checkpoint_lmn(run, step)
    clustering = figure4_clustering(result.connectivity, run.seed)
    try:
        path.parent.mkdir(exist_ok=True)
        temporary = path.with_name(path.stem + ".tmp.npz")
        np.savez(
            temporary,
            snapshot_sha256=digest,
            clustering_seed=run.seed,
            cluster_labels=clustering.labels,
            connectivity=result.connectivity,
            eigenvalues=result.eigenvalues,
            **{name: getattr(result, name) for name in _SCALARS},
        )
        os.replace(temporary, path)
    except OSError as error:  # a read-only run folder: draw without keeping it
        logger.info("%s: not cached (%s)", path, error)
    return result, clustering


def figure4_steps(run: RunData) -> list[tuple[str, str, int]]:
    """``(point, label, step)`` of the Figure 4 rows that have a snapshot (warns about the rest)."""
    available = run.snapshot_steps
    steps = run.summary.lmn_steps
    chosen = []
    for point, label in FIGURE4_POINTS.items():
        step = steps.get(point)
        if step is None and point == "generalization":
            generalized = run.summary.generalization_step
            label = (
                "never generalized: last checkpoint"
                if generalized is None
                else f"no LMN checkpoint after generalization (step {generalized}): last checkpoint"
            )
            later = [s for s in available if s >= (steps.get("memorization") or 0)]
            step = later[-1] if later else None
            if step is None:
                logger.warning("%s: %s; but no snapshot after memorization", run.path, label)
                continue
        if step is None:
            logger.warning(
                "%s: no %s point (no LMN measured there); its Figure 4 row is left out", run.path, point
            )
        elif step not in available:
            logger.warning(
                "%s: no weight snapshot at the %s step %d; its Figure 4 row is left out",
                run.path,
                point,
                step,
            )
        else:
            chosen.append((point, label, step))
    return chosen


def prepare_figure4(run_dir: str | Path) -> int:
    """Compute and cache the Figure 4 matrices of a finished run; return how many (0 if unfinished)."""
    run = load_run(run_dir)
    if run is None:
        return 0
    steps = [step for _, _, step in figure4_steps(run)]
    for step in steps:
        cached_checkpoint_lmn(run, step)
    return len(steps)
