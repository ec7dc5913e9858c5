"""Every "beyond noise" the reports print: t-tests over seeds from ``scipy.stats``, at a stated level, with the
difference's size, its 95% confidence interval and its p beside the word.

- **Two cells** (two rows of a column, or the two sides of a claim's ordering): each seed of a trained cell is one
  sample of what the row reaches. Where the design pairs the seeds, the paired t-test on the per-seed differences
  (``scipy.stats.ttest_rel``); otherwise Welch's t-test with the Welch-Satterthwaite degrees of freedom
  (``scipy.stats.ttest_ind(equal_var=False)``). Two-sided, at ``ALPHA``.
- **Which cells pair**: a run's seed fixes its training order, its augmentations and its head's initial weights
  (``lightning.seed_everything``; the order and augmentations by (seed, epoch, index), ``data.resumable``), while
  the generated training and test sets are fixed by the set's own seed, the same for every run. Two cells pair when
  they ran the same seeds on the same data (one generated set, or one real dataset's root): seed s of one row and
  seed s of the other then saw the same videos in the same order and were tested on the same clips. Cells on
  different data, or whose seeds differ, are independent samples (Welch); where their shared seeds correlate, that
  is conservative.
- **One cell against a value** (an attention measure's excess over its baseline, a cell against chance): the
  one-sample t-test (``scipy.stats.ttest_1samp``).
- **One seed against a tracked cell** (a user's rerun of one seed): the prediction t-test, the seed taken as one
  more draw of the tracked cell's seeds (``scipy.stats.ttest_ind_from_stats`` with the tracked spread and one
  sample of no spread: t = (y − mean) / (s·√(1 + 1/n)), n − 1 degrees of freedom).
- **Many pairs at once** (a table's "which pairs differ", the claims page's every-pair count): the false discovery
  rate controlled at ``Q`` by Benjamini-Hochberg over the pairs of that table or that summary
  (``scipy.stats.false_discovery_control``); each such pair shows its q beside its p. A planned comparison (each
  claim's ordering, chosen before its verdict) is tested alone, at ``ALPHA``.

A cell of one seed cannot be tested (``None``). A test whose noise estimate is exactly zero (every seed alike on
both sides, or every per-seed difference alike) has no t distribution: it is reported as *no spread over seeds*,
untested, never beyond noise.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

ALPHA = 0.05  # the level of every test, two-sided
Q = 0.05  # the false discovery rate of every family of pairs
CONFIDENCE = 1 - ALPHA  # the confidence intervals printed beside each difference
# A spread this small against the values is the rounding of equal values in a shifted or subtracted float, not seed
# noise: such a test is untested, as an exact zero is.
SILENT = 1e-9

PAIRED, WELCH, ONE_SAMPLE, PREDICTION, BINOMIAL = "paired t", "Welch t", "one-sample t", "prediction t", "binomial"

RULE = (f"two-sided t-tests over seeds at α = {ALPHA:g}: the paired t-test on the per-seed differences where both "
        f"cells ran the same seeds on the same data, Welch's t-test otherwise; each difference with its "
        f"{100 * CONFIDENCE:g}% confidence interval and p; a table's many pairs read at a false discovery rate of "
        f"q = {Q:g} (Benjamini-Hochberg over the table's pairs); a cell of one seed cannot be tested "
        f"(`reports/statistics.py`)")


def _scipy_stats():
    """scipy.stats, imported when a test runs: the commands that only list or show tables answer without it."""
    from scipy import stats

    return stats


class Seeds(Protocol):
    """What the tests read of a cell: its per-seed values, the seeds and the data they ran on."""

    values: tuple[float, ...]
    seeds: tuple[int, ...]
    data: str


@dataclass(frozen=True)
class Test:
    """One test's outcome: the estimate (a difference, or a mean minus a value), its confidence interval, p, and q
    where the test was one of a family (``adjusted``)."""

    kind: str  # PAIRED / WELCH / ONE_SAMPLE / PREDICTION / BINOMIAL
    estimate: float
    low: float
    high: float
    p: float  # NaN: no spread over seeds, untested
    df: float
    q: float | None = None

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p)

    @property
    def beyond(self) -> bool:
        """Beyond noise: q (a family's pair) or p (a test alone) below its level; never without spread."""
        if not self.tested:
            return False
        return self.q < Q if self.q is not None else self.p < ALPHA

    def text(self, digits: int = 1) -> str:
        """``+2.1 [+0.4, +3.8], p = 0.021, q = 0.043 (paired t, 4 df)``."""
        if not self.tested:
            return f"{self.estimate:+.{digits}f}, no spread over seeds (untested)"
        q = "" if self.q is None else f", q {_p_text(self.q)}"
        df = "" if math.isnan(self.df) else f", {self.df:.0f} df" if float(self.df).is_integer() \
            else f", {self.df:.1f} df"
        return (f"{self.estimate:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}], "
                f"p {_p_text(self.p)}{q} ({self.kind}{df})")


def _p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _values(cell: Seeds) -> np.ndarray:
    return np.asarray(cell.values, dtype=np.float64)


def pairs_by_design(a: Seeds, b: Seeds) -> bool:
    """Whether the design pairs the seeds of ``a`` and ``b``: the same seeds on the same (named) data."""
    return bool(a.data) and a.data == b.data and tuple(a.seeds) == tuple(b.seeds) and len(a.values) == len(a.seeds)


@dataclass(frozen=True)
class Tests:
    """Many tests of one kind at once, along the last axis of the values (``difference_tests``): arrays of the
    estimates, interval bounds, p (NaN where the noise estimate is exactly zero) and degrees of freedom."""

    kind: str
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray
    df: np.ndarray

    def at(self, index: int | tuple[int, ...] = ()) -> Test:
        return Test(self.kind, *(float(np.asarray(getattr(self, f))[index])
                                 for f in ("estimate", "low", "high", "p", "df")))


def difference_tests(x: np.ndarray, y: np.ndarray, paired: bool) -> Tests:
    """mean x − mean y along the last axis: ``scipy.stats.ttest_rel`` (``paired``: x and y hold the same seeds in
    the same order) or ``scipy.stats.ttest_ind(equal_var=False)`` (Welch), two-sided, with their confidence
    intervals at ``CONFIDENCE``; p is NaN where the test's noise estimate is exactly zero."""
    stats = _scipy_stats()
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    estimate = x.mean(axis=-1) - y.mean(axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero spread: scipy's inf or NaN, replaced below
        result = stats.ttest_rel(x, y, axis=-1) if paired else stats.ttest_ind(x, y, axis=-1, equal_var=False)
        interval = result.confidence_interval(CONFIDENCE)
    if paired:
        spread = (x - y).std(axis=-1)
    else:
        spread = np.sqrt(x.var(axis=-1) + y.var(axis=-1))
    silent = spread <= SILENT * np.maximum(1.0, np.maximum(np.abs(x).max(axis=-1), np.abs(y).max(axis=-1)))
    return Tests(PAIRED if paired else WELCH, estimate, np.where(silent, estimate, interval.low),
                 np.where(silent, estimate, interval.high), np.where(silent, np.nan, result.pvalue),
                 np.broadcast_to(np.asarray(result.df, dtype=np.float64), estimate.shape))


def difference(a: Seeds, b: Seeds, shift: float = 0.0) -> Test | None:
    """a + ``shift`` − b over seeds: paired where the design pairs them (``pairs_by_design``), else Welch; None
    when either cell has fewer than two seeds."""
    x, y = _values(a) + shift, _values(b)
    if len(x) < 2 or len(y) < 2:
        return None
    return difference_tests(x, y, pairs_by_design(a, b)).at()


def against(a: Seeds, value: float) -> Test | None:
    """a's mean − ``value`` by the one-sample t-test; None with fewer than two seeds."""
    stats = _scipy_stats()
    x = _values(a)
    if len(x) < 2:
        return None
    estimate = float(x.mean() - value)
    if x.std() <= SILENT * max(1.0, float(np.abs(x).max())):
        return Test(ONE_SAMPLE, estimate, estimate, estimate, math.nan, len(x) - 1)
    result = stats.ttest_1samp(x, value)
    interval = result.confidence_interval(CONFIDENCE)
    return Test(ONE_SAMPLE, estimate, float(interval.low - value), float(interval.high - value),
                float(result.pvalue), float(result.df))


def against_chance(a: Seeds, chance: float, test_videos: int) -> Test | None:
    """a's accuracy (percent) against guessing's ``chance`` (percent) on ``test_videos``: the one-sample t-test over
    seeds; where the seeds do not spread (or one seed), the exact binomial test of one seed's correct videos on the
    test set (``scipy.stats.binomtest``, Clopper-Pearson interval), the noise a cell whose seeds all guessed alike
    still has. None without a test set."""
    stats = _scipy_stats()
    x = _values(a)
    if len(x) == 0 or test_videos < 1:
        return None
    if len(x) >= 2:
        test = against(a, chance)
        if test.tested:
            return test
    correct = min(test_videos, max(0, round(float(x[0]) / 100 * test_videos)))
    result = stats.binomtest(correct, test_videos, chance / 100)
    interval = result.proportion_ci(CONFIDENCE)
    estimate = 100 * correct / test_videos - chance
    return Test(BINOMIAL, estimate, 100 * interval.low - chance, 100 * interval.high - chance, float(result.pvalue),
                math.nan)


def one_seed_against(y: float, b: Seeds) -> Test | None:
    """One new seed ``y`` against the seeds of ``b`` (the prediction t-test); None when ``b`` has fewer than two."""
    stats = _scipy_stats()
    x = _values(b)
    if len(x) < 2:
        return None
    estimate, spread, n = float(y - x.mean()), float(x.std(ddof=1)), len(x)
    if spread <= SILENT * max(1.0, float(np.abs(x).max())):
        return Test(PREDICTION, estimate, estimate, estimate, math.nan, n - 1)
    result = stats.ttest_ind_from_stats(y, 0.0, 1, x.mean(), spread, n, equal_var=True)
    low, high = stats.t.interval(CONFIDENCE, n - 1, loc=estimate, scale=spread * math.sqrt(1 + 1 / n))
    return Test(PREDICTION, estimate, float(low), float(high), float(result.pvalue), n - 1)


def adjusted(tests: Sequence[Test | None]) -> list[Test | None]:
    """The family's tests with their Benjamini-Hochberg q (``scipy.stats.false_discovery_control``); the untested
    and the missing keep no q and are not counted in the family."""
    stats = _scipy_stats()
    tested = [i for i, t in enumerate(tests) if t is not None and t.tested]
    out = list(tests)
    if tested:
        qs = stats.false_discovery_control([tests[i].p for i in tested], method="bh")
        for i, q in zip(tested, qs):
            out[i] = replace(tests[i], q=float(q))
    return out


def power(difference: float, spread: float, seeds: int, paired: bool) -> float:
    """The chance that the two-cell test at ``ALPHA`` calls a true ``difference`` beyond noise, with ``seeds`` per
    cell: paired, ``spread`` is the standard deviation of the per-seed differences (n − 1 df); independent, the
    seed-to-seed standard deviation of each cell, taken equal (Welch's df is then 2(n − 1)). From the noncentral
    t distribution (``scipy.stats.nct``)."""
    stats = _scipy_stats()
    if seeds < 2 or spread <= 0:
        raise ValueError(f"power needs at least 2 seeds and a positive spread, got {seeds} and {spread}")
    df = seeds - 1 if paired else 2 * (seeds - 1)
    scale = spread * math.sqrt(1 / seeds if paired else 2 / seeds)
    noncentrality, critical = difference / scale, stats.t.ppf(1 - ALPHA / 2, df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nct's series at a large noncentrality: still accurate
        return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality))


@dataclass(frozen=True)
class Pair:
    """Two rows of one column and their test (``None``: a row of one seed)."""

    column: str
    a: str
    b: str
    test: Test | None

    @property
    def outcome(self) -> str:
        """"beyond", "within", "untested" (no spread) or "one seed"."""
        if self.test is None:
            return "one seed"
        return "untested" if not self.test.tested else "beyond" if self.test.beyond else "within"


def table_pairs(columns: dict[str, Sequence[tuple[str, Seeds | None]]]) -> list[Pair]:
    """Every pair of measured rows within each column of one table, each tested (``difference``), the family
    (every tested pair of the table, all columns) read at false discovery rate ``Q`` (``adjusted``)."""
    pairs = [Pair(column, a, b, difference(ca, cb))
             for column, labelled in columns.items()
             for (a, ca), (b, cb) in itertools.combinations([(label, c) for label, c in labelled if c is not None], 2)]
    return [replace(pair, test=test) for pair, test in zip(pairs, adjusted([p.test for p in pairs]))]


def column_line(column: str, pairs: Sequence[Pair], digits: int = 1, labels: dict[str, str] | None = None
                ) -> str | None:
    """One report line: the pairs of ``column`` beyond noise (larger row first, largest difference first), each with
    its difference, interval, p and q, then how many are within noise or cannot be tested; None with no pair.
    ``labels``: how each row is shown (default: as the pairs name it)."""
    mine = [p for p in pairs if p.column == column]
    if not mine:
        return None
    counts = {outcome: sum(p.outcome == outcome for p in mine) for outcome in ("beyond", "within", "untested",
                                                                             "one seed")}
    if counts["beyond"] + counts["within"] == 0 and not counts["untested"]:
        return f"- {column}: none of its {len(mine)} row pairs can be compared (one seed per row)"
    beyond = sorted((p for p in mine if p.outcome == "beyond"), key=lambda p: -abs(p.test.estimate))
    text = f"- {column}: {counts['beyond']} of {len(mine)} row pairs differ beyond noise"
    if beyond:
        text += ": " + "; ".join(_ordered(p, digits, labels or {}) for p in beyond)
    text += f"; {counts['within']} within noise"
    if counts["untested"]:
        text += f"; {counts['untested']} without spread over seeds (untested)"
    if counts["one seed"]:
        text += f"; {counts['one seed']} not comparable (one seed)"
    return text


def _ordered(pair: Pair, digits: int, labels: dict[str, str]) -> str:
    """``C > A +20.0 [...]``, the larger row first (the test's sign flipped with the order)."""
    test, a, b = pair.test, labels.get(pair.a, pair.a), labels.get(pair.b, pair.b)
    if test.estimate >= 0:
        return f"{a} > {b} {test.text(digits)}"
    flipped = replace(test, estimate=-test.estimate, low=-test.high, high=-test.low)
    return f"{b} > {a} {flipped.text(digits)}"


@dataclass(frozen=True)
class Sample:
    """Per-seed values of one cell, for callers that hold raw numbers (attention measures, simulations)."""

    values: tuple[float, ...]
    seeds: tuple[int, ...] = ()
    data: str = ""

    @classmethod
    def of(cls, values: Sequence[float], seeds: Sequence[int] = (), data: str = "") -> Sample:
        return cls(tuple(float(v) for v in values), tuple(int(s) for s in seeds), data)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0


__all__ = ["ALPHA", "BINOMIAL", "CONFIDENCE", "ONE_SAMPLE", "PAIRED", "PREDICTION", "Pair", "Q", "RULE", "Sample",
           "Seeds", "Test", "Tests", "WELCH", "adjusted", "against", "against_chance", "column_line", "difference",
           "difference_tests", "one_seed_against", "pairs_by_design", "power", "table_pairs"]
