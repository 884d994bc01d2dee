"""A sweep's runs: the grid over ``TrainConfig`` fields, parsed and checked before any run starts.

``--grid weight_decay=0.1,0.2`` becomes the values ``(0.1, 0.2)`` of the field
``weight_decay``, each converted to the field's type; the runs are every combination of
the swept values, for each task and seed. A run's folder,
``OUT/{framework}/{task}-{field}{value}-...-seed{seed}``, names the swept values in the
order given (``OUT/{framework}/{task}-seed{seed}`` without a grid, as ``lmn reproduce``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reference_tasks.runfolder import read_json, write_json
from reference_tasks.training.recipe import TrainConfig, lmn_checkpoints

# Fields that a grid may not sweep: their own options set them, or they are not scalars.
NOT_SWEPT = (
    "task",
    "task_source",
    "seed",
    "task_options",
    "checkpoint_steps",
    "probes",
    "betas",
    "model_options",
    "headline_probe",
    "criterion",
)
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "1"), ("false", "no", "0")
SWEEP_DIR = "sweep"
SWEEP_FILE = "sweep.json"


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a sweep: its framework, its config and its folder."""

    framework: str
    config: TrainConfig
    out_dir: Path

    @property
    def name(self) -> str:
        """The run's folder name, unique within its framework."""
        return self.out_dir.name


