"""The shift family's benchmark records (``python -m reports benchmark-shift``): stamped with where and from which
code they came, merged into their file, rendered as the README's tables; a malformed file is named and kept."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from reports.__main__ import main as reports_main  # noqa: E402
from reports.benchmarks import STAMP, read_records, record_shift_benchmark, shift_tables  # noqa: E402

QUICK = ["--shape", "tiny", "--repeats", "1", "--min-seconds", "0"]  # torch's own thread count: a test sets none


def test_records_are_stamped_merged_and_rendered(tmp_path):
    path = tmp_path / "shift_test.json"
    first = record_shift_benchmark(path, [*QUICK, "--variants", "msca_kv"])
    assert [r["variant"] for r in first] == ["vit", "msca_kv"]
    assert all(r[k] for r in first for k in STAMP)
    assert first[0]["command"] == f"python -m reports benchmark-shift {path} {' '.join(QUICK)} --variants msca_kv"

    second = record_shift_benchmark(path, [*QUICK, "--variants", "tsm"])
    merged = read_records(path)
    assert [r["variant"] for r in merged] == ["msca_kv", "vit", "tsm"]  # the new ViT replaced the old one
    assert merged[1] == second[0]

    block = shift_tables(tmp_path)
    (row,) = [line for line in block.splitlines() if line.startswith("| block, tiny, 1")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    vit, msca, tsm = merged[1], merged[0], merged[2]
    assert cells[1] == "eager"
    assert cells[3] == f"{msca['time_min_s'] / vit['time_min_s']:.3f} ({msca['time_s'] / vit['time_s']:.3f})"
    assert cells[4] == cells[5] == cells[7] == "—"  # not measured: MSCA-pKV, TokenShift, X-ViT
    assert cells[6].startswith(f"{tsm['time_min_s'] / vit['time_min_s']:.3f}")
    assert cells[8] == f"{vit['ops']}; +{msca['ops'] - vit['ops']} / — / — / +{tsm['ops'] - vit['ops']} / —"
    assert "all equal" in cells[9]  # the shifts add no memory
    assert f"commit {vit['commit']}" in block


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
