"""``reports track`` reads and checks everything it copies before it copies anything: a record whose metric lies
outside its range (``metrics.top1 = 1e308`` overflowed the statistics once the record had been copied, leaving the
tracked file modified) or a damaged ``static.json`` is refused in one line naming the file, and the tracked folder is
left byte for byte as it was. A run never writes such a record either."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.harness.records import DamagedRecordError, write_record
from experiments.harness.spec import table_spec
from reports.records import track
from tests.reports.test_tracked_results import make_record, write_local, write_tracked

TABLE = "mformer_table4"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def folders(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    write_tracked(results, make_record(TABLE, "joint", "K-400", 0, 60.0))
    write_local(runs, make_record(TABLE, "joint", "K-400", 0, 61.0))  # would replace the tracked one
    return runs, results


@pytest.mark.parametrize("metrics, named", [
    ({"top1": 1e308}, "top1 1e+308 is outside 0 to 100"),
    ({"top1": 50.0, "top5": -3.0}, "top5 -3 is outside 0 to 100"),
    ({"top1": 50.0, "loss": -1.0}, "loss -1 is outside 0 to 1e+12"),
    ({"top1": 50.0, "other": 1e300}, "other 1e+300 is outside"),
])
def test_a_metric_out_of_its_range_is_refused_before_anything_is_copied(folders, metrics, named):
    runs, results = folders
    before = _files(results)
    bad = {**make_record(TABLE, "divided", "K-400", 0, 50.0), "metrics": metrics}
    local = write_local(runs, bad)
    with pytest.raises(DamagedRecordError) as refused:
        track(table_spec(TABLE), runs, results)
    message = str(refused.value)
    assert "\n" not in message and str(local) in message and named in message, message
    assert _files(results) == before


def test_a_damaged_static_record_is_refused_before_any_record_is_copied(folders):
    runs, results = folders
    before = _files(results)
    static = runs / TABLE / "static.json"
    static.write_text('{"computed_at": "9999", "cells": ')
    with pytest.raises(ValueError) as refused:
        track(table_spec(TABLE), runs, results)
    assert str(static) in str(refused.value) and "\n" not in str(refused.value)
    assert _files(results) == before


def test_a_whole_record_is_tracked(folders):
    runs, results = folders
    [written] = track(table_spec(TABLE), runs, results)
    assert json.loads(written.read_text())["metrics"] == {"top1": 61.0}


def test_a_run_never_writes_a_metric_out_of_its_range(tmp_path):
    with pytest.raises(DamagedRecordError, match="top1 101 is outside 0 to 100"):
        write_record(tmp_path / "metrics.json", {**make_record(TABLE, "joint", "K-400", 0, 50.0),
                                                 "metrics": {"top1": 101.0}})
    assert not (tmp_path / "metrics.json").exists()
