"""The run folder's schema, written once: file names and metrics columns (summary keys: run_summary.py).

A run folder holds ``config.json`` (written first), ``metrics.csv`` (one row per
evaluated step, appended and flushed as training goes, so an interrupted run keeps
what it measured), weight snapshots at the LMN checkpoints (``snapshots/``), a resume
checkpoint (the framework's ``checkpoint.*``: the training state at the last LMN
checkpoint, replaced atomically), ``summary.json`` (written at the end: its presence
marks a finished run) and the framework's final weights ``model.*``.

In ``metrics.csv`` an empty cell means "not measured at this step" (LMN is measured
only at checkpoints); a measured value that is not a number is written as ``nan``.
Accuracies are fractions in ``[0, 1]``. There is an ``lmn_{probe}`` column for every probe
the run's model names (``Model.probes``, in its order: the reference MLP's
``lmn_embedding, lmn_hidden1, lmn_hidden2``), measured there or not. ``lmn_n_samples`` is
the ``N`` the LMN values of that row were measured on. A piecewise-linear model's
``metrics.csv`` has the region columns too (after the others): at each probe measured, the
linear regions its ``N`` samples occupy, the perplexity of their occupancy, and the mean
and median linear pieces per segment (docs/design.md, section 1.6). The progress measures
of the run (docs/design.md, section 6) come last, one column each, filled at the LMN
checkpoints: a measure of the whole network under its name (``weight_movement``), a measure
at a probe as ``<name>_<probe>`` (``effective_rank_hidden1``, ``lmn_core.Measure.column``),
at every probe of the model, filled where the LMN at that probe is measured.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reference_tasks.model.spec import HEADLINE_PROBE, PROBES

METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.npz"
WEIGHTS_STEM = "model"
SNAPSHOT_DIR = "snapshots"
# config.json entries that may differ between a run and its resumption.
# (device and progress: folders written before they moved out of the config into RunOptions)
VOLATILE_CONFIG_KEYS = frozenset({"torch_version", "keras_version", "device", "progress"})
# Config entries added after run folders were first written, each with the value that
# describes a folder written before it existed (its run behaved so).
LEGACY_CONFIG_VALUES = {
    "init_scale": 1.0,
    "loss_dtype": None,
    "side_probe_every": 1,
    "activation": "silu",
    # from the experiment protocol (docs/design.md, section 2.6): the paper's tasks and MLP
    "task_source": None,
    "optimizer": "adamw",
    "betas": [0.9, 0.999],
    "batch_size": None,
    "loss": "cross_entropy",
    "model_options": {},
    "headline_probe": "hidden1",
    "criterion": {"train_acc": 1.0, "test_acc": 1.0},
    # the progress measures (docs/design.md, section 6)
    "measures": [],
}

Row = dict[str, float | int | None]


# A probe names a column: letters, digits and "_", "." or "-" (a submodule path such as blocks.0.mlp).
_PROBE_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
BASE_COLUMNS = ("step", "train_loss", "test_loss", "train_acc", "test_acc", "l2_norm")
N_SAMPLES_COLUMN = "lmn_n_samples"
# What each LMN checkpoint of a piecewise-linear model also records at each probe.
REGION_QUANTITIES = ("regions", "region_perplexity", "pieces_mean", "pieces_median")


def lmn_column(probe: str) -> str:
    """The metrics column holding the LMN measured at ``probe``."""
    if not isinstance(probe, str) or not _PROBE_NAME.fullmatch(probe):
        raise ValueError(f"probe {probe!r} cannot name a metrics column (letters, digits, '_', '.', '-')")
    return f"lmn_{probe}"


def region_column(quantity: str, probe: str) -> str:
    """The metrics column holding a region quantity (``REGION_QUANTITIES``) at ``probe``."""
    if quantity not in REGION_QUANTITIES:
        raise ValueError(
            f"unknown region quantity {quantity!r}; the schema has {', '.join(REGION_QUANTITIES)}"
        )
    lmn_column(probe)
    return f"{quantity}_{probe}"


def metric_columns(
    regions: bool, probes: Sequence[str] = PROBES, measures: Sequence[str] = ()
) -> tuple[str, ...]:
    """The columns of ``metrics.csv`` for a model with ``probes``: with the region columns for a
    piecewise-linear model (the reference MLP's probes by default), then the ``measures``'
    columns (``lmn_core.progress.measure_columns``)."""
    lmn = tuple(lmn_column(probe) for probe in probes)
    region = tuple(region_column(quantity, probe) for probe in probes for quantity in REGION_QUANTITIES)
    base = (*BASE_COLUMNS, *lmn, N_SAMPLES_COLUMN, *(region if regions else ()))
    taken = sorted(set(measures) & set(base))
    if taken or len(set(measures)) != len(measures):
        raise ValueError(
            f"measure columns {list(measures)} repeat a column or take one of the schema's: {taken}"
        )
    for column in measures:
        if not _MEASURE_COLUMN.fullmatch(column):
            raise ValueError(f"{column!r} cannot name a measure column (an identifier, then '_<probe>')")
    return (*base, *measures)


_MEASURE_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(_[A-Za-z0-9_.\-]+)?")


def header_probes(header: Sequence[str]) -> tuple[tuple[str, ...], bool] | None:
    """The probes and whether there are region columns, of a ``metrics.csv`` header; ``None`` if it
    is not one of :func:`metric_columns`."""
    found = split_header(header)
    return None if found is None else (found[0], found[1])


def split_header(header: Sequence[str]) -> tuple[tuple[str, ...], bool, tuple[str, ...]] | None:
    """The probes, whether there are region columns, and the measure columns of a ``metrics.csv``
    header; ``None`` if it is not one of :func:`metric_columns`."""
    header = tuple(header)
    if N_SAMPLES_COLUMN not in header:
        return None
    lmn = header[len(BASE_COLUMNS) : header.index(N_SAMPLES_COLUMN)]
    if not all(column.startswith("lmn_") for column in lmn):
        return None
    probes = tuple(column[len("lmn_") :] for column in lmn)
    for regions in (True, False):
        try:
            base = metric_columns(regions, probes)
            if header[: len(base)] == base and header == metric_columns(regions, probes, header[len(base) :]):
                return probes, regions, header[len(base) :]
        except ValueError:
            continue
    return None


def measure_of_column(column: str, probes: Sequence[str]) -> tuple[str, str | None]:
    """``(measure name, probe)`` of a measure column (``probe`` ``None`` for a whole-network measure).

    A column that ends in ``_<probe>`` for one of ``probes`` (the longest that fits) is that
    measure at that probe.
    """
    for probe in sorted(probes, key=len, reverse=True):
        if column.endswith(f"_{probe}") and len(column) > len(probe) + 1:
            return column[: -len(probe) - 1], probe
    return column, None


def is_integer_column(column: str) -> bool:
    """Whether ``column`` holds integers (the step, ``N``, a count of regions)."""
    return column in ("step", N_SAMPLES_COLUMN) or column.startswith("regions_")


#: The reference MLP's columns (the paper's tasks).
LMN_COLUMNS = tuple(lmn_column(probe) for probe in PROBES)
HEADLINE_COLUMN = lmn_column(HEADLINE_PROBE)
METRIC_COLUMNS = metric_columns(regions=False)
REGION_COLUMNS = metric_columns(regions=True)[len(METRIC_COLUMNS) :]
