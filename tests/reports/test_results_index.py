"""The results as data (``reports.results_index``): ``reports/generated/index.json`` holds every cell of every
implemented paper table with its status, read back against its declared schema; each tracked cell is the mean and
spread of the record files it names; the claims it names are the claims' own cells; and the reruns on other CPU kernels
(``reports/reproducibility/``) are compared as ``python -m reports compare`` compares them, with the page
``reports/generated/reproducibility.md`` made from the same data. What the hand-written pages once stated in sentences
(the AVX2 rerun's counts and gaps) is checked here, as data."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter

import pytest

from experiments.harness.claims import all_claims
from experiments.harness.spec import implemented_tables, registered_specs, table_spec
from experiments.paper_tables import paper_table, paper_tables, papers
from reports.compare import compare_records
from reports.records import RESULTS_DIR, table_records
from reports.results_index import (
    DIGITS,
    INDEX,
    REPRODUCIBILITY,
    REPRODUCIBILITY_PAGE,
    IndexExperiment,
    ResultsIndex,
    claims_by_cell,
    experiment_entry,
    read_index,
    reproducibility_text,
)
from tests.reports.test_tracked_results import REPO


@pytest.fixture(scope="module")
def index() -> ResultsIndex:
    return read_index()


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, abs_tol=10 ** -DIGITS)


def test_the_index_lists_every_implemented_table_of_every_paper_as_the_registry_does(index):
    assert set(index.tables) == set(implemented_tables())
    for table_id, entry in index.tables.items():
        table = paper_table(table_id)
        assert (entry.paper, entry.paper_short, entry.label, entry.report) == (
            table.paper_code, table.paper_short, table.label, f"{table_id}.md")
        assert (INDEX.parent / entry.report).is_file()
        assert entry.default_seeds == {scale: table_spec(table_id).default_seeds(scale)
                                       for scale in table_spec(table_id).scales}
    per_paper = Counter(entry.paper for entry in index.tables.values())
    assert per_paper == Counter(paper_table(table_id).paper_code for table_id in implemented_tables())
    assert set(per_paper) == set(papers()) and len(index.tables) <= len(paper_tables())


def test_every_cell_of_a_spec_is_in_the_index_once(index):
    """A metric cell at each scale its column has data for, a derived cell at each scale, a static cell once."""
    for table_id in implemented_tables():
        spec = table_spec(table_id)
        expected = []
        for scale in spec.scales:
            for row in spec.rows:
                for mc in spec.metric_columns:
                    try:
                        spec.resolve(row, mc, scale, seed=0)
                    except KeyError:
                        continue
                    expected.append((row.key, mc.column, scale, "metric"))
                expected += [(row.key, dc.column, scale, "derived") for dc in spec.derived_columns]
        expected += [(row.key, c.column, None, "static") for row in spec.rows for c in spec.static_columns]
        found = [(c.row, c.column, c.scale, c.kind) for c in index.tables[table_id].cells]
        assert sorted(found, key=str) == sorted(expected, key=str), table_id
        assert len(set(found)) == len(found), table_id


def test_a_cells_fields_follow_its_status(index):
    statuses = Counter()
    for table_id, entry in index.tables.items():
        for c in entry.cells:
            statuses[c.status] += 1
            assert (c.tracked is not None) == (c.status == "tracked"), (table_id, c)
            assert (c.why is not None) == (c.status == "not read"), (table_id, c)
            assert c.status != "released evaluated" or c.released is not None, (table_id, c)
            assert c.status != "released available" or (c.checkpoints and c.scale == "paper"), (table_id, c)
            if c.kind == "static":
                assert c.status in ("computed", "stale", "not computed") and c.scale is None, (table_id, c)
                assert (c.text is not None) == (c.status != "not computed"), (table_id, c)
            if c.kind == "derived":
                assert (c.value is not None) == (c.status == "derived"), (table_id, c)
    # the tracked records fill hundreds of tiny cells; a count near zero means the index lost them
    assert statuses["tracked"] > 300 and statuses["computed"] > 100, statuses


def _check_tracked(table_id: str, c) -> None:
    """The cell's mean and spread against the record files it names, read from the files themselves, not through
    the reports' code: each names its seed, scale and metric."""
    values, seeds = [], []
    for name in c.tracked.records:
        record = json.loads((REPO / name).read_text())
        assert record["scale"] == c.scale, (table_id, name)
        values.append(float(record["metrics"][c.metric]))
        seeds.append(record["seed"])
    assert seeds == c.tracked.seeds and len(values) == c.tracked.n, (table_id, c.row, c.column)
    assert _close(statistics.fmean(values), c.tracked.mean), (table_id, c.row, c.column)
    assert _close(statistics.stdev(values) if len(values) > 1 else 0.0, c.tracked.std), (table_id, c.row)


def test_a_tracked_cell_is_the_mean_and_spread_of_the_record_files_it_names(index):
    checked = 0
    for table_id, entry in index.tables.items():
        for c in entry.cells:
            if c.tracked is not None:
                _check_tracked(table_id, c)
                checked += 1
    assert checked > 300, checked


