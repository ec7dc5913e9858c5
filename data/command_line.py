"""What every command line of the repository shares: every option of ``data``, ``experiments``, ``reports``,
``tools`` and the other entry points is read by a type made here, or as plain text checked by ``OneLineParser``.

The numbers it takes, checked where argparse reads them: ``count(low, high)`` takes a whole number in its range
(ASCII digits: not ``1.5``, ``1e3``, ``1_000`` or another script's digits), ``number(low, high)`` a finite one in
ASCII (not ``nan``, ``inf``, ``1_000`` or ``١٢``); ``counts`` several whole numbers in one value (``T,Y,X``),
``count_or`` a count or one of a few words (``auto``). Text: an option without a type (any value the parser takes),
``word`` (one word, no space: it goes into a script), ``path`` (a file name the system can take), ``setting``
(``SECTION.FIELD=VALUE``, its JSON bounded in size and depth before it is parsed) and ``checked`` (a value a domain's
own parser reads, its ``ValueError`` turned into the option's line). Anything else is argparse's one line naming the
option, before the command starts. Each type carries its ``kind`` (and a number's ``bounds``): the probe suite reads
them to walk every option of every command.

``OneLineParser`` says that line, and where the options are listed, instead of argparse's usage block, which buries
it; it bounds every value's length, refuses a NUL byte, and turns what a type's parsing may raise besides
(a nesting past Python's recursion limit) into the same line. ``printable`` keeps a message that echoes a path on
its one line: a newline or an ESC in a file's name is written as its escape, never sent to the terminal.

Every bound is stated where the option is declared. Without one, a count stops at ``MAX_INT``: torch and Lightning
take counts as C ints, and no option counts two billion of anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import typing
from collections.abc import Callable, Sequence
from typing import Any

MAX_INT = 2**31 - 1
_WHOLE = re.compile(r"[+-]?[0-9]{1,30}")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?")  # ASCII, no "_", no nan/inf
MAX_OPTION_CHARS = 65_536  # the longest value any option takes: a --set list of a few thousand numbers
MAX_PATH_BYTES = 4096  # PATH_MAX: the longest name the system opens
MAX_JSON_DEPTH = 64  # objects and lists within each other in a --set value (data.root_files.MAX_DEPTH, for files)


def printable(text: str) -> str:
    """``text`` with each character that is not printable (a newline, a tab, ESC, a lone surrogate) written as its
    escape, as ``repr`` writes it; the rest as it is."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class OneLineParser(argparse.ArgumentParser):
    """A bad option is one line that names it, and where the options are listed (argparse prints its whole usage
    block first, which buries the line that matters). Its subcommands' parsers are of its class too.

    Every value, whatever its type, is first held to what any option takes: at most ``MAX_OPTION_CHARS``
    characters, no NUL byte (no file name or field holds one); an option without a type reads it as plain text.
    What a type raises besides argparse's own errors (a ``RecursionError``, an ``OverflowError``)
    is the same one line: a type's parsing never ends a command in a traceback."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {printable(message)} (`{self.prog} --help` lists the options)\n")

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        if len(arg_string) > MAX_OPTION_CHARS:
            raise argparse.ArgumentError(action, f"a value of {len(arg_string):,} characters, more than the "
                                                 f"{MAX_OPTION_CHARS:,} an option takes")
        if "\0" in arg_string:
            raise argparse.ArgumentError(action, f"{arg_string[:40]!r} holds a NUL byte")
        try:
            return super()._get_value(action, arg_string)
        except (RecursionError, OverflowError, MemoryError) as err:
            raise argparse.ArgumentError(action, f"invalid value {arg_string[:40]!r} ({type(err).__name__})") from None


def exit_status(command: Callable[[], Any], refused: tuple[type[BaseException], ...] = (ValueError, KeyError,
                                                                                  FileNotFoundError)) -> int:
    """``command``'s exit status (0 where it returns no int) for an entry point below ``experiments`` (whose
    ``exit_status`` knows more errors): an error of ``refused``, which names what is wrong, is one line and exit
    status 2; anything else is a bug and keeps its traceback."""
    import sys

    try:
        returned = command()
    except refused as err:
        message = str(err.args[0] if isinstance(err, KeyError) and err.args else err)
        print(f"error: {printable(message)}", file=sys.stderr)
        return 2
    return returned if isinstance(returned, int) and not isinstance(returned, bool) else 0


def _made_here(parse: Callable[[str], Any], kind: str, what: str, bounds: tuple | None = None) -> Callable:
    """Mark ``parse`` as a type of this module: its ``kind`` and ``what`` (and a number's ``bounds``) are what the
    probe suite reads of every option."""
    parse.__name__ = what  # what argparse calls it, should it ever name the type
    parse.kind = kind
    if bounds is not None:
        parse.bounds = bounds  # (low, high, whole)
    return parse


def is_checked_type(value_type: Any) -> bool:
    """Whether an option's ``type`` was made here (None, plain text, is checked by ``OneLineParser``)."""
    return value_type is None or isinstance(getattr(value_type, "kind", None), str)


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {low:,} to {high:,}"
    return f"at least {low:,}" if low is not None else f"at most {high:,}"


def count(low: int = 1, high: int = MAX_INT, what: str = "a whole number") -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` to ``high``; ``what`` names it in the error."""

    def parse(text: str) -> int:
        if not _WHOLE.fullmatch(text.strip()) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"expected {what} {_range(low, high)}, got {text[:40]!r}")
        return int(text)

    return _made_here(parse, "count", what, (low, high, True))


def number(low: float | None = None, high: float | None = None, what: str = "a number",
           above: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number from ``low`` to ``high`` (``above``: greater than ``low``)."""

    def parse(text: str) -> float:
        value = float(text) if _DECIMAL.fullmatch(text.strip()) else math.nan
        fits = math.isfinite(value) and (low is None or (value > low if above else value >= low)) and (
            high is None or value <= high)
        if not fits:
            bound = (f"greater than {low:g}" + (f" and at most {high:g}" if high is not None else "") if above
                     else _range(low, high))
            raise argparse.ArgumentTypeError(f"expected {what} {bound} (finite), got {text[:40]!r}")
        return value

    return _made_here(parse, "number", what, (low, high, False))


def count_or(words: Sequence[str] | dict[str, Any], low: int = 1, high: int = MAX_INT,
             what: str = "a count") -> Callable:
    """An argparse ``type``: one of ``words`` (``auto``; a dict: each word and the value it reads as), else a whole
    number as ``count`` takes it."""
    whole = count(low, high, what)
    values = dict(words) if isinstance(words, dict) else {word: word for word in words}

    def parse(text: str) -> Any:
        if text in values:
            return values[text]
        try:
            return whole(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected {what} {_range(low, high)} or {' or '.join(values)}, got "
                                             f"{text[:40]!r}") from None

    parse = _made_here(parse, "count", what, (low, high, True))
    parse.words = tuple(values)
    return parse


def counts(names: Sequence[str], low: int = 0, high: int = MAX_INT, what: str = "whole numbers",
           sep: str = ",", into: Callable[..., Any] = lambda *parts: parts) -> Callable:
    """An argparse ``type``: ``len(names)`` whole numbers joined by ``sep`` (``T,Y,X``), each as ``count`` takes
    it; returns ``into(*them)`` (default: the tuple)."""
    part = count(low, high, what)
    shape = sep.join(names)

    def parse(text: str) -> tuple[int, ...]:
        parts = text.split(sep)
        try:
            if len(parts) != len(names):
                raise argparse.ArgumentTypeError("not as many parts")
            return into(*(part(p) for p in parts))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected {shape}: {len(names)} {what} {_range(low, high)}, got "
                                             f"{text[:40]!r}") from None

    parse = _made_here(parse, "counts", what, (low, high, True))
    parse.parts = len(names)
    return parse


def word(what: str = "one word") -> Callable[[str], str]:
    """An argparse ``type``: one word of printable characters, no space (it is written into a script, where a
    newline would start a line of its own)."""

    def parse(value: str) -> str:
        if not value or any(not char.isprintable() or char.isspace() for char in value):
            raise argparse.ArgumentTypeError(f"expected {what}: printable characters, no space, got {value[:40]!r}")
        return value

    return _made_here(parse, "word", what)


def path(what: str = "a path") -> Callable[[str], Any]:
    """An argparse ``type``: a file or folder name the system can take (not empty, at most ``MAX_PATH_BYTES``, text
    a file name can hold); returns a ``pathlib.Path``."""
    from pathlib import Path

    def parse(value: str) -> Path:
        try:
            size = len(os.fsencode(value))
        except UnicodeEncodeError:
            raise argparse.ArgumentTypeError(f"{value[:40]!r} is not text a file name can hold") from None
        if not value or size > MAX_PATH_BYTES:
            raise argparse.ArgumentTypeError(f"expected {what} of 1 to {MAX_PATH_BYTES:,} bytes, got {size:,}")
        return Path(value)

    return _made_here(parse, "path", what)


def checked(parse_value: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    """An argparse ``type`` for a value a domain's own parser reads (a SLURM option): its ``ValueError`` is the
    option's one line."""

    def parse(value: str) -> Any:
        try:
            return parse_value(value)
        except argparse.ArgumentTypeError:
            raise
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return _made_here(parse, "text", what)


def json_depth(value: str) -> int:
    """How deep objects and lists nest in the JSON text ``value`` (brackets inside strings not counted), read
    without parsing it: a parser recurses once a level, so the depth is checked first."""
    depth = deepest = 0
    quoted = escaped = False
    for char in value:
        if quoted:
            escaped, quoted = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            quoted = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def json_value(value: str, what: str) -> Any:
    """``value`` parsed as JSON once its depth is known to be at most ``MAX_JSON_DEPTH`` (its size is bounded by
    ``OneLineParser``); ``json.JSONDecodeError`` for text that is no JSON, ``argparse.ArgumentTypeError`` naming
    ``what`` for a document too deep, or a number of more digits than Python converts."""
    if json_depth(value) > MAX_JSON_DEPTH:
        raise argparse.ArgumentTypeError(f"{what}: nested more than {MAX_JSON_DEPTH} deep")
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise
    except ValueError as err:  # a number past Python's digit limit: the parser's own ValueError
        from data.root_files import unreadable_value

        raise argparse.ArgumentTypeError(f"{what}: {unreadable_value(err)}") from None


def setting(what: str = "SECTION.FIELD=VALUE") -> Callable[[str], tuple[str, Any]]:
    """An argparse ``type``: ``SECTION.FIELD=VALUE``, VALUE parsed as JSON (numbers, true/false, null, lists,
    objects; bounded by ``json_value``), else kept as a string; returns (key, value)."""

    def parse(value: str) -> tuple[str, Any]:
        key, sep, given = value.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{value[:40]!r}: expected {what}")
        try:
            return key.strip(), json_value(given, f"{key.strip()[:40]}=")
        except json.JSONDecodeError:
            return key.strip(), given

    return _made_here(parse, "setting", what)


POSITIVE = count(1, what="a count")
NON_NEGATIVE = count(0, what="a count")
THREADS = count(1, 4096, what="a thread count")  # no machine has more cores
LOADER_WORKERS = count(0, 256, what="a count of loader processes")  # more than any machine's cores
# The measurement tools (``python -m tools``): a batch at most 10x the largest per-device batch of a paper (MSCA's 21
# clips), rounded up; timed repetitions and seconds bounded so that a typo cannot keep a tool busy for a day.
MEASURED_BATCH = count(1, 256, what="a batch size")
REPEATS = count(1, 1000, what="a repeat count")
SECONDS = number(0, 86_400, what="a duration in seconds", above=True)
SEED = count(0, 2**32 - 1, what="a seed")  # numpy's seeds are 32-bit
