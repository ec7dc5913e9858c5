"""The reports' tests over seeds (``reports.statistics``), by simulation and against scipy written out.

- Calibration: cells drawn from one normal distribution (equal means), 3 and 5 seeds, many tables: the two-row test's
  false-positive rate is α within Monte Carlo error where the design pairs the seeds (the paired t-test is exact);
  Welch's, used where seeds do not pair, is at most α (it is conservative at these seed counts); with
  Benjamini-Hochberg over a table's pairs the share of tables with any false discovery is near q.
- Power: with a known difference the paired test calls it beyond noise as often as ``statistics.power`` states.
- Small cases: the paired, Welch, one-sample and prediction tests equal scipy's written out here, a cell of one seed
  cannot be tested, a test without spread is untested, q is Benjamini-Hochberg's.

Each simulation is seeded; its tolerance is four Monte Carlo standard errors (a false failure about once in 16,000
runs)."""

from __future__ import annotations

import itertools
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from reports import statistics
from reports.statistics import ALPHA, Q, Sample, adjusted, against, difference, difference_tests, one_seed_against

TABLES = 20_000  # simulated tables per case
ROWS = 4  # rows per simulated table: 6 pairs


def monte_carlo_error(rate: float, draws: int) -> float:
    return 4 * math.sqrt(rate * (1 - rate) / draws)


def false_positive_rates(seeds: tuple[int, int], paired: bool, seed: int) -> tuple[float, float]:
    """(the share of all pairs called beyond noise, the share of tables with any pair beyond noise after BH) over
    ``TABLES`` tables of ``ROWS`` rows whose cells are drawn from one N(60, 2²)."""
    rng = np.random.default_rng(seed)
    rows = [rng.normal(60.0, 2.0, size=(TABLES, seeds[i % 2])) for i in range(ROWS)]
    pairs = [(i, j) for i, j in itertools.combinations(range(ROWS), 2)
             if not paired or rows[i].shape == rows[j].shape]
    p = np.stack([difference_tests(rows[i], rows[j], paired).p for i, j in pairs], axis=1)
    q = stats.false_discovery_control(p, axis=1, method="bh")
    return float((p < ALPHA).mean()), float((q < Q).any(axis=1).mean())


@pytest.mark.parametrize("seeds", [(3, 3), (5, 5)])
def test_the_paired_test_calls_equal_rows_different_alpha_of_the_time(seeds):
    rate, tables_with_a_discovery = false_positive_rates(seeds, paired=True, seed=seeds[0])
    draws = TABLES * math.comb(ROWS, 2)
    assert abs(rate - ALPHA) < monte_carlo_error(ALPHA, draws), rate
    assert abs(tables_with_a_discovery - Q) < monte_carlo_error(Q, TABLES), tables_with_a_discovery


@pytest.mark.parametrize("seeds", [(3, 3), (3, 5), (5, 5)])
def test_welchs_test_calls_equal_rows_different_at_most_alpha_of_the_time(seeds):
    """Welch's t-test is conservative at few seeds (about 3.4% at 3 against 3, 4.5% at 5 against 5 with equal
    spreads): a level-α test, never above it; so is BH over its pairs."""
    rate, tables_with_a_discovery = false_positive_rates(seeds, paired=False, seed=10 + sum(seeds))
    draws = TABLES * math.comb(ROWS, 2)
    assert ALPHA / 2 < rate < ALPHA + monte_carlo_error(ALPHA, draws), rate
    assert tables_with_a_discovery < Q + monte_carlo_error(Q, TABLES), tables_with_a_discovery


