"""Which record fills a report cell, and the seed-noise rule, against hand-written cases: a record without a finish
time loses to a timed one, a run of a row the table no longer has fills nothing, two local runs of one cell and seed
are not "passed over" for a tracked one, ``track`` commits the local run a tracked one stands in for, a row
configured as another row of the same table is marked reused, records come out in seed order, a paper-scale run
keyed with the paper's batch fills the cells configured as it, tracked records are read only for this repository's
reports. Every expected value is a literal or a formula written out here, never taken from the code under test."""

from __future__ import annotations

import json

from experiments.harness.plan import resolve_runs
from experiments.harness.spec import table_spec
from reports.records import RESULTS_DIR, results_root_for, table_records, track
from tests.reports.test_cells_reference import configured, record, write_local
from tests.reports.test_tracked_results import write_tracked

OLDER, NEWER = "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"


def test_a_record_without_a_finish_time_loses_to_a_timed_one(tmp_path):
    """Table 3b's exact row is configured as Table 3a's: Table 3b's own seed-0 run has no ``finished_at`` (an old
    record), Table 3a's has one; "a missing time sorts last", so the timed run fills the cell."""
    runs = tmp_path / "runs"
    write_local(runs, configured("mformer_table3b", "exact", "K-400", 0, 50.0))
    write_local(runs, configured("mformer_table3a", "exact", "K-400", 0, 70.0, finished_at=OLDER))
    found = table_records(table_spec("mformer_table3b"), runs).records
    assert [(r["metrics"]["top1"], r.get("reused_from")) for r in found] == [
        (70.0, "mformer_table3a/exact/seed0/tiny-k_400")]


def test_a_run_of_a_row_the_table_no_longer_has_fills_no_cell(tmp_path):
    """A record of Table 4 under a row name its spec does not list (a retired row; no configuration recorded) is
    not one of the table's runs: only the joint row's record is returned."""
    runs = tmp_path / "runs"
    write_local(runs, record("mformer_table4", "joint", "K-400", 0, 60.0))
    write_local(runs, record("mformer_table4", "retired_row", "K-400", 0, 99.0))
    found = table_records(table_spec("mformer_table4"), runs).records
    assert [(r["row"], r["metrics"]["top1"]) for r in found] == [("joint", 60.0)]


def test_two_local_runs_of_one_cell_and_seed_are_not_passed_over_for_a_tracked_one(tmp_path):
    """With no tracked record the newer of two local runs fills the cell; the older is not a local record "passed
    over for the tracked ones" (the header would tell the reader to track it)."""
    runs = tmp_path / "runs"
    write_local(runs, configured("mformer_table3b", "exact", "K-400", 0, 50.0, finished_at=OLDER))
    write_local(runs, configured("mformer_table3a", "exact", "K-400", 0, 70.0, finished_at=NEWER))
    for prefer in ("tracked", "local"):
        found = table_records(table_spec("mformer_table3b"), runs, tmp_path / "no_results", prefer=prefer)
        assert [r["metrics"]["top1"] for r in found.records] == [70.0]
        assert found.passed_over == []


def test_track_commits_the_local_run_in_place_of_the_tracked_one_it_was_passed_over_for(tmp_path):
    """The header says `python -m reports track ID` commits the passed-over local runs: the tracked seed-0 record
    (60.0) is replaced by the local one (66.0), and the report then shows 66.0 from the tracked folder."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    tracked = write_tracked(results, record("mformer_table4", "joint", "K-400", 0, 60.0, finished_at=OLDER))
    write_local(runs, record("mformer_table4", "joint", "K-400", 0, 66.0, finished_at=NEWER))
    spec = table_spec("mformer_table4")
    assert len(table_records(spec, runs, results).passed_over) == 1
    assert track(spec, runs, results) == [tracked]
    assert json.loads(tracked.read_text())["metrics"]["top1"] == 66.0
    found = table_records(spec, None, results).records
    assert [(r["_source"], r["metrics"]["top1"]) for r in found] == [("tracked", 66.0)]


def test_tracked_records_are_used_only_for_this_repositorys_reports_unless_a_folder_is_named(tmp_path):
    """``results_root_for(out_dir, results_dir)``: a report built into reports/ (or with no folder given) reads the
    tracked records; one written elsewhere does not; ``--results-dir`` names the folder, ``""`` none."""
    assert results_root_for(None, None) == RESULTS_DIR
    assert results_root_for(RESULTS_DIR.parent, None) == RESULTS_DIR
    assert results_root_for(tmp_path, None) is None  # a report written elsewhere shows the local runs only
    assert results_root_for(tmp_path, "") is None  # `--results-dir ""`: no tracked records
    assert results_root_for(None, str(tmp_path)) == tmp_path


def test_a_row_configured_as_another_row_of_the_same_table_is_marked_reused_and_its_own_run_wins_a_tie(tmp_path):
    """Table 4 of MSCA at tiny scale: N_b = N_f = 4 and 8 both become 1, one configuration. The n4 run fills the n8
    cell marked as reused from n4; when n8's own run finished at the same time it keeps its own cell."""
    def n8_cell(name: str, n4_at: str, n8_at: str | None) -> list[tuple[float, str | None]]:
        runs = tmp_path / name
        write_local(runs, configured("msca_table4", "msca_pkv_n4", "K-400", 0, 40.0, finished_at=n4_at))
        if n8_at is not None:
            write_local(runs, configured("msca_table4", "msca_pkv_n8", "K-400", 0, 45.0, finished_at=n8_at))
        found = table_records(table_spec("msca_table4"), runs).records
        return [(r["metrics"]["top1"], r.get("reused_from")) for r in found if r["row"] == "msca_pkv_n8"]

    assert n8_cell("n4_only", OLDER, None) == [(40.0, "msca_table4/msca_pkv_n4/seed0/tiny-k_400")]
    assert n8_cell("tie", NEWER, NEWER) == [(45.0, None)]


