"""A process killed while writing a record, a checkpoint or a report leaves the previous complete file usable.

Each test writes a first version, then has a child process write a second one and SIGKILL itself half-way through
the bytes (a real kill: no exception handler, no cleanup runs). The first version must still be there, whole.
A control shows the same kill truncates a plain in-place write, so the interruption really lands mid-write.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Child-process prelude: every file opened for writing through os.fdopen or open() writes half of what it is
# given, flushes it to disk, and the process kills itself.
KILL_MID_WRITE = textwrap.dedent("""
    import io, os, signal, sys
    sys.path.insert(0, {repo!r})

    class HalfThenKill(io.FileIO):
        def write(self, content):
            content = bytes(content)
            super().write(content[: len(content) // 2])
            self.flush()
            os.fsync(self.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

    import data.atomic_write as atomic
    read_fdopen = os.fdopen  # the same os module every reader uses: files opened for reading stay as they were
    atomic.os.fdopen = lambda fd, mode="wb", *args, **kwargs: (
        HalfThenKill(fd, "wb", closefd=True) if any(flag in mode for flag in "wax+")
        else read_fdopen(fd, mode, *args, **kwargs))
""")


def _run_killed(code: str) -> None:
    child = subprocess.run([sys.executable, "-c", KILL_MID_WRITE.format(repo=str(REPO)) + textwrap.dedent(code)],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]


def test_killed_while_writing_metrics_json_keeps_the_previous_record(tmp_path):
    from experiments.harness.records import read_record, write_record

    path = tmp_path / "run" / "metrics.json"
    first = {"metrics": {"top1": 61.25}, "padding": "x" * 100_000}
    write_record(path, first)
    _run_killed(f"""
        from pathlib import Path
        from experiments.harness.records import write_record
        write_record(Path({str(path)!r}), {{"metrics": {{"top1": 99.0}}, "padding": "y" * 100_000}})
    """)
    assert read_record(path) == first
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # as readable as a plainly written file


def test_killed_while_writing_a_checkpoint_keeps_the_previous_checkpoint(tmp_path):
    import torch

    from lightning_modules.checkpoint_io import SafeCheckpointIO
    from models.weights import load_weights_file

    path = tmp_path / "checkpoints" / "last.ckpt"
    first = {"state_dict": {"w": torch.arange(50_000.0)}, "global_step": 3}
    SafeCheckpointIO().save_checkpoint(first, path)
    _run_killed(f"""
        import torch
        from lightning_modules.checkpoint_io import SafeCheckpointIO
        SafeCheckpointIO().save_checkpoint({{"state_dict": {{"w": torch.zeros(50_000)}}, "global_step": 9}},
                                           {str(path)!r})
    """)
    loaded = SafeCheckpointIO().load_checkpoint(path)
    assert loaded["global_step"] == 3 and torch.equal(loaded["state_dict"]["w"], first["state_dict"]["w"])
    assert load_weights_file(path)["global_step"] == 3


def test_killed_while_writing_static_json_or_a_report_keeps_the_previous_file(tmp_path):
    """static.json and the reports go through the same helper (``experiments.harness.static``, ``reports.build``)."""
    from data.atomic_write import atomic_write_text

    for name, first in (("static.json", json.dumps({"cells": {"joint": 180.5}})), ("mformer_table4.md", "# old\n")):
        path = tmp_path / name
        atomic_write_text(path, first * 1000)
        _run_killed(f"""
            from data.atomic_write import atomic_write_text
            atomic_write_text({str(path)!r}, "new contents " * 10_000)
        """)
        assert path.read_text() == first * 1000


def test_a_failed_write_leaves_no_temporary_file_and_the_old_report(tmp_path, monkeypatch):
    """An error (disk full at the rename, here) instead of a kill: the old report stays, the temporary goes."""
    import data.atomic_write as atomic
    from reports.build import build_report

    out = tmp_path / "reports"
    report = build_report("mformer_table1", runs_root=tmp_path / "runs", out_dir=out)
    before = report.read_text()

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", disk_full)
    report.write_text(before)  # same content, so we can tell a partial overwrite
    with pytest.raises(OSError, match="No space"):
        build_report("mformer_table1", runs_root=tmp_path / "runs", out_dir=out)
    assert report.read_text() == before
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "mformer_table1.md"]


def test_control_the_same_kill_truncates_a_plain_write(tmp_path):
    """Without the helper, the kill above leaves half a file: the interruption does land mid-write."""
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"metrics": {"top1": 61.25}}))
    code = KILL_MID_WRITE.format(repo=str(REPO)) + textwrap.dedent(f"""
        import json
        with open({str(path)!r}, "wb", buffering=0, opener=lambda p, f: os.open(p, f)) as handle:
            HalfThenKill(handle.fileno(), "wb", closefd=False).write(json.dumps({{"metrics": {{"top1": 99.0}},
                                                                               "pad": "y" * 1000}}).encode())
    """)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    with pytest.raises(json.JSONDecodeError):
        json.loads(path.read_text())
    assert os.path.getsize(path) > 0
