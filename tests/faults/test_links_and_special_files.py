"""Writes and reads through links, and special files where a user file should be (issue 77).

- ``reports track`` writes a tracked record only in its own table's folder under ``reports/results/``: a table
  folder that is a link (to another table's, or out of the results folder) is refused, and so is a released-weights
  record whose ``scale`` climbs out with ``../`` (it once overwrote another table's tracked record);
- a run's ``metrics.json`` or ``job.json`` that links out of the runs folder is never read: ``reports`` refuses the
  record in one line (it is never copied into ``reports/results/``), ``status`` says the job file is refused without
  showing what it points at;
- ``claims.yaml``, ``released_weights.yaml``, ``paper.yaml`` or the inventory ``paper_tables.yaml`` replaced by a
  FIFO, and ``--pretrained`` naming a FIFO, end the command in one line naming the file instead of waiting for a
  writer forever;
- the lines a run echoes (``run_line``, the ``--verbose`` dry run, where missing data was expected) show a newline or
  an ESC in a path escaped;
- ``status`` names a seed folder no ``run`` makes (``seed99999``) as left out, rather than passing over it in silence
  or blaming an option never given.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

from experiments.harness import claims as claims_module
from experiments.harness import released_weights
from experiments.harness.plan import expected_data, resolve_runs, run_line
from experiments.harness.run_dir import RunDir
from experiments.harness.spec import table_spec
from reports.records import track
from reports.released import track_released
from tests.faults.doors import one_line, run_command
from tests.faults.test_echoed_paths import NAME
from tests.reports.test_released_reports import K400
from tests.reports.test_tracked_results import make_record, write_local

SECONDS = 20  # a command that reads a FIFO waits forever: this is long enough for any that does not


def _files(root: Path) -> dict[Path, bytes | None]:
    return {p: p.read_bytes() if p.is_file() and not p.is_symlink() else None for p in root.rglob("*")}


# --- reports track writes only in the table's own tracked folder -------------------------------------------------

@pytest.mark.parametrize("target", ["outside", "another table"])
def test_track_refuses_a_tracked_table_folder_that_is_a_link(tmp_path, target):
    runs, results = tmp_path / "runs", tmp_path / "results"
    write_local(runs, make_record("mformer_table4", "joint", "K-400", 0, 60.0))
    elsewhere = tmp_path / "outside" if target == "outside" else results / "mformer_table6b"
    elsewhere.mkdir(parents=True)
    results.mkdir(exist_ok=True)
    (results / "mformer_table4").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ValueError) as caught:
        track(table_spec("mformer_table4"), runs, results)
    message = str(caught.value)
    assert "\n" not in message and str(results / "mformer_table4") in message, message
    assert list(elsewhere.iterdir()) == []


def test_track_refuses_a_released_record_whose_scale_climbs_out(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    victim = results / "mformer_table4" / "joint" / "seed0" / "tiny-k_400.json"
    victim.parent.mkdir(parents=True)
    victim.write_text("the tracked record of another table")
    crafted = {**K400, "scale": "paper/../../../../mformer_table4/joint/seed0/tiny"}
    path = runs / "mformer_table6b" / "mformer" / "released" / "paper-k_400" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(crafted))
    before = _files(tmp_path)
    with pytest.raises(ValueError) as caught:
        track_released(table_spec("mformer_table6b"), runs, results)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "scale" in message, message
    assert _files(tmp_path) == before
    assert victim.read_text() == "the tracked record of another table"


# --- a run's files that link out of the runs folder are never read ----------------------------------------------

def _linked_record(tmp_path: Path, record: dict) -> tuple[Path, Path]:
    """A local record file that is a link to a record outside the runs folder: (runs, the link)."""
    runs = tmp_path / "runs"
    outside = tmp_path / "outside" / "metrics.json"
    outside.parent.mkdir()
    outside.write_text(json.dumps(record))
    link = write_local(runs, record)
    link.unlink()
    link.symlink_to(outside)
    return runs, link


def test_track_never_copies_a_record_that_links_out_of_the_runs_folder(tmp_path):
    runs, link = _linked_record(tmp_path, make_record("mformer_table4", "joint", "K-400", 0, 60.0))
    results = tmp_path / "results"
    with pytest.raises(ValueError) as caught:
        track(table_spec("mformer_table4"), runs, results)
    message = str(caught.value)
    assert "\n" not in message and str(link) in message and "outside" in message, message
    assert not results.exists()


def test_run_refuses_its_own_record_that_links_out_of_the_runs_folder(tmp_path):
    runs, link = _linked_record(tmp_path, make_record("mformer_table4", "joint", "K-400", 0, 60.0))
    code, _, err = run_command("experiments", ["run", "mformer_table4", "--rows", "joint", "--dry-run",
                                               "--runs-dir", str(runs)])
    one_line(code, err, str(link), "outside")


def test_the_report_refuses_a_record_that_links_out_of_the_runs_folder(tmp_path):
    runs, link = _linked_record(tmp_path, make_record("mformer_table4", "joint", "K-400", 0, 60.0))
    code, _, err = run_command("reports", ["build", "mformer_table4", "--out-dir", str(tmp_path / "out"),
                                           "--runs-dir", str(runs)])
    one_line(code, err, str(link), "outside")


def test_a_released_record_that_links_out_of_the_runs_folder_is_refused(tmp_path):
    runs = tmp_path / "runs"
    outside = tmp_path / "outside" / "metrics.json"
    outside.parent.mkdir()
    outside.write_text(json.dumps(K400))
    link = runs / "mformer_table6b" / "mformer" / "released" / "paper-k_400" / "metrics.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    with pytest.raises(ValueError) as caught:
        track_released(table_spec("mformer_table6b"), runs, tmp_path / "results")
    assert str(link) in str(caught.value) and "outside" in str(caught.value), caught.value
    assert not (tmp_path / "results").exists()


def test_status_does_not_show_a_job_file_that_links_out_of_the_runs_folder(tmp_path):
    runs = tmp_path / "runs"
    cfg = resolve_runs("mformer_table4", rows=["joint"], seeds=1)[0]
    secret = tmp_path / "outside.json"
    secret.write_text(json.dumps({"state": "failed", "job_id": "SECRET-4242", "error": "SECRET-TEXT",
                                  "stderr": "/SECRET/LOG"}))
    job = RunDir.of(cfg, runs).path / "job.json"
    job.parent.mkdir(parents=True)
    job.symlink_to(secret)
    code, out, err = run_command("experiments", ["status", "mformer_table4", "--rows", "joint", "--seeds", "1",
                                                 "--runs-dir", str(runs)])
    assert code == 0, err
    assert "SECRET" not in out + err, out + err
    line = next(line for line in out.splitlines() if f"{cfg.row} / {cfg.column} seed 0" in line)
    assert "failed" in line and str(job) in line and "outside" in line, line


# --- special files where a user file should be ------------------------------------------------------------------

def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def test_a_claims_file_that_is_a_fifo_is_named(tmp_path, monkeypatch):
    path = _fifo(tmp_path / "mformer" / "claims.yaml")
    monkeypatch.setattr(claims_module, "claims_path", lambda paper: tmp_path / paper / "claims.yaml")
    code, _, err = run_command("reports", ["claims", "--check"], seconds=SECONDS)
    one_line(code, err, str(path), "not a regular file")


@pytest.fixture
def catalogue_fifo(tmp_path, monkeypatch):
    """mformer's ``released_weights.yaml`` a FIFO (every other paper's as it is)."""
    real = released_weights.catalogue_path
    path = _fifo(tmp_path / "mformer" / "released_weights.yaml")
    monkeypatch.setattr(released_weights, "catalogue_path", lambda paper: path if paper == "mformer" else real(paper))
    released_weights.paper_catalogue.cache_clear()
    released_weights.catalogue_papers.cache_clear()
    yield path
    released_weights.paper_catalogue.cache_clear()
    released_weights.catalogue_papers.cache_clear()


@pytest.mark.parametrize("argv", [
    ["weights", "--paper", "mformer"], ["weights"],
    ["evaluate", "mformer_table6b", "--rows", "mformer", "--checkpoint", "mformer:k400_motionformer_224_16x4",
     "--dry-run", "--runs-dir", "RUNS"],
], ids=["weights of the paper", "weights of every paper", "evaluate dry run"])
def test_a_catalogue_that_is_a_fifo_is_named(tmp_path, catalogue_fifo, argv):
    argv = [str(tmp_path / "runs") if arg == "RUNS" else arg for arg in argv]
    code, _, err = run_command("experiments", argv, seconds=SECONDS)
    one_line(code, err, str(catalogue_fifo), "not a regular file")


def test_a_paper_file_that_is_a_fifo_is_named(tmp_path, monkeypatch):
    paper_tables = importlib.import_module("experiments.paper_tables")  # the package names a function so too
    real = paper_tables.paper_file
    path = _fifo(tmp_path / "mformer" / "paper.yaml")
    monkeypatch.setattr(paper_tables, "paper_file", lambda code: path if code == "mformer" else real(code))
    paper_tables.papers.cache_clear()
    try:
        code, _, err = run_command("experiments", ["list"], seconds=SECONDS)
    finally:
        paper_tables.papers.cache_clear()
    one_line(code, err, str(path), "not a regular file")


def test_pretrained_weights_that_are_a_fifo_stop_the_dry_run_naming_them(tmp_path):
    path = _fifo(tmp_path / "weights.ckpt")
    code, _, err = run_command("experiments", ["run", "mformer_table4", "--rows", "joint", "--seeds", "1",
                                               "--pretrained", str(path), "--dry-run", "--runs-dir",
                                               str(tmp_path / "runs")], seconds=SECONDS)
    one_line(code, err, str(path))


# --- the lines a run echoes -------------------------------------------------------------------------------------

def test_the_run_line_shows_a_path_escaped(tmp_path):
    cfg = resolve_runs("mformer_table4", rows=["joint"], seeds=1)[0]
    line = run_line(cfg, tmp_path / NAME)
    assert "\n" not in line and "\x1b" not in line and "\\n" in line and "\\x1b" in line, line


def test_the_verbose_dry_run_shows_each_run_folder_escaped(tmp_path):
    code, out, err = run_command("experiments", ["run", "mformer_table4", "--rows", "joint", "--seeds", "1",
                                                 "--dry-run", "--verbose", "--runs-dir", str(tmp_path / NAME)])
    assert code == 0, err
    assert "\x1b" not in out and "\\x1b" in out, out
    assert not (tmp_path / NAME).exists()


def test_where_missing_data_was_expected_is_shown_escaped(tmp_path):
    cfg = resolve_runs("mformer_table4", "paper", rows=["joint"], data_root=tmp_path / NAME)[0]
    where = expected_data(cfg)
    assert where is not None and str(tmp_path) in where, where
    assert "\n" not in where and "\x1b" not in where and "\\n" in where and "\\x1b" in where, where


# --- a seed folder no run makes ---------------------------------------------------------------------------------

def test_status_names_a_seed_folder_it_leaves_out(tmp_path):
    runs = tmp_path / "runs"
    stray = runs / "mformer_table4" / "joint" / "seed99999"
    (stray / "tiny-k_400").mkdir(parents=True)
    code, out, err = run_command("experiments", ["status", "mformer_table4", "--runs-dir", str(runs)])
    assert code == 0 and err == "" and "--seeds" not in out, (out, err)
    assert f"note: {stray} left out" in out, out
    assert "seed 99999" not in out, out  # no line of a run of that seed


def test_an_inventory_that_is_a_fifo_is_named(tmp_path, monkeypatch):
    paper_tables = importlib.import_module("experiments.paper_tables")
    path = _fifo(tmp_path / "paper_tables.yaml")
    monkeypatch.setattr(paper_tables, "INVENTORY", path)
    paper_tables.paper_tables.cache_clear()
    try:
        code, _, err = run_command("experiments", ["list"], seconds=SECONDS)
    finally:
        monkeypatch.undo()
        paper_tables.paper_tables.cache_clear()
    one_line(code, err, str(path), "not a regular file")
