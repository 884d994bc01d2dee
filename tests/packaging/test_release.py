"""One version, reported everywhere: ``lmn_core.__version__`` (the build reads it), ``lmn --version``,
the changelog's newest release and ``CITATION.cff``, which validates as CFF 1.2."""

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from cffconvert import Citation

import lmn_core
from reference_tasks.sweep.installation import DISTRIBUTION

ROOT = Path(__file__).resolve().parents[2]
RELEASE = re.compile(r"^## \[(?P<version>\d+\.\d+\.\d+)\] - (?P<date>\d{4}-\d{2}-\d{2})$", re.M)


def newest_release() -> re.Match:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text.split(RELEASE.search(text)[0])[0], "Unreleased comes first"
    return RELEASE.search(text)


def test_the_installed_distribution_has_the_version_of_its_one_home():
    # the build reads lmn_core.__version__ (pyproject.toml: [tool.setuptools.dynamic])
    assert metadata.version(DISTRIBUTION) == lmn_core.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", lmn_core.__version__)
    (command,) = metadata.entry_points(group="console_scripts", name="lmn")
    assert command.dist.name == DISTRIBUTION and command.value == "reference_tasks.cli:main"


def test_lmn_prints_its_version():
    done = subprocess.run(
        [sys.executable, "-m", "reference_tasks.cli", "--version"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == f"lmn {lmn_core.__version__} ({DISTRIBUTION})\n"


def test_the_changelogs_newest_release_is_this_version():
    assert newest_release()["version"] == lmn_core.__version__


def test_the_citation_validates_as_cff_1_2_and_cites_this_release():
    citation = Citation((ROOT / "CITATION.cff").read_text())
    citation.validate()  # raises jsonschema's ValidationError, naming the field
    assert citation.cffversion == "1.2.0"
    assert citation.cffobj["version"] == lmn_core.__version__
    assert str(citation.cffobj["date-released"]) == newest_release()["date"]
    (paper,) = citation.cffobj["references"]
    assert paper["doi"] == "10.48550/arXiv.2310.05918"
