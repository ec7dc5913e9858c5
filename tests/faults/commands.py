"""The micro run (``tests/experiments/micro_run.py``) as a real command in a session of its own, and what is left of
it: every process it starts (the workers of ``--jobs``, multiprocessing's resource tracker, loader workers) is in
that session, even once the command has ended and they have been handed to another parent."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from tests.experiments.micro_run import cli_command, cli_env
from tools.signal_stress import kill_session, session_processes

# The micro run's 2 epochs of 4 batches, a checkpoint after each batch: a signal can land mid-epoch
EXACT_ARGS = ("--epochs", "2", "--set", "trainer.checkpoint_every_n_steps=1")
BATCHES_PER_EPOCH = 4


@contextmanager
def started(runs: Path, *extra: str) -> Iterator[subprocess.Popen]:
    """``python -m experiments run`` of the micro table into ``runs``, in a new session; its output goes to
    ``<runs>.out``. Whatever the test did, nothing of it runs on after the block."""
    runs.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{runs}.out", "w") as out:
        child = subprocess.Popen(cli_command(runs, *extra), env=cli_env(), stdout=out,
                                 stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        kill_session(child.pid)


def output(runs: Path) -> str:
    return Path(f"{runs}.out").read_text()


def wait_until(child: subprocess.Popen, condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    """Poll ``condition`` every 10 ms while the command runs; fail if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.poll() is None, f"the command ended (status {child.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f}s"
        time.sleep(0.01)


def pause_when(child: subprocess.Popen, condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    """Like ``wait_until``, but ``condition`` is read while the command is paused (SIGSTOP), and the command is left
    paused once it holds: a fast run cannot pass the state waited for between two reads, and a signal the caller
    sends then lands in that state. ``resume`` goes on."""
    deadline = time.monotonic() + timeout
    while True:
        assert child.poll() is None, f"the command ended (status {child.returncode}) before {what}"
        os.kill(child.pid, signal.SIGSTOP)
        os.waitpid(child.pid, os.WUNTRACED)  # stopped now, not merely told to stop
        if condition():
            return
        resume(child)
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f}s"
        time.sleep(0.01)


def resume(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGCONT)


def finish(child: subprocess.Popen, timeout: float = 120) -> int:
    try:
        return child.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the command did not end within {timeout:.0f}s") from None


def checkpoint_state(path: Path) -> tuple[int, dict] | None:
    """A checkpoint's (global step, training-loader state), or None while there is none (it is replaced
    atomically, so a read never sees half a file)."""
    if not path.exists():
        return None
    checkpoint = torch.load(path, weights_only=True)
    return checkpoint["global_step"], checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]


def assert_nothing_left(session: int, grace_s: float = 10.0) -> None:
    """Every process of the command's session ends within ``grace_s`` of the command itself (multiprocessing's
    resource tracker ends when the last process holding its pipe has)."""
    deadline = time.monotonic() + grace_s
    while (left := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"still running after the command ended: {left}"
