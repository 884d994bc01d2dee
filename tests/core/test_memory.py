"""lmn_core.memory: glibc keeps the blocks' freed memory once a measurement starts."""

import os
import subprocess
import sys

import pytest

CHILD = (
    "import numpy as np, lmn_core, lmn_core.memory as memory\n"
    "before = memory.keep_freed_memory.cache_info().currsize\n"
    "lmn_core.lmn(np.tanh, np.arange(6.0).reshape(3, 2))\n"
    "print(before, memory.keep_freed_memory())\n"
)
GLIBC = os.confstr("CS_GNU_LIBC_VERSION") is not None


def run_child(**environment):
    env = {
        k: v for k, v in os.environ.items() if k not in {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"}
    }
    env.update(environment)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.parametrize(
    ("environment", "applied"),
    [
        ({}, GLIBC),
        ({"LMN_KEEP_FREED_MEMORY": "0"}, False),
        ({"MALLOC_TRIM_THRESHOLD_": "1048576"}, False),  # the user chose: left alone
    ],
)
def test_thresholds_are_raised_on_the_first_measurement_unless_declined(environment, applied):
    before, after = run_child(**environment)
    assert before == "0"  # importing lmn_core changes nothing
    assert after == str(applied)


def test_a_task_may_set_the_thresholds_over_an_environment_it_did_not_choose():
    script = (
        "from lmn_core.memory import keep_freed_memory; "
        "print(keep_freed_memory(), keep_freed_memory(over_environment=True))"
    )
    environment = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    environment.pop("LMN_KEEP_FREED_MEMORY", None)
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert done.stdout.split() == ["False", "True"]
    environment["LMN_KEEP_FREED_MEMORY"] = "0"
    done = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"]
