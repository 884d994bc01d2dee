"""Figure 4 of a run: its connectivity matrices, recomputed from its snapshots, checked and kept.

Figure 4 recomputes the ``hidden1`` connectivity matrix with NumPy from the weight
snapshots at a run's phase points (:func:`checkpoint_lmn`, an independent check of the LMN
that the trainer recorded: a relative difference over ``LMN_RTOL`` is logged as a
warning) and orders its samples by spectral clustering. :func:`cached_checkpoint_lmn`
keeps each result and its clustering in the run folder under ``report-cache/`` with the
SHA-256 of the snapshot it came from, so a report drawn again, or drawn after
:func:`prepare_figure4` ran as soon as the run finished (``lmn reproduce`` does that on a
free Dask worker while other runs still train), does not compute it twice. A cached
result whose snapshot changed (a run rewound and trained again) is recomputed.
:func:`figure4_drawing` gives the figure of a task's lowest seed with snapshots, to draw, and
its checks for the report's summary.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import lmn_core
from reference_tasks.experiment import task_title
from reference_tasks.model.numpy_model import NumpyGrokMLP
from reference_tasks.model.spec import tables_in, weight_layout
from reference_tasks.report import figures
from reference_tasks.report.clustering import Clustering, by_size, figure4_clustering
from reference_tasks.report.run_data import RunData, load_run
from reference_tasks.runfolder import lmn_column
from reference_tasks.runfolder.run_summary import PHASE_POINTS
from reference_tasks.runfolder.weights import load_snapshot, snapshot_path
from reference_tasks.tasks import lmn_sample_indices

logger = logging.getLogger(__name__)

LMN_RTOL = 1e-4
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


def holds_reference_mlp(run: RunData) -> bool:
    """Whether the run's snapshots hold the reference MLP's weights (Figure 4 recomputes that
    network with NumPy; runs of other models have no Figure 4)."""
    steps = run.snapshot_steps
    if not steps:
        return False
    with np.load(snapshot_path(run.path, steps[0])) as snapshot:
        names = set(snapshot.files)
    return names == {slot.name for slot in weight_layout(tables_in(names))}


def prepare_figure4(run_dir: str | Path) -> int:
    """Compute and cache the Figure 4 matrices of a finished run; return how many (0 if unfinished,
    or not the reference MLP)."""
    run = load_run(run_dir)
    if run is None or not holds_reference_mlp(run):
        return 0
    steps = [step for _, _, step in figure4_steps(run)]
    for step in steps:
        cached_checkpoint_lmn(run, step)
    return len(steps)


def checkpoint_lmn(run: RunData, step: int, probe: str = "hidden1", **lmn_kwargs: Any) -> lmn_core.LMNResult:
    """The LMN at ``probe`` recomputed from the run's weight snapshot at ``step``.

    Measured as the trainers do: on the run's LMN samples
    (``tasks.lmn_sample_indices``), with the config's ``lmn_points``, through the
    NumPy forward pass of the snapshot in the run's dtype, with the head's leading
    affine layer folded into the samples (exact: identity 3 of docs/design.md).

    Raises
    ------
    FileNotFoundError
        If the run has no snapshot at ``step``.
    """
    task = run.config.resolved_task().make_data(**run.config.task_options)
    pairs = task.inputs[lmn_sample_indices(task.n_samples, size=run.config.lmn_samples, seed=run.config.seed)]
    model = NumpyGrokMLP.from_snapshot(load_snapshot(run.path, step), run.config.activation)
    prefix, rest = model.folded_head(probe)
    samples = prefix(model.activations(pairs, probe))
    return lmn_core.lmn(rest, samples, n_points=run.config.lmn_points, **lmn_kwargs)


def recorded_lmn(run: RunData, step: int, probe: str = "hidden1") -> float | None:
    """The LMN at ``probe`` that ``metrics.csv`` records at ``step`` (``None`` if not measured)."""
    column = lmn_column(probe)
    value = next((row[column] for row in run.rows if row["step"] == step), None)
    return None if value is None or not np.isfinite(value) else float(value)


def _connectivity_panels(
    run: RunData, bar: Callable[[Iterable[Any]], Iterable[Any]]
) -> tuple[list[figures.ConnectivityPanel], list[dict[str, Any]]]:
    panels, checks = [], []
    for point, label, step in bar(figure4_steps(run)):
        result, clustering = cached_checkpoint_lmn(run, step)
        recorded = recorded_lmn(run, step)
        difference = None if recorded is None else abs(result.lmn - recorded) / abs(recorded)
        if difference is None or difference > LMN_RTOL:
            logger.warning(
                "%s step %d: the LMN recomputed from the snapshot is %.6g but metrics.csv records %s "
                "(relative tolerance %g)",
                run.path,
                step,
                result.lmn,
                recorded,
                LMN_RTOL,
            )
        panels.append(
            figures.ConnectivityPanel(
                label, step, result.connectivity, result.eigenvalues, result.lmn, recorded, clustering
            )
        )
        checks.append(
            {
                "framework": run.framework,
                "task": run.task,
                "seed": run.seed,
                "point": point,
                "step": step,
                "lmn": result.lmn,
                "recorded_lmn": recorded,
                "relative_difference": difference,
                "n_samples": result.n_samples,
                "negative_mass": result.negative_mass,
            }
        )
    return panels, checks


def figure4_drawing(
    task_runs: Sequence[RunData], out_dir: Path, bar: Callable[[Iterable[Any]], Iterable[Any]]
) -> tuple[Callable[[], Path] | None, list[dict[str, Any]]]:
    """Figure 4 of one framework and task from its lowest seed with snapshots, and its LMN checks.

    The figure comes as a call that draws it into ``out_dir`` and returns its path (``None``
    when no run has a snapshot at a phase point); ``bar`` wraps the panels (progress).
    """
    framework, task = task_runs[0].framework, task_runs[0].task
    if task_runs[0].snapshot_steps and not holds_reference_mlp(task_runs[0]):
        logger.info(
            "Figure 4 of %s %s is left out: it recomputes the reference MLP, not this model", framework, task
        )
        return None, []
    with_snapshots = [run for run in task_runs if run.snapshot_steps]
    if not with_snapshots:
        logger.warning(
            "Figure 4 of %s %s is skipped: no run folder has weight snapshots (%s)",
            framework,
            task,
            ", ".join(str(run.path) for run in task_runs),
        )
        return None, []
    run = with_snapshots[0]
    panels, checks = _connectivity_panels(run, bar)
    if not panels:
        logger.warning("Figure 4 of %s %s is skipped: no snapshot at any phase point", framework, task)
        return None, checks
    title = (
        f"Figure 4: {task_title(task)} ({framework}, seed {run.seed}): hidden1 connectivity "
        "matrix and its eigenvalues"
    )
    path = out_dir / f"fig4_connectivity_{framework}_{task}.png"
    return functools.partial(figures.figure_connectivity, panels, path, title=title, seed=run.seed), checks
