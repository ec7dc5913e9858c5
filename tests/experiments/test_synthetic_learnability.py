"""The learnability check trains exactly the tables' tiny configuration, so their runs are reused; the sets that no
table trains so have its own records."""

import json

import pytest

from experiments.harness.plan import resolve_runs
from experiments.harness.records import comparable_config, experiment_key
from experiments.synthetic_learnability.summary import run_config, summary_rows
from reports.records import RESULTS_DIR


def _same_run(a, b) -> bool:
    return (json.dumps(comparable_config(a.to_dict()), sort_keys=True)
            == json.dumps(comparable_config(b.to_dict()), sort_keys=True))


@pytest.mark.parametrize("name,table,row,column", [
    ("synth_objects", "mformer_table4", "traj_attT_normS", "K-400"),
    ("synth_motion_pairs", "mformer_table4", "traj_attT_normS", "SSv2"),
])
def test_learnability_runs_are_the_tables_runs(name, table, row, column):
    (table_run,) = [c for c in resolve_runs(table, "tiny", [row]) if c.column == column]
    assert _same_run(run_config(name), table_run)
    assert not _same_run(run_config(name, epochs=1), table_run)


@pytest.mark.parametrize("name", ["synth_verbnoun", "synth_pose"])
def test_a_set_no_table_trains_so_has_its_own_tracked_run(name):
    """The verb-noun and pose rows learn from scratch, which no table trains: their seed-0 records are the
    experiment's own, configured exactly as it trains them, and no image stand-in is loaded."""
    (record_path,) = (RESULTS_DIR / "synthetic_learnability" / name / "seed0").glob("tiny-*.json")
    record = json.loads(record_path.read_text())
    assert experiment_key(record["config"]) == experiment_key(run_config(name).to_dict())
    assert run_config(name).model.pretrained is None


def test_unknown_set_lists_the_sets():
    with pytest.raises(KeyError, match="synth_pose"):
        run_config("synth_nothing")


def test_summary_gives_chance_per_head():
    record = {"row": "synth_verbnoun", "data": {"num_classes": {"verb": 6, "noun": 5}},
              "metrics": {"verb_top1": 83.33, "noun_top1": 81.25, "action_top1": 67.9},
              "config": {"optim": {"epochs": 40}}, "reused_from": "mformer_table6c/mformer/seed0/tiny-ek_100"}
    rows = summary_rows(record)
    assert [r[1:4] for r in rows] == [["verb_top1", "83.3", "16.7"], ["noun_top1", "81.2", "20.0"],
                                      ["action_top1", "67.9", "3.3"]]
    assert {r[5] for r in rows} == {"mformer_table6c/mformer/seed0/tiny-ek_100"}
