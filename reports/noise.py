"""Which differences between a table's rows exceed the spread over seeds: one named rule, used by every report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

RULE = ("two standard errors: rows A and B differ beyond noise when |mean A − mean B| > 2·√(s_A²/n_A + s_B²/n_B), "
        "s the standard deviation over seeds and n the seeds (the seeds taken as independent samples; about a 95% "
        "two-sided test); a row with one seed cannot be compared")


class Measured(Protocol):
    mean: float
    std: float
    n: int


def beyond_noise(a: Measured, b: Measured) -> bool | None:
    """True / False by ``RULE``; None when either side has fewer than two seeds."""
    if a.n < 2 or b.n < 2:
        return None
    return abs(a.mean - b.mean) > 2 * math.sqrt(a.std ** 2 / a.n + b.std ** 2 / b.n)


def pair_counts(cells: Sequence[Measured | None]) -> tuple[int, int, int]:
    """Over every pair of the measured cells: (beyond noise, within noise, not comparable)."""
    present = [c for c in cells if c is not None]
    verdicts = [beyond_noise(a, b) for i, a in enumerate(present) for b in present[i + 1:]]
    return verdicts.count(True), verdicts.count(False), verdicts.count(None)


def column_line(column: str, labelled: Sequence[tuple[str, Measured | None]]) -> str | None:
    """One report line: which row pairs of a column differ beyond noise, larger first; None with < 2 rows."""
    present = [(label, cell) for label, cell in labelled if cell is not None]
    if len(present) < 2:
        return None
    beyond, within, unknown = pair_counts([cell for _, cell in present])
    total = beyond + within + unknown
    if beyond + within == 0:
        return f"- {column}: none of its {total} row pairs can be compared (one seed per row)"
    separated = sorted(((a, b) if a[1].mean >= b[1].mean else (b, a)
                        for i, a in enumerate(present) for b in present[i + 1:] if beyond_noise(a[1], b[1])),
                       key=lambda pair: pair[1][1].mean - pair[0][1].mean)
    text = f"- {column}: {beyond} of {total} row pairs differ beyond noise"
    if separated:
        text += ": " + ", ".join(f"{a} > {b} (+{ca.mean - cb.mean:.1f})" for (a, ca), (b, cb) in separated)
    text += f"; {within} within noise" + (f"; {unknown} not comparable (one seed)" if unknown else "")
    return text
