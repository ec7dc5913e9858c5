"""Every file the repository's code writes goes through the one writer (``data/atomic_write.py``): no production
module opens a file for writing, calls ``Path.write_text``/``write_bytes``, saves an image, a tensor or arrays by
name, or copies a file, outside it. The calls are found in each module's syntax tree, not by a list of files: a new
command that writes by another door fails here, whoever wrote it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("data", "models", "lightning_modules", "experiments", "reports", "tools")
WRITER = REPO / "data" / "atomic_write.py"
WRITE_MODES = set("wax+")
# calls that write a file by name, whatever their first argument
WRITING_METHODS = {"write_text", "write_bytes", "save", "savefig", "savez", "savez_compressed", "savetxt", "tofile",
                   "save_file", "copy", "copy2", "copyfile", "copytree", "move", "imwrite", "symlink_to", "hardlink_to"}
WRITING_FUNCTIONS = {"save_file", "copyfile", "copy2", "copytree"}  # imported by name (safetensors', shutil's)
WRITING_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"}


def _mode(call: ast.Call) -> str | None:
    """The mode string of an ``open``-like call, where it is a literal."""
    for keyword in call.keywords:
        if keyword.arg == "mode" and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    position = 0 if name == "open" and isinstance(call.func, ast.Attribute) and \
        not (isinstance(call.func.value, ast.Name) and call.func.value.id in ("av", "gzip", "bz2", "lzma", "io")) \
        else 1  # Path.open(mode) takes it first; open(file, mode), av.open(file, mode) second
    if name == "fdopen":
        position = 1
    if len(call.args) > position and isinstance(call.args[position], ast.Constant):
        return str(call.args[position].value)
    return None


def _flags(node: ast.AST) -> set[str]:
    return {child.attr for child in ast.walk(node) if isinstance(child, ast.Attribute)}


def _into_the_writers_paths(tree: ast.AST) -> set[int]:
    """The ids of the calls inside a ``with replacing(...) as tmp`` whose first argument names ``tmp``: a library
    that writes by name (PyAV) writing the writer's temporary path, which the writer then renames into place."""
    allowed = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.With):
            continue
        names = {item.optional_vars.id for item in node.items
                 if isinstance(item.context_expr, ast.Call) and isinstance(item.optional_vars, ast.Name)
                 and getattr(item.context_expr.func, "id", getattr(item.context_expr.func, "attr", "")) == "replacing"}
        for call in (child for child in ast.walk(node) if isinstance(child, ast.Call) and child.args):
            if names & {name.id for name in ast.walk(call.args[0]) if isinstance(name, ast.Name)}:
                allowed.add(id(call))
    return allowed


def writes(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, call) for each call in ``tree`` that writes a file by another door than the writer."""
    found = []
    allowed = _into_the_writers_paths(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in allowed:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("open", "fdopen") and WRITE_MODES & set(_mode(node) or ""):
            found.append((node.lineno, f"{name}(..., {_mode(node)!r})"))
        elif name in WRITING_METHODS and isinstance(func, ast.Attribute) and \
                not (name in ("copy", "move") and not _is_shutil(func)):
            found.append((node.lineno, f".{name}(...)"))
        elif name in WRITING_FUNCTIONS and isinstance(func, ast.Name):
            found.append((node.lineno, f"{name}(...)"))
        elif name == "open" and isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "os" and \
                len(node.args) > 1 and WRITING_FLAGS & _flags(node.args[1]) and \
                not (isinstance(node.args[0], ast.Attribute) and node.args[0].attr == "devnull"):
            found.append((node.lineno, "os.open(..., writing flags)"))
    return sorted(found)


def _is_shutil(func: ast.Attribute) -> bool:
    """``shutil.copy`` and ``shutil.move`` write files; a dict's or a tensor's ``copy`` does not."""
    return isinstance(func.value, ast.Name) and func.value.id == "shutil"


def production_modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO / package).rglob("*.py") if path != WRITER)


def test_the_modules_are_found():
    modules = production_modules()
    assert len(modules) > 200 and REPO / "experiments" / "harness" / "attention.py" in modules


def test_no_module_writes_a_file_but_through_the_writer():
    found = [f"{path.relative_to(REPO)}:{line}: {call}" for path in production_modules()
             for line, call in writes(ast.parse(path.read_text(), str(path)))]
    assert not found, "write through data/atomic_write.py:\n" + "\n".join(found)


@pytest.mark.parametrize("code", [
    "open(path, 'w')", "open(path, mode='ab')", "path.open('w')", "Path(p).write_text('x')", "p.write_bytes(b'')",
    "Image.fromarray(a).save(p)", "torch.save(x, p)", "save_file(tensors, p)", "a.tofile(p)",
    "fig.savefig(p)", "np.savez(p, a=a)", "shutil.copy2(a, b)",
    "av.open(str(p), 'w')", "with replacing(path) as tmp: av.open(str(other), 'w')",
    "os.open(p, os.O_WRONLY | os.O_CREAT)", "os.fdopen(fd, 'wb')",
])
def test_each_door_of_writing_is_seen(code):
    assert writes(ast.parse(code)), code


@pytest.mark.parametrize("code", [
    "open(path)", "open(path, 'rb')", "path.open()", "av.open(str(p))", "x.copy()", "os.open(os.devnull, os.O_WRONLY)",
    "os.open(p, os.O_RDONLY)",
    "with replacing(path) as tmp, av.open(str(tmp), 'w') as out: pass",
])
def test_reading_is_not_taken_for_writing(code):
    assert not writes(ast.parse(code)), code
