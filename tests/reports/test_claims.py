"""Claims as data, and their verdicts against records whose numbers are worked out here by hand."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from scipy import stats

from experiments.harness.claims import ClaimsFileError, Comparison, all_claims, paper_claims
from experiments.paper_tables import paper_tables, papers
from reports.claims import (
    AGREES,
    CLAIMS_PAGE,
    CONTRADICTED,
    NOT_RUN,
    REPRODUCED,
    REVERSED,
    UNDECIDED,
    WITHIN,
    Reading,
    Side,
    claims_page_text,
    evaluate,
    flat_columns,
    ordered_pairs,
    paper_pairs,
    read,
    verdict,
)
from tests.reports.test_tracked_results import make_record, write_tracked

TABLE = "mformer_table4"


class Cells:
    """A stand-in for a table's cells: {(row, column): Side}."""

    def __init__(self, sides: dict[tuple[str, str], Side | None]):
        self.sides = sides

    def side(self, row: str, column: str):
        side = self.sides.get((row, column))
        return side, "" if side else f"{row} · {column}: no tracked run"


def trained(values: list[float], seeds: tuple[int, ...] = (0, 1, 2), data: str = "set") -> Side:
    return Side(float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, len(values), "",
                tuple(values), seeds[:len(values)], data)


def computed(value: float) -> Side:
    return Side(value, 0.0, 0, "")


def reading(kind: str, a: Side | None, b: Side | None, margin: float = 0.0) -> str:
    return read(Comparison(TABLE, "a", "c", "b", "c", kind, margin), Cells({("a", "c"): a, ("b", "c"): b})).outcome


A, B = [62.0, 63.0, 61.5], [60.0, 60.5, 60.2]  # per seed; differences 2.0, 2.5, 1.3


def test_an_ordering_of_cells_on_the_same_seeds_and_data_is_read_by_the_paired_t_test():
    """A − B per seed: 2.0, 2.5, 1.3 (mean 1.93, s 0.60): t = 5.55 on 2 df, p = 0.031 < 0.05: agrees; 1.5 lower on
    every seed (0.5, 1.0, −0.2: t = 1.24) it is within noise; read the other way round, reversed."""
    assert stats.ttest_rel(A, B).pvalue < 0.05 < stats.ttest_rel(np.subtract(A, 1.5), B).pvalue  # the cases
    assert reading("higher", trained(A), trained(B)) == AGREES
    assert reading("higher", trained(list(np.subtract(A, 1.5))), trained(B)) == WITHIN
    assert reading("higher", trained(B), trained(A)) == REVERSED
    assert reading("lower", trained(B), trained(A)) == AGREES  # a cost: lower as claimed
    assert reading("higher", trained([70.0]), trained(B)) == WITHIN  # one seed: no spread to read
    assert reading("higher", None, trained(B)) == NOT_RUN


def test_cells_on_other_data_or_seeds_are_read_by_welchs_test():
    """Seeds that move both rows alike: A 62.0, 64.0, 60.5 against B 60.5, 62.2, 59.0. Paired (the same seeds on
    the same data) the differences 1.5, 1.8, 1.5 give p = 0.004: agrees. On two data sets, or other seeds, the cells
    are independent samples: Welch's t gives p = 0.31: within noise."""
    a, b = [62.0, 64.0, 60.5], [60.5, 62.2, 59.0]
    assert stats.ttest_rel(a, b).pvalue < 0.05 < stats.ttest_ind(a, b, equal_var=False).pvalue
    assert reading("higher", trained(a), trained(b)) == AGREES
    assert reading("higher", trained(a, data="set-1"), trained(b, data="set-2")) == WITHIN
    assert reading("higher", trained(a, seeds=(0, 1, 2)), trained(b, seeds=(0, 1, 3))) == WITHIN


def test_parity_tests_the_gap_plus_the_margin():
    """not_worse, margin m: A − B + m is tested against 0. B against A with m = 2.5: per seed 0.5, 0.0, 1.2
    (p = 0.25): within; m = 3.5 (1.5, 1.0, 2.2; p = 0.046): agrees; m = 0: reversed (B is lower beyond noise)."""
    assert reading("not_worse", trained(B), trained(A), 2.5) == WITHIN
    assert reading("not_worse", trained(B), trained(A), 3.5) == AGREES
    assert reading("not_worse", trained(B), trained(A), 0.0) == REVERSED


