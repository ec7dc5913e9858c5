"""``python -m experiments attention-score`` and its page (reports/attention_tracking.py): a finished run written by
hand (random weights, a record of its configuration) is scored with its no-motion baselines; the baselines on
synthetic maps (each scores 0 against itself, a perfect tracker the most, a map with only a self-bias nothing); a run
that is not finished, a table without a boxed set and a damaged record are one line each; the page's verdicts are
the one-sample t-test's. Nothing trains."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from experiments.harness.attention_score import score_table
from experiments.harness.records import DamagedRecordError
from experiments.mformer.figures import (
    RECORD_NAME,
    baseline_maps,
    query_cells,
    scores_with_baselines,
    stronger_baseline,
)
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
    stronger = max(run["static_share"], run["locality_share"])
    assert run["baseline_share"] == stronger and run["baseline"] in ("static", "locality")
    assert math.isclose(run["excess_over_baseline"], run["share"] - stronger, abs_tol=1e-12)
    assert run["kernels"] == "not recorded"  # the hand-written run's record names none
    path = tmp_path / RECORD_NAME
    path.write_text(json.dumps(record))
    assert read_tracking(path)["runs"] == record["runs"]


def test_a_run_not_finished_or_a_table_no_measure_reads_is_one_line(tmp_path):
    code, _, err = run_command("experiments", ["attention-score", TABLE, "--rows", ROW, "--runs-dir", str(tmp_path)])
    assert code != 0 and err.count("\n") == 1 and "not a finished run" in err and "Traceback" not in err, err
    code, _, err = run_command("experiments", ["attention-score", "xvit_table1", "--runs-dir", str(tmp_path)])
    assert code != 0 and err.count("\n") == 1 and "no run a measure of the papers' figures reads" in err, err


def _record(excess_by_row, locality_rows=()):
    """Runs whose share over the baseline is ``excess``; the static map the stronger baseline (0.5 against 0.4),
    except in ``locality_rows``, whose map is the locality map itself."""
    runs = []
    for row, values in excess_by_row.items():
        for seed, e in enumerate(values):
            share = 0.4 if row in locality_rows else 0.5 + e
            runs.append({"row": row, "seed": seed, "share": share, "chance": 0.3, "excess": share - 0.3,
                         "static_share": 0.5, "locality_share": 0.4, "baseline": "static", "baseline_share": 0.5,
                         "excess_over_baseline": share - 0.5, "samples": 10, "queries": 20, "kernels": "AVX2"})
    return {"kind": "attention_tracking", "table": TABLE, "scale": "tiny", "column": "SSv2",
            "dataset": "synth_motion_pairs", "definition": "docs/attention_tracking.md", "commit": "abc",
            "sample_limit": None, "runs": runs}


def test_the_page_says_which_rows_track_beyond_the_baseline_by_the_one_sample_t_test():
    """traj +10, +11, +12 points over the baseline: t-test p = 0.003, yes; joint +1, −1, 0: p = 1, no; one seed:
    untested; divided's map is the locality map in every run: by construction, left out of the comparisons."""
    record = _record({"joint": [0.01, -0.01, 0.0], "traj": [0.10, 0.11, 0.12], "one": [0.5], "divided": [0, 0, 0]},
                     locality_rows=("divided",))
    scores = {score.row: score for score in row_scores(record)}
    assert scores["traj"].test.p == pytest.approx(stats.ttest_1samp([10.0, 11.0, 12.0], 0.0).pvalue)
    assert (scores["traj"].verdict, scores["joint"].verdict, scores["one"].verdict) == ("yes", "no", "one seed")
    assert scores["divided"].locality_map and scores["divided"].test is None
    assert "by construction" in scores["divided"].verdict
    page = render(record)
    assert "| traj | 3 | +11.00 ± 1.00 | yes (+11.00 [+8.52, +13.48], p = 0.003 (one-sample t, 2 df)) |" in page
    assert "| joint | 3 | +0.00 ± 1.00 | no (+0.00 [-2.48, +2.48], p = 1.000 (one-sample t, 2 df)) |" in page
    flowing = " ".join(page.split())  # the page wraps its prose at 120 characters
    # the same seeds on the same samples: paired, differences 9, 12, 12
    assert "traj > joint +11.00 [+6.70, +15.30], p = 0.008, q = 0.008 (paired t, 2 df)" in flowing
    assert "By construction: divided" in flowing and "AVX2 CPU kernels" in flowing


