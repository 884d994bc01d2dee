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


# The rooms, from the bottom (docs/design.md section 3.2): each imports only its own room and those below.
ROOMS = (
    "lmn_core",
    "adapters",
    "tasks",
    "model",
    "experiment",
    "testbeds",
    "runfolder",
    "analysis",
    "training",
    "sweep",
    "report",
    "cli",
)
FRAMEWORKS = ("torch", "keras", "tensorflow", "jax", "lightning", "transformers")
FRAMEWORK_MODULES = re.compile(
    r"adapters/(torch|keras)/\w+\.py|adapters/(devices|lightning|transformers|transformer_lens)\.py"
    r"|reference_tasks/model/(torch_model|keras_model|crossframework)\.py"
    r"|reference_tasks/training/(torch_engine|keras_engine)\.py|reference_tasks/testbeds/(torch|keras)\w*\.py"
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> int:
    """The room of a package module, by its dotted name (``reference_tasks`` itself: the top)."""
    parts = module.split(".")
    if parts[0] != "reference_tasks":
        return ROOMS.index(parts[0])
    name = parts[1] if len(parts) > 1 else "cli"
    return ROOMS.index(name)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def package_imports(path: Path) -> set[str]:
    names = {module_name(source) for source in SOURCES}
    return {module for module in imported_modules(path) if module in names}


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_each_room_imports_only_rooms_below_it(path):
    here = room(module_name(path))
    upward = sorted(module for module in package_imports(path) if room(module) > here)
    assert not upward, f"{module_name(path)} ({ROOMS[here]}) imports from rooms above it: {upward}"


def test_no_module_imports_itself_round_a_circle():
    graph = {module_name(path): package_imports(path) - {module_name(path)} for path in SOURCES}
    packages = {name for name in graph if (ROOT / name.replace(".", "/") / "__init__.py").exists()}
    graph = {name: {m for m in targets if m not in packages} for name, targets in graph.items()}
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            assert state.get(target) != 1, f"an import circle: {' -> '.join([*trail, module, target])}"
            if target not in state:
                visit(target, [*trail, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_only_the_framework_modules_import_a_framework(path):
    frameworks = sorted(module for module in imported_modules(path) if module.split(".")[0] in FRAMEWORKS)
    if not FRAMEWORK_MODULES.fullmatch(str(path.relative_to(ROOT))):
        assert not frameworks, f"{path.relative_to(ROOT)} imports {frameworks}"
