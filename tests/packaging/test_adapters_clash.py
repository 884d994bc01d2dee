"""Another package named ``adapters`` (AdapterHub's) found before this project's: ``lmn`` says which,
where, and what to do, instead of failing deep in a worker."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = "from reference_tasks.sweep.installation import require_own_adapters; require_own_adapters()"


def python(code: list[str], path: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    """Run Python with ``path`` first on its import path (in ``cwd``, outside the repository)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(str(folder) for folder in [*path, ROOT])}
    return subprocess.run([sys.executable, *code], cwd=cwd, env=environment, capture_output=True, text=True)


def fake_adapters(folder: Path, init: str) -> Path:
    """A package ``adapters`` under ``folder`` whose ``__init__`` is ``init``."""
    (folder / "adapters").mkdir(parents=True)
    (folder / "adapters" / "__init__.py").write_text(init)
    return folder


def test_this_projects_adapters_passes(tmp_path):
    done = python(["-c", CHECK], [], tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("init", "failure"),
    [
        ('"""AdapterHub stand-in."""\n__version__ = "1.1.0"\n', ""),
        ("raise ModuleNotFoundError(\"No module named 'transformers'\")\n", "importing it failed"),
    ],
)
def test_another_adapters_found_first_is_named_with_what_to_do(tmp_path, init, failure):
    other = fake_adapters(tmp_path / "other", init)
    done = python(["-c", CHECK], [other], tmp_path)
    assert done.returncode == 1
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: the package 'adapters' found at ")
    assert str(other / "adapters" / "__init__.py") in message
    assert failure in message and "AdapterHub's 'adapters' has the same import name" in message
    assert "Install linear-mapping-number into an environment without it" in message


def test_the_lmn_command_stops_with_the_message(tmp_path):
    other = fake_adapters(tmp_path / "other", '"""AdapterHub stand-in."""\n')
    done = python(["-m", "reference_tasks.cli", "report", str(tmp_path)], [other], tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"lmn: the package 'adapters' found at {other / 'adapters' / '__init__.py'}"
    )
    assert "Traceback" not in done.stderr
