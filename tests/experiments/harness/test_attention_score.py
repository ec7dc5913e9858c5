"""``python -m experiments attention-score`` and its page (reports/attention_tracking.py): a finished run written by
hand (random weights, a record of its configuration) is scored; a run that is not finished, a table without a boxed
set and a damaged record are one line each; the page's verdicts follow the stated rule. Nothing trains."""

from __future__ import annotations

import json
import math

import pytest

from experiments.harness.attention_score import RECORD_NAME, score_table
from experiments.harness.records import DamagedRecordError
from reports.attention_tracking import read_tracking, render, row_scores
from tests.faults.doors import run_command

from .test_attention_measures import finished_run

TABLE, ROW = "mformer_table4", "traj_attT_normS"


def _finished_run(runs_root, row=ROW):
    """A finished run of ``row``'s SSv2 column (``synth_motion_pairs``), seed 0: random weights and its record."""
    return finished_run(runs_root, TABLE, row, "SSv2")


def test_a_finished_run_is_scored_on_its_validation_clips(tmp_path):
    _finished_run(tmp_path)
    record = score_table(TABLE, "tiny", [ROW], 1, tmp_path, limit=3)
    (run,) = record["runs"]
    assert (record["dataset"], record["column"], record["sample_limit"]) == ("synth_motion_pairs", "SSv2", 3)
    assert run["row"] == ROW and run["samples"] + run["samples_without_queries"] == 3 and run["samples"] > 0
    assert 0 <= run["chance"] <= 1 and 0 <= run["share"] <= 1
    assert math.isclose(run["excess"], run["share"] - run["chance"], abs_tol=1e-12)
    path = tmp_path / RECORD_NAME
    path.write_text(json.dumps(record))
    assert read_tracking(path)["runs"] == record["runs"]


def test_a_run_not_finished_or_a_table_no_measure_reads_is_one_line(tmp_path):
    code, _, err = run_command("experiments", ["attention-score", TABLE, "--rows", ROW, "--runs-dir", str(tmp_path)])
    assert code != 0 and err.count("\n") == 1 and "not a finished run" in err and "Traceback" not in err, err
    code, _, err = run_command("experiments", ["attention-score", "xvit_table1", "--runs-dir", str(tmp_path)])
    assert code != 0 and err.count("\n") == 1 and "no run a measure of the papers' figures reads" in err, err


def _record(excess_by_row):
    runs = [{"row": row, "seed": seed, "share": 0.3 + e, "chance": 0.3, "excess": e, "samples": 10, "queries": 20}
            for row, values in excess_by_row.items() for seed, e in enumerate(values)]
    return {"kind": "attention_tracking", "table": TABLE, "scale": "tiny", "column": "SSv2",
            "dataset": "synth_motion_pairs", "definition": "docs/attention_tracking.md", "commit": "abc",
            "sample_limit": None, "runs": runs}


def test_the_page_says_which_rows_track_beyond_chance_by_the_stated_rule():
    record = _record({"joint": [0.01, -0.01, 0.0], "traj": [0.10, 0.11, 0.12], "one": [0.5]})
    scores = {score.row: score for score in row_scores(record)}
    assert scores["joint"].beyond_chance is False and scores["traj"].beyond_chance is True
    assert scores["one"].beyond_chance is None
    page = render(record)
    assert "| traj | +11.00 ± 1.00 | 3 |" in page and "| joint | +0.00 ± 1.00 | 3 |" in page
    assert "traj > joint (+11.0)" in page


@pytest.mark.parametrize(("field", "value"), [("excess", float("nan")), ("seed", "0"), ("samples", None)])
def test_a_damaged_tracking_record_is_one_line_naming_the_field(tmp_path, field, value):
    record = _record({"joint": [0.01, 0.02]})
    record["runs"][1][field] = value
    path = tmp_path / RECORD_NAME
    path.write_text(json.dumps(record))
    with pytest.raises(DamagedRecordError, match=rf"runs\[1\]\.{field}"):
        read_tracking(path)