def test_the_own_experiments_are_indexed_as_tables_are_without_paper_numbers():
    """``msca_kv_frames`` and ``synthetic_learnability``, which the pages quote, and every other experiment of the
    repository's own: their cells as a table's, read through the index's schema, tracked ones the mean and spread of
    the record files they name."""
    own = [table_id for table_id in registered_specs() if table_id not in implemented_tables()]
    assert {"msca_kv_frames", "synthetic_learnability"} <= set(own)
    claims, tracked = claims_by_cell(), Counter()
    for table_id in own:
        entry = IndexExperiment.model_validate(experiment_entry(table_id, claims))
        assert entry.paper == {"msca_kv_frames": "msca", "synthetic_learnability": None}.get(table_id, entry.paper)
        assert entry.default_seeds == {scale: table_spec(table_id).default_seeds(scale)
                                       for scale in table_spec(table_id).scales}
        for c in entry.cells:
            assert c.paper is None and (c.tracked is not None) == (c.status == "tracked"), (table_id, c)
            if c.tracked is not None:
                _check_tracked(table_id, c)
                tracked[table_id] += 1
    assert tracked["msca_kv_frames"] == 4 and tracked["synthetic_learnability"] >= 5, tracked


def test_every_claims_cell_names_its_claim(index):
    named = 0
    for claim in all_claims():
        for test in claim.tests:
            for comparison in test.comparisons():
                for row, column in ((comparison.row, comparison.column),
                                    (comparison.than_row, comparison.than_column)):
                    cells = [c for c in index.tables[comparison.table].cells
                             if (c.row, c.column) == (row, column) and c.scale in ("tiny", None)]
                    assert cells, (claim.id, comparison.table, row, column)
                    assert all(f"{claim.paper}:{claim.id}" in c.claims for c in cells), (claim.id, row, column)
                    named += 1
    assert named > 20, named


def _agrees_where_both_say(newer: dict, older: dict) -> bool:
    """Every option ``older`` records has the same value in ``newer`` (which may record options added since)."""
    return all(_agrees_where_both_say(newer.get(key), value) if isinstance(value, dict) else newer.get(key) == value
               for key, value in older.items())


def test_the_quick_starts_table_rerun_on_the_avx2_kernels_is_indexed_as_compare_reads_it(index):
    """The quick start's table with `--seeds 3`, retrained with the AVX2 kernels forced (records under
    ``reports/reproducibility/avx2``), beside the tracked ones (AVX-512): the same configurations, other bits. The
    index holds ``python -m reports compare``'s reading of every seed, then of the quick start's seeds alone."""
    from experiments.presets import QUICK_START_SEEDS

    spec = table_spec("mformer_table4")
    avx2 = table_records(spec, None, REPRODUCIBILITY / "avx2").records
    tracked = table_records(spec, None, RESULTS_DIR).records
    assert len(avx2) == 30 and len(tracked) >= 30  # tracked: seeds 3 and 4 of the rows other tables share
    assert {r["provenance"]["cpu_kernels"]["capability"] for r in avx2} == {"AVX2"}
    assert {r["provenance"]["cpu_kernels"]["capability"] for r in tracked} == {"AVX512"}
    configs = {(r["row"], r["column"], r["seed"]): r["config"] for r in tracked if r["scale"] == "tiny"}
    assert all(_agrees_where_both_say(r["config"], configs[(r["row"], r["column"], r["seed"])]) for r in avx2)
    (rerun,) = [r for r in index.reruns if (r.name, r.table) == ("avx2", "mformer_table4")]
    assert (rerun.kernels, rerun.tracked_kernels, rerun.scale) == (["AVX2"], ["AVX512"], "tiny")
    assert [c.seeds for c in rerun.comparisons] == [[0, 1, 2], list(range(QUICK_START_SEEDS))]
    for comparison in rerun.comparisons:
        cells = compare_records(spec, [r for r in avx2 if r["seed"] in comparison.seeds], tracked, "tiny")
        assert len(cells) == 10 and not any(c.mark == "alone" for c in cells)  # every cell has tracked seeds
        assert [(c.row, c.column, c.mark) for c in comparison.cells] == [(c.row, c.column, c.mark) for c in cells]
        assert comparison.counts == {mark: sum(c.mark == mark for c in cells)
                                     for mark in ("same", "within", "beyond", "alone")}
        for ours, theirs in zip(comparison.cells, cells):
            assert _close(ours.rerun.mean, theirs.yours.mean) and _close(ours.tracked.mean, theirs.tracked.mean)
            assert ours.rerun.n == theirs.yours.n and ours.tracked.n == theirs.tracked.n
        gaps = [abs(c.yours.mean - c.tracked.mean) for c in cells if c.mark != "same"]
        assert _close(comparison.largest_gap, max(gaps))


def test_the_reproducibility_page_shows_the_indexs_reruns():
    reruns = json.loads(INDEX.read_text(encoding="utf-8"))["reruns"]
    assert reruns and reproducibility_text(reruns) in REPRODUCIBILITY_PAGE.read_text(encoding="utf-8")


@pytest.mark.parametrize("damage,field", [
    (lambda doc: doc.update(schema_version=3), "schema_version"),
    (lambda doc: doc["tables"]["mformer_table4"]["cells"][0].update(status="fine"), "status"),
    (lambda doc: doc["tables"]["mformer_table4"]["cells"][0].update(colour="red"), "colour"),
    (lambda doc: doc["tables"]["mformer_table4"]["cells"][0]["tracked"].update(n="3"), "n"),
])
def test_a_damaged_index_is_refused_in_one_line_naming_the_file_and_the_field(tmp_path, damage, field):
    document = json.loads(INDEX.read_text(encoding="utf-8"))
    damage(document)
    path = tmp_path / "index.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=rf"^{path}: not the results index \(.*{field}.*\); write it again with "
                                         r"`python -m reports readme`$") as err:
        read_index(path)
    assert "\n" not in str(err.value)


def test_an_index_that_is_no_json_is_refused_in_one_line(tmp_path):
    path = tmp_path / "index.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=rf"^{path}: .*python -m reports readme"):
        read_index(path)
