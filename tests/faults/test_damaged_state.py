"""Damaged state on disk: a record that is not UTF-8, not JSON or not a record's shape, a static record of the wrong
shape, a folder that takes no files. Each is one line on stderr naming the file (and the key, line and column) and
what to do, which differs for a tracked record (restore it from git) and a local one (delete or rerun the run), exit
status 2, the file left byte for byte; `--dry-run` stops where the run stops, before anything is computed; and the
table that holds the damage is the only one it stops."""

from __future__ import annotations

import json
import subprocess

import pytest

from experiments.__main__ import main as experiments_main
from reports import records as report_records
from reports.__main__ import main as reports_main

TABLE, ROW, COLUMN = "mformer_table4", "joint", "K-400"  # the table that holds the damage
OTHER, OTHER_ROW = "mformer_table6b", "mformer"  # a table that does not
RECORD = {"table": TABLE, "row": ROW, "column": COLUMN, "seed": 0, "scale": "tiny", "metrics": {"top1": 50.0},
          "finished_at": "2024-01-01T00:00:00+00:00", "git_commit": "0" * 40}
DAMAGES = {  # what the file holds -> what the error line says of it
    "not UTF-8": (json.dumps(RECORD).replace(ROW, "jo\udcffint").encode("utf-8", "surrogateescape"),
                  "not UTF-8 text (byte 0xff at line 1 column 39)"),
    "cut short": (json.dumps(RECORD).encode()[:60], "not valid JSON (Unterminated string"),
    "seed of the wrong type": (json.dumps({**RECORD, "seed": "0"}).encode(),
                               "not a run record (seed is a string, expected an integer)"),
    "not an object": (b"[1, 2]", "not a run record (a list, not an object)"),
    # nested fields of the wrong type, each named by its path in the record (pydantic's words after it)
    "a split report that is a number": (json.dumps({**RECORD, "data_report": {"train": 5}}).encode(),
                                        "not a run record (data_report.train: "),
    "a batch that is text": (json.dumps({**RECORD, "provenance": {"batch": "x"}}).encode(),
                             "not a run record (provenance.batch: "),
    "CPU kernels that are a number": (json.dumps({**RECORD, "provenance": {"cpu_kernels": 7}}).encode(),
                                      "not a run record (provenance.cpu_kernels: "),
    "classes that are text": (json.dumps({**RECORD, "data": {"num_classes": "many"}}).encode(),
                              "not a run record (data.num_classes"),
    "devices without their count": (json.dumps({**RECORD, "provenance": {"devices": ["CPU"]}}).encode(),
                                    "not a run record (provenance: devices without world_size"),
    "an infinite metric": (json.dumps({**RECORD, "metrics": {"top1": float("inf")}}).encode(),
                           "not a run record (metrics.top1: "),
    "nested past the bound": (b'{"table": ' + b"[" * 100 + b"]" * 100 + b"}", "not a record (nested more than 64"),
    "nested past Python's recursion limit": (b"[" * 100_000 + b"]" * 100_000, "not a record (nested more than 64"),
}


