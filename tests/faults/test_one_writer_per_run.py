"""Two commands on the same run folder: the second skips a run the first is training, in one line naming the run's
directory and the process that holds it, and writes nothing there (no second TensorBoard event file, no
``last-v1.ckpt``); the lock of a process that was killed is free, and the next command takes it over."""

import json
import os
import signal
import subprocess
import sys

import pytest

from experiments.harness.run_dir import RunDir
from tests.experiments.micro_run import RUN, TABLE

HOLD = """
import sys, time
from experiments.harness.run_dir import RunDir
with RunDir(sys.argv[1]).hold():
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow  # two commands training one run in fresh processes
def test_a_second_command_skips_the_run_the_first_is_training(two_commands_one_cell):
    done = two_commands_one_cell
    run_dir = done.runs / RUN
    second = done.second
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    skipped = [line.strip() for line in second.stdout.splitlines() if "skipped, process" in line]
    assert skipped == [f"{run_dir}: skipped, process {done.first_pid} since {_since(run_dir)} is running it in this "
                       f"runs folder; its result is recorded there when it ends (run this command again then to use "
                       f"it)"], second.stdout
    assert "0 run(s) done, 0 skipped for lack of data, 1 skipped as another command is running them" in second.stdout
    assert "resuming from" not in second.stdout and "training vit_tiny_video" not in second.stdout

    # One writer: every event file is the first command's (the writer's pid is in the name), one checkpoint.
    events = sorted(p.name for p in run_dir.glob("events.out.tfevents.*"))
    assert events and all(name.split(".")[-2] == str(done.first_pid) for name in events), events
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["resumed_from"] is None and record["table"] == TABLE


def _since(run_dir):
    return json.loads(RunDir(run_dir).lock_file.read_text())["since"]  # the first command's lock: it is the last holder


def test_the_lock_of_a_killed_process_is_taken_over_at_once(tmp_path):
    """``fcntl.flock`` locks end with their process: a run SIGKILLed while it held its lock leaves the lock file
    (naming it), but not the lock."""
    run_dir = tmp_path / "runs" / TABLE / "mformer" / "seed0" / "tiny-k_400"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        os.kill(holder.pid, signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait()
    assert json.loads(RunDir(run_dir).lock_file.read_text())["pid"] == holder.pid  # left behind, naming the dead holder
    with RunDir(run_dir).hold():
        assert json.loads(RunDir(run_dir).lock_file.read_text())["pid"] == os.getpid()
