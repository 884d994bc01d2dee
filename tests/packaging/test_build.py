"""``python -m build`` from a clean tree: the sdist holds what the wheel needs (build makes the wheel
from the sdist), and the wheel, installed into a fresh virtual environment, measures the NumPy
example and runs the ``lmn`` command."""

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import lmn_core
from reference_tasks.sweep.installation import DISTRIBUTION

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lmn_core", "adapters", "reference_tasks")
BESIDE = ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "CITATION.cff")
# The NumPy example of the README, with a seed: its LMN is compared with this tree's.
EXAMPLE = """
import json
import numpy as np
import lmn_core

rng = np.random.default_rng(0)
W1, W2 = rng.normal(size=(8, 64)), rng.normal(size=(64, 4))


def network(x):
    h = x @ W1
    return (h / (1 + np.exp(-h))) @ W2


result = lmn_core.lmn(network, rng.normal(size=(60, 8)), progress=True)
print(json.dumps({"lmn": result.lmn, "n": result.n_samples, "core": lmn_core.__file__}))
"""


def tracked_files() -> list[str]:
    """What a clean clone holds (tracked files, and new ones git does not ignore), results aside."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if not name.startswith("results/") and (ROOT / name).is_file()]


def package_modules(names: list[str]) -> set[str]:
    return {name for name in names if name.split("/")[0] in PACKAGES and name.endswith(".py")}


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and wheel that ``python -m build`` makes from a copy of a clean clone."""
    tree, out = tmp_path_factory.mktemp("clone"), tmp_path_factory.mktemp("dist")
    for name in tracked_files():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tree / name)
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(tree)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def only(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_the_sdist_holds_the_packages_and_the_files_beside_them(dist):
    sdist = only(dist, "linear_mapping_number-*.tar.gz")
    assert sdist.name == f"linear_mapping_number-{lmn_core.__version__}.tar.gz"
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert package_modules(tracked_files()) <= names
    assert set(BESIDE) <= names
    assert not {name for name in names if name.split("/")[0] in ("tests", "results", "runs", "docs")}


def test_the_wheel_holds_every_module_and_the_lmn_command(dist):
    wheel = only(dist, "linear_mapping_number-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"linear_mapping_number-{lmn_core.__version__}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert package_modules(tracked_files()) == {name for name in names if not name.startswith(info)}
    assert f"Name: {DISTRIBUTION}\n" in metadata and f"Version: {lmn_core.__version__}\n" in metadata
    assert "lmn = reference_tasks.cli:main" in entry_points


def test_the_wheel_measures_the_numpy_example_in_a_fresh_environment(dist, tmp_path):
    wheel = only(dist, "*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python, lmn = tmp_path / "venv" / "bin" / "python", tmp_path / "venv" / "bin" / "lmn"
    install = [str(python), "-m", "pip", "install", "--quiet", f"{DISTRIBUTION}[progress] @ {wheel.as_uri()}"]
    done = subprocess.run(install, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    # run outside the repository, so that only the installed package can be imported
    ran = subprocess.run([str(python), "-c", EXAMPLE], cwd=tmp_path, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-3000:]
    installed = json.loads(ran.stdout.splitlines()[-1])
    assert Path(installed["core"]).is_relative_to(tmp_path / "venv")
    namespace: dict = {}
    exec(EXAMPLE.replace("print(", "here = ("), namespace)  # the same example on this tree
    assert installed["n"] == 60
    assert installed["lmn"] == pytest.approx(json.loads(namespace["here"])["lmn"], rel=1e-9)
    assert 1 < installed["lmn"] < 60
    version = subprocess.run([str(lmn), "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert version.stdout.strip() == f"lmn {lmn_core.__version__} ({DISTRIBUTION})"
