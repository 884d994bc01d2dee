"""A Dask worker whose ``adapters`` is another project's is named before any run starts."""

import sys
import types

import pytest

from reference_tasks.sweep.cluster import connect
from reference_tasks.sweep.installation import check_workers_have_own_adapters


def replace_adapters() -> None:
    """On a worker: ``adapters`` becomes a package without this project's mark (as AdapterHub's)."""
    sys.modules["adapters"] = types.ModuleType("adapters", "AdapterHub stand-in")


@pytest.mark.slow
def test_a_worker_with_another_adapters_is_named():
    with connect(None, 2) as client:
        check_workers_have_own_adapters(client)  # this project's on every worker: nothing raised
        (worker, other) = sorted(client.scheduler_info()["workers"])
        client.run(replace_adapters, workers=[worker])
        with pytest.raises(ImportError) as refused:
            check_workers_have_own_adapters(client)
    message = str(refused.value)
    assert message.startswith(f"Dask worker {worker}: the package 'adapters' found at <module 'adapters'")
    assert other not in message and "Install linear-mapping-number into an environment without it" in message
