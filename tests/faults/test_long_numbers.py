"""A number of more digits than Python converts (4,300 by default) in a file a command reads: a paper's claims, its
catalogue of released weights, a table's static record, a record file of a tool, a run's record. Python's parsers
raise a ValueError that names no file ("Exceeds the limit (4300 digits) for integer string conversion ... use
sys.set_int_max_str_digits()"); each command ends instead in one line naming the file, and writes nothing."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import yaml

from experiments.harness import claims as claims_module
from experiments.harness import released_weights
from reports.records import RESULTS_DIR
from tests.faults.doors import one_line, run_command

LONG = "9" * 5001


def test_a_claims_file_with_a_long_number_is_named(tmp_path, monkeypatch):
    text = claims_module.claims_path("mformer").read_text()
    path = tmp_path / "mformer" / "claims.yaml"
    path.parent.mkdir()
    path.write_text(text + f"\nextra: {LONG}\n")
    monkeypatch.setattr(claims_module, "claims_path", lambda paper: tmp_path / paper / "claims.yaml")
    code, _, err = run_command("reports", ["claims", "--check"])
    one_line(code, err, str(path), "a number of more than 4,300 digits")


def test_a_catalogue_with_a_long_number_is_named(tmp_path, monkeypatch):
    source = yaml.safe_load(released_weights.catalogue_path("mformer").read_text())
    path = tmp_path / "mformer" / "released_weights.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(source) + f"\nextra: {LONG}\n")
    monkeypatch.setattr(released_weights, "catalogue_path", lambda paper: tmp_path / paper / "released_weights.yaml")
    released_weights.paper_catalogue.cache_clear()
    released_weights.catalogue_papers.cache_clear()
    try:
        code, _, err = run_command("experiments", ["weights", "--paper", "mformer"])
    finally:
        released_weights.paper_catalogue.cache_clear()
        released_weights.catalogue_papers.cache_clear()
    one_line(code, err, str(path), "a number of more than 4,300 digits")


def _long_static(runs: Path, table: str) -> Path:
    text = (RESULTS_DIR / table / "static.json").read_text()
    path = runs / table / "static.json"
    path.parent.mkdir(parents=True)
    path.write_text(text.replace("{", '{"extra": ' + LONG + ", ", 1))
    return path


def test_a_static_record_with_a_long_number_stops_the_dry_run_naming_it(tmp_path):
    path = _long_static(tmp_path / "runs", "mformer_table4")
    code, _, err = run_command("experiments", ["run", "mformer_table4", "--rows", "joint", "--seeds", "1",
                                               "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    one_line(code, err, str(path), "a number of more than 4,300 digits")
    assert sorted(p.name for p in (tmp_path / "runs" / "mformer_table4").iterdir()) == ["static.json"]


def test_a_static_record_with_a_long_number_is_named_by_the_report(tmp_path):
    path = _long_static(tmp_path / "runs", "mformer_table4")
    code, _, err = run_command("reports", ["build", "mformer_table4", "--out-dir", str(tmp_path / "out"),
                                           "--runs-dir", str(tmp_path / "runs")])
    one_line(code, err, str(path), "a number of more than 4,300 digits")


def test_a_tool_record_file_with_a_long_number_is_named(tmp_path):
    records = json.loads((RESULTS_DIR.parent / "benchmarks" / "loader_cpu.json").read_text())
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(records).replace("{", '{"extra": ' + LONG + ", ", 1))
    code, _, err = run_command("reports", ["loader-workers", str(path)])
    one_line(code, err, str(path), "a number of more than 4,300 digits")


def test_a_run_record_with_a_long_number_is_named_by_the_report(tmp_path):
    record = json.loads((RESULTS_DIR / "mformer_table4" / "joint" / "seed0" / "tiny-k_400.json").read_text())
    path = tmp_path / "runs" / "mformer_table4" / "joint" / "seed0" / "tiny-k_400" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record).replace("{", '{"extra": ' + LONG + ", ", 1))
    code, _, err = run_command("reports", ["build", "mformer_table4", "--out-dir", str(tmp_path / "out"),
                                           "--runs-dir", str(tmp_path / "runs")])
    one_line(code, err, str(path), "a number of more than 4,300 digits")


def test_a_paper_file_with_a_long_number_is_named(tmp_path, monkeypatch):
    paper_tables = importlib.import_module("experiments.paper_tables")  # the package names a function so too
    path = tmp_path / "mformer" / "paper.yaml"
    path.parent.mkdir()
    path.write_text(paper_tables.paper_file("mformer").read_text() + f"\nextra: {LONG}\n")
    real = paper_tables.paper_file
    monkeypatch.setattr(paper_tables, "paper_file", lambda code: path if code == "mformer" else real(code))
    paper_tables.papers.cache_clear()
    try:
        code, _, err = run_command("experiments", ["list"])
    finally:
        paper_tables.papers.cache_clear()
    one_line(code, err, str(path), "a number of more than 4,300 digits")
