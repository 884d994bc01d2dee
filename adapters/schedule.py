"""When a training loop measures the LMN, under which keys it reports it, and its CSV rows.

Framework-free (it imports no framework), so that every monitor shares one schedule,
one set of key names and one CSV layout: :class:`adapters.torch.LMNMonitor` (hand-written
PyTorch loops), the Keras ``LMNCallback`` (``model.fit``), the Lightning ``LMNCallback``
(``lightning.Trainer``) and the Hugging Face ``LMNCallback`` (``transformers.Trainer``).

- :class:`Schedule`: an int ``k`` means every ``k``-th count (``0, k, 2k, ...``), a
  collection means exactly those counts; every monitor and callback names its schedules
  ``every_n_steps`` (optimizer steps) and ``every_n_epochs`` (epochs, counted from 1), and
  :func:`renamed` keeps their old spellings working for one release;
  :meth:`Schedule.take` measures a count once
  (a step that a loop reports twice, as with gradient accumulation, is measured once).
- Keys: ``lmn_<layer>`` (:func:`lmn_key`: CSV columns, Keras logs, TensorBoard tags of
  ``LMNMonitor``) and ``lmn/<layer>`` (:func:`logger_key`: what the Lightning and
  Hugging Face callbacks hand to their trainers' loggers, where the slash groups the
  values in TensorBoard and similar dashboards); ``lmn_n_samples`` holds ``N``.
- The progress measures of ``measures=[...]`` (:mod:`adapters.measures`) follow one rule:
  their key is the measure's column (:meth:`lmn_core.Measure.column`: ``weight_movement``,
  ``effective_rank_<layer>``) wherever the LMN's is ``lmn_<layer>`` (CSV, Keras logs,
  TensorBoard tags), and ``lmn/`` followed by that column (:func:`measure_logger_key`:
  ``lmn/effective_rank_<layer>``) wherever the LMN's is ``lmn/<layer>`` (the Lightning and
  Hugging Face loggers), so that a dashboard groups them with the LMN. A column may not be
  a layer's name nor an LMN key (refused when the monitor is made).
- :class:`MonitorCSV` appends one row per measurement (the measures' columns after
  ``lmn_n_samples``); :func:`read_monitor_csv` reads such a file back (or any CSV of
  numbers with a ``step`` column, empty cells as NaN).
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

LMN_KEY_PREFIX = "lmn_"
LOGGER_KEY_PREFIX = "lmn/"
N_SAMPLES_KEY = "lmn_n_samples"
INTEGER_COLUMNS = frozenset({"step", N_SAMPLES_KEY})


def lmn_key(layer: str) -> str:
    """``lmn_<layer>``: the CSV column, Keras ``logs`` key and TensorBoard tag of ``layer``'s LMN."""
    return f"{LMN_KEY_PREFIX}{layer}"


def logger_key(layer: str) -> str:
    """``lmn/<layer>``: the key of ``layer``'s LMN in a Lightning or Hugging Face trainer's logs."""
    return f"{LOGGER_KEY_PREFIX}{layer}"


def measure_logger_key(column: str) -> str:
    """``lmn/<column>``: a progress measure's key in a Lightning or Hugging Face trainer's logs."""
    return f"{LOGGER_KEY_PREFIX}{column}"


#: The value of a deprecated parameter that was not given.
NOT_GIVEN: Any = object()


def renamed(value: Any, default: Any, old_value: Any, names: tuple[str, str], owner: str) -> Any:
    """``value`` of a parameter, or the ``old_value`` given under its old name, with a warning.

    ``names`` is ``(old, new)``. The old spelling works for one release: it warns with a
    ``DeprecationWarning`` that names the new one; giving both (the new one not at its
    ``default``) is refused.
    """
    old, new = names
    if old_value is NOT_GIVEN:
        return value
    warnings.warn(
        f"{owner}({old}=...) is deprecated and goes in the next release: use {new}=",
        DeprecationWarning,
        stacklevel=3,
    )
    if value != default:
        raise TypeError(f"{owner} got {new}= and its old name {old}=: give {new}= only")
    return old_value


