"""Paths read from a record or a source string stay in the runs folder: a record's ``reused_from`` that is absolute,
climbs out with ``..``, or leads through a symlink out of the folder is refused naming the record and the field; a
``run:TABLE/ROW/COLUMN`` source with a part that is ``..``, holds a ``/`` or names no registered table, row or column
is refused with one line naming it, by ``--dry-run`` exactly as by a real run, before anything runs."""

import json
import re

import pytest
import torch

from experiments.__main__ import main
from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import RunDir, pretrained_weights

SOURCE = "run:mformer_table6b/mformer/K-400"


def _record(cfg, **extra) -> str:
    return json.dumps({"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": cfg.seed,
                       "scale": cfg.scale, "config": cfg.to_dict(), "metrics": {"top1": 50.0}, **extra})


@pytest.fixture
def reused(tmp_path):
    """Table 6b's K-400 run under ``tmp_path/runs``, as a record that reuses another run, and a checkpoint outside the
    runs folder that a record must not reach; returns (runs, the record file, the outside run folder, a run that
    starts from ``SOURCE``)."""
    runs = tmp_path / "runs"
    record = RunDir.of(resolve_runs("mformer_table6b", rows=["mformer"])[0], runs).path / "metrics.json"
    record.parent.mkdir(parents=True)
    outside = tmp_path / "elsewhere" / "run"
    (outside / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}}, outside / "checkpoints" / "last.ckpt")
    cfg = resolve_runs("mformer_table4", rows=["joint"], overrides={"model": {"pretrained": SOURCE}})[0]
    return runs, record, outside, cfg


def _write(record, reused_from):
    cfg = resolve_runs("mformer_table6b", rows=["mformer"])[0]
    record.write_text(_record(cfg, reused_from=reused_from))


def _refused(call, *named):
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and all(str(n) in message for n in named), message
    return message


def test_an_absolute_reused_from_is_refused(reused):
    runs, record, outside, cfg = reused
    _write(record, str(outside))
    _refused(lambda: pretrained_weights(cfg, runs), record, "reused_from", outside)


def test_a_reused_from_that_climbs_out_is_refused(reused):
    runs, record, outside, cfg = reused
    _write(record, "../elsewhere/run")
    _refused(lambda: pretrained_weights(cfg, runs), record, "reused_from", "../elsewhere/run")


def test_a_reused_from_through_a_symlink_out_of_the_runs_folder_is_refused(reused):
    runs, record, outside, cfg = reused
    link = runs / "mformer_table4" / "linked"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)
    _write(record, "mformer_table4/linked")
    _refused(lambda: pretrained_weights(cfg, runs), record, "reused_from", f"resolves to {outside.resolve()}")


def test_a_reused_from_that_is_no_folder_name_is_refused(reused):
    runs, record, outside, cfg = reused
    _write(record, ["..", "elsewhere"])
    _refused(lambda: pretrained_weights(cfg, runs), record, "reused_from is a list, expected a string or null")


def test_a_reused_from_with_a_nul_byte_is_refused_naming_the_record(reused):
    runs, record, outside, cfg = reused
    _write(record, "mformer_table6b/mformer\0/seed0")
    _refused(lambda: pretrained_weights(cfg, runs), record, "reused_from", "NUL byte")


def test_a_checkpoint_that_is_a_symlink_out_of_the_runs_folder_is_refused(reused):
    runs, record, outside, cfg = reused
    _write(record, "mformer_table4/traj_attT_normS/seed0/tiny-k_400")
    last = runs / "mformer_table4" / "traj_attT_normS" / "seed0" / "tiny-k_400" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.symlink_to(outside / "checkpoints" / "last.ckpt")
    _refused(lambda: pretrained_weights(cfg, runs), SOURCE, last, "outside the runs folder")
    last.unlink()
    torch.save({"state_dict": {}}, last)  # the same chain inside the folder resolves
    assert pretrained_weights(cfg, runs) == str(last)


BAD_SOURCES = {
    "run:../mformer_table4/joint": "'..' is not a table name",
    "run:mformer_table4/../K-400": "'..' is not a row name",
    "run:/etc/passwd/x": "expected run:TABLE/ROW/COLUMN",
    "run:mformer_table4/joint/K-400/../../x": "expected run:TABLE/ROW/COLUMN",
    "run:mformer_table4/joint": "expected run:TABLE/ROW/COLUMN",
    "run:mformer_table4/joint\\..\\..\\x/K-400": "is not a row name",
    "run:mformer_tabel4/joint/K-400": "unknown table id 'mformer_tabel4'. Did you mean: mformer_table4",
    "run:mformer_table4/nope/K-400": "mformer_table4 has no row 'nope'; its rows: joint, divided",
    "run:mformer_table4/joint/K-4000": "mformer_table4 has no column 'K-4000'; its columns: K-400, SSv2",
}


@pytest.mark.parametrize("source", list(BAD_SOURCES))
def test_a_bad_run_source_is_refused_by_the_dry_run_where_a_run_would_refuse_it(tmp_path, capsys, source):
    runs = tmp_path / "runs"
    for extra in (["--dry-run"], []):
        assert main(["run", "mformer_table4", "--rows", "joint", "--seeds", "1", "--pretrained", source,
                     "--runs-dir", str(runs), "--no-progress-bar", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith(f"error: pretrained source {source!r}: "), err
        assert re.search(re.escape(BAD_SOURCES[source]), err), err
    assert not (runs / "mformer_table4").exists()  # nothing ran


TRAVERSALS = [("row", "../../../../escaped"), ("row", "/abs/escaped"), ("row", ".."),
              ("scale", "tiny/../../../../mformer_table6b/mformer_l/seed0/tiny"), ("scale", "../../escaped"),
              ("scale", "huge"), ("table", "../escaped"), ("seed", "0/../../../escaped"), ("seed", -1),
              ("column", "../../../../escaped")]


@pytest.mark.parametrize("field, value", TRAVERSALS)
def test_tracking_a_record_never_writes_outside_the_tracked_folder(tmp_path, field, value):
    """``reports track`` names the tracked file by the record's own fields: a local record with any field (table,
    row, seed, scale, column) that would climb out of ``<results>/<table>/`` is refused with one line naming the
    file and the field, and nothing is written anywhere (the good records of the table neither: every path is
    checked before the first write). A column is written as its slug (letters, digits and _), so it cannot climb."""
    from experiments.harness.spec import table_spec
    from reports.records import track
    from tests.reports.test_tracked_results import make_record, write_local

    runs, results = tmp_path / "runs", tmp_path / "results"
    victim = results / "mformer_table6b" / "mformer_l" / "seed0" / "tiny-k_400.json"
    victim.parent.mkdir(parents=True)
    victim.write_text("the tracked record of another table")
    good = make_record("mformer_table4", "divided", "K-400", 0, 60.0)
    write_local(runs, good)
    crafted = make_record("mformer_table4", "joint", "K-400", 0, 60.0)
    path = write_local(runs, crafted)
    path.write_text(json.dumps({**crafted, field: value}))
    before = {p: p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")}
    try:
        written = track(table_spec("mformer_table4"), runs, results)
    except ValueError as err:
        assert str(path) in str(err) and field in str(err) and "\n" not in str(err), err
        assert {p: p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")} == before
    else:  # only a field that cannot climb (the column, written as its slug) is tracked, in its own table's folder
        assert field == "column", written
        assert all(p.resolve().is_relative_to((results / "mformer_table4").resolve()) for p in written), written
    assert victim.read_text() == "the tracked record of another table"
    assert not (tmp_path / "escaped").exists() and not (results.parent / "escaped").exists()