@pytest.mark.parametrize("seeds, gap", [(3, 3.0), (5, 2.0), (8, 1.5)])
def test_a_known_difference_is_found_as_often_as_the_stated_power(seeds, gap):
    """Two rows paired by seed, a true difference ``gap`` and per-seed differences of standard deviation 1.5: the
    paired test calls it beyond noise in the share ``statistics.power`` states (noncentral t)."""
    rng = np.random.default_rng(seeds)
    spread = 1.5
    base = rng.normal(60.0, 2.0, size=(TABLES, seeds))  # the seed's shared part: cancels in the paired difference
    a = base + gap + rng.normal(0.0, spread / math.sqrt(2), size=(TABLES, seeds))
    b = base + rng.normal(0.0, spread / math.sqrt(2), size=(TABLES, seeds))
    found = float((difference_tests(a, b, paired=True).p < ALPHA).mean())
    stated = statistics.power(gap, spread, seeds, paired=True)
    assert 0.1 < stated < 0.95  # a case where the power says something
    assert abs(found - stated) < monte_carlo_error(stated, TABLES), (found, stated)


def test_welchs_stated_power_is_students_an_upper_bound_close_to_welchs():
    """Independent cells: ``power`` states Student's t power at 2(n − 1) df; Welch's, simulated, is at most it and
    within 5 points of it at 5 seeds a side."""
    rng = np.random.default_rng(7)
    a, b = rng.normal(62.0, 2.0, size=(TABLES, 5)), rng.normal(60.0, 2.0, size=(TABLES, 5))
    found = float((difference_tests(a, b, paired=False).p < ALPHA).mean())
    stated = statistics.power(2.0, 2.0, 5, paired=False)
    assert stated - 0.05 < found < stated + monte_carlo_error(stated, TABLES), (found, stated)


def test_the_tests_equal_scipys_written_out():
    a = Sample.of([60.0, 62.5, 61.0], seeds=[0, 1, 2], data="set-1")
    b = Sample.of([58.0, 61.0, 60.5], seeds=[0, 1, 2], data="set-1")
    c = Sample.of([55.0, 59.0, 57.5, 58.0, 56.0])
    paired = difference(a, b)
    want = stats.ttest_rel([60.0, 62.5, 61.0], [58.0, 61.0, 60.5])
    assert paired.kind == statistics.PAIRED and math.isclose(paired.p, want.pvalue) and paired.df == 2
    assert math.isclose(paired.estimate, (2.0 + 1.5 + 0.5) / 3)
    half = stats.t.ppf(0.975, 2) * np.std([2.0, 1.5, 0.5], ddof=1) / math.sqrt(3)
    assert math.isclose(paired.low, paired.estimate - half) and math.isclose(paired.high, paired.estimate + half)
    welch = difference(a, c)
    va, vc = np.var(a.values, ddof=1) / 3, np.var(c.values, ddof=1) / 5
    df = (va + vc) ** 2 / (va ** 2 / 2 + vc ** 2 / 4)  # Welch-Satterthwaite
    t = (a.mean - c.mean) / math.sqrt(va + vc)
    assert welch.kind == statistics.WELCH and math.isclose(welch.df, df)
    assert math.isclose(welch.p, 2 * stats.t.sf(abs(t), df))
    one = against(c, 50.0)
    assert math.isclose(one.p, stats.ttest_1samp(c.values, 50.0).pvalue) and math.isclose(one.estimate, c.mean - 50)
    seed = one_seed_against(53.0, c)  # (y − mean) / (s·√(1 + 1/n)) on n − 1 df
    t = (53.0 - c.mean) / (c.std * math.sqrt(1 + 1 / 5))
    assert seed.kind == statistics.PREDICTION and math.isclose(seed.p, 2 * stats.t.sf(abs(t), 4))


def test_cells_pair_only_on_the_same_seeds_of_the_same_data():
    a = Sample.of([1.0, 2.0, 4.0], seeds=[0, 1, 2], data="set-1")
    assert difference(a, Sample.of([1.5, 2.0, 3.0], seeds=[0, 1, 2], data="set-1")).kind == statistics.PAIRED
    for other in (Sample.of([1.5, 2.0, 3.0], seeds=[0, 1, 2], data="set-2"),
                  Sample.of([1.5, 2.0, 3.0], seeds=[0, 1, 3], data="set-1"),
                  Sample.of([1.5, 2.0, 3.0, 2.5], seeds=[0, 1, 2, 3], data="set-1"),
                  Sample.of([1.5, 2.0, 3.0])):
        assert difference(a, other).kind == statistics.WELCH


