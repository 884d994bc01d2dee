"""Build hooks of the documentation site (mkdocs.yml ``hooks:``).

- The figures committed under ``results/`` join the site at the same paths, so that the
  Results page shows them without a copy under ``docs/`` (``results/report/fig.png``).
- A line ``<!-- lmn-help: sweep -->`` becomes the ``--help`` of ``lmn sweep``, run at build time,
  so the command's reference never drifts from its parser.
- Sphinx roles left in docstrings (``:class:`X```) are shown as plain code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "results"
_HELP = re.compile(r"^<!-- lmn-help: ?(?P<command>[a-z ]*?) ?-->$", re.M)
_ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|exc|obj):(?=<code>)")


def on_files(files: Files, config: Any) -> Files:
    for figure in sorted(FIGURES.rglob("*.png")):
        uri = figure.relative_to(ROOT).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(figure)))
    return files


def _help(command: str) -> str:
    arguments = [sys.executable, "-m", "reference_tasks.cli", *command.split(), "--help"]
    environment = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(arguments, capture_output=True, text=True, check=True, env=environment)
    return f"```text\n{done.stdout.rstrip()}\n```"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    return _HELP.sub(lambda match: _help(match["command"]), markdown)


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    return _ROLE.sub("", html)
