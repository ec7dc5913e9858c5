"""The doors of the command lines: every command of ``python -m experiments``, ``data``, ``reports`` and ``tools``
with its argparse parser, the options it reads as numbers, and a way to run it in this process as a user would
(``run_command``: its exit status, stdout and stderr, a ``SystemExit`` taken as the status, a hang past
``seconds`` failed by SIGALRM).

The parsers are read, never guessed: ``experiments``, ``data`` and ``reports`` build theirs in ``build_parser``; a
tool builds its own in ``main``, which is captured at its ``parse_args`` call (nothing of the tool runs)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

from tools.__main__ import COMMANDS as TOOLS


@dataclass(frozen=True)
class Door:
    """One option of one command that reads a number: ``prefix`` is the command line up to the option (``["run",
    "mformer_table4"]``), ``module`` the ``python -m`` module whose ``main`` runs it."""

    module: str
    prefix: tuple[str, ...]
    option: str
    action: argparse.Action

    @property
    def bounds(self) -> tuple[Any, Any, bool] | None:
        """(low, high, whole number) of a checked type (``data.command_line``), None for another type."""
        return getattr(self.action.type, "bounds", None)

    def __str__(self) -> str:
        return f"python -m {self.module} {' '.join(self.prefix)} {self.option}"


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def tool_parser(name: str) -> argparse.ArgumentParser:
    """The parser ``python -m tools NAME`` builds, captured at its ``parse_args`` call."""
    def capture(self, *args, **kwargs):
        raise _Captured(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture), \
            mock.patch.object(argparse.ArgumentParser, "parse_known_args", capture):
        try:
            importlib.import_module(TOOLS[name].module).main(["--help"])
        except _Captured as captured:
            return captured.parser
    raise AssertionError(f"python -m tools {name} built no argparse parser")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_parsers() -> dict[tuple[str, str], argparse.ArgumentParser]:
    """{(module, command): its parser} for every command: ``("experiments", "run")``, ``("tools", "smoke")``."""
    from data.__main__ import build_parser as data_parser
    from experiments.harness.cli import build_parser as experiments_parser
    from reports.__main__ import build_parser as reports_parser

    found = {}
    for module, parser in (("experiments", experiments_parser()), ("data", data_parser()),
                           ("reports", reports_parser())):
        for name, sub in _subcommands(parser).items():
            found[(module, name)] = sub
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
        prefix = (command, *_positionals(parser))
        for action in parser._actions:
            if action.option_strings and (hasattr(action.type, "bounds") or action.type in (int, float)):
                doors.append(Door(module, prefix, action.option_strings[0], action))
    return doors


def _entry(module: str) -> Callable[[list[str]], Any]:
    if module == "experiments":
        from experiments.__main__ import main
    elif module == "data":
        from data.__main__ import main
    elif module == "reports":
        from reports.__main__ import main
    else:
        from tools.__main__ import main
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
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    return (code if isinstance(code, int) else 0), out.getvalue(), err.getvalue()


def one_line(code: int, err: str, *named: str) -> None:
    """The contract of a refusal: a non-zero status, one line on stderr, no traceback, naming each of ``named``."""
    assert code != 0, f"accepted: {err}"
    assert err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err, err
    for name in named:
        assert name in err, (name, err)
