"""Every door walked by construction: each command of each entry point (``tests/faults/doors.py`` finds them in the
production packages' files and the parsers themselves, no list kept by hand), and each of its options and
positionals, is held to what the project promises:

- its parser is a ``data.command_line.OneLineParser`` and every value it takes is read by a type of
  ``data/command_line.py`` (plain text checked by that parser, or a type made there): no hand-written type that takes
  another script's digits, a float's ``1_000`` or a nesting past Python's recursion limit;
- given hostile text (another script's digits, ``1_000``, NaN, 5,001 digits, a newline and an ESC, a NUL, a value
  past any bound, 2,000 nested brackets, a lone surrogate), its parser takes it or refuses it in one line with no
  raw control character; a number refuses every one of them;
- a command that takes a positional, run with a hostile one (a table or file name holding a newline and an ESC),
  ends within its deadline in exit status 0, 1 or 2 (then one line), with no traceback and no ESC on the terminal,
  writing nothing in its working folder. A command without a positional would do its work (train, measure, write
  the generated pages), so it is probed by its parser alone.

A throwaway subcommand and a throwaway tool, added as a new one would be, are found and their faults seen.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import types

import pytest

from data.command_line import MAX_OPTION_CHARS, OneLineParser, is_checked_type
from tests.faults.doors import (
    _positionals,
    command_parsers,
    entry_modules,
    required_options,
    run_command,
)
from tools.__main__ import COMMANDS as TOOLS
from tools.__main__ import Tool

PARSERS = command_parsers()
HOSTILE_NAME = "no_such\n\x1b[31m"
NUMERIC_KINDS = ("count", "number", "counts")
NOT_A_NUMBER = ["١٢", "1_000", "nan", "inf", "9" * 5001, "", "\n\x1b[31m", "٣.٥"]
HOSTILE = [*NOT_A_NUMBER, "-1", "a\0b", "x" * (MAX_OPTION_CHARS + 1), "[" * 2000 + "]" * 2000, "\udcff", " "]
SECONDS = 90


def _id(key: tuple[str, str]) -> str:
    return " ".join(part for part in key if part)


def _values(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The actions of ``parser`` that read a value: its options and positionals but flags, help and subcommands."""
    return [action for action in parser._actions
            if action.nargs != 0 and not isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                                                             argparse._SubParsersAction))]


def _numeric(action: argparse.Action) -> bool:
    return getattr(action.type, "kind", None) in NUMERIC_KINDS or action.type in (int, float)


# --- the checks, each returning what it finds wrong (the throwaway test asks them of a command made to fail) --------

def type_problems(parser: argparse.ArgumentParser) -> list[str]:
    """Its class, and each value's type, against data/command_line.py."""
    found = [] if isinstance(parser, OneLineParser) else [f"{type(parser).__name__}, not a OneLineParser"]
    found += [f"{action.option_strings[0] if action.option_strings else action.dest}: type {action.type!r}"
              for action in _values(parser) if not is_checked_type(action.type)]
    return found


def _argv(parser: argparse.ArgumentParser, action: argparse.Action, value: str) -> list[str]:
    """A command line of ``parser`` that reaches ``action`` with ``value``: the other positionals and the required
    options given any value argparse reads."""
    positionals = [a for a in parser._actions if not a.option_strings and a in _values(parser)]
    given = _positionals(parser)
    if not action.option_strings:
        given = [value if a is action else v for a, v in zip(positionals, given)]
        if action not in positionals[: len(given)]:
            given.append(value)
        return [*(o for o in required_options(parser) if o.split("=")[0] not in action.option_strings), *given]
    others = [o for o in required_options(parser) if o.split("=")[0] not in action.option_strings]
    return [*given, *others, f"{action.option_strings[0]}={value}"]


def parse_problems(parser: argparse.ArgumentParser, action: argparse.Action, values: list[str]) -> list[str]:
    """What goes wrong when ``action`` is given each of ``values``: a traceback, more than one line or a raw control
    character on stderr, or a number taking what is no number."""
    found = []
    for value in values:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parsed = getattr(parser.parse_args(_argv(parser, action, value)), action.dest, None)
        except SystemExit as stop:
            said = err.getvalue()
            if stop.code != 2 or said.count("\n") != 1 or not said.endswith("\n") or "\x1b" in said:
                found.append(f"{value[:20]!r}: status {stop.code}, said {said[:300]!r}")
        except Exception as error:  # whatever escapes the parser is the finding
            found.append(f"{value[:20]!r}: {type(error).__name__}: {str(error)[:100]}")
        else:
            if value in NOT_A_NUMBER and (_numeric(action) or _a_number(parsed)):
                found.append(f"{value[:20]!r}: taken as a number")
    return found