def _moving_box() -> np.ndarray:
    """A thing 1 patch wide moving one patch right per step over 4 steps of 4x8 patches (T', H, W)."""
    inside = np.zeros((4, 4, 8), dtype=bool)
    for step in range(4):
        inside[step, 1:3, 2 + step] = True  # two patches tall
    return inside


def test_the_baselines_score_zero_against_themselves_and_a_perfect_tracker_scores_the_most():
    inside = _moving_box()
    queries = query_cells(inside, 0)
    maps = baseline_maps(queries, inside)
    perfect = np.stack([inside / inside.reshape(4, -1).sum(1)[:, None, None] for _ in queries]).astype(float)
    for name in ("static", "locality"):
        score = scores_with_baselines(maps[name], queries, inside)
        assert score["share"] == pytest.approx(score[f"{name}_share"], abs=1e-15)  # 0 over itself
    tracker = scores_with_baselines(perfect, queries, inside)
    assert tracker["share"] == pytest.approx(1.0)  # all its mass on the box: no map can score more
    _, baseline = stronger_baseline(tracker["static_share"], tracker["locality_share"])
    assert tracker["share"] - baseline == pytest.approx(1.0 - baseline) and 1.0 - baseline > 0
    # the thing leaves its step-0 patches at once: both baselines score 0 on the later steps here
    assert (tracker["static_share"], tracker["locality_share"]) == (0.0, 0.0)


def test_a_map_with_only_a_self_bias_is_not_beyond_the_baseline():
    """97.6% uniform plus 2.4% on the query's own patch, on a thing that moves slowly (it keeps half its step-0
    patches): over uniform it scores above 0, over the baseline below, and five such runs are not beyond it."""
    inside = np.zeros((4, 4, 8), dtype=bool)
    for step in range(4):
        inside[step, 1:3, 2 + step // 2: 4 + step // 2] = True  # 2x2 patches, one patch right every two steps
    queries = query_cells(inside, 0)
    uniform = np.full((len(queries), *inside.shape), 1 / inside[0].size)
    biased = 0.976 * uniform + 0.024 * baseline_maps(queries, inside)["locality"]
    score = scores_with_baselines(biased, queries, inside)
    _, baseline = stronger_baseline(score["static_share"], score["locality_share"])
    assert score["excess"] > 0 and score["share"] - baseline < 0
    runs = _record({"biased": [score["share"] - 0.5] * 2 + [score["share"] - 0.5 + d for d in (1e-3, -1e-3, 2e-3)]})
    (row,) = row_scores(runs)
    assert row.verdict == "no" and row.test.estimate < 0


@pytest.mark.parametrize(("field", "value"), [("excess", float("nan")), ("seed", "0"), ("samples", None)])
def test_a_damaged_tracking_record_is_one_line_naming_the_field(tmp_path, field, value):
    record = _record({"joint": [0.01, 0.02]})
    record["runs"][1][field] = value
    path = tmp_path / RECORD_NAME
    path.write_text(json.dumps(record))
    with pytest.raises(DamagedRecordError, match=rf"runs\[1\]\.{field}"):
        read_tracking(path)


def test_the_two_baselines_give_one_score_over_the_querys_box():
    """Whatever the boxes, averaged over the queries (every patch of the step-0 box) the locality map's share is
    the static map's: each query's one-hot map is one patch of the static map, and the queries cover it evenly."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        inside = rng.random((4, 5, 6)) < 0.3
        inside[0, rng.integers(5), rng.integers(6)] = True  # at least one query
        queries = query_cells(inside, 0)
        score = scores_with_baselines(np.full((len(queries), *inside.shape), 1 / 30), queries, inside)
        assert score["locality_share"] == pytest.approx(score["static_share"], abs=1e-12)
