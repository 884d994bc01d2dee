"""lmn_core.memory: glibc keeps the blocks' freed memory once a measurement starts."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmn_core.memory import CACHE_LINE_BYTES, aligned_empty

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


@given(
    st.lists(st.integers(0, 40), min_size=1, max_size=3).map(tuple),
    st.sampled_from([np.float32, np.float64, np.int64, np.uint8]),
)
def test_aligned_arrays_start_on_a_cache_line(shape, dtype) -> None:
    array = aligned_empty(shape, dtype)
    assert array.shape == shape and array.dtype == np.dtype(dtype)
    assert array.flags.c_contiguous and array.flags.writeable
    if array.size:
        assert array.ctypes.data % CACHE_LINE_BYTES == 0
        array[...] = 7  # the whole array is its own memory
        assert (array == 7).all()


def test_the_blocks_points_start_on_a_cache_line() -> None:
    from lmn_core.pipeline import _Block

    for n_features in (1, 3, 100):
        block = _Block(block_pairs=7, n_interior=19, n_features=n_features, dtype=np.dtype(np.float32))
        assert block.points.ctypes.data % CACHE_LINE_BYTES == 0
