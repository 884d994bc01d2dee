"""The paper's reference tasks: tasks, model, run folders, training, analysis and report.

The rooms, each importing only those listed before it (and ``lmn_core`` and ``adapters``
below them all): ``tasks``; ``model`` (``spec`` written once; NumPy, PyTorch and Keras
models); ``experiment`` (a task and its model as public protocols, and their registry);
``testbeds``; ``runfolder``; ``analysis``; ``training``; ``sweep``; ``report``; ``cli``
(``tests/core/test_house_rules.py`` checks it). Importing this package imports no
deep-learning framework; only
``model.torch_model``, ``model.keras_model``, ``model.crossframework`` and the training
engines do.
"""

from reference_tasks.experiment import Criterion, Model, Recipe, Task, resolve_task
from reference_tasks.model.spec import PROBES
from reference_tasks.runfolder import METRIC_COLUMNS, MetricsWriter, read_metrics
from reference_tasks.tasks import TASKS, TaskData, make_task, train_test_split
from reference_tasks.training import RunOptions, TrainConfig

__all__ = [
    "METRIC_COLUMNS",
    "PROBES",
    "TASKS",
    "Criterion",
    "MetricsWriter",
    "Model",
    "Recipe",
    "RunOptions",
    "Task",
    "TaskData",
    "TrainConfig",
    "make_task",
    "read_metrics",
    "resolve_task",
    "train_test_split",
]
