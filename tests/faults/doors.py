"""The doors of the command lines: every entry point ``python -m`` runs (a package's ``__main__.py`` or a module with a
``__main__`` guard, found by reading the production packages' files), each command of it with its argparse parser,
the options it reads as numbers, and a way to run it in this process as a user would (``run_command``: its exit
status, stdout and stderr, a ``SystemExit`` taken as the status, a hang past ``seconds`` failed by SIGALRM).

The parsers are read, never guessed and never listed by hand: an entry point's parser is captured at its
``parse_args`` call (nothing of the command runs), its subcommands are its subparsers (``experiments``, ``data``,
``reports``); ``python -m tools`` dispatches to its tools (``tools.__main__.COMMANDS``), each of which builds its own
parser in ``main``. A new command, tool, entry point or option is found here without anyone adding it."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import runpy
import signal
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from tools.__main__ import COMMANDS as TOOLS

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("data", "models", "lightning_modules", "experiments", "reports", "tools")
_GUARD = re.compile(r"""^if __name__ == ["']__main__["']:""", re.MULTILINE)


@dataclass(frozen=True)
class Door:
    """One option of one command that reads a number: ``prefix`` is the command line up to the option (``["run",
    "mformer_table4"]``), ``module`` the ``python -m`` module whose ``main`` runs it."""

    module: str
    prefix: tuple[str, ...]
    option: str
    action: argparse.Action
    command: str = ""  # the subcommand or tool ("" for an entry point without subcommands)

    @property
    def bounds(self) -> tuple[Any, Any, bool] | None:
        """(low, high, whole number) of a checked type (``data.command_line``), None for another type."""
        return getattr(self.action.type, "bounds", None)

    def __str__(self) -> str:
        return " ".join(["python -m", self.module, *self.prefix, self.option])


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


@contextlib.contextmanager
def _capturing() -> Iterator[None]:
    """Inside the block, the first ``parse_args`` (or ``parse_known_args``) of any parser raises ``_Captured``
    with it: the command builds its parser, and nothing of it runs."""
    def capture(self, *args, **kwargs):
        raise _Captured(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture), \
            mock.patch.object(argparse.ArgumentParser, "parse_known_args", capture):
        yield


def tool_parser(name: str) -> argparse.ArgumentParser:
    """The parser ``python -m tools NAME`` builds, captured at its ``parse_args`` call."""
    with _capturing():
        try:
            importlib.import_module(TOOLS[name].module).main(["--help"])
        except _Captured as captured:
            return captured.parser
    raise AssertionError(f"python -m tools {name} built no argparse parser")


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def entry_modules() -> list[str]:
    """Every module ``python -m`` runs: each package with a ``__main__.py``, each module with a ``__main__``
    guard, in the production packages (read from their files, so a new one is found)."""
    found = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if path.name == "__main__.py":
                found.add(_dotted(path.parent))
            elif _GUARD.search(path.read_text()):
                found.add(_dotted(path))
    return sorted(found)


def _run_as_main(module: str, argv: list[str]) -> None:
    """``python -m module *argv``, in this process (``runpy``: the module's ``__main__`` guard runs)."""
    with mock.patch.object(sys, "argv", [module, *argv]), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "found in sys.modules": the tests imported it already
        runpy.run_module(module, run_name="__main__", alter_sys=True)


def module_parser(module: str) -> argparse.ArgumentParser:
    """The parser ``python -m module`` builds, captured at its ``parse_args`` call."""
    with _capturing():
        try:
            _run_as_main(module, ["--help"])
        except _Captured as captured:
            return captured.parser
        except SystemExit:
            pass
    raise AssertionError(f"python -m {module} built no argparse parser")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_parsers() -> dict[tuple[str, str], argparse.ArgumentParser]:
    """{(module, command): its parser} for every command of every entry point (``entry_modules``):
    ``("experiments", "run")``, ``("tools", "smoke")``, ``("lightning_modules.label_propagation", "")`` (an entry
    point without subcommands). A tool's own module is reached as ``tools NAME``, not again by itself."""
    tool_modules = {tool.module for tool in TOOLS.values()}
    found = {}
    for module in entry_modules():
        if module == "tools" or module in tool_modules:
            continue
        parser = module_parser(module)
        commands = _subcommands(parser)
        found.update({(module, name): sub for name, sub in commands.items()} if commands else {(module, ""): parser})
    for name in TOOLS:
        found[("tools", name)] = tool_parser(name)
    return found


def _positionals(parser: argparse.ArgumentParser) -> list[str]:
    """Values for the required positionals, so that a command line reaches its options (any table id will do:
    argparse checks an option's type as it reads it)."""
    values = []
    for action in parser._actions:
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction) and \
                action.nargs not in ("?", "*"):
            values.append(sorted(action.choices)[0] if action.choices else "mformer_table4")
    return values


def required_options(parser: argparse.ArgumentParser) -> list[str]:
    """A value for each option the parser requires (``--out`` of ``signal-stress``), so that a command line reaches
    the option under test: what is checked as it is read, before anything runs, takes any text."""
    return [f"{action.option_strings[0]}=required" for action in parser._actions
            if action.option_strings and action.required]


def numeric_doors() -> list[Door]:
    """Every option of every command that reads a number: a checked type of ``data.command_line``, or a plain
    ``int`` or ``float`` (which the tests refuse)."""
    doors = []
    for (module, command), parser in command_parsers().items():
        prefix = (*([command] if command else []), *_positionals(parser))
        for action in parser._actions:
            if action.option_strings and (hasattr(action.type, "bounds") or action.type in (int, float)):
                doors.append(Door(module, prefix, action.option_strings[0], action, command))
    return doors


def _entry(module: str) -> Callable[[list[str]], Any]:
    """What ``python -m module`` runs: the four packages' ``main``, any other entry point its ``__main__`` guard."""
    if module == "experiments":
        from experiments.__main__ import main
    elif module == "data":
        from data.__main__ import main
    elif module == "reports":
        from reports.__main__ import main
    elif module == "tools":
        from tools.__main__ import main
    else:
        return lambda argv: _run_as_main(module, argv)
    return main


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Fail what runs inside if it takes more than ``seconds`` (SIGALRM: the main thread only)."""
    def expired(signum, frame):
        raise TimeoutError(f"{what}: still running after {seconds:g}s")

    before = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def run_command(module: str, argv: list[str], seconds: float = 60) -> tuple[int, str, str]:
    """``python -m module *argv`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            deadline(seconds, f"python -m {module} {' '.join(argv)}"):
        try:
            code = _entry(module)(argv)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) or stop.code is None else 1
            if not isinstance(stop.code, int) and stop.code is not None:  # as the interpreter says it, status 1
                print(stop.code, file=sys.stderr)
    return (code if isinstance(code, int) else 0), out.getvalue(), err.getvalue()


def one_line(code: int, err: str, *named: str) -> None:
    """The contract of a refusal: a non-zero status, one line on stderr, no traceback, naming each of ``named``."""
    assert code != 0, f"accepted: {err}"
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    for name in named:
        assert name in err, (name, err)
