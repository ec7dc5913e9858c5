"""SIGTERM and SIGINT to ``python -m experiments run`` (``--jobs 1`` and ``2``): every process of the command stops,
none is left behind, finished runs keep their records and a cut run its last checkpoint, one line says the command
was interrupted and how to resume it, and the exit status is 143 (SIGTERM) or 130 (SIGINT), as a shell reports a
process the signal ended. The same command then resumes the cut run to the numbers and weights of an uninterrupted
one, as after a SIGKILL (``tests/experiments/harness/test_resume.py``)."""

import json
import os
import shlex
import signal

import pytest
import torch

from experiments.harness.run_dir import RunDir
from tests.experiments.micro_run import MICRO_ARGS, RUN, TABLE, run_cli
from tests.faults.commands import (
    BATCHES_PER_EPOCH,
    EXACT_ARGS,
    assert_nothing_left,
    checkpoint_state,
    finish,
    output,
    pause_when,
    resume,
    started,
    wait_until,
)

LONG = ("--epochs", "20", "--set", "trainer.checkpoint_every_n_steps=1")  # never reaches its end here


def _interrupted_line(runs, status, *extra):
    """The one line an interrupted command ends with, and the command it names, as a shell would read it."""
    lines = [line for line in output(runs).splitlines() if line.startswith("interrupted by ")]
    assert len(lines) == 1, output(runs)[-3000:]
    name = {143: "SIGTERM", 130: "SIGINT", 140: "SIGUSR2"}[status]
    head = (f"interrupted by {name}: finished runs keep their records and a cut run its last checkpoint; "
            f"`python -m experiments ")
    assert lines[0].startswith(head) and lines[0].endswith("` resumes"), lines[0]
    command = shlex.split(lines[0][len(head):-len("` resumes")])
    assert command == ["run", TABLE, "--runs-dir", str(runs), "--reports-dir", str(runs.parent / "reports"),
                       *MICRO_ARGS, *extra]
    return command


def _run(runs, seed):
    return runs / RUN.replace("seed0", f"seed{seed}")