def renamed_attribute(owner: Any, old: str, new: str) -> Any:
    """``owner.<new>``, read under its old name ``old``: it warns for one release, naming the new one."""
    warnings.warn(
        f"{type(owner).__name__}.{old} is deprecated and goes in the next release: use .{new}",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(owner, new)


def layer_names(layers: str | Collection[str], owner: str) -> tuple[str, ...]:
    """``layers`` as a tuple of names; refused when empty (``owner`` names the caller)."""
    names = (layers,) if isinstance(layers, str) else tuple(layers)
    if not names:
        raise ValueError(f"{owner} needs at least one layer")
    return names


class Schedule:
    """Which counts (steps or epochs) are measured.

    Parameters
    ----------
    every : int or collection of int
        An int ``k`` measures every count divisible by ``k``; a collection measures
        exactly its counts.
    name, unit : str
        The argument's name and what it counts (``"steps"``, ``"epoch numbers"``), for
        error messages.
    first : int
        The lowest count a collection may hold (0 for steps, 1 for Keras's epochs).
    """

    def __init__(
        self, every: int | Collection[int], *, name: str = "every", unit: str = "steps", first: int = 0
    ) -> None:
        refusal = f"{name} must be an int or a collection of {unit} >= {first}, got {every!r}"
        if isinstance(every, bool) or not isinstance(every, int | Collection):
            raise ValueError(refusal)
        if isinstance(every, int):
            if every < 1:
                raise ValueError(f"{name} must be at least 1, got {every}")
            self.every: int | frozenset[int] = every
        elif all(type(count) is int and count >= first for count in every):
            self.every = frozenset(every)
        else:
            raise ValueError(refusal)
        self.last_taken: int | None = None

    def is_due(self, count: int) -> bool:
        """Whether ``count`` is scheduled."""
        return count % self.every == 0 if isinstance(self.every, int) else count in self.every

    def take(self, count: int) -> bool:
        """Whether ``count`` is scheduled and was not taken before; marks it taken."""
        if count == self.last_taken or not self.is_due(count):
            return False
        self.last_taken = count
        return True


def measure_layers(
    measures: Mapping[str, Callable[..., Any]], inputs: Any, lmn_kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """``{layer: measure(inputs, **lmn_kwargs)}``: one ``LMNResult`` per layer."""
    return {layer: measure(inputs, **lmn_kwargs) for layer, measure in measures.items()}


def measured_values(results: Mapping[str, Any], key: Callable[[str], str] = lmn_key) -> dict[str, float]:
    """``{key(layer): LMN, ..., "lmn_n_samples": N}`` from ``{layer: LMNResult}``."""
    values: dict[str, Any] = {key(layer): float(result.lmn) for layer, result in results.items()}
    values[N_SAMPLES_KEY] = int(next(iter(results.values())).n_samples)
    return values


class MonitorCSV:
    """A CSV file with one row per measurement: ``step``, ``lmn_<layer>`` per layer, ``lmn_n_samples``,
    then the progress measures' columns (none unless ``measures=[...]`` selects some).

    An existing file must have the same columns (refused otherwise, when this object is made).
    """

    def __init__(
        self, path: str | Path, layers: Collection[str], measure_columns: Collection[str] = ()
    ) -> None:
        self.path = Path(path)
        self.columns = self.columns_for(layers, measure_columns)
        if self._is_empty():
            return
        with self.path.open(newline="") as file:
            header = next(csv.reader(file), [])
        if header != self.columns:
            raise ValueError(f"{self.path} has the columns {header}, not {self.columns}")

    @staticmethod
    def columns_for(layers: Collection[str], measure_columns: Collection[str] = ()) -> list[str]:
        """``step``, ``lmn_<layer>`` per layer, ``lmn_n_samples``, the measures' columns."""
        return ["step", *(lmn_key(layer) for layer in layers), N_SAMPLES_KEY, *measure_columns]

    def _is_empty(self) -> bool:
        return not self.path.exists() or self.path.stat().st_size == 0

    def append(self, step: int, values: Mapping[str, float]) -> None:
        """Append the row of ``step``: ``values`` as :func:`measured_values` gives them, and the measures'."""
        row = [step] + [
            values[column] if column == N_SAMPLES_KEY else repr(float(values[column]))
            for column in self.columns[1:]
        ]
        new = self._is_empty()
        with self.path.open("a", newline="") as file:
            writer = csv.writer(file)
            if new:
                writer.writerow(self.columns)
            writer.writerow(row)


def read_monitor_csv(path: str | Path) -> dict[str, np.ndarray]:
    """The columns of a monitor CSV as arrays: ``step`` and ``lmn_n_samples`` as int where no cell
    is empty, every other column as float with empty cells as NaN."""
    with Path(path).open(newline="") as file:
        rows = list(csv.reader(file))
    if not rows:
        raise ValueError(f"{path} is empty: no header row")
    header, body = rows[0], rows[1:]
    columns = {key: [row[k] if k < len(row) else "" for row in body] for k, key in enumerate(header)}
    return {key: _column(key, values, path) for key, values in columns.items()}


def _column(key: str, values: list[str], path: str | Path) -> np.ndarray:
    try:
        if key in INTEGER_COLUMNS and all(values):
            return np.array([int(float(value)) for value in values], dtype=np.int64)
        return np.array([float(value) if value else math.nan for value in values], dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"{path}: column {key!r} holds a value that is not a number ({error})") from None
