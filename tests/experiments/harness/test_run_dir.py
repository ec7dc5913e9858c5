"""``RunDir``: each state a run folder can be in and each move between them, on small folders written by hand (a
record, a checkpoint holding only its run's state, a lock another process holds), and the rule that no other
production file names a run folder's files. Nothing trains."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from experiments.harness.plan import resolve_runs
from experiments.harness.records import RUN_STATE, DamagedRecordError, RunConflictError, run_state
from experiments.harness.run_dir import REPLACED_DIR, RunDir, find_equivalent_run
from experiments.harness.run_lock import RunBusyError, RunLockError

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = ("data", "models", "lightning_modules", "experiments", "reports", "tools")

# Another process holding a lock file as filelock does (``fcntl.flock``), until its stdin closes or it is killed
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def _cfg(table="mformer_table2b", row="traj_separatepe", **sections):
    return [c for c in resolve_runs(table, "tiny", [row], 1, None, sections) if c.column == "K-400"][0]


def _record(run, cfg, **extra):
    """A finished record of ``cfg`` in ``run``, as ``execute`` writes it."""
    run.write_record({"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": cfg.seed,
                      "scale": cfg.scale, "dataset": cfg.data.dataset, "metrics": {"top1": 50.0},
                      "config": cfg.to_dict(), **extra})


def _checkpoint(run, state):
    """A last checkpoint holding only the run's state (``RUN_STATE``; None: written before checkpoints had one)."""
    import torch

    run.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": 4, "callbacks": {} if state is None else {RUN_STATE: state}}, run.last_checkpoint)


@contextmanager
def _held_by_another_process(run):
    run.lock_file.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-S", "-c", HOLDER, str(run.lock_file)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait(30)


