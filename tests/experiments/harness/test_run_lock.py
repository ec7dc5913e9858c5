"""``RunDir.hold``: one process at a time holds a run directory; another gets ``RunBusyError`` naming the directory and
the holder, in the command's own process and in a worker of ``--jobs`` alike."""

import json
import os
import signal
import subprocess
import sys

import pytest

from experiments.harness.jobs import run_side_by_side
from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import RunDir
from experiments.harness.run_lock import RunBusyError
from tests.experiments.micro_run import ROW, TABLE

HOLD = """
import sys, time
from experiments.harness.run_dir import RunDir
with RunDir(sys.argv[1]).hold():
    print("held", flush=True)
    sys.stdin.read()  # until the test closes it
"""


@pytest.fixture
def held_elsewhere(tmp_path):
    """A run directory whose lock another live process holds; yields (directory, that process's pid)."""
    run_dir = tmp_path / "runs" / TABLE / ROW / "seed0" / "tiny-k_400"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield run_dir, holder.pid
    finally:
        holder.stdin.close()
        holder.wait(30)


def test_a_run_held_by_another_process_is_refused_with_its_directory_and_holder(held_elsewhere):
    run_dir, pid = held_elsewhere
    since = json.loads(RunDir(run_dir).lock_file.read_text())["since"]
    with pytest.raises(RunBusyError) as busy:
        with RunDir(run_dir).hold():
            pass
    assert str(busy.value) == (f"{run_dir}: skipped, process {pid} since {since} is running it in this runs folder; "
                               f"its result is recorded there when it ends (run this command again then to use it)")
    assert not run_dir.exists()  # the lock sits beside the run: a refused run leaves no directory


def test_the_lock_is_re_entrant_in_its_process_and_free_once_left(tmp_path):
    run_dir = tmp_path / "runs" / "t" / "r" / "seed0" / "tiny-c"
    with RunDir(run_dir).hold():
        with RunDir(run_dir).hold():  # the runner holds a run it moves with --force, then execute holds it again
            pass
        probe = subprocess.run([sys.executable, "-c", HOLD, str(run_dir)], input="", capture_output=True,
                               text=True, timeout=60)
        assert probe.returncode == 1 and "RunBusyError" in probe.stderr  # still held after the inner block
    probe = subprocess.run([sys.executable, "-c", HOLD, str(run_dir)], input="", capture_output=True,
                           text=True, timeout=60)
    assert probe.returncode == 0 and probe.stdout == "held\n"
    assert json.loads(RunDir(run_dir).lock_file.read_text())["pid"] != os.getpid()  # the last holder: that process


def test_a_lock_file_that_names_no_process_still_refuses_and_says_so(held_elsewhere):
    run_dir, _ = held_elsewhere
    RunDir(run_dir).lock_file.write_text("not ours")  # the lock is on the file, not on what it says
    with pytest.raises(RunBusyError, match=r"skipped, another process \(its lock .*\.tiny-k_400\.lock does not say "
                                           r"which\) is running it"):
        with RunDir(run_dir).hold():
            pass


def test_a_worker_of_jobs_skips_a_held_run_without_failing_the_table(held_elsewhere):
    run_dir, pid = held_elsewhere
    cfg = resolve_runs(TABLE, "tiny", [ROW], 1, None, None)[0]
    assert RunDir.of(cfg, run_dir.parents[3]).path == run_dir
    [(index, outcome)] = list(run_side_by_side([cfg], 1, run_dir.parents[3], force=False))
    assert index == 0 and isinstance(outcome, RunBusyError) and f"skipped, process {pid} since" in str(outcome)
    assert not run_dir.exists()



def test_a_process_the_holder_forked_does_not_keep_its_lock(tmp_path):
    """A DataLoader worker is forked from the run's process: when that process is killed, the lock is free at once,
    while the worker still runs."""
    run_dir = tmp_path / "runs" / "t" / "r" / "seed0" / "tiny-c"
    # The child prints its own pid: fork has returned in the child, so its at-fork hooks (where filelock closes the
    # lock's descriptor) have run. Read from the parent, the pid could arrive before the child is ever scheduled.
    forking = HOLD.replace("import sys, time", "import os, sys, time").replace(
        'print("held", flush=True)',
        'os.fork() or (print(os.getpid(), flush=True), time.sleep(30), os._exit(0))')
    holder = subprocess.Popen([sys.executable, "-c", forking, str(run_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    try:
        holder.kill()
        holder.wait()
        os.kill(child, 0)  # still running
        with RunDir(run_dir).hold():
            assert json.loads(RunDir(run_dir).lock_file.read_text())["pid"] == os.getpid()
    finally:
        os.kill(child, signal.SIGKILL)