def test_one_seed_cannot_be_tested_and_no_spread_is_untested():
    one, three = Sample.of([60.0]), Sample.of([50.0, 51.0, 52.0])
    assert difference(one, three) is None and difference(three, one) is None and against(one, 0.0) is None
    assert one_seed_against(60.0, one) is None
    flat = difference(Sample.of([50.0, 50.0, 50.0]), Sample.of([60.0, 60.0, 60.0]))
    assert not flat.tested and not flat.beyond and math.isclose(flat.estimate, -10.0)
    assert "no spread" in flat.text()
    same_gap = difference(Sample.of([50.0, 51.0, 52.5], [0, 1, 2], "d"), Sample.of([49.0, 50.0, 51.5], [0, 1, 2], "d"))
    assert same_gap.kind == statistics.PAIRED and not same_gap.tested  # every seed +1.0: no noise to test against
    assert not against(Sample.of([0.3, 0.3]), 0.0).tested


def test_q_is_benjamini_hochbergs_over_the_tested_ones():
    """p 0.01, 0.04, 0.03 and an untested one: BH q = p·m/rank, monotone: 0.03, 0.04, 0.04."""
    tests = [statistics.Test("paired t", 1.0, 0.0, 2.0, p, 2) for p in (0.01, 0.04, 0.03)]
    untested = statistics.Test("paired t", 1.0, 1.0, 1.0, math.nan, 2)
    out = adjusted([tests[0], None, tests[1], untested, tests[2]])
    assert [t.q if t else None for t in out] == pytest.approx([0.03, None, 0.04, None, 0.04])
    assert out[3].q is None and out[1] is None
    assert [t.beyond for t in (out[0], out[2], out[4])] == [True, True, True]
    assert not statistics.Test("paired t", 1.0, 0.0, 2.0, 0.04, 2, q=0.06).beyond  # q decides in a family


def test_a_verdict_prints_its_size_interval_and_p():
    test = difference(Sample.of([60.0, 62.5, 61.0], [0, 1, 2], "d"), Sample.of([58.0, 61.0, 60.5], [0, 1, 2], "d"))
    # differences 2.0, 1.5, 0.5: mean 1.33, s 0.76, t = 3.02 on 2 df
    assert test.text() == "+1.3 [-0.6, +3.2], p = 0.094 (paired t, 2 df)"
    assert statistics.Test("Welch t", 2.0, 1.0, 3.0, 0.0004, 3.46, q=0.002).text(2) == \
        "+2.00 [+1.00, +3.00], p < 0.001, q = 0.002 (Welch t, 3.5 df)"


# The old rule's forms: |Δ| > 2·√(s²/n + s²/n), "two standard errors", 2·s/√n, 2·√(p(1−p)/N) and their code.
OLD_RULE = re.compile(r"two standard errors|2·√|2·s/√|2 \* math\.sqrt|2 \* self\.std|2 SE\b|_two_se\b|2 \* max\(seeds",
                      re.IGNORECASE)


def test_no_two_standard_error_rule_is_left_in_the_tree():
    """Every "beyond noise", "beyond chance" and "at chance" is a test of ``reports.statistics`` (or scipy's exact
    binomial test): no file tracked by git, code or page, keeps the old rule's forms (this file excepted)."""
    root = Path(__file__).resolve().parents[2]
    files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    found = []
    for name in files.decode().split("\0"):
        path = root / name
        if not name or path == Path(__file__).resolve() or path.suffix not in (".py", ".md", ".yaml", ".json"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        found += [f"{name}:{text[:m.start()].count(chr(10)) + 1}: {m.group(0)}" for m in OLD_RULE.finditer(text)]
    assert not found, found
