"""The workers of a ``--jobs`` run end when the command's process dies, however it dies: ``kill -9`` leaves it no
time to stop them, and a worker left behind would train on and then wait forever for a command that is gone."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.experiments.micro_run import TABLE
from tests.faults.commands import EXACT_ARGS, assert_nothing_left, started, wait_until
from tools.signal_stress import session_processes


@pytest.mark.slow  # two micro runs side by side in fresh processes, killed once both train: ~30 s on 2 cores
def test_kill_9_of_a_jobs_2_command_leaves_no_worker(tmp_path):
    runs = tmp_path / "runs"
    seeds = [runs / TABLE / "mformer" / f"seed{k}" / "tiny-k_400" / "checkpoints" / "last.ckpt" for k in (0, 1)]
    with started(runs, *EXACT_ARGS, "--seeds", "2", "--jobs", "2") as command:
        wait_until(command, lambda: all(path.exists() for path in seeds), "both runs training")
        workers = {pid: line for pid, line in session_processes(command.pid).items() if pid != command.pid}
        assert len([line for line in workers.values() if "multiprocessing" in line]) >= 2, workers
        os.kill(command.pid, signal.SIGKILL)
        command.wait()
        start = time.monotonic()
        assert_nothing_left(command.pid, grace_s=5.0)  # the kernel ends each worker with its parent
        assert time.monotonic() - start < 5.0
