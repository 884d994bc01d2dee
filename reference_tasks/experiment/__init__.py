"""Experiments: a task and its model, as public protocols (docs/design.md, sections 2.6 and 3.2).

Write a task as a function returning a :class:`Task` and name it to ``lmn reproduce
--task`` as ``module:function`` or ``path/to/file.py:function``, or register it under a
name in the entry-point group ``lmn.experiments`` (:mod:`.registry`). The paper's tasks
and its MLP are written the same way (:mod:`.paper`).
"""

from reference_tasks.experiment.protocol import (
    LOSSES,
    OPTIMIZERS,
    Criterion,
    ExperimentError,
    Model,
    Recipe,
    RunConfig,
    Task,
    TaskData,
)
from reference_tasks.experiment.registry import (
    ENTRY_POINT_GROUP,
    PAPER_TASKS,
    registered_experiments,
    resolve_task,
    task_order,
    task_title,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "LOSSES",
    "OPTIMIZERS",
    "PAPER_TASKS",
    "Criterion",
    "ExperimentError",
    "Model",
    "Recipe",
    "RunConfig",
    "Task",
    "TaskData",
    "registered_experiments",
    "resolve_task",
    "task_order",
    "task_title",
]