def estimated_cost(run: Run) -> int:
    """A run's relative cost, to start long runs first: its LMN pairs, points and measurements.

    Each LMN measurement walks ``N (N - 1) / 2`` segments of ``T`` points; side probes
    count as about a third of a headline measurement per checkpoint.
    """
    config = run.config
    n = config.lmn_samples or config.resolved_task().make_data(**config.task_options).n_samples
    checkpoints = len(lmn_checkpoints(config))
    measurements = checkpoints + (checkpoints // 3 if len(config.probes) > 1 else 0)
    return n * (n - 1) // 2 * config.lmn_points * measurements + config.steps


def sweepable_fields() -> dict[str, Any]:
    """The ``TrainConfig`` fields a grid may sweep, with their types."""
    hints = typing.get_type_hints(TrainConfig)
    return {
        field.name: hints[field.name]
        for field in dataclasses.fields(TrainConfig)
        if field.name not in NOT_SWEPT
    }


def _scalar_types(hint: Any) -> tuple[type, ...]:
    """``(float,)`` for ``float``, ``(str, NoneType)`` for ``str | None``, ..."""
    return typing.get_args(hint) if typing.get_args(hint) else (hint,)


def convert(field: str, text: str, hint: Any) -> Any:
    """``text`` as a value of the field's type; ``ValueError`` naming the field otherwise."""
    types = _scalar_types(hint)
    word = text.strip()
    if type(None) in types and word.lower() == "none":
        return None
    for kind in types:
        if kind is bool:
            if word.lower() in TRUE_WORDS + FALSE_WORDS:
                return word.lower() in TRUE_WORDS
        elif kind is int:
            try:
                return int(word)
            except ValueError:
                continue
        elif kind is float:
            try:
                value = float(word)
            except ValueError:
                continue
            if math.isfinite(value):
                return value
        elif kind is str:
            return word
    names = " or ".join("None" if kind is type(None) else kind.__name__ for kind in types)
    raise ValueError(f"--grid {field}: {text!r} is not of type {names}")


def parse_grid(items: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """``["weight_decay=0.1,0.2", ...]`` as ``{"weight_decay": (0.1, 0.2), ...}``, checked.

    Raises
    ------
    ValueError
        Naming the item: not ``FIELD=V1,V2,...``, a field that is not a sweepable
        ``TrainConfig`` field, a field given twice, or a value not of the field's type.
    """
    fields = sweepable_fields()
    grid: dict[str, tuple[Any, ...]] = {}
    for item in items:
        field, sign, values = item.partition("=")
        field = field.strip()
        if not sign or not field or not values.strip():
            raise ValueError(f"--grid {item!r}: expected FIELD=V1,V2,... (for example weight_decay=0.1,0.2)")
        if field not in fields:
            reason = "is set by its own option" if field in NOT_SWEPT else "is not a TrainConfig field"
            raise ValueError(f"--grid {item!r}: {field!r} {reason}; sweepable fields: {', '.join(fields)}")
        if field in grid:
            raise ValueError(f"--grid {item!r}: {field!r} is given twice")
        grid[field] = tuple(dict.fromkeys(convert(field, text, fields[field]) for text in values.split(",")))
    return grid


def format_value(value: Any) -> str:
    """A swept value as it appears in a folder name (``0.1``, ``1e-05``, ``true``, ``none``)."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def run_name(task: str, seed: int, swept: Mapping[str, Any]) -> str:
    """``{task}-{field}{value}-...-seed{seed}``."""
    parts = [task, *(f"{field}{format_value(value)}" for field, value in swept.items()), f"seed{seed}"]
    return "-".join(parts)


def plan_sweep(
    *,
    tasks: Sequence[str],
    seeds: Sequence[int],
    framework: str,
    out: Path,
    grid: Mapping[str, Sequence[Any]] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> list[Run]:
    """Every run of the sweep: each task, each combination of the grid's values, each seed.

    ``tasks`` are registered names, ``module:function`` or ``path/to/file.py:function``
    (:meth:`TrainConfig.for_task`: each starts from its task's recipe); ``settings`` are fixed
    ``TrainConfig`` values for every run (``steps``, ...). A run's folder is named after its
    task's name.

    Raises
    ------
    ValueError
        If a combination is not a valid ``TrainConfig`` (naming the values), or a grid
        field is also in ``settings``.
    """
    grid, settings = dict(grid or {}), dict(settings or {})
    both = sorted(set(grid) & set(settings))
    if both:
        raise ValueError(f"{', '.join(both)} is both swept (--grid) and fixed; give it once")
    runs = []
    for task in dict.fromkeys(tasks):
        for values in itertools.product(*grid.values()):
            swept = dict(zip(grid, values, strict=True))
            for seed in dict.fromkeys(seeds):
                try:
                    config = TrainConfig.for_task(task, seed=seed, **settings, **swept)
                except (TypeError, ValueError) as error:
                    raise ValueError(f"{run_name(task, seed, swept)}: {error}") from None
                runs.append(Run(framework, config, out / framework / run_name(config.task, seed, swept)))
    return runs


@dataclasses.dataclass(frozen=True)
class Sweep:
    """What a sweep is: tasks, seeds, framework, the grid and the fixed settings.

    Saved as ``OUT/sweep/sweep.json`` when the sweep starts, so that ``lmn report OUT``
    finds its runs again.
    """

    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    framework: str = "torch"
    grid: Mapping[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def fields(self) -> tuple[str, ...]:
        """The swept fields, in the order given."""
        return tuple(self.grid)

    @property
    def axes(self) -> tuple[str, ...]:
        """The swept fields that take more than one value: the axes of a phase diagram (a field
        given one value is a setting of every run, not a dimension)."""
        return tuple(field for field, values in self.grid.items() if len(values) > 1)

    def runs(self, out: Path) -> list[Run]:
        """Every run of the sweep under ``out`` (see :func:`plan_sweep`)."""
        return plan_sweep(
            tasks=self.tasks,
            seeds=self.seeds,
            framework=self.framework,
            out=out,
            grid=self.grid,
            settings=self.settings,
        )

    def save(self, out: Path) -> Path:
        """Write ``out/sweep/sweep.json``."""
        path = out / SWEEP_DIR / SWEEP_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(
            path, dataclasses.asdict(self) | {"grid": dict(self.grid), "settings": dict(self.settings)}
        )
        return path

    @classmethod
    def load(cls, out: Path) -> Sweep:
        """Read ``out/sweep/sweep.json``."""
        record = read_json(out / SWEEP_DIR / SWEEP_FILE)
        return cls(
            tasks=tuple(record["tasks"]),
            seeds=tuple(record["seeds"]),
            framework=record["framework"],
            grid={field: tuple(values) for field, values in record["grid"].items()},
            settings={k: tuple(v) if isinstance(v, list) else v for k, v in record["settings"].items()},
        )
