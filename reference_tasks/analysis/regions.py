"""The LMN beside the exact linear regions of a piecewise-linear run (docs/design.md, section 1.6).

A ReLU or LeakyReLU run records, at each LMN checkpoint and probe, the regions its
samples occupy, their occupancy perplexity and the mean and median linear pieces per
segment (the region columns of ``metrics.csv``). :func:`region_summary` gives, per probe,
the Pearson correlation over training of the LMN with each of them (over every
checkpoint that measured both, and over the generalizing phase alone) and their values at
the phase points (``reference_tasks.analysis.claims.region_claims`` takes them over seeds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reference_tasks.analysis.fits import pearson
from reference_tasks.analysis.phases import (
    PAPER_CRITERION,
    generalizing_rows,
    measured,
    phases,
    row_at_or_after,
)
from reference_tasks.experiment import Criterion
from reference_tasks.runfolder.schema import REGION_QUANTITIES, Row, header_probes, lmn_column, region_column

# The spans of training a correlation is taken over.
SPANS = ("training", "generalizing")


def _rows_with_both(
    rows: Sequence[Row], first: str, second: str, span: str, criterion: Criterion
) -> list[Row]:
    chosen = generalizing_rows(rows, first, criterion) if span == "generalizing" else measured(rows, first)
    return measured(chosen, second)


def _probe_summary(rows: Sequence[Row], probe: str, criterion: Criterion) -> dict[str, Any] | None:
    """Correlations and phase-point values of one probe, ``None`` where it was never measured."""
    lmn = lmn_column(probe)
    counted = measured(rows, region_column("pieces_mean", probe))
    if not counted:
        return None
    summary: dict[str, Any] = {}
    for span in SPANS:
        both = _rows_with_both(rows, lmn, region_column("pieces_mean", probe), span, criterion)
        summary[f"n_{span}"] = len(both)
        summary[f"pearson_{span}"] = {
            quantity: pearson(
                [row[lmn] for row in both], [row[region_column(quantity, probe)] for row in both]
            )
            for quantity in REGION_QUANTITIES
        }
    phase = phases(rows, criterion)
    points = {
        "init": 0,
        "memorization": phase.memorization_step,
        "generalization": phase.generalization_step,
    }
    summary["at"] = {}
    for name, step in points.items():
        row = row_at_or_after(counted, region_column("pieces_mean", probe), step)
        summary["at"][name] = None if row is None else _values(row, probe)
    summary["at"]["end"] = _values(counted[-1], probe)
    return summary


def _values(row: Row, probe: str) -> dict[str, Any]:
    return {
        "step": row["step"],
        "lmn": row[lmn_column(probe)],
        **{quantity: row[region_column(quantity, probe)] for quantity in REGION_QUANTITIES},
    }


def span_checkpoints(entry: Mapping[str, Any], span: str) -> int:
    """How many checkpoints one probe's correlations over ``span`` are taken over."""
    return entry[f"n_{span}"]


def span_correlation(entry: Mapping[str, Any], span: str, quantity: str) -> float | None:
    """One probe's Pearson r of the LMN with a region quantity over ``span`` (``None``: no spread)."""
    return entry[f"pearson_{span}"][quantity]


def value_at(entry: Mapping[str, Any], point: str) -> Mapping[str, Any] | None:
    """One probe's step, LMN and region quantities at a phase point (``None`` where never measured)."""
    return entry["at"].get(point)


def region_summary(rows: Sequence[Row], criterion: Criterion = PAPER_CRITERION) -> dict[str, Any]:
    """``{probe: ...}`` for a run with region columns, ``{}`` for any other (phases by ``criterion``).

    Per probe measured: ``pearson_training`` and ``pearson_generalizing`` (the Pearson r
    of the LMN with each region quantity, ``None`` where either has no spread),
    ``n_training`` and ``n_generalizing`` (the checkpoints they are taken over), and
    ``at``: the step, LMN and region quantities at the first checkpoint at or after
    initialization, memorization and generalization, and at the last.
    """
    if not rows:
        return {}
    found = header_probes(tuple(rows[0]))
    if found is None or not found[1]:
        return {}
    probes = {probe: _probe_summary(rows, probe, criterion) for probe in found[0]}
    return {probe: summary for probe, summary in probes.items() if summary is not None}
