"""The code blocks of README.md, and how each is run in CI.

Every ``bash`` and ``python`` block carries, on the line before its fence, an HTML comment
that the rendered README does not show::

    <!-- test: env=torch; setup=torch_models; sub=20000 -> 20 | epochs=50 -> epochs=2 -->

- ``env``: the tox environment whose tests run it (``core``, ``torch``, ``keras``,
  ``crossframework``, ``lightning``, ``transformers``), or ``never`` with ``why``: the few
  blocks nothing here can run (the install line CI itself runs, a SLURM cluster, a GPU);
- ``setup``: a function of :mod:`readme_setup` that gives the names the block uses
  (a model, its inputs) and writes the files it reads;
- ``sub``: replacements, ``OLD -> NEW`` separated by ``|``, that make the block small (fewer
  steps, seeds or samples: "on small inputs where the block says so");
- ``then``: Python run after the block, in its namespace (to call a test it defines);
- ``with=previous``: run in the namespace the block before it left (a section of blocks).

A Python block is executed; each line of a ``bash`` block is run by the shell, in a fresh
folder shared by the blocks of one test.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[1] / "README.md"
ENVIRONMENTS = ("core", "torch", "keras", "crossframework", "lightning", "transformers", "never")
_BLOCK = re.compile(
    r"(?:<!-- test: (?P<directive>[^\n]*?) -->\n[ ]*)?```(?P<lang>bash|python)\n(?P<code>.*?)```", re.S
)


@dataclass
class Block:
    """One code block of the README and its directive."""

    line: int
    lang: str
    code: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> str | None:
        return self.options.get("env")

    @property
    def name(self) -> str:
        return f"README.md:{self.line}"

    def small_code(self) -> str:
        """The code with the directive's replacements made (each must be found)."""
        code = self.code
        for pair in filter(None, (part.strip() for part in self.options.get("sub", "").split("|"))):
            old, new = (side.strip() for side in pair.split("->"))
            assert old in code, f"{self.name}: the replacement {old!r} is not in the block"
            code = code.replace(old, new)
        return code


def _options(directive: str | None) -> dict[str, str]:
    if directive is None:
        return {}
    options = {}
    for part in directive.split(";"):
        key, _, value = part.strip().partition("=")
        options[key.strip()] = value.strip()
    return options


def readme_blocks() -> list[Block]:
    """Every ``bash`` and ``python`` block of README.md, in order."""
    text = README.read_text()
    return [
        Block(
            text[: match.start("lang")].count("\n") + 1,
            match["lang"],
            match["code"],
            _options(match["directive"]),
        )
        for match in _BLOCK.finditer(text)
    ]


def blocks_for(env: str) -> list[Block]:
    """The blocks the tests of ``env`` run."""
    return [block for block in readme_blocks() if block.env == env]


def run_block(block: Block, folder: Path, namespaces: dict[int, dict[str, Any]]) -> None:
    """Run ``block`` in ``folder`` (its setup first); keep its namespace for a block ``with=previous``."""
    import readme_setup

    code = block.small_code()
    if block.lang == "bash":
        if "setup" in block.options:
            getattr(readme_setup, block.options["setup"])(folder)
        for line in filter(None, (line.split("  #")[0].strip() for line in code.splitlines())):
            command = line.replace("lmn ", f"{sys.executable} -m reference_tasks.cli ", 1)
            done = subprocess.run(command, shell=True, cwd=folder, capture_output=True, text=True)
            assert done.returncode == 0, f"{block.name}: {line!r} failed:\n{done.stderr[-3000:]}"
        return
    if block.options.get("with") == "previous":
        namespace = namespaces[max(line for line in namespaces if line < block.line)]
    else:
        namespace = {"__name__": "readme"}
        if "setup" in block.options:
            namespace.update(getattr(readme_setup, block.options["setup"])(folder))
    exec(compile(code, block.name, "exec"), namespace)
    if "then" in block.options:
        exec(block.options["then"], namespace)
    namespaces[block.line] = namespace


def block_test(env: str) -> Any:
    """The test that runs the blocks of ``env`` (one test per block, in README order)."""
    import pytest

    namespaces: dict[int, dict[str, Any]] = {}

    @pytest.mark.parametrize("block", blocks_for(env), ids=lambda block: block.name)
    def test_readme_block(block: Block, tmp_path: Path, monkeypatch: Any) -> None:
        monkeypatch.chdir(tmp_path)
        run_block(block, tmp_path, namespaces)

    return test_readme_block
