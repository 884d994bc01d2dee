"""The paper's reference tasks, run folders and their analysis.

This package imports no deep-learning framework: the trainers live in
``reference_tasks.torch_trainer`` (and its Keras counterpart) and are imported by name.
"""

from reference_tasks.datasets import TASKS, TaskData, make_task, train_test_split
from reference_tasks.runs import METRIC_COLUMNS, PROBES, MetricsWriter, read_metrics

__all__ = [
    "METRIC_COLUMNS",
    "PROBES",
    "TASKS",
    "MetricsWriter",
    "TaskData",
    "make_task",
    "read_metrics",
    "train_test_split",
]
