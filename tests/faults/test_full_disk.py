"""A disk that fills while a run trains: the checkpoint that cannot be written stops the run with one line naming the
file and the disk's reason, exit status 2; the last complete checkpoint is kept, and the same command, once there is
space again, resumes from it and finishes."""

from __future__ import annotations

import errno
import os

import torch

from data import atomic_write
from experiments.__main__ import main
from tests.experiments.micro_run import MICRO_ARGS, RUN, TABLE
from tests.faults.commands import EXACT_ARGS


def test_a_full_disk_at_a_checkpoint_stops_the_run_in_one_line_and_it_resumes(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    argv = ["run", TABLE, "--runs-dir", str(runs), "--reports-dir", str(tmp_path / "reports"), *MICRO_ARGS,
            *EXACT_ARGS]
    last = runs / RUN / "checkpoints" / "last.ckpt"
    fsync, calls = os.fsync, []

    def fills_up(fd):  # the disk is full when the third checkpoint is flushed: two complete ones are on disk
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(last.parent / ".last.ckpt.")):
            calls.append(fd)
            if len(calls) == 3:
                raise OSError(errno.ENOSPC, "No space left on device")
        return fsync(fd)

    monkeypatch.setattr(atomic_write.os, "fsync", fills_up)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {last}: No space left on device"), err
    kept = torch.load(last, weights_only=True)["global_step"]
    assert kept == 2, kept  # the last complete checkpoint
    assert not list(last.parent.glob("*.tmp")) and not (runs / RUN / "metrics.json").exists()

    monkeypatch.setattr(atomic_write.os, "fsync", fsync)  # space again
    assert main(argv) == 0, capsys.readouterr().err[-3000:]
    out = capsys.readouterr().out
    assert "resum" in out.lower(), out[-3000:]
    assert (runs / RUN / "metrics.json").exists()
