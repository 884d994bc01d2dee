"""Training the reference tasks: the recipe, the schedule written once, an engine per framework.

``train`` and ``train_batched`` import a framework only when called (``framework="torch"``
or ``"keras"``).
"""

from reference_tasks.training.loop import RunResult, train, train_batched
from reference_tasks.training.recipe import RunOptions, TrainConfig

__all__ = ["RunOptions", "RunResult", "TrainConfig", "train", "train_batched"]