def _locked(lock_file: Path) -> bool:
    """Whether any open file holds the lock, seen from a descriptor of its own."""
    fd = os.open(lock_file, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


def test_the_folder_names_its_files_and_its_lock_beside_it(runs):
    run = RunDir.of(_cfg(), runs)
    assert run.path == runs / "mformer_table2b" / "traj_separatepe" / "seed0" / "tiny-k_400"
    assert run.record_file == run.path / "metrics.json"
    assert run.last_checkpoint == run.path / "checkpoints" / "last.ckpt"
    assert run.job_file == run.path / "job.json"
    assert run.lock_file == run.path.parent / ".tiny-k_400.lock"  # beside it: --force moves the folder, not the lock
    assert RunDir(str(run.path)) == run and run.relative_to(runs) == "mformer_table2b/traj_separatepe/seed0/tiny-k_400"


def test_the_last_checkpoint_is_the_one_lightning_writes():
    from lightning.pytorch.callbacks import ModelCheckpoint

    name = ModelCheckpoint.CHECKPOINT_NAME_LAST + ModelCheckpoint.FILE_EXTENSION
    assert RunDir.LAST_CHECKPOINT == f"{RunDir.CHECKPOINTS}/{name}"


def test_absent_then_busy_then_finished(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    assert run.state(cfg, runs) == "absent" and run.check(cfg, runs).state == "absent"
    with _held_by_another_process(run) as holder:
        assert run.state(cfg, runs) == "busy"
        with pytest.raises(RunBusyError, match=re.escape(f"{run.path}: skipped, another process")):
            with run.hold():
                pass
        _record(run, cfg)  # the holder records it: a record is whole once there, whoever holds the lock
        assert run.state(cfg, runs) == "finished"
        holder.stdin.close()
        holder.wait(30)
    found = run.check(cfg, runs)
    assert found.state == "finished" and found.record["metrics"] == {"top1": 50.0}


def test_holding_it_here_is_busy_for_others_only(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    with run.hold():
        assert _locked(run.lock_file) and run.state(cfg, runs) == "absent"  # this process's own run
        with run.hold():  # re-entrant: the runner holds a run it moves, then execute holds it again
            pass
        _record(run, cfg)
    assert not _locked(run.lock_file) and run.state(cfg, runs) == "finished"
    assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()  # the lock file names its last holder


def test_busy_then_resumable_once_its_holder_is_killed(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    with _held_by_another_process(run) as holder:
        _checkpoint(run, run_state(cfg, 1))  # the holder trains and checkpoints
        assert run.state(cfg, runs) == "busy"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(30)
        assert run.state(cfg, runs) == "resumable"  # the kernel freed the lock with its process
    found = run.check(cfg, runs)
    assert found.state == "resumable" and found.started == run_state(cfg, 1)


def test_a_lock_file_naming_a_dead_process_is_no_busy_run(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    dead = subprocess.Popen([sys.executable, "-S", "-c", "pass"])
    dead.wait(30)
    run.lock_file.parent.mkdir(parents=True)
    run.lock_file.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "2020-01-01"}))
    assert run.state(cfg, runs) == "absent"
    with run.hold():
        assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()


def test_a_lock_path_that_is_no_file_is_refused(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    run.lock_file.mkdir(parents=True)
    for ask in (run.check_lock_file, lambda: run.state(cfg, runs)):
        with pytest.raises(RunLockError, match=re.escape(f"{run.lock_file}: the run's lock file is a folder")):
            ask()


def test_a_checkpoint_from_before_checkpoints_named_their_run_is_resumable_unchecked(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    _checkpoint(run, None)
    assert run.state(cfg, runs) == "resumable" and run.check(cfg, runs).started is None


def test_finished_then_another_configuration_once_the_options_change(runs):
    cfg, changed = _cfg(), _cfg(optim={"lr": 0.5})
    run = RunDir.of(cfg, runs)
    _record(run, cfg)
    assert run.state(cfg, runs) == "finished" and run.state(changed, runs) == "other-configuration"
    with pytest.raises(RunConflictError) as conflict:
        run.check(changed, runs)
    assert str(conflict.value) == (
        f"{run.path}: its metrics.json was written for another run (recorded -> asked: optim.lr: 0.001 -> 0.5); "
        f"run again with --force to replace it (the old run is moved to {runs / REPLACED_DIR}/), or use another "
        f"--runs-dir")


def test_a_checkpoint_of_another_configuration_is_not_resumed(runs):
    cfg, changed = _cfg(), _cfg(optim={"lr": 0.5})
    run = RunDir.of(cfg, runs)
    _checkpoint(run, run_state(changed, 1))
    assert run.state(cfg, runs) == "other-configuration" and run.state(changed, runs) == "resumable"
    with pytest.raises(RunConflictError, match=r"its checkpoints/last\.ckpt was written for another run \(recorded "
                                               r"-> asked: optim\.lr: 0\.5 -> 0\.001\), run again with the original "
                                               r"options to finish it; run again with --force"):
        run.check(cfg, runs)


def test_a_finished_run_is_reusable_by_an_identical_run_of_another_table_unless_it_is_a_copy(runs):
    trained, identical = _cfg(), _cfg("mformer_table3a", "exact")
    source = RunDir.of(trained, runs)
    _record(source, trained)
    assert source.state(identical, runs) == "reusable"
    assert find_equivalent_run(identical, runs) == source
    assert source.state(_cfg("mformer_table3a", "exact", optim={"lr": 0.5}), runs) == "other-configuration"
    _record(source, trained, reused_from="mformer_table4/joint/seed0/tiny-k_400")  # itself a copy
    assert source.state(identical, runs) == "other-configuration" and find_equivalent_run(identical, runs) is None


def test_a_damaged_record_is_no_state_it_is_named_with_what_to_do(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    run.path.mkdir(parents=True)
    run.record_file.write_text('{"table": ')  # cut short
    message = (rf"{re.escape(str(run.record_file))}: not valid JSON \(.*\); delete the run folder "
               rf"{re.escape(str(run.path))} \(or move it away\), or run that run again with --force")
    for ask in (run.state, run.check):
        with pytest.raises(DamagedRecordError, match=message):
            ask(cfg, runs)
    assert find_equivalent_run(_cfg("mformer_table3a", "exact"), runs) is None  # passed over, not an error


def test_a_damaged_checkpoint_is_no_state_either(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    run.checkpoints_dir.mkdir(parents=True)
    run.last_checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(DamagedRecordError, match=re.escape(f"delete the run folder {run.path} (or move it away)")):
        run.state(cfg, runs)


@pytest.mark.parametrize("left", ["record", "damaged record", "checkpoint"])
def test_force_moves_the_old_run_away_whole_and_leaves_it_absent(runs, left):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    if left == "checkpoint":
        _checkpoint(run, run_state(cfg, 1))
    else:
        _record(run, cfg)
        if left == "damaged record":
            run.record_file.write_bytes(b"\xff")
    with run.hold():  # as the runner does: none takes the run while it is moved
        said = []
        run.move_away(runs, said.append)
    [archive] = (runs / REPLACED_DIR).glob(f"*/{run.relative_to(runs)}")
    assert said == [f"    previous run moved to {archive}"]
    assert run.state(cfg, runs) == "absent" and run.lock_file.exists()  # the lock stays where the run is
    moved = RunDir(archive)
    assert (moved.has_checkpoint() if left == "checkpoint" else moved.record_file.exists())
    RunDir.of(cfg, runs).move_away(runs, said.append)  # nothing left to move: nothing said
    assert len(said) == 1


def _production_files():
    return sorted(path for top in PRODUCTION for path in (REPO / top).rglob("*.py"))


# A lock beside a file that is no run folder's: the benchmark record files several smoke processes merge into
OTHER_LOCKS = {"reports/smoke_records.py"}


def test_only_run_dir_names_a_run_folders_files():
    """Code, docstrings and help text alike: elsewhere they say ``RunDir.RECORD``, ``RunDir.LAST_CHECKPOINT``, ...
    (f-strings where a user reads the name), so a renamed file changes in one place."""
    names = re.compile(r"metrics\.json|last\.ckpt|job\.json")
    lock = re.compile(r"\.lock\b(?!\s*\()")
    found = []
    for path in _production_files():
        where = path.relative_to(REPO).as_posix()
        if where == "experiments/harness/run_dir.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if names.search(line) or (lock.search(line) and where not in OTHER_LOCKS):
                found.append(f"{where}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
