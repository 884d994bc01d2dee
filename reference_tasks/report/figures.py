"""The paper's figures from finished runs, drawn with matplotlib (Agg backend, PNG).

- :func:`figure_training` (the paper's Figure 2): per task, train and test accuracy,
  the LMN at ``hidden1`` and the L2 norm of the parameters against the step.
- :func:`figure_probes` (Figure 3): per task, the LMN at every probe against the step.
- :func:`figure_connectivity` (Figure 4): for one run, the ``hidden1`` connectivity
  matrix at phase points, its samples ordered by spectral clustering, beside its spectrum.

The claim figures are in :mod:`reference_tasks.report.claim_figures`.

Each figure shows the runs of one framework. Steps are drawn as ``step + 1`` on a log
axis (so step 0 shows; Figure 2 also comes on a linear step axis). With several seeds a
curve is the mean over seeds and its band the min-max range, on the steps every seed
measured. The phases (memorizing, generalizing, finalizing) are shaded from the mean
phase steps over the seeds that reached them. Nothing is smoothed or clipped: a float32
blow-up late in training shows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from reference_tasks.analysis import measured
from reference_tasks.experiment import task_order, task_title
from reference_tasks.report.clustering import Clustering, figure4_clustering
from reference_tasks.report.run_data import RunData
from reference_tasks.runfolder.schema import header_probes, lmn_column

logger = logging.getLogger(__name__)

PHASE_COLORS = {"memorizing": "#f4cccc", "generalizing": "#fff2cc", "finalizing": "#d9ead3"}
PROBE_COLORS = {"embedding": "tab:green", "hidden1": "tab:red", "hidden2": "tab:purple"}
STEP_LABEL = "step + 1 (log scale)"
LINEAR_STEP_LABEL = "step"
DPI = 110


@dataclass(frozen=True)
class Curve:
    """A metric over steps, aggregated over seeds: mean and min-max band."""

    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_runs: int


@dataclass(frozen=True, eq=False)
class ConnectivityPanel:
    """One row of Figure 4: a connectivity matrix recomputed from a snapshot.

    Attributes
    ----------
    label : str
        What the step is (``"initialization"``, ``"memorization"``, ...).
    step : int
        The snapshot's step.
    connectivity : numpy.ndarray
        ``(N, N)`` matrix ``L``.
    eigenvalues : numpy.ndarray
        Its eigenvalues.
    lmn : float
        The LMN recomputed from the snapshot.
    recorded_lmn : float or None
        The LMN that ``metrics.csv`` holds at that step.
    clustering : Clustering or None
        The samples' display order; ``None`` clusters them when drawn
        (:func:`reference_tasks.report.clustering.figure4_clustering`).
    """

    label: str
    step: int
    connectivity: np.ndarray
    eigenvalues: np.ndarray
    lmn: float
    recorded_lmn: float | None
    clustering: Clustering | None = None


def aggregate(runs: Sequence[RunData], column: str) -> Curve:
    """Mean and min-max of ``column`` over runs, on the steps where every run measured it.

    Raises
    ------
    ValueError
        If ``runs`` is empty.
    """
    if not runs:
        raise ValueError(f"no runs to aggregate {column!r} over")
    series = [{int(row["step"]): float(row[column]) for row in measured(run.rows, column)} for run in runs]
    steps = sorted(set.intersection(*(set(values) for values in series)))
    dropped = max(len(values) for values in series) - len(steps)
    if dropped:
        logger.warning(
            "%s: %d steps are not measured in every run (%s); curves show the %d common steps",
            column,
            dropped,
            ", ".join(str(run.path) for run in runs),
            len(steps),
        )
    values = np.array([[run_values[step] for step in steps] for run_values in series]).reshape(len(runs), -1)
    return Curve(
        np.array(steps, dtype=np.int64),
        values.mean(axis=0),
        values.min(axis=0),
        values.max(axis=0),
        len(runs),
    )


def _mean_step(values: Sequence[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def shade_phases(ax: Axes, runs: Sequence[RunData], *, label: bool = False, shift: int = 1) -> str:
    """Shade the memorizing, generalizing and finalizing phases on a ``step + shift`` axis.

    Returns a note on how the phases were found (for a title), empty for one run that
    reached both phase points.
    """
    memorization = _mean_step([run.summary.memorization_step for run in runs])
    generalizations = [run.summary.generalization_step for run in runs]
    generalization = _mean_step(generalizations)
    end = max(int(run.rows[-1]["step"]) for run in runs)
    bounds = [0.0, memorization, generalization, float(end)]
    for index, phase in enumerate(PHASE_COLORS):
        start, stop = bounds[index], bounds[index + 1]
        if start is None:
            break
        if stop is None:
            stop = float(end)
        ax.axvspan(
            start + shift,
            stop + shift,
            color=PHASE_COLORS[phase],
            alpha=0.6,
            lw=0,
            label=phase if label else None,
        )
        if stop == end:
            break
    notes = []
    if len(runs) > 1:
        notes.append(f"phases: mean of {len(runs)} seeds")
    reached = sum(step is not None for step in generalizations)
    if reached < len(runs):
        notes.append(f"generalized in {reached}/{len(runs)}" if len(runs) > 1 else "never generalized")
    return "; ".join(notes)


def _plot_curve(
    ax: Axes, curve: Curve, color: str, label: str, *, marker: str | None = None, shift: int = 1
) -> None:
    x = curve.steps + shift
    ax.plot(x, curve.mean, color=color, lw=1.2, marker=marker, ms=2.5, label=label)
    if curve.n_runs > 1:
        ax.fill_between(x, curve.low, curve.high, color=color, alpha=0.25, lw=0)


def _seeds_note(runs: Sequence[RunData]) -> str:
    seeds = ", ".join(str(run.seed) for run in runs)
    if len(runs) == 1:
        return f"seed {seeds}"
    return f"mean of {len(runs)} seeds ({seeds}), band: min-max"


def n_note(runs: Sequence[RunData]) -> str:
    sizes = sorted({run.summary.lmn_n_samples for run in runs} - {None})
    return "N = " + "/".join(str(n) for n in sizes) if sizes else "N unknown"


def save_figure(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def model_probes(runs: Sequence[RunData]) -> list[str]:
    """The probes of the runs' models, from their ``metrics.csv`` columns, in the models' order."""
    probes: dict[str, None] = {}
    for run in runs:
        found = header_probes(tuple(run.rows[0])) if run.rows else None
        probes.update(dict.fromkeys(found[0] if found else ()))
    return list(probes)


def ordered_tasks(runs_by_task: Mapping[str, Sequence[RunData]]) -> list[tuple[str, Sequence[RunData]]]:
    items = [(task, runs) for task, runs in runs_by_task.items() if runs]
    if not items:
        raise ValueError("no runs to draw")
    return sorted(items, key=lambda item: task_order(item[0]))


def figure_training(
    runs_by_task: Mapping[str, Sequence[RunData]], path: str | Path, *, framework: str, log_steps: bool = True
) -> Path:
    """Write :func:`training_figure` (the paper's Figure 2) to ``path``."""
    return save_figure(training_figure(runs_by_task, framework=framework, log_steps=log_steps), path)


def training_figure(
    runs_by_task: Mapping[str, Sequence[RunData]], *, framework: str, log_steps: bool = True
) -> Figure:
    """Figure 2: accuracy, LMN at ``hidden1`` and L2 norm against the step, a row per task.

    ``log_steps=False`` draws the steps on a linear axis (the late phases, such as a
    float32 blow-up, get more room).
    """
    items = ordered_tasks(runs_by_task)
    shift = 1 if log_steps else 0
    figure = Figure(figsize=(15, 3.4 * len(items)))
    axes = figure.subplots(len(items), 3, squeeze=False)
    for row_axes, (task, runs) in zip(axes, items, strict=True):
        note = ""
        for index, ax in enumerate(row_axes):
            note = shade_phases(ax, runs, label=index == 0, shift=shift)
            if log_steps:
                ax.set_xscale("log")
            ax.set_xlabel(STEP_LABEL if log_steps else LINEAR_STEP_LABEL)
            ax.grid(alpha=0.3)
        accuracy, lmn_ax, l2_ax = row_axes
        _plot_curve(accuracy, aggregate(runs, "train_acc"), "tab:blue", "train", shift=shift)
        _plot_curve(accuracy, aggregate(runs, "test_acc"), "tab:orange", "test", shift=shift)
        accuracy.set_ylabel("accuracy")
        accuracy.set_ylim(-0.02, 1.02)
        accuracy.legend(fontsize=7, loc="center left")
        headline = runs[0].config.headline_probe
        _plot_curve(
            lmn_ax,
            aggregate(runs, lmn_column(headline)),
            PROBE_COLORS.get(headline, "tab:red"),
            f"LMN {headline}",
            marker="o",
            shift=shift,
        )
        lmn_ax.set_ylabel(f"LMN ({headline} → logits), {n_note(runs)}")
        _plot_curve(l2_ax, aggregate(runs, "l2_norm"), "tab:gray", "L2 norm", shift=shift)
        l2_ax.set_ylabel("L2 norm of the parameters")
        title = f"{task_title(task)} ({framework}): {_seeds_note(runs)}"
        accuracy.set_title(title + (f"; {note}" if note else ""), loc="left", fontsize=9)
    figure.suptitle(
        "Figure 2: training curves, LMN at the headline probe (MLP: the first hidden layer), L2 norm"
    )
    figure.tight_layout()
    return figure


def figure_probes(runs_by_task: Mapping[str, Sequence[RunData]], path: str | Path, *, framework: str) -> Path:
    """Write :func:`probes_figure` (the paper's Figure 3) to ``path``."""
    return save_figure(probes_figure(runs_by_task, framework=framework), path)


def probes_figure(runs_by_task: Mapping[str, Sequence[RunData]], *, framework: str) -> Figure:
    """Figure 3: the LMN at every probe against the step (log LMN axis), a panel per task.

    Each probe's curve is over the runs that measured it (named in its label when those
    are not all the task's runs).
    """
    items = ordered_tasks(runs_by_task)
    figure = Figure(figsize=(5.5 * len(items), 4.2))
    axes = figure.subplots(1, len(items), squeeze=False)
    for ax, (task, runs) in zip(axes[0], items, strict=True):
        note = shade_phases(ax, runs, label=False)
        for index, probe in enumerate(model_probes(runs)):
            # each probe over the seeds that measured it (side probes may be on seed 0 alone)
            probe_runs = [run for run in runs if measured(run.rows, lmn_column(probe))]
            if probe_runs:
                label = f"{probe} ({_seeds_note(probe_runs)})" if len(probe_runs) < len(runs) else probe
                color = PROBE_COLORS.get(probe, f"C{index}")
                _plot_curve(ax, aggregate(probe_runs, lmn_column(probe)), color, label, marker="o")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(STEP_LABEL)
        ax.set_ylabel(f"LMN (probe → logits, log scale), {n_note(runs)}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        ax.set_title(
            f"{task_title(task)} ({framework})\n{_seeds_note(runs)}" + (f"; {note}" if note else ""),
            fontsize=9,
        )
    figure.suptitle(
        "Figure 3: LMN at every probe layer (phases shaded: memorizing, generalizing, finalizing)"
    )
    figure.tight_layout()
    return figure


def figure_connectivity(
    panels: Sequence[ConnectivityPanel], path: str | Path, *, title: str, seed: int = 0
) -> Path:
    """Write :func:`connectivity_figure` (the paper's Figure 4) to ``path``."""
    return save_figure(connectivity_figure(panels, title=title, seed=seed), path)


def connectivity_figure(panels: Sequence[ConnectivityPanel], *, title: str, seed: int = 0) -> Figure:
    """Figure 4: each panel's matrix, ordered by spectral clustering, beside its |eigenvalues|.

    The samples are clustered separately for each matrix unless a panel brings its
    clustering (``figure4_clustering``: at most 10 clusters, from ``seed``); white
    lines separate the clusters. The spectrum shows the
    positive eigenvalues and the magnitudes of the negative ones (red), each sorted
    by decreasing ``|λ|``, on a log axis, with each sign's share of ``Σ|λ|`` (the LMN
    counts both, docs/design.md section 1.2).
    """
    if not panels:
        raise ValueError("figure_connectivity needs at least one panel")
    figure = Figure(figsize=(10, 4.2 * len(panels)))
    axes = figure.subplots(len(panels), 2, squeeze=False)
    for (matrix_ax, spectrum_ax), panel in zip(axes, panels, strict=True):
        n = panel.connectivity.shape[0]
        clustering = (
            panel.clustering if panel.clustering is not None else figure4_clustering(panel.connectivity, seed)
        )
        ordered = panel.connectivity[np.ix_(clustering.order, clustering.order)]
        image = matrix_ax.imshow(ordered, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
        for edge in np.cumsum(clustering.sizes)[:-1]:
            matrix_ax.axhline(edge - 0.5, color="white", lw=0.5)
            matrix_ax.axvline(edge - 0.5, color="white", lw=0.5)
        figure.colorbar(image, ax=matrix_ax, fraction=0.046, pad=0.04, label="linear connectivity $L_{ij}$")
        recorded = "not recorded" if panel.recorded_lmn is None else f"{panel.recorded_lmn:.2f}"
        matrix_ax.set_title(
            f"{panel.label}, step {panel.step}: LMN {panel.lmn:.2f} (metrics.csv: {recorded}), N = {n}\n"
            f"samples ordered by spectral clustering into {clustering.sizes.size} clusters",
            fontsize=8,
        )
        matrix_ax.set_xlabel("sample (reordered)")
        matrix_ax.set_ylabel("sample (reordered)")
        eigenvalues = np.asarray(panel.eigenvalues, dtype=np.float64)
        total = np.abs(eigenvalues).sum()
        for sign, color, name in ((1.0, "tab:blue", "λ > 0"), (-1.0, "tab:red", "|λ|, λ < 0")):
            part = np.sort(np.abs(eigenvalues[sign * eigenvalues > 0]))[::-1]
            if part.size:
                share = part.sum() / total
                label = f"{name}: {part.size} eigenvalues, {share:.0%} of Σ|λ|"
                spectrum_ax.semilogy(
                    np.arange(1, part.size + 1), part, ".-", ms=3, lw=0.8, color=color, label=label
                )
        spectrum_ax.set_xlabel("rank within its sign (by |λ|)")
        spectrum_ax.set_ylabel("|eigenvalue| (log scale)")
        spectrum_ax.grid(alpha=0.3, which="both")
        spectrum_ax.legend(fontsize=8)
        spectrum_ax.set_title(f"eigenvalues of L, {panel.label}", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
