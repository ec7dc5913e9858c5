"""``tools.power_rule``: the tiny design's power rule, checked against hand counts and the textbook's sample sizes,
never against the code under test: the test size at an accuracy, the seeds for a spread (the paired t-test needs 10
pairs and Welch's 17 a side for an effect of one standard deviation at 80% power), pooled spreads of paired and
unpaired cells, the time a larger test set adds, which records run at the amended design, and the command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from experiments.harness.spec import table_spec
from tools import power_rule
from tools.__main__ import COMMANDS


def test_test_size_holds_one_cell_to_its_standard_error():
    assert power_rule.test_size(50.0) == 4445  # 0.25 / 0.0075² = 4444.4
    assert power_rule.test_size(61.0) == 4230  # 0.2379 / 0.0075² = 4229.3
    assert power_rule.test_size(90.0) == 1600
    n = power_rule.test_size(44.5)
    se = lambda size: 100 * math.sqrt(0.445 * 0.555 / size)  # noqa: E731
    assert se(n) <= 0.75 < se(n - 1)


def test_seeds_for_a_spread_are_the_textbooks_and_bounded():
    # an effect of one standard deviation (2 points at a spread of 2), alpha 0.05 two-sided, 80% power
    assert power_rule.seeds_for(2.0, paired=True) == 10
    assert power_rule.seeds_for(2.0, paired=False) == 17
    assert power_rule.seeds_for(0.5, paired=True) == 5  # would need fewer: at least 5
    assert power_rule.seeds_for(10.0, paired=True) == 20  # would need more: at most 20
    assert power_rule.seeds_for(None, paired=True) is None


def test_pool_weights_each_part_by_its_degrees_of_freedom():
    pool = power_rule.Pool.of([np.array([1.0, 3.0]), np.array([0.0, 2.0, 4.0])])  # variances 2 (1 df), 4 (2 df)
    assert pool.df == 3 and pool.count == 2
    assert pool.spread == pytest.approx(math.sqrt((2 + 2 * 4) / 3))
    assert power_rule.Pool.of([]).spread is None


def _record(table: str, row: str, column: str, seed: int, top1: float, dataset: str, key: str) -> dict:
    return {"table": table, "row": row, "column": column, "seed": seed, "scale": "tiny", "dataset": dataset,
            "metrics": {"top1": top1, "top5": 99.0}, "_key": key,
            "data": {"root": f".cache/synthetic/{dataset}-abc", "synthetic": True, "num_classes": 40},
            "config": {"data": {"synthetic_params": {"num_train": 1200, "num_val": 400, "seed": 0}}}}


def test_rows_on_one_set_pair_their_seeds():
    spec = table_spec("mformer_table7")  # rows mformer_b, mformer_h; column K-400 (top-1 and an unread top-5)
    a, b = [50.0, 52.0, 51.0, 55.0, 60.0], [48.0, 49.0, 50.0, 50.0]  # seed 4 of a has no partner
    records = [_record(spec.table_id, "mformer_b", "K-400", s, v, "synth_objects", "b") for s, v in enumerate(a)]
    records += [_record(spec.table_id, "mformer_h", "K-400", s, v, "synth_objects", "h") for s, v in enumerate(b)]
    paired, welch = power_rule.spreads(spec, records)
    # per-seed differences 2, 3, 1, 5 over the 4 shared seeds: mean 2.75, squares 8.75 over 3 df
    assert (paired.count, paired.df) == (1, 3)
    assert paired.spread == pytest.approx(math.sqrt(8.75 / 3))
    assert welch.spread is None


def test_one_run_in_two_cells_is_no_pair():
    spec = table_spec("mformer_table7")
    records = [_record(spec.table_id, row, "K-400", s, 50.0 + s * (1 + i), "synth_objects", "same")
               for i, row in enumerate(("mformer_b", "mformer_h")) for s in range(3)]
    paired, welch = power_rule.spreads(spec, records)
    assert paired.spread is None and welch.spread is None


def test_rows_on_other_sets_pool_their_cells_for_welch():
    spec = table_spec("mformer_table8")  # rows k400 (synth_objects) and ssv2 (synth_motion_pairs)
    records = [_record(spec.table_id, "k400", "1frame", s, v, "synth_objects", "k") for s, v in
               enumerate([40.0, 42.0, 44.0])]
    records += [_record(spec.table_id, "ssv2", "1frame", s, v, "synth_motion_pairs", "s") for s, v in
                enumerate([10.0, 11.0, 12.0])]
    paired, welch = power_rule.spreads(spec, records)
    assert paired.spread is None
    assert (welch.count, welch.df) == (2, 4)
    assert welch.spread == pytest.approx(math.sqrt((2 * 4 + 2 * 1) / 4))  # variances 4 and 1, 2 df each


def test_set_sizes_read_the_cell_nearest_half():
    records = [_record("t", "r1", "c", 0, 60.0, "synth_objects", "1"), _record("t", "r1", "c", 1, 62.0,
                                                                               "synth_objects", "1"),
               _record("t", "r2", "c", 0, 80.0, "synth_objects", "2")]
    (size,) = power_rule.set_sizes(records)
    assert (size.dataset, size.field, size.today, size.cells) == ("synth_objects", "num_val", 400, 2)
    assert size.decisive == pytest.approx(61.0) and size.size == 4230
    assert size.mean == pytest.approx((60 + 62 + 80) / 3)
    other = _record("t", "r3", "c", 0, 50.0, "synth_objects", "3")
    other["config"]["data"]["synthetic_params"]["num_val"] = 4000
    with pytest.raises(ValueError, match="synth_objects: its records were tested on splits of several sizes"):
        power_rule.set_sizes([*records, other])


def test_a_larger_test_set_adds_to_a_trained_run_and_scales_an_evaluation():
    trained = _record("t", "r", "c", 0, 50.0, "synth_objects", "k")
    trained.update(wall_time_s=120.0, perf={"train_steps": 750})
    trained["config"]["data"].update(batch_size=16, test_clips=2, test_crops=1)
    # 4,000 added videos x 2 views, each 0.2797 of a training clip's 120 s / 12,000 clips
    cost = (0.01 + 0.16 * 800 / 14_800) / (800 / 12_000)
    assert power_rule.TEST_CLIP_COST == pytest.approx(cost)
    assert power_rule.added_test_seconds(trained, 4400) == pytest.approx(4000 * 2 * cost * 0.01)
    evaluation = {**trained, "perf": None, "wall_time_s": 30.0}
    assert power_rule.added_test_seconds(evaluation, 4400) == pytest.approx(300.0)  # 11 times its 400 videos
    assert power_rule.added_test_seconds(trained, 400) == 0.0


def test_the_amended_design_is_told_by_its_test_split():
    record = _record("t", "r", "c", 0, 50.0, "synth_objects", "k")
    assert not power_rule.amended(record)
    record["config"]["data"]["synthetic_params"]["num_val"] = 4359
    assert power_rule.amended(record)
    assert not power_rule.amended({**record, "scale": "paper"})
    listops = {"scale": "tiny", "dataset": "lra_listops", "config": {"data": {"synthetic_params": {
        "num_train": 4000, "num_val": 500, "num_test": 500}}}}
    assert not power_rule.amended(listops)
    listops["config"]["data"]["synthetic_params"]["num_test"] = 3781
    assert power_rule.amended(listops)
    assert not power_rule.amended({"scale": "tiny", "dataset": "kinetics400", "config": {}})


def test_the_command_is_registered_and_writes_its_numbers(tmp_path, capsys, monkeypatch):
    assert COMMANDS["power-rule"].module == "tools.power_rule"
    # one table stands for all: the path from the folder to the file is the same for each
    monkeypatch.setattr(power_rule, "tiny_tables", lambda: [table_spec("mformer_table7")])
    with pytest.raises(FileNotFoundError, match="no folder of records"):
        power_rule.main(["--results-dir", str(tmp_path / "absent")])
    (tmp_path / "results").mkdir()
    out = tmp_path / "rule.json"
    power_rule.main(["--results-dir", str(tmp_path / "results"), "--json", str(out)])
    written = json.loads(out.read_text())
    assert written["sets"] == [] and written["tables"] == [] and written["quick_start"] is None
    assert written["without_pairs"] == ["mformer_table7"]
    assert written["records"]["commit"] == "unknown"
    assert written["rule"]["seeds"] == [5, 20] and written["rule"]["budget_min"] == 60.0
    assert "Records:" in capsys.readouterr().out
