"""The run folder's schema, written once: file names and metrics columns (summary keys: run_summary.py).

A run folder holds ``config.json`` (written first), ``metrics.csv`` (one row per
evaluated step, appended and flushed as training goes, so an interrupted run keeps
what it measured), weight snapshots at the LMN checkpoints (``snapshots/``), a resume
checkpoint (the framework's ``checkpoint.*``: the training state at the last LMN
checkpoint, replaced atomically), ``summary.json`` (written at the end: its presence
marks a finished run) and the framework's final weights ``model.*``.

In ``metrics.csv`` an empty cell means "not measured at this step" (LMN is measured
only at checkpoints); a measured value that is not a number is written as ``nan``.
Accuracies are fractions in ``[0, 1]``. ``lmn_n_samples`` is the ``N`` the LMN values
of that row were measured on. A piecewise-linear model's ``metrics.csv`` has the region
columns too (:data:`REGION_COLUMNS`, after the others): at each probe measured, the
linear regions its ``N`` samples occupy, the perplexity of their occupancy, and the mean
and median linear pieces per segment (docs/design.md, section 1.6).
"""

from __future__ import annotations

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
LEGACY_CONFIG_VALUES = {"init_scale": 1.0, "loss_dtype": None, "side_probe_every": 1, "activation": "silu"}

Row = dict[str, float | int | None]


def lmn_column(probe: str) -> str:
    """The metrics column holding the LMN measured at ``probe``."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; the metrics schema has {', '.join(PROBES)}")
    return f"lmn_{probe}"


LMN_COLUMNS = tuple(lmn_column(probe) for probe in PROBES)
HEADLINE_COLUMN = lmn_column(HEADLINE_PROBE)
N_SAMPLES_COLUMN = "lmn_n_samples"
METRIC_COLUMNS = (
    "step",
    "train_loss",
    "test_loss",
    "train_acc",
    "test_acc",
    "l2_norm",
    *LMN_COLUMNS,
    N_SAMPLES_COLUMN,
)
# What each LMN checkpoint of a piecewise-linear model also records at each probe.
REGION_QUANTITIES = ("regions", "region_perplexity", "pieces_mean", "pieces_median")


def region_column(quantity: str, probe: str) -> str:
    """The metrics column holding a region quantity (``REGION_QUANTITIES``) at ``probe``."""
    if quantity not in REGION_QUANTITIES:
        raise ValueError(
            f"unknown region quantity {quantity!r}; the schema has {', '.join(REGION_QUANTITIES)}"
        )
    lmn_column(probe)
    return f"{quantity}_{probe}"


REGION_COLUMNS = tuple(region_column(quantity, probe) for probe in PROBES for quantity in REGION_QUANTITIES)
INTEGER_COLUMNS = frozenset({"step", N_SAMPLES_COLUMN, *(region_column("regions", p) for p in PROBES)})


def metric_columns(regions: bool) -> tuple[str, ...]:
    """The columns of ``metrics.csv``: with the region columns for a piecewise-linear model."""
    return METRIC_COLUMNS + REGION_COLUMNS if regions else METRIC_COLUMNS
