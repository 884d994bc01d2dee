"""Importing ``lmn_core`` (and the framework-free packages) and measuring imports no framework.

Meaningful where the frameworks are installed: every framework's tox environment runs this file.
"""

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


def test_framework_free_modules_import_no_framework() -> None:
    code = (
        "import sys, adapters, adapters.measures, adapters.schedule, adapters.layer, reference_tasks, "
        "reference_tasks.training.recipe, "
        "reference_tasks.analysis, reference_tasks.runfolder, reference_tasks.tasks, reference_tasks.cli, "
        "reference_tasks.report.build, reference_tasks.sweep.execute\n"
        f"loaded = set({FRAMEWORKS!r}) & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