def test_a_reading_carries_its_test_difference_interval_and_p():
    r = read(Comparison(TABLE, "a", "c", "b", "c", "lower"), Cells({("a", "c"): trained(B), ("b", "c"): trained(A)}))
    want = stats.ttest_rel(A, B)  # "lower" is tested as b − a: the claim's direction positive
    assert r.test.kind == "paired t" and r.test.p == pytest.approx(want.pvalue)
    assert r.test.estimate == pytest.approx(np.mean(np.subtract(A, B)))
    assert (r.test.low, r.test.high) == pytest.approx(tuple(want.confidence_interval(0.95)))


def test_computed_cells_are_compared_exactly():
    assert reading("lower", computed(180.5), computed(369.4)) == AGREES
    assert reading("lower", computed(369.4), computed(369.4)) == REVERSED  # not lower
    assert reading("not_worse", computed(140.5), computed(140.5)) == AGREES  # equal costs: margin 0 holds
    assert reading("not_worse", computed(140.4), computed(140.5)) == REVERSED


def _readings(*outcomes: str) -> list[Reading]:
    return [Reading(Comparison(TABLE, "a", "c", "b", "c", "higher"), o, None, None) for o in outcomes]


def test_a_claim_is_reproduced_only_when_every_ordering_it_rests_on_agrees():
    assert verdict(_readings(AGREES, AGREES)) == REPRODUCED
    assert verdict(_readings(AGREES, NOT_RUN)) == REPRODUCED  # the page says how many were not run
    assert verdict(_readings(AGREES, WITHIN)) == UNDECIDED
    assert verdict(_readings(AGREES, WITHIN, REVERSED)) == CONTRADICTED
    assert verdict(_readings(NOT_RUN, NOT_RUN)) == NOT_RUN


def test_verdicts_from_tracked_records(tmp_path):
    """Motionformer's "trajectory attention beats joint and divided" (records that name no data: Welch's test): SSv2
    trajectory 70, 72, 74 (mean 72, sd 2) against joint 60, 61, 62 (61, sd 1; p = 0.004) and divided 50, 51, 52
    (p < 0.001): both agree; K-400 trajectory 66, 67, 68 against joint 66.5, 67, 67.5: +0 within noise -> not
    distinguishable. With joint's K-400 4 points higher (70.5, 71, 71.5) it is reversed beyond noise (p = 0.009) ->
    contradicted."""
    values = {("traj_attT_normS", "SSv2"): [70.0, 72.0, 74.0], ("joint", "SSv2"): [60.0, 61.0, 62.0],
              ("divided", "SSv2"): [50.0, 51.0, 52.0], ("traj_attT_normS", "K-400"): [66.0, 67.0, 68.0],
              ("joint", "K-400"): [66.5, 67.0, 67.5], ("divided", "K-400"): [60.0, 61.0, 62.0]}
    for (row, column), tops in values.items():
        for seed, top1 in enumerate(tops):
            write_tracked(tmp_path / "a", make_record(TABLE, row, column, seed, top1))
            shifted = top1 + 4.0 if (row, column) == ("joint", "K-400") else top1
            write_tracked(tmp_path / "b", make_record(TABLE, row, column, seed, shifted))
    claim = next(c for c in paper_claims("mformer") if c.id == "trajectory_beats_space_time")
    (first,) = evaluate([claim], tmp_path / "a")
    assert [r.outcome for r in first.readings] == [AGREES, AGREES, WITHIN, AGREES]
    assert first.verdict == UNDECIDED and first.commits == {"aaaaaaaaaaaa"}
    (second,) = evaluate([claim], tmp_path / "b")
    assert second.verdict == CONTRADICTED
    (none,) = evaluate([claim], tmp_path / "empty")
    assert none.verdict == NOT_RUN


