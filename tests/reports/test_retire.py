"""``python -m reports retire``: a table's tracked records that its spec no longer configures move to the table that
still does, or go; worked out by hand on two toy tables, one moved to a new tiny preset, one left at the old."""

from __future__ import annotations

import dataclasses
import json

import pytest

from experiments.harness import spec as spec_module
from experiments.harness.plan import resolve_runs
from experiments.harness.spec import DataConfig, MetricColumn, ModelConfig, OptimConfig, RowSpec, ScalePreset, TableSpec
from reports import retire as retire_module
from reports.retire import retire

OLD = ScalePreset("tiny", ModelConfig("toy_tiny", {"depth": 2}),
                  {"A": DataConfig("synth_motion", "video_classification")}, OptimConfig(lr=1e-3, epochs=4))
NEW = dataclasses.replace(OLD, model=ModelConfig("toy_tiny", {"depth": 3}))
MOVED, KEPT = "toy_moved_to_new_preset", "toy_left_at_old_preset"


def _table(table_id: str, tiny: ScalePreset, rows: tuple[RowSpec, ...]) -> TableSpec:
    return TableSpec(table_id, rows, (MetricColumn("A"),), {"tiny": tiny}, is_paper_table=False)


@pytest.fixture
def toys(monkeypatch):
    monkeypatch.setitem(spec_module._TABLE_SPECS, MOVED, lambda: _table(
        MOVED, NEW, (RowSpec("base", 0, "Base"), RowSpec("wide", 1, "Wide", model={"heads": 4}))))
    monkeypatch.setitem(spec_module._TABLE_SPECS, KEPT, lambda: _table(KEPT, OLD, (RowSpec("plain", 0, "Plain"),)))
    monkeypatch.setattr(retire_module, "registered_specs", lambda: [MOVED, KEPT])


def _record(row: str, seed: int, top1: float, depth: int | None) -> dict:
    """A record of MOVED's row, configured with the given depth (3: today's; 2: the old preset's); None: no
    configuration (a record from before runs stored theirs)."""
    cfg = next(c for c in resolve_runs(MOVED, "tiny", [row], seed + 1) if c.seed == seed).to_dict()
    cfg["model"]["overrides"]["depth"] = depth
    record = {"table": MOVED, "row": row, "column": "A", "seed": seed, "scale": "tiny", "dataset": "synth_motion",
              "metrics": {"top1": top1}, "git_commit": "a" * 40, "config": cfg}
    if depth is None:
        del record["config"]
    return record


def _write(results, record: dict, table: str | None = None, row: str | None = None):
    path = results / (table or record["table"]) / (row or record["row"]) / f"seed{record['seed']}" / "tiny-a.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_a_record_still_configured_elsewhere_moves_there_and_one_configured_nowhere_goes(tmp_path, toys):
    """base seed 0 at depth 2 is KEPT's plain run: it moves under KEPT/plain, named so, with moved_from; wide seed 0
    at depth 2 (heads 4) is nobody's run: removed; base seed 1 at depth 3 is MOVED's run today, and a record without
    a configuration cannot be compared: both kept. Dry run first: it changes nothing."""
    old_base = _write(tmp_path, _record("base", 0, 50.0, depth=2))
    old_wide = _write(tmp_path, _record("wide", 0, 60.0, depth=2))
    new_base = _write(tmp_path, _record("base", 1, 70.0, depth=3))
    unknown = _write(tmp_path, _record("wide", 1, 80.0, depth=None))
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    target = tmp_path / KEPT / "plain" / "seed0" / "tiny-a.json"

    planned = retire(MOVED, tmp_path, dry_run=True)
    assert [(r.record, r.moved_to) for r in planned] == [(old_base, target), (old_wide, None)]
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == before

    assert retire(MOVED, tmp_path) == planned
    assert not old_base.exists() and not old_wide.exists() and new_base.exists() and unknown.exists()
    assert not (tmp_path / MOVED / "wide" / "seed0").exists()  # emptied folders go too
    moved = json.loads(target.read_text())
    assert (moved["table"], moved["row"], moved["column"], moved["metrics"]) == (KEPT, "plain", "A", {"top1": 50.0})
    assert moved["moved_from"] == f"{MOVED}/base/seed0/tiny-a"
    assert retire(MOVED, tmp_path) == []  # nothing left to retire


def test_a_record_of_the_run_already_tracked_there_leaves_that_one_alone(tmp_path, toys):
    """KEPT/plain seed 0 is tracked already (40.0): MOVED's copy of the same run (50.0) is removed, not written over
    it; a record moved before keeps the moved_from it had."""
    _write(tmp_path, {**_record("base", 0, 40.0, depth=2), "table": KEPT, "row": "plain"}, KEPT, "plain")
    _write(tmp_path, _record("base", 0, 50.0, depth=2))
    earlier = _write(tmp_path, {**_record("base", 1, 55.0, depth=2), "moved_from": "somewhere/else/seed1/tiny-a"})
    retired = retire(MOVED, tmp_path)
    assert [r.moved_to for r in retired] == [tmp_path / KEPT / "plain" / "seed0" / "tiny-a.json",
                                             tmp_path / KEPT / "plain" / "seed1" / "tiny-a.json"]
    assert json.loads(retired[0].moved_to.read_text())["metrics"] == {"top1": 40.0}
    assert json.loads(retired[1].moved_to.read_text())["moved_from"] == "somewhere/else/seed1/tiny-a"
    assert not earlier.exists()


def test_retire_refuses_an_unknown_id_before_touching_anything(capsys):
    from reports.__main__ import main

    assert main(["retire", "msca_tabel1", "--dry-run"]) == 2
    assert "msca_tabel1" in capsys.readouterr().err
