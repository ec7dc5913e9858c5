"""Tracked records are the committed reports' source of truth: a fresh clone rebuilds every report byte for byte,
the generated pages under reports/generated/ (tiny results, learnability, MSCA's own experiment, ...) are made from
them and linked from the hand-written pages,
a local run never silently replaces one, and a cell is filled by any run configured as its row, whichever table
trained it."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.harness.plan import resolve_runs
from experiments.harness.spec import table_spec
from reports import statistics
from reports.build import GENERATED_DIR, REPORTS_DIR, build_report
from reports.cells import Cell
from reports.readme import generated_pages, page_link, rewrite_generated_pages
from reports.records import table_records, track, tracked_path

REPO = REPORTS_DIR.parent


def make_record(table: str, row: str, column: str, seed: int, top1: float, commit: str = "a" * 40) -> dict:
    cfg = next(c for c in resolve_runs(table, "tiny", [row], seed + 1, None, None)
               if c.column == column and c.seed == seed)
    return {"table": table, "row": row, "column": column, "seed": seed, "scale": "tiny",
            "dataset": cfg.data.dataset, "metrics": {"top1": top1}, "config": cfg.to_dict(), "git_commit": commit}


def write_local(runs: Path, record: dict) -> Path:
    slug = record["column"].lower().replace("-", "_")
    path = runs / record["table"] / record["row"] / f"seed{record['seed']}" / f"tiny-{slug}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def write_tracked(results: Path, record: dict) -> Path:
    path = tracked_path(results, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_a_tracked_record_wins_over_a_local_run_unless_asked(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    write_tracked(results, make_record("mformer_table4", "joint", "K-400", 0, 60.0))
    write_local(runs, make_record("mformer_table4", "joint", "K-400", 0, 70.0, commit="b" * 40))
    spec = table_spec("mformer_table4")
    kept = table_records(spec, runs, results)
    assert [r["metrics"]["top1"] for r in kept.records] == [60.0] and len(kept.passed_over) == 1
    assert [r["metrics"]["top1"] for r in table_records(spec, runs, results, prefer="local").records] == [70.0]
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, results_root=results).read_text()
    assert "60.0 (n=1; tiny, synth_objects, device not recorded) · paper 79.2" in text
    assert "1 tracked in `reports/results/`, 0 local" in text and "1 local record(s) of the same cells" in text
    local = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path, results_root=results,
                         prefer="local").read_text()
    # the other way round: the header names the tracked record as the one passed over, and how to see it
    assert ("- 1 tracked record(s) of the same cells and seeds were passed over for the local ones (`--prefer "
            "local`; `python -m reports build mformer_table4` shows the tracked ones") in local
    assert "local record(s) of the same cells" not in local


def test_a_cell_is_filled_by_any_run_configured_as_its_row(tmp_path):
    """Table 3a's exact row is Table 2b's trajectory row: its record fills both reports; a copy written by the
    runner's reuse (``reused_from``) is not counted twice."""
    runs = tmp_path / "runs"
    write_local(runs, make_record("mformer_table2b", "traj_separatepe", "K-400", 0, 61.0))
    write_local(runs, make_record("mformer_table2b", "traj_separatepe", "K-400", 1, 63.0))
    copy = {**make_record("mformer_table3a", "exact", "K-400", 0, 61.0), "reused_from": "mformer_table2b/..."}
    write_local(runs, copy)
    found = table_records(table_spec("mformer_table3a"), runs)
    exact = [r for r in found.records if r["row"] == "exact"]
    assert sorted(r["seed"] for r in exact) == [0, 1]
    assert all(r["reused_from"].startswith("mformer_table2b/traj_separatepe/") for r in exact)
    assert not table_records(table_spec("mformer_table3a"), runs).differing


def test_a_run_configured_otherwise_is_said_in_the_header(tmp_path):
    runs = tmp_path / "runs"
    record = make_record("mformer_table4", "joint", "K-400", 0, 55.0)
    record["config"]["optim"]["epochs"] = 1  # as `--epochs 1` would have run it
    write_local(runs, record)
    text = build_report("mformer_table4", runs_root=runs, out_dir=tmp_path).read_text()
    assert "Cells filled by runs configured otherwise than the row is today" in text and "joint · K-400" in text


