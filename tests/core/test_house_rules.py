"""The rules of docs/design.md section 3.2 that a grep or a parse can check."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lmn_core", "adapters", "reference_tasks")
SOURCES = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_CODE_LINES = 60

# Private framework internals that the package must not touch (public APIs only).
PRIVATE_NAMES = re.compile(
    r"torch\.optim\.adamw\.adamw|torch\.ops\.aten|\._modules\b|\._forward_hooks\b"
    r"|\._forward_pre_hooks\b|\._nodes_by_depth\b|\._inbound_nodes\b|\._keras_history\b"
)
# Where the design lives: in the repository, never in a folder beside it.
OUTSIDE_REFERENCES = re.compile(r"\.\./shared|DESIGN\.md")
PROJECT_FILES = sorted(
    path
    for pattern in ("*.py", "*.md", "*.ini", "*.toml", "*.cfg")
    for path in ROOT.rglob(pattern)
    if not {".tox", ".git", "build", ".hypothesis"} & set(path.relative_to(ROOT).parts)
    and ".egg-info" not in str(path)
)


def code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef, source_lines: list[str]) -> int:
    """Lines of ``function`` that hold code: no docstring, blank or comment-only lines."""
    docstring = set()
    first = function.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        docstring = set(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for number in range(function.lineno, function.end_lineno + 1)
        if number not in docstring
        and source_lines[number - 1].strip()
        and not source_lines[number - 1].strip().startswith("#")
    )


def test_the_rules_see_the_package():
    assert len(SOURCES) > 30
    assert any(path.name == "loop.py" for path in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path):
    text = path.read_text()
    lines = text.splitlines()
    assert len(lines) <= MAX_MODULE_LINES, f"{path.name} has {len(lines)} lines"
    long = [
        f"{node.name} ({code_lines(node, lines)} lines of code)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and code_lines(node, lines) > MAX_FUNCTION_CODE_LINES
    ]
    assert not long, f"{path.name}: {long}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_private_framework_api(path):
    found = [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE_NAMES.search(line)
    ]
    assert not found, f"{path.relative_to(ROOT)} uses private framework API: {found}"


def test_no_reference_outside_the_repository():
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in PROJECT_FILES
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE_REFERENCES.search(line)
    ]
    assert len(PROJECT_FILES) > 50
    assert not found, f"references to a design outside the repository: {found}"


def test_code_lines_counts_code_only():
    source = 'def f(x):\n    """Doc.\n\n    More.\n    """\n    # a comment\n\n    y = x\n    return y\n'
    function = ast.parse(source).body[0]
    assert code_lines(function, source.splitlines()) == 3
