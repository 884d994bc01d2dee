"""The code blocks of README.md and of every page under docs/, and how each is run in CI.

Every ``bash`` and ``python`` block carries, on the line before its fence, an HTML comment
that the rendered page does not show::

    <!-- test: env=torch; setup=torch_models; sub=20000 -> 20 | epochs=50 -> epochs=2 -->

- ``env``: the tox environment whose tests run it (``core``, ``torch``, ``keras``,
  ``crossframework``, ``lightning``, ``transformers``, ``transformer-lens``), or ``never``
  with ``why``: the few blocks nothing here can run (the install line CI itself runs, a SLURM
  cluster, a GPU);
- ``setup``: a function of :mod:`readme_setup` that gives the names the block uses
  (a model, its inputs) and writes the files it reads;
- ``sub``: replacements, ``OLD -> NEW`` separated by ``|``, that make the block small (fewer
  steps, seeds or samples: "on small inputs where the block says so");
- ``then``: Python run after the block, in its namespace (to call a test it defines);
- ``with=previous``: run in the namespace the block before it on the same page left (a
  section of blocks); a ``bash`` block gets the files the blocks before it wrote;
- ``file``: a Python block that is a file of the reader's own: written under that name
  (not executed), for the blocks after it that run it.

A Python block is executed; each line of a ``bash`` block is run by the shell, in a fresh
folder shared by the blocks of one test. Other fences hold what is not run: ``text`` (a
program's output, a table), ``bibtex`` (a citation), ``toml`` (a ``pyproject.toml`` excerpt,
such as an entry point, whose registry the tests exercise) or no language (a tree);
:func:`fence_errors` refuses any other language, so that no code escapes these tests, and a
fence that does not close.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENTS = (
    "core",
    "torch",
    "keras",
    "crossframework",
    "lightning",
    "transformers",
    "transformer-lens",
    "never",
)
RUN_LANGUAGES = ("bash", "python")
# Fences that hold no code: output, tables, a citation, configuration, trees.
SHOWN_LANGUAGES = ("text", "bibtex", "toml", "")
_BLOCK = re.compile(
    r"(?:<!-- test: (?P<directive>[^\n]*?) -->\n[ ]*)?```(?P<lang>bash|python)\n(?P<code>.*?)```", re.S
)
_FENCE = re.compile(r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def documents() -> list[Path]:
    """README.md and every Markdown page of the site (docs/), in a fixed order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass
class Block:
    """One code block of a page and its directive."""

    page: str  # the page's path from the repository root
    line: int
    lang: str
    code: str
    options: dict[str, str] = field(default_factory=dict)

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


def page_blocks(path: Path) -> list[Block]:
    """Every ``bash`` and ``python`` block of the page at ``path``, in order."""
    text = path.read_text()
    page = path.relative_to(ROOT).as_posix()
    return [
        Block(
            page,
            text[: match.start("lang")].count("\n") + 1,
            match["lang"],
            match["code"],
            _options(match["directive"]),
        )
        for match in _BLOCK.finditer(text)
    ]


def doc_blocks() -> list[Block]:
    """Every ``bash`` and ``python`` block of README.md and of the pages under docs/."""
    return [block for path in documents() for block in page_blocks(path)]


def blocks_for(env: str) -> list[Block]:
    """The blocks the tests of ``env`` run."""
    return [block for block in doc_blocks() if block.env == env]


def fence_errors(text: str, name: str) -> list[str]:
    """What is wrong with the code fences of the Markdown ``text`` (CommonMark's rules).

    A fence closes only on a line of its own character, at least as long, and nothing else:
    a line such as ``\\`\\`\\` The kernels walk ...`` inside a block cannot close it, and the
    block then runs on, swapping code and prose for the rest of the page. Each error names
    ``name``, the line and what to do.
    """
    errors, opened = [], None  # opened: (line, fence) of the block we are in
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if match is None:
            continue
        fence, info = match["fence"], match["info"].strip()
        if opened is None:
            if fence[0] == "`" and "`" in info:
                continue  # inline code at the start of a line, not a fence
            if info not in RUN_LANGUAGES + SHOWN_LANGUAGES:
                errors.append(
                    f"{name}:{number}: a ```{info} block is neither run (bash, python) nor output "
                    "(text, bibtex, toml, or no language): the docs tests would not see its code"
                )
            opened = (number, fence)
        elif fence[0] == opened[1][0] and len(fence) >= len(opened[1]):
            if info:
                errors.append(
                    f"{name}:{number}: {line.strip()[:40]!r} cannot close the block opened at line "
                    f"{opened[0]}: a closing fence stands alone on its line"
                )
            else:
                opened = None
    if opened is not None:
        errors.append(f"{name}:{opened[0]}: the block opened here is never closed")
    return errors


def run_block(block: Block, folder: Path, namespaces: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Run ``block`` in ``folder`` (its setup first); keep its namespace for a block ``with=previous``."""
    import readme_setup

    code = block.small_code()
    if "file" in block.options:
        (folder / block.options["file"]).write_text(code)
        namespaces[block.page, block.line] = {"__files__": {block.options["file"]: code}}
        return
    previous = namespaces[_previous(namespaces, block)] if block.options.get("with") == "previous" else None
    if block.lang == "bash":
        files = previous.get("__files__", {}) if previous is not None else {}
        for name, text in files.items():
            (folder / name).write_text(text)
        if "setup" in block.options:
            getattr(readme_setup, block.options["setup"])(folder)
        for line in filter(None, (line.split("  #")[0].strip() for line in code.splitlines())):
            command = line.replace("lmn ", f"{sys.executable} -m reference_tasks.cli ", 1)
            done = subprocess.run(command, shell=True, cwd=folder, capture_output=True, text=True)
            assert done.returncode == 0, f"{block.name}: {line!r} failed:\n{done.stderr[-3000:]}"
        if files:  # for a later bash block; a Python block after it takes the namespace before it
            namespaces[block.page, block.line] = {"__files__": files}
        return
    if previous is not None:
        namespace = previous
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


def block_test(env: str) -> Any:
    """The test that runs the blocks of ``env`` (one test per block, in page order)."""
    import pytest

    namespaces: dict[tuple[str, int], dict[str, Any]] = {}

    @pytest.mark.parametrize("block", blocks_for(env), ids=lambda block: block.name)
    def test_doc_block(block: Block, tmp_path: Path, monkeypatch: Any) -> None:
        monkeypatch.chdir(tmp_path)
        run_block(block, tmp_path, namespaces)

    return test_doc_block