@pytest.mark.slow  # two micro runs in fresh processes beside the shared reference: ~20 s on 2 cores
def test_sigterm_mid_epoch_exits_143_and_the_same_command_resumes_exactly(tmp_path, two_commands_one_cell):
    reference = two_commands_one_cell.runs
    runs = tmp_path / "runs"
    last = runs / RUN / "checkpoints" / "last.ckpt"

    def mid_second_epoch():
        state = checkpoint_state(last)
        return bool(state) and state[0] > BATCHES_PER_EPOCH and 0 < state[1]["batches_drawn"] < BATCHES_PER_EPOCH - 1

    with started(runs, *EXACT_ARGS) as child:
        pause_when(child, mid_second_epoch, "a checkpoint inside the second epoch")
        assert json.loads(RunDir(runs / RUN).lock_file.read_text())["pid"] == child.pid  # the command holds its run
        os.kill(child.pid, signal.SIGTERM)
        resume(child)
        assert finish(child) == 143, output(runs)[-3000:]
        assert_nothing_left(child.pid)
    _interrupted_line(runs, 143, *EXACT_ARGS)
    step, _ = checkpoint_state(last)
    assert BATCHES_PER_EPOCH < step < 2 * BATCHES_PER_EPOCH and not (runs / RUN / "metrics.json").exists()

    resumed = run_cli(runs, *EXACT_ARGS)  # the same command again
    assert "resuming from" in resumed.stdout
    expected = json.loads((reference / RUN / "metrics.json").read_text())
    record = json.loads((runs / RUN / "metrics.json").read_text())
    assert record["metrics"] == expected["metrics"]  # exact floats, loss included
    final = torch.load(last, weights_only=True)
    reference_final = torch.load(reference / RUN / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == reference_final["global_step"] == 2 * BATCHES_PER_EPOCH
    assert all(torch.equal(v, reference_final["state_dict"][k]) for k, v in final["state_dict"].items())


@pytest.mark.slow  # a command of two micro runs in a fresh process, interrupted
def test_sigint_keeps_the_run_that_finished_and_the_checkpoint_of_the_cut_one(tmp_path):
    """``--jobs 1``, two seeds, with a loader worker process: SIGINT while the second run trains."""
    runs = tmp_path / "runs"
    extra = (*EXACT_ARGS, "--seeds", "2", "--num-workers", "1")
    with started(runs, *extra) as child:
        wait_until(child, (_run(runs, 1) / "checkpoints" / "last.ckpt").exists, "a checkpoint of the second run")
        os.kill(child.pid, signal.SIGINT)
        assert finish(child) == 130, output(runs)[-3000:]
        assert_nothing_left(child.pid)
    _interrupted_line(runs, 130, *extra)
    assert json.loads((_run(runs, 0) / "metrics.json").read_text())["seed"] == 0
    assert checkpoint_state(_run(runs, 1) / "checkpoints" / "last.ckpt")[0] < 2 * BATCHES_PER_EPOCH
    assert not (_run(runs, 1) / "metrics.json").exists()


@pytest.mark.slow  # two micro runs in two worker processes, interrupted
@pytest.mark.parametrize("signum, status, to_group", [
    (signal.SIGTERM, 143, False),  # `kill PID` of the command, as a scheduler does
    (signal.SIGINT, 130, True),  # Ctrl+C: the terminal signals every process of the command
])
def test_a_signal_stops_every_worker_of_jobs(tmp_path, signum, status, to_group):
    runs = tmp_path / "runs"
    extra = (*LONG, "--seeds", "2", "--jobs", "2")
    checkpoints = [_run(runs, seed) / "checkpoints" / "last.ckpt" for seed in (0, 1)]
    with started(runs, *extra) as child:
        wait_until(child, lambda: all(c.exists() for c in checkpoints), "both workers training")
        if to_group:
            os.killpg(child.pid, signum)
        else:
            os.kill(child.pid, signum)
        assert finish(child) == status, output(runs)[-3000:]
        assert_nothing_left(child.pid)
    _interrupted_line(runs, status, *extra)
    assert all(checkpoint_state(c)[0] >= 1 for c in checkpoints)
    assert not any((_run(runs, seed) / "metrics.json").exists() for seed in (0, 1))
    assert "Traceback" not in output(runs), output(runs)[-3000:]


@pytest.mark.slow  # a micro run with two loader workers in a fresh process, signalled, then resumed
@pytest.mark.parametrize("signum, status", [
    (signal.SIGTERM, 143),  # a preemption, `scontrol requeue`, `scancel`
    (signal.SIGUSR2, 140),  # a scheduler's time-limit signal (`sbatch --signal=USR2@120`)
])
def test_a_signal_to_every_process_of_a_run_with_loader_workers_saves_it(tmp_path, two_commands_one_cell, signum,
                                                                         status):
    """As SLURM signals a job step: the command and its loader workers alike. The workers ignore it
    (``data.worker_signals``), the run saves at its batch boundary, the command exits 128 + the signal's number
    naming it, and the same command resumes the run to the uninterrupted one's numbers and weights (two loader
    workers draw what none does: every item is seeded by itself)."""
    reference = two_commands_one_cell.runs
    runs = tmp_path / "runs"
    last = runs / RUN / "checkpoints" / "last.ckpt"
    extra = (*EXACT_ARGS, "--num-workers", "2")

    def in_first_epoch():  # five batches or more before the run's end: the signal lands well before it
        state = checkpoint_state(last)
        return bool(state) and 1 <= state[0] == state[1]["batches_drawn"] < BATCHES_PER_EPOCH

    with started(runs, *extra) as child:
        pause_when(child, in_first_epoch, "a checkpoint inside the first epoch")
        os.killpg(child.pid, signum)
        resume(child)
        assert finish(child) == status, output(runs)[-3000:]
        assert_nothing_left(child.pid)
    assert "DataLoader worker" not in output(runs) and "Traceback" not in output(runs), output(runs)[-3000:]
    _interrupted_line(runs, status, *extra)
    step, _ = checkpoint_state(last)
    assert 1 <= step < 2 * BATCHES_PER_EPOCH and not (runs / RUN / "metrics.json").exists()  # saved, not finished

    run_cli(runs, *extra)  # the same command again
    expected = json.loads((reference / RUN / "metrics.json").read_text())
    assert json.loads((runs / RUN / "metrics.json").read_text())["metrics"] == expected["metrics"]
    final = torch.load(last, weights_only=True)
    reference_final = torch.load(reference / RUN / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(torch.equal(v, reference_final["state_dict"][k]) for k, v in final["state_dict"].items())
