"""The code blocks of README.md and of the guides in docs/guides/, and how each is run in CI.

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
- ``with=previous``: run in the namespace the block before it left (a section of blocks);
  a ``bash`` block gets the files the blocks before it wrote;
- ``file``: a Python block that is a file of the reader's own: written under that name
  (not executed), for the blocks after it that run it.

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
GUIDES = README.parent / "docs" / "guides"
ENVIRONMENTS = ("core", "torch", "keras", "crossframework", "lightning", "transformers", "never")
_BLOCK = re.compile(
    r"(?:<!-- test: (?P<directive>[^\n]*?) -->\n[ ]*)?```(?P<lang>bash|python)\n(?P<code>.*?)```", re.S
)


@dataclass
class Block:
    """One code block of the README (or a guide) and its directive."""

    line: int
    lang: str
    code: str
    options: dict[str, str] = field(default_factory=dict)
    page: str = "README.md"

    @property
    def env(self) -> str | None:
        return self.options.get("env")

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

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


def readme_blocks(page: Path = README) -> list[Block]:
    """Every ``bash`` and ``python`` block of README.md (or another page), in order."""
    text = page.read_text()
    name = str(page.relative_to(README.parent))
    return [
        Block(
            text[: match.start("lang")].count("\n") + 1,
            match["lang"],
            match["code"],
            _options(match["directive"]),
            name,
        )
        for match in _BLOCK.finditer(text)
    ]


def guide_blocks() -> list[Block]:
    """Every block of the guides in docs/guides/, page by page."""
    return [block for page in sorted(GUIDES.glob("*.md")) for block in readme_blocks(page)]


def blocks_for(env: str, blocks: list[Block] | None = None) -> list[Block]:
    """The blocks (README.md's by default) the tests of ``env`` run."""
    return [block for block in (readme_blocks() if blocks is None else blocks) if block.env == env]


def run_block(block: Block, folder: Path, namespaces: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Run ``block`` in ``folder`` (its setup first); keep its namespace for a block ``with=previous``."""
    import readme_setup

    code = block.small_code()
    if "file" in block.options:
        (folder / block.options["file"]).write_text(code)
        namespaces[block.page, block.line] = {"__files__": {block.options["file"]: code}}
        return
    if block.lang == "bash":
        if "setup" in block.options:
            getattr(readme_setup, block.options["setup"])(folder)
        files = (
            namespaces[_previous(namespaces, block)].get("__files__", {}) if "with" in block.options else {}
        )
        for name, text in files.items():
            (folder / name).write_text(text)
        namespaces[block.page, block.line] = {"__files__": files}
        for line in filter(None, (line.split("  #")[0].strip() for line in code.splitlines())):
            command = line.replace("lmn ", f"{sys.executable} -m reference_tasks.cli ", 1)
            done = subprocess.run(command, shell=True, cwd=folder, capture_output=True, text=True)
            assert done.returncode == 0, f"{block.name}: {line!r} failed:\n{done.stderr[-3000:]}"
        return
    if block.options.get("with") == "previous":
        namespace = namespaces[_previous(namespaces, block)]
    else:
        namespace = {"__name__": "readme"}
        if "setup" in block.options:
            namespace.update(getattr(readme_setup, block.options["setup"])(folder))
    exec(compile(code, block.name, "exec"), namespace)
    if "then" in block.options:
        exec(block.options["then"], namespace)
    namespaces[block.page, block.line] = namespace


def _previous(namespaces: dict[tuple[str, int], dict[str, Any]], block: Block) -> tuple[str, int]:
    """The key of the namespace the block before ``block`` on its page left."""
    return max(key for key in namespaces if key[0] == block.page and key[1] < block.line)


def block_test(env: str, blocks: list[Block] | None = None) -> Any:
    """The test that runs the blocks of ``env`` (a test per block, in page order); README.md's by default."""
    import pytest

    namespaces: dict[tuple[str, int], dict[str, Any]] = {}

    @pytest.mark.parametrize("block", blocks_for(env, blocks), ids=lambda block: block.name)
    def test_readme_block(block: Block, tmp_path: Path, monkeypatch: Any) -> None:
        monkeypatch.chdir(tmp_path)
        run_block(block, tmp_path, namespaces)

    return test_readme_block
