"""The floors: data -> models -> lightning_modules -> experiments -> reports. A module imports only its own floor
and those below it (entry points, ``__main__.py``, may use everything), so the package graph has no cycle."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FLOORS = ["data", "models", "lightning_modules", "experiments", "reports"]


def imported_packages(path: Path) -> set[str]:
    """Top-level repository packages a module imports, anywhere in it (function-level imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out |= {n.split(".")[0] for n in names if n.split(".")[0] in FLOORS}
    return out


def package_graph() -> dict[str, set[str]]:
    """package -> packages its modules (entry points excepted) import."""
    graph = {p: set() for p in FLOORS}
    for package in FLOORS:
        for path in (REPO / package).rglob("*.py"):
            if path.name != "__main__.py":
                graph[package] |= imported_packages(path) - {package}
    return graph


@pytest.mark.parametrize("package", FLOORS)
def test_no_module_imports_a_floor_above_its_own(package):
    rank = FLOORS.index(package)
    upward = sorted(
        f"{path.relative_to(REPO)} imports {dep}"
        for path in (REPO / package).rglob("*.py") if path.name != "__main__.py"
        for dep in imported_packages(path) if FLOORS.index(dep) > rank
    )
    assert not upward, upward


def test_the_package_graph_has_no_cycle():
    graph = package_graph()
    visiting, done = set(), set()

    def visit(node: str, trail: list[str]) -> None:
        assert node not in visiting, " -> ".join(trail + [node])
        if node in done:
            return
        visiting.add(node)
        for dep in sorted(graph[node]):
            visit(dep, trail + [node])
        visiting.discard(node)
        done.add(node)

    for package in FLOORS:
        visit(package, [])


def test_the_checker_sees_an_upward_import(tmp_path):
    """The test above can fail: a function-level import of a higher floor is found."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from reports.build import build_report\n    import experiments.runner\n")
    assert imported_packages(module) == {"reports", "experiments"}
