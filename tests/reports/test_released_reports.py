"""Cells evaluated from released weights in the reports and in ``show``: a separate section and line beside the paper's
number, never mixed with the trained cells; ``reports track`` tracks them and ``reports build`` reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.__main__ import main as experiments_main
from experiments.harness.records import DamagedRecordError
from experiments.harness.spec import table_spec
from reports.build import render_report
from reports.records import table_records
from reports.released import HEADING, released_records, track_released


def released_record(table: str, row: str, column: str, metrics: dict, name: str) -> dict:
    return {"table": table, "row": row, "column": column, "seed": 0, "scale": "paper", "dataset": "kinetics400",
            "metrics": metrics, "test_videos": 19877, "evaluated_from": "released weights",
            "released": {"name": name, "layout": "mformer", "sha256": "0" * 64,
                         "protocol": {"temporal_views": 10, "spatial_views": 3}}}


def write(path: Path, record: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


K400 = released_record("mformer_table6b", "mformer", "K-400", {"top1": 79.31, "top5": 94.02},
                       "mformer:k400_motionformer_224_16x4")


def test_a_released_cell_is_a_separate_line_beside_the_paper_never_a_trained_cell(tmp_path):
    runs = tmp_path / "runs"
    write(runs / "mformer_table6b/mformer/released/paper-k_400/metrics.json", K400)
    spec = table_spec("mformer_table6b")
    assert table_records(spec, runs, None).records == []  # the trained runs' reader never sees it
    report = render_report("mformer_table6b", runs_root=runs, out_dir=tmp_path, results_root=None)
    section = report[report.index(HEADING):]
    lines = [[cell.strip() for cell in line.split("|")[1:-1]] for line in section.splitlines()
             if line.startswith("| Mformer ")]
    assert [line[:4] for line in lines] == [["Mformer", "Top-1", "79.7", "79.3 (19877 videos, paper, kinetics400)"],
                                            ["Mformer", "Top-5", "94.2", "94.0 (19877 videos, paper, kinetics400)"]]
    assert "`mformer:k400_motionformer_224_16x4`" in section and "10 x 3" in section
    trained = report[:report.index(HEADING)]
    assert "79.3" not in trained and "94.0" not in trained


def test_a_tracked_released_record_wins_and_track_copies_local_ones(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    write(runs / "mformer_table6b/mformer/released/paper-k_400/metrics.json", K400)
    tracked = {**K400, "metrics": {"top1": 79.5, "top5": 94.1}}
    path = write(results / "mformer_table6b/mformer/released/paper-k_400.json", tracked)
    found = released_records("mformer_table6b", runs, results)
    assert [(r["_source"], r["metrics"]["top1"]) for r in found] == [("tracked", 79.5)]
    assert track_released(table_spec("mformer_table6b"), runs, results) == [path]
    copied = json.loads(path.read_text())
    assert copied["metrics"] == K400["metrics"] and copied["released"]["name"] == K400["released"]["name"]
    assert "_source" not in copied and table_records(table_spec("mformer_table6b"), None, results).records == []


def test_a_record_under_released_that_is_not_marked_is_refused_naming_it(tmp_path):
    path = write(tmp_path / "mformer_table6b/mformer/released/paper-k_400/metrics.json",
                 {k: v for k, v in K400.items() if k != "evaluated_from"})
    with pytest.raises(DamagedRecordError, match=f"{path}: a record under released/ that is not marked"):
        released_records("mformer_table6b", tmp_path, None)


def test_show_prints_the_released_cell_on_its_own_line(tmp_path, capsys):
    runs = tmp_path / "runs"
    write(runs / "mformer_table6b/mformer/released/paper-k_400/metrics.json", K400)
    assert experiments_main(["show", "mformer_table6b", "--runs-dir", str(runs), "--results-dir", ""]) == 0
    out = capsys.readouterr().out
    assert "ours from released weights (mformer:k400_motionformer_224_16x4): 79.31" in out
    assert experiments_main(["show", "mformer_table6b", "--json", "--runs-dir", str(runs), "--results-dir", ""]) == 0
    shown = json.loads(capsys.readouterr().out)
    mformer = next(r for r in shown["rows"] if r["key"] == "mformer")
    assert mformer["released"]["Top-5"] == {"value": 94.02, "checkpoint": "mformer:k400_motionformer_224_16x4"}
    assert mformer["ours"]["Top-1"] is None  # no trained run: the released number is not ours from training
    xvit = released_record("xvit_kinetics600", "xvit", "K-600", {"top1": 84.2}, "xvit:xvit_b16_16_k600")
    write(runs / "xvit_kinetics600/xvit/released/paper-k_600/metrics.json", xvit)
    assert experiments_main(["show", "xvit_kinetics600", "--runs-dir", str(runs), "--results-dir", ""]) == 0
    assert "ours from released weights (xvit:xvit_b16_16_k600): 84.20" in capsys.readouterr().out
