"""The power rule's values in ``experiments.presets`` are the ones amendment 9 of docs/tiny_regime_design.md states
(test-set sizes, seeds per table), and a table at its design runs them: read back from the amendment's text, so
that neither can change without the other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from experiments.harness.spec import implemented_tables, table_spec
from experiments.presets import (
    AMENDED_SEEDS,
    AMENDED_TEST_SPLITS,
    POWER_RULE_AMENDMENT,
    TINY,
    amended,
    at_power_rule,
)
from tests import test_design_order as design_order

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "tiny_regime_design.md"


def amendment_text() -> str:
    return design_order.amendment_text(DESIGN.read_text())


def test_the_test_splits_are_the_amendments():
    text = " ".join(amendment_text().split())
    stated = {name: int(size.replace(",", "")) for name, size in re.findall(r"`(synth_\w+)` ([\d,]+)", text)}
    stated["lra_listops"] = int(re.search(r"ListOps ([\d,]+) test sequences", text).group(1).replace(",", ""))
    assert stated == {name: size for name, (_, size) in AMENDED_TEST_SPLITS.items()}


def test_the_seeds_are_the_amendments_table():
    stated = {}
    for line in amendment_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].isdigit():
            for table in cells[1].split(","):
                stated[table.split("(")[0].strip()] = int(cells[0])
    assert stated == AMENDED_SEEDS


def test_a_table_at_the_power_rule_runs_its_seeds_and_test_splits():
    moved = [table_spec(t) for t in implemented_tables() if table_spec(t).power_rule]
    assert moved, "no table runs at the power rule's design yet"
    for spec in moved:
        assert spec.tiny_seeds == AMENDED_SEEDS[spec.table_id], spec.table_id
        for row, column in spec.runs():
            try:
                data = spec.resolve(row, column, "tiny", seed=0).data
            except KeyError:
                continue  # a column without a tiny set
            split = AMENDED_TEST_SPLITS.get(data.dataset)
            if split is not None and data.synthetic_params:
                assert data.synthetic_params[split[0]] == split[1], (spec.table_id, row.key, column.column)


def test_amended_sizes_the_test_and_keeps_the_curve_and_the_training_set():
    before, after = TINY.data["K-400"], amended(TINY).data["K-400"]
    assert after.synthetic_params == {**before.synthetic_params, "num_val": 4359}
    assert after.val_curve_videos == before.synthetic_params["num_val"] == 400
    assert amended(TINY).data["EK-100"].val_curve_videos == 240
    assert amended(TINY).amendment == POWER_RULE_AMENDMENT and TINY.amendment is None
    assert amended(TINY).optim == TINY.optim and amended(TINY).model == TINY.model


def test_moving_a_table_amends_its_tiny_preset_and_seeds_only():
    import dataclasses

    from experiments.harness.spec import MetricColumn, RowSpec, TableSpec

    first = TableSpec(table_id="mformer_table3a", rows=(RowSpec("exact", 0, "Exact"),),
                      metric_columns=(MetricColumn("K-400"),), scales={"tiny": TINY, "paper": TINY}, tiny_seeds=5)
    moved = at_power_rule(first)
    assert moved.power_rule and not first.power_rule
    assert moved.scales == {"tiny": amended(TINY), "paper": TINY}
    assert moved.tiny_seeds == AMENDED_SEEDS["mformer_table3a"]
    assert dataclasses.replace(moved, scales=first.scales, tiny_seeds=first.tiny_seeds) == first


@pytest.mark.parametrize("videos", [0, -3])
def test_a_curve_of_no_videos_is_refused(videos):
    from data.datamodule import VideoDataModule

    with pytest.raises(ValueError, match="synth_objects: val_curve_videos must be at least 1"):
        VideoDataModule("synth_objects", val_curve_videos=videos)
