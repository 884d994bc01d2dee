"""Runs trained in this process, the seeds of one recipe stacked (``lmn reproduce --batched``).

Runs that differ only in their seed train as one batch (:func:`reference_tasks.training.train_batched`:
PyTorch stacks them, on the CPU or one GPU), each into its own folder, resumed where they
stopped. A batch that fails is reported for each of its runs, as :mod:`.cluster` reports a
failed Dask task, and the other batches go on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from reference_tasks.sweep.cluster import Outcome
from reference_tasks.sweep.plan import Run
from reference_tasks.training.loop import train_batched
from reference_tasks.training.recipe import RunOptions

logger = logging.getLogger(__name__)


def seed_batches(runs: Sequence[Run]) -> list[list[Run]]:
    """``runs`` grouped by framework and recipe: the runs of a group differ only in their seed."""
    batches: list[list[Run]] = []
    for run in runs:
        recipe = (run.framework, dataclasses.replace(run.config, seed=0))
        for batch in batches:
            if (batch[0].framework, dataclasses.replace(batch[0].config, seed=0)) == recipe:
                batch.append(run)
                break
        else:
            batches.append([run])
    return batches


def train_in_batches(runs: Sequence[Run], options: RunOptions) -> list[Outcome]:
    """Train every batch of :func:`seed_batches` in turn; the outcomes in the order of ``runs``."""
    outcomes: dict[int, Outcome] = {}
    index = {id(run): position for position, run in enumerate(runs)}
    for batch in seed_batches(runs):
        configs, out_dirs = [run.config for run in batch], [run.out_dir for run in batch]
        try:
            results = train_batched(
                configs, out_dirs, framework=batch[0].framework, options=options, resume=True
            )
        except Exception as error:  # reported with the batch's runs; the other batches go on
            message = f"{type(error).__name__}: {error}"
            logger.error("the batch of %s failed: %s", ", ".join(run.name for run in batch), message)
            outcomes.update({index[id(run)]: Outcome(run, error=message) for run in batch})
            continue
        outcomes.update(
            {
                index[id(run)]: Outcome(run, summary=result.summary)
                for run, result in zip(batch, results, strict=True)
            }
        )
    return [outcomes[position] for position in range(len(runs))]
