"""Finding and selecting progress measures by name (docs/design.md, section 6.1).

A measure is named in one of three ways:

- a built-in name (:data:`lmn_core.progress_builtin.BUILTIN_MEASURES`) or the name of an
  entry point of the group ``lmn.measures`` of an installed package, whose object is a
  :class:`~lmn_core.progress.Measure`;
- ``module:attribute``, importable from ``sys.path``;
- ``path/to/file.py:attribute``, a file loaded as a module of its own.

:func:`select_measures` turns a run's ``--measures`` (or ``measures=[...]``) into measures,
by default every available measure that the run can supply the needs of, and refuses an
unknown name or a measure whose needs the run cannot meet, naming it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path

from lmn_core.progress import Measure, MeasureError
from lmn_core.progress_builtin import BUILTIN_MEASURES

ENTRY_POINT_GROUP = "lmn.measures"


def _as_measure(value: object, where: str) -> Measure:
    if not isinstance(value, Measure):
        raise MeasureError(
            f"{where} is a {type(value).__name__}, not a measure: wrap the function with "
            "@lmn_core.progress_measure(needs=[...]) or build an lmn_core.Measure"
        )
    return value


def entry_point_measures() -> dict[str, Measure]:
    """The measures that installed packages register under the entry-point group ``lmn.measures``.

    The entry point's name must be the measure's name.
    """
    found = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {entry_point.name!r} ({entry_point.value}) of group {ENTRY_POINT_GROUP!r}"
        try:
            loaded = entry_point.load()
        except Exception as error:
            raise MeasureError(f"{where} failed to load: {type(error).__name__}: {error}") from error
        measure = _as_measure(loaded, where)
        if measure.name != entry_point.name:
            raise MeasureError(f"{where} holds a measure named {measure.name!r}: the names must agree")
        found[measure.name] = measure
    return found


def available_measures() -> dict[str, Measure]:
    """Built-in measures, then the entry points' (a name may not be taken twice)."""
    plugins = entry_point_measures()
    taken = sorted(set(plugins) & set(BUILTIN_MEASURES))
    if taken:
        raise MeasureError(f"entry points of {ENTRY_POINT_GROUP!r} reuse built-in measure names: {taken}")
    return {**BUILTIN_MEASURES, **plugins}


def _load_file(path: Path) -> object:
    if not path.is_file():
        raise MeasureError(f"measure file {str(path)!r} does not exist")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"lmn_user_measures_{digest}", path)
    if spec is None or spec.loader is None:
        raise MeasureError(f"measure file {str(path)!r} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise MeasureError(f"measure file {str(path)!r} raised {type(error).__name__}: {error}") from error
    return module


def _load_reference(reference: str) -> Measure:
    source, _, attribute = reference.rpartition(":")
    if not source or not attribute:
        raise MeasureError(f"measure {reference!r}: write module:function or path/to/file.py:function")
    if source.endswith(".py"):
        module = _load_file(Path(source))
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as error:
            raise MeasureError(
                f"measure {reference!r}: module {source!r} cannot be imported: {error}"
            ) from error
    if not hasattr(module, attribute):
        raise MeasureError(f"measure {reference!r}: {source!r} has no attribute {attribute!r}")
    return _as_measure(getattr(module, attribute), f"measure {reference!r}")


def resolve_measure(name: str, available: dict[str, Measure] | None = None) -> Measure:
    """The measure a name stands for: built-in or entry point, ``module:function`` or ``file.py:function``."""
    measures = available_measures() if available is None else available
    if name in measures:
        return measures[name]
    if ":" in name:
        return _load_reference(name)
    raise MeasureError(
        f"unknown measure {name!r}: the available ones are {sorted(measures)}; "
        "a measure of your own is module:function, path/to/file.py:function or an entry point "
        f"of group {ENTRY_POINT_GROUP!r}"
    )


def select_measures(names: Sequence[str] | None, supplied: Iterable[str]) -> list[Measure]:
    """The measures a run computes, given what it can ``supply`` (see :data:`lmn_core.progress.NEEDS`).

    ``None`` selects every available measure whose needs the run meets; a list of names
    selects those, in order, and refuses any whose needs it cannot meet.

    Raises
    ------
    MeasureError
        Naming an unknown measure, a measure that cannot be loaded, two measures of one name,
        or a named measure that needs what the run does not supply.
    """
    supplied = frozenset(supplied)
    available = available_measures()
    if names is None:
        return [measure for measure in available.values() if not measure.missing(supplied)]
    if isinstance(names, str):
        raise MeasureError(f"measures must be a list of names, got the string {names!r}")
    chosen: dict[str, Measure] = {}
    for name in names:
        measure = resolve_measure(name, available)
        if measure.name in chosen:
            raise MeasureError(f"measure {measure.name!r} is selected twice (as {name!r})")
        missing = measure.missing(supplied)
        if missing:
            raise MeasureError(
                f"measure {measure.name!r} needs {missing}, which this run cannot supply "
                f"(it supplies {sorted(supplied)})"
            )
        chosen[measure.name] = measure
    return list(chosen.values())
