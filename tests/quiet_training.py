"""The trainers as the tests call them: no progress bars."""

from __future__ import annotations

from functools import partial

from reference_tasks import training
from reference_tasks.training import RunOptions

QUIET = RunOptions(progress=False)

train = partial(training.train, options=QUIET)
train_batched = partial(training.train_batched, options=QUIET)