def test_the_pair_count_follows_the_papers_order_by_sign(tmp_path):
    # paper K-400: joint 79.2 > divided 78.5 < trajectory 79.7; ours: joint 60 ± 1, divided 70 ± 1, trajectory 60.5
    for seed, (joint, divided, traj) in enumerate([(59.0, 69.0, 59.5), (60.0, 70.0, 60.5), (61.0, 71.0, 61.5)]):
        for row, top1 in (("joint", joint), ("divided", divided), ("traj_attT_normS", traj)):
            write_tracked(tmp_path, make_record(TABLE, row, "K-400", seed, top1))
    counts = paper_pairs(ordered_pairs(tmp_path))[TABLE]
    # joint-divided reversed; joint-trajectory within noise; divided-trajectory reversed (ours 70 > 60.5)
    assert (counts.ordered, counts.agreeing, counts.reversed, counts.within) == (3, 0, 2, 1)


def test_a_top5_pair_over_few_classes_is_not_counted(tmp_path):
    """Table 7 (paper: Mformer-H above Mformer-B in top-1 and top-5): ours 70 ± 1 against 60 ± 1 in both. Over
    synth_objects' 40 classes top-5 is not read (5/40 = 12.5% by chance), so one pair is counted, not two; over
    400 classes (1.25%) both are."""
    for classes, expected in ((40, 1), (400, 2)):
        results = tmp_path / str(classes)
        for seed, delta in enumerate((-1.0, 0.0, 1.0)):
            for row, top in (("mformer_b", 60.0 + delta), ("mformer_h", 70.0 + delta)):
                record = make_record("mformer_table7", row, "K-400", seed, top)
                write_tracked(results, {**record, "metrics": {"top1": top, "top5": top},
                                        "data": {"dataset": record["dataset"], "num_classes": classes}})
        counts = paper_pairs(ordered_pairs(results))["mformer_table7"]
        assert (counts.ordered, counts.agreeing) == (expected, expected), classes


def test_a_column_whose_rows_are_all_at_chance_or_all_saturated_is_listed(tmp_path):
    """Table 4 over 12 classes and 400 test videos: guessing is 8.33%. Joint 9, 9, 9 (seeds alike: the binomial test
    of 36 correct of 400 against 1/12, p = 0.59) and divided 10, 11, 12 (one-sample t against 8.33: p = 0.044, q over
    the column's two rows 0.088) are both indistinguishable from chance: the SSv2 column is listed. With divided at
    12, 12, 12 (48 of 400: binomial p = 0.011, q = 0.022) it is not. K-400 over 40 classes: 99.0 and 99.5 in every
    seed, both at or above 99%: listed as saturated. Figure 3's joint and divided rows at stride 2 and S are the same
    runs, so its two columns are listed alike."""
    def write(results, divided):
        for seed in range(3):
            for row, column, top1, classes in (("joint", "SSv2", 9.0, 12), ("divided", "SSv2", divided[seed], 12),
                                               ("joint", "K-400", 99.0, 40), ("divided", "K-400", 99.5, 40)):
                record = make_record(TABLE, row, column, seed, top1)
                write_tracked(results, {**record, "data": {"dataset": record["dataset"], "num_classes": classes,
                                                           "num_val_videos": 400}})

    write(tmp_path / "a", (10.0, 11.0, 12.0))
    checked, flat = flat_columns(tmp_path / "a")
    saturated, at_chance = (True, 99.0, 99.5, (2.5,)), (False, 9.0, 11.0, (pytest.approx(100 / 12),))
    assert checked == 4
    assert [(f.table, f.column, f.saturated, f.low, f.high, f.chance) for f in flat] == [
        (TABLE, "K-400", *saturated), (TABLE, "SSv2", *at_chance),
        ("mformer_figure3", "K-400 stride 2", *saturated), ("mformer_figure3", "SSv2 stride S", *at_chance)]
    write(tmp_path / "b", (12.0, 12.0, 12.0))
    assert [f.column for f in flat_columns(tmp_path / "b")[1]] == ["K-400", "K-400 stride 2"]


