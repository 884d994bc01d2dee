"""Importing ``lmn_core`` (and the framework-free packages) and measuring imports no framework."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("torch", "tensorflow", "keras", "jax")

SCRIPT = f"""
import sys
import numpy as np
import lmn_core, adapters, reference_tasks
result = lmn_core.lmn(np.tanh, np.random.default_rng(0).normal(size=(6, 3)), progress=True)
assert result.lmn >= 1.0
print(",".join(name for name in {FRAMEWORKS!r} if name in sys.modules))
"""


def test_measuring_imports_no_framework() -> None:
    completed = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == ""
