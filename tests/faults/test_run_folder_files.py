"""Every file a run folder names is checked the same way (``RunDir.checked_file``), and a damaged one is the same one
line for ``run``, ``run --dry-run`` and ``status``:

- ``metrics.json`` a folder, a FIFO, a link out of the runs folder, a link to /dev/zero or a file cut short: ``status``
  counted the run done (``has_record`` asked ``exists()``) where ``run`` refused it;
- ``checkpoints/last.ckpt`` a link out of the runs folder: ``run`` resumed from it (where ``--pretrained run:``
  refuses the same link);
- ``hparams.yaml`` a folder (Lightning's ``save_hparams_to_yaml`` failed in three tracebacks once the run had trained)
  or a FIFO (``run`` hung, SIGTERM did not end it): the run is refused before anything trains;
- ``job.json`` whose ``starts`` is ``[1]``, ``inf`` or ``"x"``: ``status`` ended in a TypeError or OverflowError, or
  said a line naming no file; every field of a job file is read through its schema.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from experiments.harness.cluster.status import run_statuses
from experiments.harness.plan import resolve_runs
from experiments.harness.records import RUN_STATE, run_state
from experiments.harness.run_dir import RunDir
from tests.faults.doors import one_line, run_command

TABLE, ROW = "mformer_table4", "joint"
SECONDS = 60  # a run that opened a FIFO waited forever: this is long enough for any that does not


@pytest.fixture
def nothing_trains(monkeypatch):
    """The data generation and every run fail the test if reached; the static columns, which ``run`` computes before
    it asks what each run does, are left out (they take seconds and are no part of what is tested)."""
    from experiments.harness import runner

    def reached(*_, **__):
        raise AssertionError("the run went past its plan")

    for step in ("prepare_generated_data", "execute"):
        monkeypatch.setattr(runner, step, reached)
    monkeypatch.setattr(runner, "compute_static", lambda *_, **__: None)


@pytest.fixture
def run(tmp_path):
    [cfg] = [c for c in resolve_runs(TABLE, "tiny", [ROW], 1, None, None) if c.column == "K-400"]
    return cfg, RunDir.of(cfg, tmp_path / "runs"), tmp_path / "runs"


def _record(cfg):
    return {"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": cfg.seed, "scale": cfg.scale,
            "dataset": cfg.data.dataset, "metrics": {"top1": 50.0}, "config": cfg.to_dict()}


def _damage(path: Path, kind: str, tmp_path: Path, whole: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link out":
        outside = tmp_path / "outside" / path.name
        outside.parent.mkdir(exist_ok=True)
        outside.write_bytes(whole)
        path.symlink_to(outside)
    elif kind == "/dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "cut":
        path.write_bytes(whole[: len(whole) // 2])


def _status(runs: Path) -> tuple[int, dict, str]:
    code, out, err = run_command("experiments", ["status", TABLE, "--scale", "tiny", "--rows", ROW, "--seeds", "1",
                                                 "--runs-dir", str(runs), "--json"], seconds=SECONDS)
    entries = {entry["run_dir"]: entry for entry in json.loads(out)} if code == 0 else {}
    return code, entries, err


def _dry_run(runs: Path) -> tuple[int, str]:
    code, _, err = run_command("experiments", ["run", TABLE, "--rows", ROW, "--seeds", "1", "--runs-dir", str(runs),
                                               "--dry-run"], seconds=SECONDS)
    return code, err


@pytest.mark.parametrize("kind", ["folder", "fifo", "link out", "/dev/zero", "cut"])
def test_a_damaged_record_is_refused_by_status_as_by_run_never_counted_done(run, tmp_path, kind):
    cfg, folder, runs = run
    _damage(folder.record_file, kind, tmp_path, json.dumps(_record(cfg)).encode())
    [status] = run_statuses([cfg], runs)
    assert status.state == "refused" and str(folder.record_file) in status.note, status
    code, entries, err = _status(runs)
    assert code == 0 and entries[str(folder.path)]["state"] == "refused", (err, entries)
    code, err = _dry_run(runs)
    one_line(code, err, str(folder.record_file))
    assert err == f"error: {entries[str(folder.path)]['note']}\n"


def test_a_checkpoint_linking_out_of_the_runs_folder_is_not_resumed(run, tmp_path):
    import torch

    cfg, folder, runs = run
    outside = tmp_path / "outside.ckpt"
    torch.save({"global_step": 4, "callbacks": {RUN_STATE: run_state(cfg, 1)}}, outside)
    folder.checkpoints_dir.mkdir(parents=True)
    folder.last_checkpoint.symlink_to(outside)
    step = folder.next_step(cfg, runs)
    assert step.action == "refuse" and "leads outside the runs folder" in step.why, step
    code, err = _dry_run(runs)
    one_line(code, err, str(folder.last_checkpoint), "leads outside the runs folder")


def _hparams_not_a_file(run, tmp_path, kind: str, with_checkpoint: bool) -> Path:
    import torch

    cfg, folder, runs = run
    if with_checkpoint:
        folder.checkpoints_dir.mkdir(parents=True)
        torch.save({"global_step": 4, "callbacks": {RUN_STATE: run_state(cfg, 1)}}, folder.last_checkpoint)
    hparams = folder.path / RunDir.HPARAMS
    _damage(hparams, kind, tmp_path, b"table: x\n")
    return hparams


def _refused_by_run(runs: Path, hparams: Path, *dry: str) -> None:
    code, _, err = run_command("experiments", ["run", TABLE, "--rows", ROW, "--seeds", "1", "--jobs", "1",
                                               "--runs-dir", str(runs), *dry], seconds=SECONDS)
    one_line(code, err, str(hparams))


@pytest.mark.parametrize("kind", ["folder", "fifo", "link out"])
@pytest.mark.parametrize("with_checkpoint", [False, True], ids=["fresh", "resumable"])
def test_hparams_yaml_that_is_no_file_refuses_the_run_in_its_plan(run, tmp_path, kind, with_checkpoint):
    """A folder there failed the run in three tracebacks after its training; a FIFO hung it, past SIGTERM: the
    plan (the dry run's, status's and the run's own, ``RunDir.next_step``) refuses it."""
    _, folder, runs = run
    hparams = _hparams_not_a_file(run, tmp_path, kind, with_checkpoint)
    _refused_by_run(runs, hparams, "--dry-run")
    code, entries, _ = _status(runs)
    assert code == 0 and entries[str(folder.path)]["state"] == "refused"
    assert str(hparams) in entries[str(folder.path)]["note"]


@pytest.mark.parametrize("kind", ["folder", "fifo", "link out"])
@pytest.mark.parametrize("with_checkpoint", [False, True], ids=["fresh", "resumable"])
def test_a_run_whose_hparams_yaml_is_no_file_ends_in_one_line_before_it_trains(run, tmp_path, nothing_trains, kind,
                                                                               with_checkpoint):
    _, _, runs = run
    _refused_by_run(runs, _hparams_not_a_file(run, tmp_path, kind, with_checkpoint))


@pytest.mark.parametrize("starts", [[1], "inf", "x", -1, 10**30])
def test_a_job_file_field_of_the_wrong_kind_is_one_line_naming_the_file(run, starts):
    cfg, folder, runs = run
    folder.path.mkdir(parents=True)
    text = json.dumps({"state": "stopped", "job_id": "7", "starts": starts}).replace('"inf"', "Infinity")
    folder.job_file.write_text(text)
    code, entries, err = _status(runs)
    assert code == 0 and "Traceback" not in err, err
    entry = entries[str(folder.path)]
    assert entry["state"] == "failed" and str(folder.job_file) in entry["note"] and "starts" in entry["note"], entry


def test_an_evaluation_whose_hparams_yaml_is_a_fifo_is_refused_in_its_plan(run, tmp_path):
    """An evaluation of released weights logs through Lightning as a run does: its folder is checked the same way."""
    from experiments.harness.run_dir import RunsTree

    cfg, _, runs = run
    folder = RunsTree(runs).released(cfg)
    _damage(folder.path / RunDir.HPARAMS, "fifo", tmp_path)
    step = folder.next_step(cfg, runs, released="mformer:k400_motionformer_224_16x4")
    assert step.action == "refuse" and "hparams.yaml: not a regular file (a FIFO)" in step.why, step
