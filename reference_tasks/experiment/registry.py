"""Finding a task: a registered name (group ``lmn.experiments``), ``module:function`` or ``file.py:function``.

A task is named in one of three ways (``lmn reproduce --task NAME``, ``lmn sweep --tasks``,
``TrainConfig(task_source=...)``):

- a **registered name**: an entry point of the group :data:`ENTRY_POINT_GROUP` whose value
  is ``module:function``. A distribution registers its tasks in its ``pyproject.toml``::

      [project.entry-points."lmn.experiments"]
      grok-parity = "mypkg.grok:parity_task"

  This package registers its own tasks (the paper's three, the testbeds) the same way, in
  its own ``pyproject.toml``; :data:`PACKAGE_EXPERIMENTS` holds the same table, for a
  checkout that runs without being installed (a test checks that the two agree);
- ``module:function``: a function of an importable module (``mypkg.grok:task``);
- ``path/to/file.py:function``: a function of a Python file, imported by its path.

The function is called without arguments and returns a
:class:`~reference_tasks.experiment.protocol.Task`. Each reference is loaded once per
process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path

from reference_tasks.experiment.protocol import ExperimentError, Task

ENTRY_POINT_GROUP = "lmn.experiments"
#: This package's own experiments, in the order of every listing (the paper's first, in its order):
#: the same table as ``[project.entry-points."lmn.experiments"]`` in ``pyproject.toml``.
PACKAGE_EXPERIMENTS = {
    "modadd": "reference_tasks.experiment.paper:modular_addition_task",
    "s4": "reference_tasks.experiment.paper:permutation_composition_task",
    "xor": "reference_tasks.experiment.paper:bitwise_xor_task",
    "transformer": "reference_tasks.testbeds.experiments:transformer_task",
    "transformer_nanda": "reference_tasks.testbeds.experiments:transformer_nanda_task",
    "parity": "reference_tasks.testbeds.experiments:parity_task",
    "digits": "reference_tasks.testbeds.experiments:digits_task",
}
#: The paper's tasks (``lmn reproduce`` trains them when no ``--task`` is given).
PAPER_TASKS = ("modadd", "s4", "xor")


def registered_experiments() -> dict[str, str]:
    """Every registered name and its ``module:function``: this package's first, then the installed ones'.

    Raises
    ------
    ExperimentError
        If two installed distributions register one name for different functions.
    """
    found = dict(PACKAGE_EXPERIMENTS)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if found.get(entry.name, entry.value) != entry.value:
            raise ExperimentError(
                f"task {entry.name!r} is registered twice in entry-point group {ENTRY_POINT_GROUP!r}: "
                f"{found[entry.name]} and {entry.value}"
            )
        found[entry.name] = entry.value
    return found


def is_reference(source: str) -> bool:
    """Whether ``source`` is a ``module:function`` or ``file.py:function`` reference (not a name)."""
    return ":" in source


def canonical_source(source: str) -> str:
    """``source`` as a run folder records it: a file reference by its absolute path, the rest as given."""
    location, _, function = source.rpartition(":")
    if location.endswith(".py"):
        return f"{Path(location).expanduser().resolve()}:{function}"
    return source


def resolve_task(source: str) -> Task:
    """The task that ``source`` names (a registered name, ``module:function`` or ``file.py:function``).

    Raises
    ------
    ExperimentError
        If nothing is registered under the name, the module or file cannot be imported, it
        has no such function, or the function does not return a ``Task``; the message names
        the source and what went wrong.
    """
    return _load(canonical_source(source))


@functools.cache
def _load(source: str) -> Task:
    target = PACKAGE_EXPERIMENTS.get(source, source)  # this package's own names need no scan
    if not is_reference(target):
        known = registered_experiments()
        if source not in known:
            raise ExperimentError(
                f"task {source!r} is not registered; registered tasks: {', '.join(known)} "
                "(or give module:function or path/to/file.py:function)"
            )
        target = known[source]
    location, _, name = target.rpartition(":")
    if not location or not name.isidentifier():
        raise ExperimentError(f"task {source!r}: expected module:function or path/to/file.py:function")
    module = (
        _import_file(source, Path(location)) if location.endswith(".py") else _import_module(source, location)
    )
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ExperimentError(f"task {source!r}: {location} has no function {name!r}")
    try:
        task = factory()
    except ExperimentError:
        raise
    except (TypeError, ValueError) as error:
        raise ExperimentError(f"task {source!r}: {name}() failed: {error}") from error
    if not isinstance(task, Task):
        raise ExperimentError(
            f"task {source!r}: {name}() returned {type(task).__name__}, not a reference_tasks.experiment.Task"
        )
    return task


def _import_module(source: str, module: str) -> object:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ExperimentError(f"task {source!r}: cannot import module {module!r}: {error}") from error


def _import_file(source: str, path: Path) -> object:
    """Import a Python file by its path, as a module named after the path (so workers agree)."""
    if not path.is_file():
        raise ExperimentError(f"task {source!r}: no file {path}")
    name = f"lmn_experiment_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ExperimentError(f"task {source!r}: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise ExperimentError(f"task {source!r}: importing {path} failed: {error!r}") from error
    return module


@functools.cache
def task_title(name: str) -> str:
    """How figures and tables name a task: a registered task's title, else its name (once per process)."""
    if name in registered_experiments():
        return resolve_task(name).display_title
    return name


def task_order(name: str) -> tuple[int, str]:
    """Sort key of a task name: this package's experiments in their order, the others after, by name."""
    order = list(PACKAGE_EXPERIMENTS)
    return (order.index(name) if name in order else len(order), name)