def write(path, content: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def table_commands(table: str, row: str, runs, out, results=None) -> dict[str, tuple]:
    """Each command that reads a table's records: (CLI main, argv)."""
    results = ["--results-dir", str(results)] if results else []
    run = ["run", table, "--rows", row, "--seeds", "1", "--jobs", "1", "--runs-dir", str(runs), "--reports-dir",
           str(out)]
    return {"dry run": (experiments_main, run + ["--dry-run"]), "run": (experiments_main, run),
            "show": (experiments_main, ["show", table, "--runs-dir", str(runs), *(results or ["--results-dir", ""])]),
            "reports build": (reports_main, ["build", table, "--runs-dir", str(runs), "--out-dir", str(out),
                                             *results])}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_local_record_stops_its_own_table_alone(tmp_path, capsys, nothing_starts, damage):
    content, said = DAMAGES[damage]
    runs, out = tmp_path / "runs", tmp_path / "out"
    path = write(runs / TABLE / ROW / "seed0" / "tiny-k_400" / "metrics.json", content)
    for name, (cli, argv) in table_commands(TABLE, ROW, runs, out).items():
        assert cli(argv) == 2, name
        err = one_error_line(capsys)
        assert err.startswith(f"error: {path}: {said}"), (name, err)
        assert f"delete the run folder {path.parent}" in err and "--force" in err and "git checkout" not in err
    assert reports_main(["compare", TABLE, "--runs-dir", str(runs)]) == 2
    assert one_error_line(capsys).startswith(f"error: {path}: {said}")
    for name, (cli, argv) in table_commands(OTHER, OTHER_ROW, runs, out).items():
        if name != "run":  # the other table's run would train: its dry run says what it would do
            assert cli(argv) == 0, (name, capsys.readouterr().err)
    assert path.read_bytes() == content


@pytest.mark.parametrize("damage", ["not UTF-8", "seed of the wrong type"])
def test_a_damaged_tracked_record_says_to_restore_it_from_git(tmp_path, capsys, monkeypatch, nothing_starts,
                                                              damage):
    content, said = DAMAGES[damage]
    results, runs, out = tmp_path / "results", tmp_path / "runs", tmp_path / "out"
    path = write(results / TABLE / ROW / "seed0" / "tiny-k_400.json", content)
    monkeypatch.setattr(report_records, "RESULTS_DIR", results)  # what `run` compares its runs with
    for name, (cli, argv) in table_commands(TABLE, ROW, runs, out, results).items():
        assert cli(argv) == 2, name
        err = one_error_line(capsys)
        assert err.startswith(f"error: {path}: {said}"), (name, err)
        assert f"`git checkout -- {path}`" in err and f"`python -m reports track {TABLE}`" in err, err
        assert "--force" not in err and "delete" not in err, err
    for name, (cli, argv) in table_commands(OTHER, OTHER_ROW, runs, out, results).items():
        if name != "run":
            assert cli(argv) == 0, (name, capsys.readouterr().err)
    assert path.read_bytes() == content


def test_building_several_reports_refuses_the_damaged_table_and_builds_the_others(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    content, said = DAMAGES["cut short"]
    path = write(runs / TABLE / ROW / "seed0" / "tiny-k_400" / "metrics.json", content)
    assert reports_main(["build", TABLE, OTHER, "--runs-dir", str(runs), "--out-dir", str(out)]) == 2
    assert one_error_line(capsys).startswith(f"error: {path}: {said}")
    assert (out / f"{OTHER}.md").exists() and not (out / f"{TABLE}.md").exists()
    index = (out / "README.md").read_text()
    assert f"a damaged record: `python -m reports build {TABLE}` names it" in index
    assert path.read_bytes() == content


@pytest.mark.parametrize("content, said", [
    (b"[]", "not a static record (the file is not a JSON object)"),
    (b'{"cells": []}', "not a static record (cells: Input should be a valid dictionary)"),
    (json.dumps({"cells": {ROW: {"GFLOPS": {"value": "many", "text": "1", "source": "computed"}}}}).encode(),
     f"not a static record (cells.{ROW}.GFLOPS.value: Input should be a valid number (got 'many'))"),
    (json.dumps({"cells": {ROW: {"GFLOPS": {"value": 1.0, "source": "computed"}}}}).encode(),
     f"not a static record (missing key 'cells.{ROW}.GFLOPS.text')"),
    (json.dumps({"cells": {ROW: {"GFLOPS": {"value": float("inf"), "text": "1", "source": "computed"}}}}).encode(),
     f"not a static record (cells.{ROW}.GFLOPS.value: Input should be a finite number (got 'inf'))"),
    (b'{"cells": {}, "computed_at": 7}',
     "not a static record (computed_at: Input should be a valid string (got '7'))"),
    (b'{"cells": {}, "computed_at": "yesterday"}',
     "not a static record (computed_at: Invalid isoformat string: 'yesterday')"),
    (b'{"cells": {}, "configurations": ' + b"[" * 100 + b"]" * 100 + b"}", "not a record (nested more than 64 deep)"),
    (b"{\"cells\": {}, \"device\": \"\xff\"}", "not UTF-8 text (byte 0xff at line 1 column 26)"),
])
def test_a_static_record_of_the_wrong_shape_is_one_line_naming_the_key(tmp_path, capsys, nothing_starts, content,
                                                                        said):
    runs, out = tmp_path / "runs", tmp_path / "out"
    path = write(runs / TABLE / "static.json", content)
    for name, (cli, argv) in table_commands(TABLE, ROW, runs, out).items():
        assert cli(argv) == 2, name
        err = one_error_line(capsys)
        assert err.startswith(f"error: {path}: {said}; delete it and run `python -m experiments static {TABLE}`"), \
            (name, err)
    assert experiments_main(["show", OTHER, "--runs-dir", str(runs), "--results-dir", ""]) == 0
    assert path.read_bytes() == content


def test_a_damaged_tracked_static_record_says_to_restore_it_from_git(tmp_path, capsys):
    results = tmp_path / "results"
    path = write(results / TABLE / "static.json", b'{"cells": {"joint": 3}}')
    assert experiments_main(["show", TABLE, "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(results)]) == 2
    err = one_error_line(capsys)
    assert err.startswith(f"error: {path}: not a static record (cells.joint: Input should be a valid dictionary "
                          f"(got '3')); restore it with `git checkout -- {path}`"), err


@pytest.fixture
def read_only(tmp_path):
    """A folder no process may write, root included: read-only permissions, and where they do not hold (root),
    the immutable attribute; skipped where neither can be had."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    try:
        (folder / "probe").touch()
    except PermissionError:
        pass
    else:
        (folder / "probe").unlink()
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode == 0
        if not immutable:
            folder.chmod(0o755)
            pytest.skip("this user writes into read-only folders, and chattr +i is not available")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_a_read_only_runs_folder_stops_the_run_and_its_dry_run_naming_it(tmp_path, capsys, nothing_starts,
                                                                         read_only):
    base = ["run", TABLE, "--rows", ROW, "--seeds", "1", "--jobs", "1", "--runs-dir", str(read_only),
            "--reports-dir", str(tmp_path / "reports")]
    errors = []
    for argv in (base + ["--dry-run"], base, ["static", TABLE, "--runs-dir", str(read_only)]):
        assert experiments_main(argv) == 2
        errors.append(one_error_line(capsys))
    assert errors[0] == errors[1] == errors[2]
    assert errors[0].startswith(f"error: {read_only / TABLE}: cannot write there (it would be created in "
                                f"{read_only})") and "--runs-dir" in errors[0]
    assert list(read_only.iterdir()) == []


def test_a_read_only_reports_folder_stops_run_and_reports_build_naming_it(tmp_path, capsys, nothing_starts,
                                                                          read_only):
    run = ["run", TABLE, "--rows", ROW, "--seeds", "1", "--jobs", "1", "--runs-dir", str(tmp_path / "runs"),
           "--reports-dir", str(read_only)]
    for argv in (run + ["--dry-run"], run):
        assert experiments_main(argv) == 2
        err = one_error_line(capsys)
        assert err.startswith(f"error: {read_only}: cannot write there") and "--reports-dir" in err, err
    assert reports_main(["build", TABLE, "--runs-dir", str(tmp_path / "runs"), "--out-dir", str(read_only)]) == 2
    err = one_error_line(capsys)
    assert err.startswith(f"error: {read_only}: cannot write there") and "--out-dir" in err, err
    assert list(read_only.iterdir()) == []


def test_a_fifo_as_a_record_is_refused_before_it_is_opened(tmp_path, capsys, nothing_starts):
    """Opening a FIFO for reading waits for a writer forever: every command that reads the record refuses it as
    no regular file instead (an alarm fails the test where one would wait)."""
    import os
    import signal

    runs, out = tmp_path / "runs", tmp_path / "out"
    path = runs / TABLE / ROW / "seed0" / "tiny-k_400" / "metrics.json"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)

    def hung(*_):
        raise AssertionError("the command waits on the FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    try:
        for name, (cli, argv) in table_commands(TABLE, ROW, runs, out).items():
            signal.alarm(60)
            assert cli(argv) == 2, name
            signal.alarm(0)
            assert one_error_line(capsys).startswith(f"error: {path}: not a regular file (a FIFO); "), name
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("kind", ["folder", "symlink"])
def test_a_run_lock_path_that_is_no_file_is_one_line_naming_it(tmp_path, capsys, nothing_starts, kind):
    """A folder or a link where a run's lock file goes is refused naming it, by the dry run as by the run, before
    anything starts; a link's target is left untouched."""
    from experiments.harness.plan import resolve_runs
    from experiments.harness.run_dir import RunDir

    runs, out = tmp_path / "runs", tmp_path / "out"
    lock = RunDir.of(resolve_runs(TABLE, "tiny", [ROW], 1, None, None)[0], runs).lock_file
    lock.parent.mkdir(parents=True)
    target = tmp_path / "elsewhere.txt"
    target.write_text("not a lock")
    lock.mkdir() if kind == "folder" else lock.symlink_to(target)
    commands = table_commands(TABLE, ROW, runs, out)
    for name in ("dry run", "run"):
        assert experiments_main(commands[name][1]) == 2, name
        err = one_error_line(capsys)
        assert err.startswith(f"error: {lock}: the run's lock file is a {kind}"), err
    assert target.read_text() == "not a lock"