def test_two_rows_that_are_one_run_at_tiny_scale_are_counted_apart(tmp_path):
    """MSCA Table 4's N_b = N_f = 4, 8 and 16 all move 1 of 17 rows at tiny scale: one run, whose cells cannot
    differ. Of the 15 pairs of its 6 rows (the paper's values all differ), those 3 are counted as one run and the
    other 12 are read."""
    for seed in range(3):
        for row, top1 in (("vit", 70.0), ("msca_pkv_n4", 71.0), ("msca_pkv_n24", 72.0), ("msca_pkv_n32", 73.0)):
            write_tracked(tmp_path, make_record("msca_table4", row, "K-400", seed, top1 + seed))
    counts = paper_pairs(ordered_pairs(tmp_path))["msca_table4"]
    assert (counts.ordered, counts.same_run, counts.agreeing + counts.reversed + counts.within) == (15, 3, 12)


def test_every_paper_has_three_to_six_claims_each_resting_on_cells_that_exist():
    assert list(papers()) == list(dict.fromkeys(table_id.split("_")[0] for table_id in paper_tables()))
    for paper in papers():
        assert 3 <= len(paper_claims(paper)) <= 6, paper
    assert all(claim.quote and claim.stand_in and claim.tests for claim in all_claims())


def test_a_claims_file_naming_a_row_that_does_not_exist_is_refused_by_file_and_claim(tmp_path, monkeypatch):
    import experiments.harness.claims as module

    data = yaml.safe_load(module.claims_path("mformer").read_text())
    data["claims"][0]["tests"][0]["rows"] = ["no_such_row"]
    (tmp_path / "mformer").mkdir()
    (tmp_path / "mformer" / "claims.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setattr(module, "claims_path", lambda paper: tmp_path / paper / "claims.yaml")
    with pytest.raises(ClaimsFileError, match=r"claims.yaml: claim trajectory_beats_space_time, test 1: "
                                              r"mformer_table4 has no row\(s\) \['no_such_row'\]"):
        paper_claims("mformer")


@pytest.mark.parametrize("damage, said", [
    (lambda data: data["claims"][0].update(tests=5),
     "claim trajectory_beats_space_time, tests: Input should be a valid list (got '5')"),
    (lambda data: data["claims"][0]["tests"][0].update(rows="joint"),
     "claim trajectory_beats_space_time, tests.0.rows: Input should be a valid list (got 'joint')"),
    (lambda data: data["claims"][0]["tests"][0].update(margin=float("nan")),
     "claim trajectory_beats_space_time, tests.0.margin: Input should be a finite number"),
    (lambda data: data["claims"][1].update(quote=["a", "list"]), "quote: Input should be a valid string"),
    (lambda data: data["claims"][0].update(test=[]), "test: Extra inputs are not permitted"),
])
def test_a_claims_file_of_the_wrong_shape_is_one_line_naming_the_claim_and_field(tmp_path, monkeypatch, damage, said):
    import experiments.harness.claims as module

    data = yaml.safe_load(module.claims_path("mformer").read_text())
    damage(data)
    (tmp_path / "mformer").mkdir()
    (tmp_path / "mformer" / "claims.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setattr(module, "claims_path", lambda paper: tmp_path / paper / "claims.yaml")
    with pytest.raises(ClaimsFileError) as caught:
        paper_claims("mformer")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'mformer' / 'claims.yaml'}: ") and said in message, message
    assert "\n" not in message


@pytest.mark.parametrize("depth", [100, 100_000])
def test_a_claims_file_nested_past_the_bound_is_one_line(tmp_path, monkeypatch, depth):
    import experiments.harness.claims as module

    (tmp_path / "mformer").mkdir()
    (tmp_path / "mformer" / "claims.yaml").write_text("[" * depth + "]" * depth)
    monkeypatch.setattr(module, "claims_path", lambda paper: tmp_path / paper / "claims.yaml")
    with pytest.raises(ClaimsFileError, match=r"claims.yaml: nested more than 64 deep$"):
        paper_claims("mformer")


def test_the_claims_page_is_generated_from_the_claims_and_the_tracked_records():
    assert CLAIMS_PAGE.read_text(encoding="utf-8") == claims_page_text(), (
        "reports/generated/claims.md differs: run `python -m reports claims`")


def test_every_claim_our_runs_contradict_links_the_section_of_its_papers_docs_that_discusses_it():
    """The design's rule: a verdict against the paper is explained in that paper's docs, never removed."""
    contradicted = [r.claim for r in evaluate(all_claims()) if r.verdict == CONTRADICTED]
    assert contradicted, "no contradicted claim: this test reads nothing"
    undiscussed = [claim.id for claim in contradicted if not claim.discussed_in]
    assert not undiscussed, f"contradicted claims with no `discussed_in` in their claims.yaml: {undiscussed}"
    for claim in contradicted:  # the paper's page, or a research note of its own (docs/<code>_*.md)
        pages = (f"experiments/{claim.paper}/", f"docs/{claim.paper}_")
        assert claim.discussed_in.startswith(pages), claim.discussed_in


@pytest.mark.parametrize("link,error", [
    ("../outside/README.md#x", "is not '<page>.md#<heading>' inside the repository"),
    ("/etc/passwd.md#x", "is not '<page>.md#<heading>' inside the repository"),
    ("experiments/mformer/README.md", "is not '<page>.md#<heading>' inside the repository"),
    ("experiments/mformer/claims.yaml#x", "is not '<page>.md#<heading>' inside the repository"),
    ("experiments/mformer/NO_SUCH.md#at-tiny-scale", "no such page"),
    ("experiments/mformer/README.md#no-such-heading", "the page has no heading with that anchor"),
])
def test_a_discussion_link_outside_the_repository_or_to_no_heading_is_refused_by_file_and_claim(
        tmp_path, monkeypatch, link, error):
    import experiments.harness.claims as module

    data = yaml.safe_load(module.claims_path("mformer").read_text())
    data["claims"][0]["discussed_in"] = link
    (tmp_path / "mformer").mkdir()
    (tmp_path / "mformer" / "claims.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setattr(module, "claims_path", lambda paper: tmp_path / paper / "claims.yaml")
    with pytest.raises(ClaimsFileError, match=r"claims.yaml: claim trajectory_beats_space_time: discussed_in "
                                              + ".*" + re.escape(error)):
        paper_claims("mformer")


def test_a_discussion_page_that_is_not_utf8_is_one_line_naming_the_link(tmp_path, monkeypatch):
    import experiments.harness.claims as module

    data = yaml.safe_load(module.claims_path("mformer").read_text())
    (tmp_path / "mformer").mkdir()
    (tmp_path / "mformer" / "claims.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setattr(module, "claims_path", lambda paper: tmp_path / paper / "claims.yaml")
    monkeypatch.setattr(module, "read_regular_bytes", lambda path: b"# heading\n\xff\xfe")
    with pytest.raises(ClaimsFileError, match=r"discussed_in .*utf-8"):
        paper_claims("mformer")


def test_a_speed_timed_once_is_one_sample_and_never_ordered_beyond_noise(tmp_path):
    """X-ViT Table 1's videos/sec is measured once per row, without a spread: however far apart two rows are, the
    ordering is within noise, as two rows of one seed each are; the cell says it was timed once."""
    import json
    import shutil

    from reports.claims import TableCells
    from reports.records import RESULTS_DIR

    target = tmp_path / "xvit_table1"
    target.mkdir()
    shutil.copy(RESULTS_DIR / "xvit_table1" / "static.json", target / "static.json")
    record = json.loads((target / "static.json").read_text())
    record["cells"]["xvit"]["images/sec"]["value"] = 1000.0  # ten times the others
    (target / "static.json").write_text(json.dumps(record))
    cells = TableCells("xvit_table1", tmp_path)
    side, _ = cells.side("xvit", "images/sec")
    assert (side.mean, side.n) == (1000.0, 1) and side.text.endswith("; timed once")
    comparison = Comparison("xvit_table1", "xvit", "images/sec", "timesformer", "images/sec", "higher")
    assert read(comparison, cells).outcome == WITHIN
