"""Fixtures of the fault suite: one micro run trained without interruption while a second command on the same cell
tried to run it too (the reference of the signal tests, and the case of ``test_one_writer_per_run.py``), and a guard
that fails a test whose command gets past resolve time."""

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from experiments.harness import runner
from tests.experiments.micro_run import RUN, cli_command, cli_env
from tests.faults.commands import EXACT_ARGS, finish, output, started, wait_until


@dataclass
class TwoCommands:
    runs: Path  # the runs folder both used; the first trained the micro run there, uninterrupted
    first_pid: int
    first_output: str
    second: subprocess.CompletedProcess  # the same command, started while the first was training


@pytest.fixture(scope="session")
def two_commands_one_cell(tmp_path_factory) -> TwoCommands:
    """The first command is frozen (SIGSTOP) once it is training, so that the second certainly finds the cell in
    use, whatever the machine's pace; it then goes on (SIGCONT), its numbers unchanged by the pause."""
    runs = tmp_path_factory.mktemp("two_commands") / "runs"
    last = runs / RUN / "checkpoints" / "last.ckpt"
    with started(runs, *EXACT_ARGS) as first:
        wait_until(first, last.exists, "a first checkpoint")
        os.kill(first.pid, signal.SIGSTOP)
        try:
            second = subprocess.run(cli_command(runs, *EXACT_ARGS), env=cli_env(), capture_output=True,
                                    text=True, timeout=300)
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert finish(first) == 0, output(runs)[-3000:]
    return TwoCommands(runs, first.pid, output(runs), second)


@pytest.fixture
def nothing_starts(monkeypatch):
    """Every step of `run` after resolve time (static columns, data generation, a run) fails the test if reached."""
    def reached(*_, **__):
        raise AssertionError("the run went past resolve time")

    for step in ("compute_static", "prepare_generated_data", "execute"):
        monkeypatch.setattr(runner, step, reached)