def _a_number(value: object) -> bool:
    """Whether a parsed value is, or holds, a number (whatever type read it: a hand-written one too)."""
    if isinstance(value, (list, tuple)):
        return any(map(_a_number, value))
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def has_positional(parser: argparse.ArgumentParser) -> bool:
    return any(not a.option_strings for a in _values(parser))


def run_problems(module: str, command: str, parser: argparse.ArgumentParser) -> list[str]:
    """``python -m module command HOSTILE_NAME ...`` (its first positional hostile, the rest as ``_positionals``
    gives them), run in a fresh working folder that must stay empty."""
    positionals = _positionals(parser)
    argv = [*([command] if command else []), *required_options(parser), HOSTILE_NAME, *positionals[1:]]
    before = os.getcwd()
    with tempfile.TemporaryDirectory() as base:
        os.chdir(base)
        try:
            code, out, err = run_command(module, argv, seconds=SECONDS)
        except BaseException as error:  # a traceback, a hang: the finding
            return [f"{type(error).__name__}: {str(error)[:200]}"]
        finally:
            os.chdir(before)
        left = os.listdir(base)
    found = [f"left {left} in its working folder"] if left else []
    if code not in (0, 1, 2) or (code == 2 and (err.count("\n") != 1 or not err.endswith("\n"))):
        found.append(f"status {code}, said {err[-300:]!r}")
    if "Traceback" in err or "\x1b" in err or "\x1b" in out:
        found.append(f"said {err[-300:]!r}")
    return found


# --- the suite -----------------------------------------------------------------------------------------------------

def test_every_entry_point_and_command_is_found():
    modules = entry_modules()
    assert {"experiments", "data", "reports", "tools", "lightning_modules.label_propagation",
            "experiments.synthetic_learnability"} <= set(modules), modules
    commands = set(PARSERS)
    assert {("experiments", name) for name in ("attention", "attention-score", "status", "predict", "run",
                                                "evaluate")} <= commands
    assert {("tools", name) for name in TOOLS} <= commands
    assert ("lightning_modules.label_propagation", "") in commands


@pytest.mark.parametrize("key", sorted(PARSERS), ids=_id)
def test_every_option_is_read_through_command_line(key):
    assert type_problems(PARSERS[key]) == []


@pytest.mark.parametrize("key", sorted(PARSERS), ids=_id)
def test_every_value_refuses_hostile_text_in_one_line(key):
    parser = PARSERS[key]
    found = {str(action.option_strings or action.dest): problems for action in _values(parser)
             if (problems := parse_problems(parser, action, HOSTILE))}
    assert found == {}


RUNNABLE = sorted(key for key, parser in PARSERS.items() if has_positional(parser))


@pytest.mark.parametrize("key", RUNNABLE, ids=_id)
def test_every_command_given_a_hostile_name_ends_in_one_line(key):
    assert run_problems(*key, PARSERS[key]) == []


def test_the_probed_commands_are_every_command_with_a_positional():
    assert {("experiments", "run"), ("experiments", "attention"), ("experiments", "attention-score"),
            ("experiments", "status"), ("experiments", "predict"), ("reports", "track"), ("data", "check"),
            ("tools", "smoke")} <= set(RUNNABLE)


# --- a new command is probed without anyone adding it ----------------------------------------------------------------

def _throwaway_experiments_command(sub) -> None:
    parser = sub.add_parser("throwaway")
    parser.add_argument("table")
    parser.add_argument("--count", type=int)

    def run(args):
        raise ZeroDivisionError("a bug of the new command")

    parser.set_defaults(fn=run)


def _throwaway_tool_main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools throwaway")
    parser.add_argument("table")
    parser.add_argument("--seconds", type=float)
    parser.parse_args(argv)
    raise ZeroDivisionError("a bug of the new tool")


def test_a_throwaway_subcommand_and_tool_are_found_and_their_faults_seen(monkeypatch):
    from experiments.harness import commands

    monkeypatch.setattr(commands, "_COMMANDS", [*commands._COMMANDS, _throwaway_experiments_command])
    module = types.ModuleType("throwaway_tool")
    module.main = _throwaway_tool_main
    monkeypatch.setitem(sys.modules, "throwaway_tool", module)
    monkeypatch.setitem(TOOLS, "throwaway", Tool("throwaway_tool", "a tool nobody listed"))
    parsers = command_parsers()
    for key, option in ((("experiments", "throwaway"), "--count"), (("tools", "throwaway"), "--seconds")):
        assert key in parsers, sorted(parsers)
        parser = parsers[key]
        assert any(option in problem for problem in type_problems(parser)), type_problems(parser)
        [action] = [a for a in parser._actions if option in a.option_strings]
        assert any("taken as a number" in problem for problem in parse_problems(parser, action, ["١٢"]))
        assert has_positional(parser)
        assert run_problems(*key, parser), "the new command's bug was not seen"
