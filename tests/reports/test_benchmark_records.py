"""The shift family's benchmark records (``python -m reports benchmark-shift``): stamped with where and from which
code they came, merged into their file, rendered as the README's tables; a malformed file is named and kept."""

from __future__ import annotations

import json

import pytest

from reports.__main__ import main as reports_main
from reports.benchmarks import STAMP, read_records, record_shift_benchmark, shift_tables

QUICK = ["--shape", "tiny", "--repeats", "1", "--min-seconds", "0"]  # torch's own thread count: a test sets none


def test_records_are_stamped_merged_and_rendered(tmp_path):
    path = tmp_path / "shift_test.json"
    first = record_shift_benchmark(path, [*QUICK, "--variants", "msca_kv"])
    assert [r["variant"] for r in first] == ["vit", "msca_kv"]
    assert all(r[k] for r in first for k in STAMP)
    assert first[0]["command"] == f"python -m reports benchmark-shift {path} {' '.join(QUICK)} --variants msca_kv"

    block = shift_tables(tmp_path)
    (row,) = [line for line in block.splitlines() if line.startswith("| block, tiny, 1")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    vit, msca = first
    assert cells[1] == "eager"
    assert cells[3] == f"{msca['time_min_s'] / vit['time_min_s']:.3f} ({msca['time_s'] / vit['time_s']:.3f})"
    assert cells[4] == cells[5] == cells[6] == cells[7] == "—"  # not measured: MSCA-pKV, TokenShift, TSM, X-ViT
    assert cells[8] == f"{vit['ops']}; +{msca['ops'] - vit['ops']} / — / — / — / —"
    assert "all equal" in cells[9]  # the shifts add no memory
    assert f"commit {vit['commit']}" in block

    # a new run of the setting replaces all of its records: no ratio divides a record of one run by another's ViT
    second = record_shift_benchmark(path, [*QUICK, "--variants", "tsm"])
    assert read_records(path) == second and [r["variant"] for r in second] == ["vit", "tsm"]
    (row,) = [line for line in shift_tables(tmp_path).splitlines() if line.startswith("| block, tiny, 1")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    vit, tsm = second
    assert cells[3] == cells[4] == cells[5] == cells[7] == "—"
    assert cells[6] == f"{tsm['time_min_s'] / vit['time_min_s']:.3f} ({tsm['time_s'] / vit['time_s']:.3f})"

    # another setting (batch 2) is added beside it, and a new run of it leaves batch 1's records as they were
    third = record_shift_benchmark(path, [*QUICK, "--batch", "2", "--variants", "xvit"])
    assert read_records(path) == second + third and [r["batch"] for r in third] == [2, 2]


def test_a_malformed_records_file_is_named_and_left_as_it_was(tmp_path, capsys):
    path = tmp_path / "shift_bad.json"
    path.write_text('{"records": [{"variant": "vit"}]}')
    assert reports_main(["benchmark-shift", str(path), *QUICK]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "record 0 lacks" in err and "device_name" in err
    assert path.read_text() == '{"records": [{"variant": "vit"}]}'

    path.write_text(json.dumps({"records": [{**dict.fromkeys(STAMP, "x"), "unit": "block", "shape": "tiny",
                                             "batch": 1, "compiled": None, "variant": "tsm", "time_s": 1.0,
                                             "time_min_s": 1.0}]}))
    with pytest.raises(ValueError, match="no 'vit' record to divide by") as err:
        shift_tables(tmp_path)
    assert str(path) in str(err.value)
