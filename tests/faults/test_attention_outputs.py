"""What ``attention`` and ``attention-score`` write, and from what: through the one writer, checked before the work.

- ``attention --out`` naming an existing file, a FIFO or /dev/null ended in a FileExistsError's traceback (once the
  model was built and the clip decoded); ``attention-score --out DIR`` in an IsADirectoryError's: one line now;
- ``attention --out D`` where ``D/<figure>.png`` links outside: the outside file was overwritten with the PNG; the
  link is replaced now, its target untouched;
- both echoed the paths they wrote raw, a newline and an ESC included: escaped now;
- ``attention-score --update`` onto a record whose ``commit`` is ``[1]`` or ``5`` ended in a TypeError: the old
  record is read through its schema, before anything is scored;
- ``attention-score`` loaded a ``checkpoints/last.ckpt`` linking out of the runs folder: refused now, as ``run``
  refuses to resume from it.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from experiments.harness.attention import data_classes, row_config
from experiments.harness.run_dir import RunDir
from experiments.harness.tasks import build_model
from tests.experiments.harness.test_attention_measures import finished_run
from tests.faults.doors import one_line, run_command
from tests.faults.test_echoed_paths import NAME, no_control_characters

TABLE, ROW = "mformer_table4", "joint"
SCORED_ROW = "traj_attT_normS"
FIGURE = "mformer_fig1_fig4_joint.png"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    cfg = row_config(TABLE, ROW, "tiny", None)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "joint.pt"
    torch.save(build_model(cfg, data_classes(cfg)).state_dict(), path)
    return path


def _draw(weights, out) -> tuple[int, str, str]:
    return run_command("experiments", ["attention", TABLE, "--rows", ROW, "--weights", str(weights), "--out",
                                       str(out)], seconds=120)


@pytest.mark.parametrize("kind", ["file", "fifo", "/dev/null"])
def test_attention_out_that_is_no_folder_is_one_line_before_the_work(tmp_path, kind, monkeypatch):
    from experiments.harness import attention

    def built(*_, **__):
        raise AssertionError("the model was built before --out was checked")

    monkeypatch.setattr(attention, "build_row_model", built)
    out = tmp_path / "out" if kind != "/dev/null" else "/dev/null"
    if kind == "file":
        out.write_text("keep")
    elif kind == "fifo":
        os.mkfifo(out)
    code, _, err = run_command("experiments", ["attention", TABLE, "--rows", ROW, "--out", str(out)], seconds=30)
    one_line(code, err, f"{out}: a ", "not a folder")


def test_attention_replaces_a_link_where_a_figure_goes_and_leaves_its_target(tmp_path, weights):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / FIGURE).symlink_to(outside)
    code, said, err = _draw(weights, out)
    assert code == 0, err
    assert outside.read_text() == "keep" and not (out / FIGURE).is_symlink()
    assert (out / FIGURE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(out / FIGURE) in said


def test_attention_echoes_what_it_wrote_escaped(tmp_path, weights):
    code, said, err = _draw(weights, tmp_path / NAME)
    assert code == 0, err
    no_control_characters(said, lines=1)


@pytest.fixture
def scored(tmp_path):
    runs = tmp_path / "runs"
    cfg = finished_run(runs, TABLE, SCORED_ROW, "SSv2")
    return runs, cfg


def _score(runs, *options) -> tuple[int, str, str]:
    return run_command("experiments", ["attention-score", TABLE, "--rows", SCORED_ROW, "--runs-dir", str(runs),
                                       "--limit", "1", *options], seconds=120)


def test_attention_score_out_that_is_a_folder_is_one_line(scored, tmp_path):
    runs, _ = scored
    (tmp_path / "record").mkdir()
    code, _, err = _score(runs, "--out", str(tmp_path / "record"))
    one_line(code, err, f"{tmp_path / 'record'}: a folder, not a file")


@pytest.mark.parametrize("commit", [[1], 5])
def test_attention_score_update_onto_a_record_of_the_wrong_shape_is_one_line(scored, tmp_path, commit):
    runs, _ = scored
    record = tmp_path / "record.json"
    code, _, err = _score(runs, "--out", str(record))
    assert code == 0, err
    written = json.loads(record.read_text())
    record.write_text(json.dumps({**written, "commit": commit}))
    code, _, err = _score(runs, "--out", str(record), "--update")
    one_line(code, err, str(record), "commit")
    assert json.loads(record.read_text())["commit"] == commit  # left as it was


def test_attention_score_refuses_a_checkpoint_linking_out_of_the_runs_folder(scored, tmp_path):
    runs, cfg = scored
    run = RunDir.of(cfg, runs)
    outside = tmp_path / "outside.ckpt"
    run.last_checkpoint.rename(outside)
    run.last_checkpoint.symlink_to(outside)
    code, _, err = _score(runs, "--out", str(tmp_path / "record.json"))
    one_line(code, err, str(run.last_checkpoint), "leads outside the runs folder")
    assert not (tmp_path / "record.json").exists()


def test_attention_score_echoes_what_it_wrote_escaped(scored, tmp_path):
    runs, _ = scored
    code, said, err = _score(runs, "--out", str(tmp_path / f"{NAME}.json"))
    assert code == 0, err
    no_control_characters(said.splitlines()[-1] + "\n", lines=1)


@pytest.mark.parametrize("command", ["attention", "predict"])
def test_a_run_folders_checkpoint_linking_out_of_it_is_not_loaded(scored, tmp_path, command):
    """``--run RUN_DIR`` names a run folder: its checkpoint is its own file, as ``run`` and ``attention-score`` read
    it, never a link out of it."""
    runs, cfg = scored
    run = RunDir.of(cfg, runs)
    outside = tmp_path / "outside.ckpt"
    run.last_checkpoint.rename(outside)
    run.last_checkpoint.symlink_to(outside)
    import numpy as np

    from data.video_io import write_video

    clip = write_video(tmp_path / "clip.mp4", np.zeros((16, 32, 32, 3), np.uint8), 8)
    argv = ["attention", TABLE, "--rows", SCORED_ROW, "--column", "SSv2", "--out", str(tmp_path / "out")] \
        if command == "attention" else ["predict", str(clip)]
    code, _, err = run_command("experiments", [*argv, "--run", str(run.path)], seconds=120)
    one_line(code, err, str(run.last_checkpoint), "leads outside")