def test_track_copies_the_records_a_report_uses(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    write_local(runs, make_record("mformer_table2b", "traj_separatepe", "SSv2", 0, 71.0))
    written = track(table_spec("mformer_table3a"), runs, results)  # reused by configuration: tracked under its own
    assert written == [results / "mformer_table2b" / "traj_separatepe" / "seed0" / "tiny-ssv2.json"]
    assert json.loads(written[0].read_text())["metrics"]["top1"] == 71.0
    assert [r["_source"] for r in table_records(table_spec("mformer_table3a"), None, results).records] == ["tracked"]


def test_track_keeps_the_newer_static_record(tmp_path):
    """Tracking from an older checkout's runs/ must not replace static columns computed later."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    local, tracked = runs / "mformer_table4" / "static.json", results / "mformer_table4" / "static.json"

    def write(path: Path, when: str, gflops: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"table": "mformer_table4", "kind": "static columns", "computed_at": when,
                                    "cells": {"joint": {"GFLOPS": {"value": gflops, "text": f"{gflops}",
                                                                   "source": "computed"}}}}))

    write(tracked, "2026-11-23T01:00:00+00:00", 180.5)
    write(local, "2026-11-22T01:00:00+00:00", 170.0)
    assert track(table_spec("mformer_table4"), runs, results) == []
    assert json.loads(tracked.read_text())["cells"]["joint"]["GFLOPS"]["value"] == 180.5
    write(local, "2026-11-24T01:00:00+00:00", 181.0)
    assert track(table_spec("mformer_table4"), runs, results) == [tracked]
    assert json.loads(tracked.read_text())["cells"]["joint"]["GFLOPS"]["value"] == 181.0


def test_every_tracked_static_cell_records_its_configuration_and_only_a_device_measurement_may_be_stale():
    """A computed cell is remade on any machine (`python -m experiments static ID`), so a tracked one must be today's;
    a measurement needs its device, so it may lag, and then its report cell says what changed."""
    from experiments.harness.static import stale_note

    for path in sorted((REPO / "reports" / "results").glob("*/static.json")):
        spec = table_spec(path.parent.name)
        record = json.loads(path.read_text())
        for row in spec.rows:
            for col in spec.static_columns:
                cell = record["cells"][row.key][col.column]
                assert cell.get("configuration") in record["configurations"], (path, row.key, col.column)
                on_a_gpu = cell["source"].startswith("measured on ") and "CPU" not in cell["source"]
                if not on_a_gpu:
                    assert stale_note(col, spec, row, record, cell) is None, (path, row.key, col.column)


def test_a_column_line_lists_the_pairs_beyond_noise_with_their_tests():
    """A 70, 71, 69 and B 66, 68, 64 and C 69, 70, 68 on the same seeds and data: paired per-seed differences A − B
    4, 3, 5 (p = 0.020), C − B 3, 2, 4 (p = 0.035), A − C 1, 1, 1 (no spread: untested); Benjamini-Hochberg over the
    two tested pairs: q = min(0.020·2/1, 0.035·2/2) = 0.035 for both, both beyond noise."""
    def cell(values):
        return Cell(sum(values) / 3, 0.0, 3, "tiny", "x", "CPU", tuple(values), (0, 1, 2), "set")

    pairs = statistics.table_pairs({"K-400": [("A", cell([70.0, 71.0, 69.0])), ("B", cell([66.0, 68.0, 64.0])),
                                              ("C", cell([69.0, 70.0, 68.0]))]})
    assert [(p.a, p.b, p.outcome) for p in pairs] == [("A", "B", "beyond"), ("A", "C", "untested"),
                                                      ("B", "C", "beyond")]
    assert statistics.column_line("K-400", pairs) == (
        "- K-400: 2 of 3 row pairs differ beyond noise: A > B +4.0 [+1.5, +6.5], p = 0.020, q = 0.035 (paired t, "
        "2 df); C > B +3.0 [+0.5, +5.5], p = 0.035, q = 0.035 (paired t, 2 df); 0 within noise; 1 without spread "
        "over seeds (untested)")


def test_costs_count_each_distinct_run_once_and_scale_by_the_default_seeds(tmp_path):
    """Table 7's two rows are two runs: 60 s + 84 s a seed; 8 seeds by default (amendment 9), two side by side:
    9.6 min."""
    from reports.readme import costs_table

    results = tmp_path / "results"
    for row, seconds in (("mformer_b", 60.0), ("mformer_h", 84.0)):
        cfg = resolve_runs("mformer_table7", "tiny", [row], 1, None, None)[0]
        write_tracked(results, {**make_record("mformer_table7", row, cfg.column, 0, 50.0), "wall_time_s": seconds})
    line = next(line for line in costs_table(results).splitlines() if "mformer_table7.md" in line)
    assert [cell.strip() for cell in line.strip("|").split("|")][1:] == ["2", "2.4", "8", "9.6"]
    table6b = next(line for line in costs_table(results).splitlines() if "mformer_table6b.md" in line)
    assert "| —" in table6b  # Table 7's Mformer-B is Table 6b's Mformer row; Table 6b's other cells have no record
    assert "mformer_table5.md" not in costs_table(results)  # no record of its at all: no line


def test_every_table_trains_its_seeds_exactly_where_its_recorded_costs_fit_the_budget():
    """A table at the power rule's design trains the amendment's seeds; any other, the design's first rule: 5 seeds
    where 5 take at most 45 minutes two side by side, 3 elsewhere, and 3 always fit the 60 minutes of a table's
    default (the cost table of reports/README.md, from seed-0 wall times); the quick start trains
    ``QUICK_START_SEEDS``: change the records or the specs, and this says which table."""
    from experiments.presets import AMENDED_SEEDS, FIVE_SEEDS_BUDGET_MIN, QUICK_START_SEEDS, TABLE_BUDGET_MIN
    from reports.readme import SIDE_BY_SIDE, costs_table

    checked = []
    for line in costs_table().splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        table_id = cells[0].split("]")[0].lstrip("[")
        assert cells[2] != "—", f"{table_id}: a cell has no tracked record, so its cost is unknown"
        if table_spec(table_id).power_rule:
            assert table_spec(table_id).tiny_seeds == AMENDED_SEEDS[table_id], (table_id, cells)
            checked.append(table_id)
            continue
        three_seeds = float(cells[2]) * 3 / SIDE_BY_SIDE
        assert three_seeds <= TABLE_BUDGET_MIN, (table_id, cells)
        if table_id == "mformer_table4":
            assert table_spec(table_id).tiny_seeds == QUICK_START_SEEDS, (table_id, cells)
        else:
            five_fit = float(cells[2]) * 5 / SIDE_BY_SIDE <= FIVE_SEEDS_BUDGET_MIN
            assert table_spec(table_id).tiny_seeds == (5 if five_fit else 3), (table_id, cells)
        checked.append(table_id)
    assert {"mformer_table4", "msca_table1", "msca_table2", "xvit_table2", "cast_table1c", "d3da_figureA1"
            } <= set(checked)


def test_the_learnability_block_names_the_sets_that_no_tracked_record_fills(tmp_path):
    from reports.readme import learnability_block

    with pytest.raises(ValueError, match=r"synthetic_learnability row\(s\) \['synth_objects', 'synth_motion_pairs', "
                                         r"'synth_verbnoun', 'synth_pose'\]"):
        learnability_block(tmp_path)


def test_the_kv_frames_block_fills_seed_0_of_the_papers_rows_from_the_msca_tables(tmp_path):
    from reports.readme import experiment_block

    kv_frames_block = functools.partial(experiment_block, "msca_kv_frames")

    top1 = {"msca_kv_h1": (15.0, 21.0, 18.0), "msca_kv_opposite_h1": (54.0, 52.0, 33.0),
            "msca_qkv_h1": (14.0, 16.0, 18.0), "msca_qkv_opposite_h1": (40.0, 45.0, 50.0)}
    for row, values in top1.items():
        for seed, value in enumerate(values):
            paper_row_seed_0 = seed == 0 and "opposite" not in row
            record = make_record("msca_table2" if paper_row_seed_0 else "msca_kv_frames", row, "SSv2", seed, value)
            write_tracked(tmp_path, {**record, "wall_time_s": 60.0})
    lines = {line.split("|")[1].strip(): line for line in kv_frames_block(tmp_path).splitlines()
             if line.startswith("| MSCA")}
    assert "18.0 ± 3.0 (n=3" in lines["MSCA-KV (the paper's)"]
    assert "15.0 / 21.0 / 18.0" in lines["MSCA-KV (the paper's)"]
    assert "46.3 ± 11.6 (n=3" in lines["MSCA-KV, values from the other neighbour"]
    assert "16.0 ± 2.0 (n=3" in lines["MSCA-QKV (the paper's)"]
    # records naming no data root: Welch's test, the block's six pairs one family. KV from the other neighbour over
    # the paper's KV: +28.3, p = 0.044 (2.3 df) alone, q = 0.066 over the six: within noise; QKV's +29.0 (p = 0.004)
    # and its +27.0 over the paper's KV (p = 0.003): q = 0.013, beyond
    verdict = " ".join(kv_frames_block(tmp_path).split())
    assert ("2 of 6 row pairs differ beyond noise: MSCA-QKV, values from the other neighbour > MSCA-QKV (the "
            "paper's) +29.0 [+18.3, +39.7], p = 0.004, q = 0.013 (Welch t, 2.6 df)") in verdict
    assert "4 within noise" in verdict
    assert "12 records' own wall times: 12.0 min summed, so `python -m experiments run msca_kv_frames` takes about " \
           "6.0 min 2 side by side." in kv_frames_block(tmp_path)

    write_tracked(tmp_path, {**make_record("msca_kv_frames", "msca_kv_opposite_h1", "SSv2", 3, 99.0),
                              "wall_time_s": 60.0})
    with_extra = kv_frames_block(tmp_path)
    assert "46.3 ± 11.6 (n=3" in with_extra and "99.0" not in with_extra
    assert with_extra.endswith("Tracked beyond the default seeds and left out here: msca_kv_opposite_h1 seed 3.")

    tracked_path(tmp_path, make_record("msca_kv_frames", "msca_qkv_opposite_h1", "SSv2", 2, 0.0)).unlink()
    with pytest.raises(ValueError, match=r"msca_kv_frames row\(s\) \['msca_qkv_opposite_h1'\] lack tracked records "
                                         r"of seeds \[0, 1, 2\]: run `python -m experiments run msca_kv_frames`"):
        kv_frames_block(tmp_path)


def test_track_takes_the_repositorys_own_experiments_and_still_refuses_an_unknown_id(tmp_path, capsys):
    from reports.__main__ import main

    assert main(["track", "synthetic_learnability", "--runs-dir", str(tmp_path)]) == 0  # nothing local: 0 records
    assert "synthetic_learnability: 0 record(s)" in capsys.readouterr().out
    assert not (REPO / "reports" / "synthetic_learnability.md").exists()  # no paper layout, so no report
    assert main(["track", "synthetic_learnabilty", "--runs-dir", str(tmp_path)]) == 2


def test_every_generated_page_is_what_the_tracked_records_give():
    """Every page ``python -m reports readme`` writes, and the results index (``reports/generated/index.json``)."""
    changed = rewrite_generated_pages(write=False)
    assert {path.relative_to(REPO).as_posix() for path in changed} == {
        f"reports/generated/{name}.md" for name in (
            "tiny_results", "learnability", "msca_kv_frames", "shift_benchmarks", "smoke", "trajectory_step",
            "paper_steps", "attention_tracking", "attention_windows_and_points", "gpu_coverage", "loader_rates",
            "released_mformer", "released_msca", "released_xvit", "released_cast", "reproducibility")
    } | {"reports/generated/index.json"}
    stale = [path.relative_to(REPO).as_posix() for path, differs in changed.items() if differs]
    assert not stale, f"{stale}: a generated page differs from the tracked records: run `python -m reports readme`"


def test_each_generated_page_says_what_made_it_and_a_hand_written_page_links_it():
    for path, page in generated_pages().items():
        head = path.read_text().split("\n\n", 2)
        assert head[0] == f"# {page.title}", path
        assert head[1].startswith("Generated by `python -m reports readme` from "), path
        assert page_link(path) in page.linked_from.read_text(), f"{page.linked_from}: no link {page_link(path)}"


def test_no_hand_written_page_holds_a_generated_block():
    """Generated text lives in whole pages under reports/generated/; the pages that held blocks link them."""
    linking = {page.linked_from for page in generated_pages().values()} | {REPO / "reports" / "README.md"}
    held = [path.relative_to(REPO).as_posix() for path in linking if re.search(r"<!-- [\w-]+:begin", path.read_text())]
    assert not held, f"{held}: a generated block in a hand-written page"


def _tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return [f for f in listed if f and (REPO / f).is_file()]


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git checkout to know the tracked files")
def test_a_build_of_every_report_keys_each_record_once(monkeypatch):
    """The index reads every table's records after every report; keying each record once per table made a build of
    all reports take minutes (experiment_key was 2/3 of it)."""
    from experiments.paper_tables import paper_tables
    from reports import records
    from reports.records import RESULTS_DIR

    calls = []
    real = records.experiment_key
    monkeypatch.setattr(records, "experiment_key", lambda config: calls.append(1) or real(config))
    monkeypatch.setattr(records, "_cache", {})
    specs = [s for s in map(table_spec, paper_tables()) if s is not None]
    passes = []
    for _ in range(2):
        calls.clear()
        for spec in specs:
            table_records(spec, None, RESULTS_DIR)
        passes.append(len(calls))
    keyed = sum("config" in json.loads(p.read_text()) for p in RESULTS_DIR.glob("*/*/seed*/*.json"))
    assert keyed > 100
    assert passes[0] - passes[1] == keyed  # the second pass keys the specs' own runs only


@pytest.mark.slow  # two fresh `python -m reports` processes over a copy of the tracked files
def test_a_fresh_clone_rebuilds_every_report_byte_for_byte(tmp_path):
    """What CI's fresh clone holds (the tracked files; no runs/): `python -m reports build`, then `python -m reports
    readme`, must reproduce every committed report, plot, generated page and the results index exactly. "Committed" is
    what git holds (its index), not the working tree, where a command may have written since."""
    clone = tmp_path / "clone"
    for name in _tracked_files():
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    generated = clone / GENERATED_DIR.relative_to(REPO)
    kinds = (".md", ".png", ".json")
    committed = {p.name: _committed_bytes(p.relative_to(clone)) for p in generated.iterdir() if p.suffix in kinds}
    env = {**os.environ, "PYTHONPATH": str(clone), "MPLBACKEND": "Agg"}
    for command in ("build", "readme"):
        done = subprocess.run([sys.executable, "-m", "reports", command], cwd=clone, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    rebuilt = {p.name: p.read_bytes() for p in generated.iterdir() if p.suffix in kinds}
    changed = sorted(name for name in committed.keys() | rebuilt.keys() if committed.get(name) != rebuilt.get(name))
    assert not changed, f"reports that a fresh clone does not rebuild identically: {changed}"


def _committed_bytes(path: Path) -> bytes:
    """The file as git's index holds it (the working tree's copy outside a git checkout, or for a file not added)."""
    if (REPO / ".git").exists():
        shown = subprocess.run(["git", "show", f":{path.as_posix()}"], cwd=REPO, capture_output=True)
        if shown.returncode == 0:
            return shown.stdout
    return (REPO / path).read_bytes()
