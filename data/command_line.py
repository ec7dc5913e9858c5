"""What every command line of ``data``, ``experiments``, ``reports`` and ``tools`` shares.

The numbers it takes, checked where argparse reads them: ``count(low, high)`` takes a whole number in its range
(ASCII digits: not ``1.5``, ``1e3``, ``1_000`` or another script's digits), ``number(low, high)`` a finite one (not
``nan`` or ``inf``); anything else is argparse's one line naming the option, before the command starts.
``OneLineParser`` says that line, and where the options are listed, instead of argparse's usage block, which buries
it. ``printable`` keeps a message that echoes a path on its one line: a newline or an ESC in a file's name is
written as its escape, never sent to the terminal.

Every bound is stated where the option is declared. Without one, a count stops at ``MAX_INT``: torch and Lightning
take counts as C ints, and no option counts two billion of anything.
"""

from __future__ import annotations

import argparse
import math
import re
import typing
from collections.abc import Callable

MAX_INT = 2**31 - 1
_WHOLE = re.compile(r"[+-]?[0-9]{1,30}")


def printable(text: str) -> str:
    """``text`` with each character that is not printable (a newline, a tab, ESC, a lone surrogate) written as its
    escape, as ``repr`` writes it; the rest as it is."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class OneLineParser(argparse.ArgumentParser):
    """A bad option is one line that names it, and where the options are listed (argparse prints its whole usage
    block first, which buries the line that matters). Its subcommands' parsers are of its class too."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {printable(message)} (`{self.prog} --help` lists the options)\n")


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

    parse.__name__ = what  # what argparse calls it, should it ever name the type
    parse.bounds = (low, high, True)  # (low, high, whole): what the tests of every command's numbers read
    return parse


def number(low: float | None = None, high: float | None = None, what: str = "a number",
           above: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number from ``low`` to ``high`` (``above``: greater than ``low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        fits = math.isfinite(value) and (low is None or (value > low if above else value >= low)) and (
            high is None or value <= high)
        if not fits:
            bound = (f"greater than {low:g}" + (f" and at most {high:g}" if high is not None else "") if above
                     else _range(low, high))
            raise argparse.ArgumentTypeError(f"expected {what} {bound} (finite), got {text[:40]!r}")
        return value

    parse.__name__ = what
    parse.bounds = (low, high, False)
    return parse


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