def test_records_come_out_in_seed_order_whichever_folder_holds_them(tmp_path):
    """Seed 1 tracked, seeds 0 and 2 local: the table's records are ordered by seed, not by the folder scanned
    first."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    write_tracked(results, record("mformer_table4", "joint", "K-400", 1, 61.0))
    write_local(runs, record("mformer_table4", "joint", "K-400", 2, 62.0))
    write_local(runs, record("mformer_table4", "joint", "K-400", 0, 60.0))
    found = table_records(table_spec("mformer_table4"), runs, results).records
    assert [(r["seed"], r["_source"]) for r in found] == [(0, "local"), (1, "tracked"), (2, "local")]


def test_a_paper_scale_run_keyed_with_the_papers_batch_fills_the_cells_configured_as_it(tmp_path):
    """MSCA's paper preset pins its devices, so the runner records the paper's global batch in the configuration
    (``with_paper_batch``): Table 1's paper-scale MSCA-KV h = 1 run is Table 2's row of that name, reused there, and
    in its own table it is not a run "configured otherwise than the row is today"."""
    runs = tmp_path / "runs"
    cfg = next(c for c in resolve_runs("msca_table1", "paper", ["msca_kv_h1"], 1, None, None) if c.column == "K-400")
    write_local(runs, {**record("msca_table1", "msca_kv_h1", "K-400", 0, 77.0, scale="paper"),
                       "dataset": cfg.data.dataset, "config": cfg.to_dict()})
    reused = table_records(table_spec("msca_table2"), runs).records
    assert [(r["row"], r["column"], r["reused_from"]) for r in reused] == [
        ("msca_kv_h1", "K-400", "msca_table1/msca_kv_h1/seed0/paper-k_400")]
    own = table_records(table_spec("msca_table1"), runs)
    assert [r["metrics"]["top1"] for r in own.records] == [77.0] and own.differing == []


def test_a_local_run_configured_as_three_cells_is_passed_over_once(tmp_path):
    """At tiny scale MSCA Table 4's rows N = 4, 8 and 16 are one configuration (N_b = N_f = 1): a local run of it
    beside a tracked one is one run passed over, not three (the console says "of 1 run(s) you also ran")."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    write_tracked(results, configured("msca_table4", "msca_pkv_n4", "K-400", 0, 40.0, finished_at=OLDER))
    write_local(runs, configured("msca_table4", "msca_pkv_n4", "K-400", 0, 44.0, finished_at=NEWER))
    found = table_records(table_spec("msca_table4"), runs, results)
    assert sorted((r["row"], r["metrics"]["top1"]) for r in found.records) == [
        ("msca_pkv_n16", 40.0), ("msca_pkv_n4", 40.0), ("msca_pkv_n8", 40.0)]
    assert [(r["_source"], r["metrics"]["top1"]) for r in found.passed_over] == [("local", 44.0)]


def test_one_command_scans_the_records_once_and_a_track_inside_it_is_seen(tmp_path, monkeypatch):
    """Inside ``one_scan`` (every `reports` command but `track`) the folders are scanned once, however many tables
    and pages read them; ``track`` writing into a scanned folder inside the block makes the next read see its
    records (the memo is dropped), so a report built after it in the same block is not stale."""
    from reports import records

    scans = []
    real = records._scan
    monkeypatch.setattr(records, "_scan", lambda root, *a: scans.append(root) or real(root, *a))
    runs, results = tmp_path / "runs", tmp_path / "results"
    write_tracked(results, record("mformer_table4", "joint", "K-400", 0, 60.0, finished_at=OLDER))
    spec = table_spec("mformer_table4")
    with records.one_scan():
        for _ in range(3):
            assert [r["metrics"]["top1"] for r in table_records(spec, None, results).records] == [60.0]
        assert scans == [results, None]  # the tracked folder, then the (absent) runs folder: once
        write_local(runs, record("mformer_table4", "joint", "K-400", 1, 62.0, finished_at=NEWER))
        track(spec, runs, results)
        assert [r["metrics"]["top1"] for r in table_records(spec, None, results).records] == [60.0, 62.0]
    assert records._scans is None
