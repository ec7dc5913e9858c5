"""The floors, checked file by file: data -> models -> lightning_modules -> experiments -> reports -> tools.

Every ``.py`` file of the repository is a node of one graph; an edge is an import of another repository file
anywhere in it, inside functions and classes too (``import a.b``, ``from a import b``, relative imports; ``from pkg
import name`` where ``name`` is a submodule imports that submodule, otherwise the package's ``__init__.py``). The
graph has no cycle; a file imports only its own floor and those below it, except an entry point (``__main__.py``),
which may sit above everything but not inside a circle; nothing in ``reports/`` reaches the runner. The measurement
tools (``tools/``) are the top floor: they may use every floor below, and no file below imports them. Files stay
under ``MAX_FILE_LINES`` and functions under ``MAX_FUNCTION_LINES``, the model constructors too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLOORS = ["data", "models", "lightning_modules", "experiments", "reports", "tools"]
ENTRY_POINT = "__main__.py"
RUNNER = "experiments/harness/runner.py"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 600, 80


def repo_files(repo: Path = REPO) -> list[Path]:
    """Every Python file of the floors and the tests."""
    return sorted(path for top in [*FLOORS, "tests"] if (repo / top).is_dir() for path in (repo / top).rglob("*.py"))


def _module_file(parts: list[str], repo: Path) -> Path | None:
    """The repository file of a dotted module: ``a/b.py`` or ``a/b/__init__.py``; None outside the repository."""
    if not parts:
        return None
    base = repo.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_files(path: Path, repo: Path = REPO) -> set[Path]:
    """The repository files ``path`` imports, anywhere in it."""
    parts = list(path.relative_to(repo).with_suffix("").parts)
    package = parts[:-1]  # the package a relative import starts from (for an __init__.py: its own)
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {_module_file(alias.name.split("."), repo) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            base = base + (node.module.split(".") if node.module else [])
            for alias in node.names:
                submodule = _module_file(base + [alias.name], repo) if alias.name != "*" else None
                out.add(submodule or _module_file(base, repo))
    return out - {None, path}


def import_graph(repo: Path = REPO) -> dict[Path, set[Path]]:
    return {path: imported_files(path, repo) for path in repo_files(repo)}


def find_cycle(graph: dict[Path, set[Path]]) -> list[Path] | None:
    """One import circle (its files, the first repeated at the end), or None."""
    state: dict[Path, str] = {}
    trail: list[Path] = []

    def visit(node: Path) -> list[Path] | None:
        state[node] = "open"
        trail.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return trail[trail.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[node] = "done"
        trail.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def _floor(path: Path, repo: Path = REPO) -> str | None:
    top = path.relative_to(repo).parts[0]
    return top if top in FLOORS else None


def _shown(paths) -> str:
    return " -> ".join(path.relative_to(REPO).as_posix() for path in paths)


@pytest.fixture(scope="module")
def graph() -> dict[Path, set[Path]]:
    return import_graph()


def test_no_import_circle_between_files(graph):
    cycle = find_cycle(graph)
    assert cycle is None, _shown(cycle)


def test_no_file_imports_a_floor_above_its_own(graph):
    upward = sorted(f"{_shown([path, dep])}" for path, deps in graph.items() if _floor(path) and
                    path.name != ENTRY_POINT for dep in deps
                    if _floor(dep) and FLOORS.index(_floor(dep)) > FLOORS.index(_floor(path)))
    assert not upward, upward


def test_nothing_in_reports_reaches_the_runner(graph):
    """Reading a record never loads the runner: not directly, not through any file in between."""
    runner = REPO / RUNNER
    for path in (p for p in graph if _floor(p) == "reports"):
        seen, todo = set(), [path]
        while todo:
            node = todo.pop()
            for dep in graph[node] - seen:
                assert dep != runner, f"{path.relative_to(REPO)} reaches {RUNNER}"
                seen.add(dep)
                todo.append(dep)


def test_no_source_file_is_longer_than_the_limit():
    long = {path.relative_to(REPO).as_posix(): n for path in repo_files() if _floor(path)
            if (n := len(path.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, long


def _function_lengths(path: Path) -> dict[str, int]:
    """Lines of every function and method (def line to last line), by qualified name."""
    out = {}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    out[name] = child.end_lineno - child.lineno + 1
                walk(child, name + ".")
            else:
                walk(child, prefix)

    walk(ast.parse(path.read_text(), str(path)), "")
    return out


def test_no_function_is_longer_than_the_limit():
    lengths = {f"{path.relative_to(REPO).as_posix()}::{name}": n for path in repo_files() if _floor(path)
               for name, n in _function_lengths(path).items()}
    long = {name: n for name, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert not long, long


def test_the_checker_sees_every_kind_of_import_and_a_circle_closed_inside_a_function(tmp_path):
    """The checks above can fail: imports inside functions, relative imports and ``from pkg import submodule``
    are edges to the right files, and a circle closed by a function-level import is found."""
    (tmp_path / "reports").mkdir()
    (tmp_path / "experiments" / "cast").mkdir(parents=True)
    files = {
        "experiments/__init__.py": "",
        "experiments/runner.py": "from . import jobs\n",
        "experiments/jobs.py": "def run():\n    from .runner import execute\n",
        "experiments/cast/__init__.py": "from .. import spec\nfrom ..runner import execute\n",
        "experiments/spec.py": "import experiments.cast\n",
        "reports/build.py": "class Report:\n    def make(self):\n        from experiments import runner, missing\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    edges = {(a.relative_to(tmp_path).as_posix(), b.relative_to(tmp_path).as_posix())
             for a, deps in graph.items() for b in deps}
    assert edges == {("experiments/runner.py", "experiments/jobs.py"),
                     ("experiments/jobs.py", "experiments/runner.py"),
                     ("experiments/cast/__init__.py", "experiments/spec.py"),
                     ("experiments/cast/__init__.py", "experiments/runner.py"),
                     ("experiments/spec.py", "experiments/cast/__init__.py"),
                     ("reports/build.py", "experiments/runner.py"),
                     ("reports/build.py", "experiments/__init__.py")}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and len(cycle) == 3
    del graph[tmp_path / "experiments/jobs.py"]
    cycle = find_cycle(graph)
    assert {p.name for p in cycle} == {"__init__.py", "spec.py"}

