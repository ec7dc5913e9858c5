"""``run --submit local``: the micro run as a job of submitit's local executor, the path a SLURM job takes, on this
machine, loading with two worker processes. Its time-limit signal (SIGUSR2) sent mid-training to every process of
the job (the job and its loader workers), the job saves its state at the end of its batch in
progress (after its last periodic checkpoint), submitit's checkpoint hook requeues it, the local executor starts it
again, and it ends with the metrics and the weights of an uninterrupted run, bit for bit; the command, which waited
for it in the foreground, then writes the report, and leaves no process behind."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch

from tests.experiments.micro_run import RUN, cli_command, cli_env
from tests.faults.commands import assert_nothing_left, kill_session

pytestmark = pytest.mark.slow  # a micro run as a local job started twice, beside an uninterrupted one

EVERY, STEPS = 5, 12  # periodic checkpoints every 5 of 12 steps (3 epochs of 4 batches), no validation before the end
ARGS = ("--epochs", "3", "--set", f"trainer.checkpoint_every_n_steps={EVERY}", "--set",
        "trainer.check_val_every_n_epoch=3", "--num-workers", "2")  # loader workers, which ignore the signal


def _job(runs):
    path = runs / RUN / "job.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _step(runs):
    path = runs / RUN / "checkpoints" / "last.ckpt"
    return torch.load(path, weights_only=True)["global_step"] if path.exists() else 0


def _children(pid):
    """The processes ``pid`` started (Linux's /proc)."""
    path = f"/proc/{pid}/task/{pid}/children"
    return [int(child) for child in open(path).read().split()] if os.path.exists(path) else []


def _wait(child, condition, what, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.poll() is None, f"the command ended (status {child.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f}s"
        time.sleep(0.02)


def test_a_local_job_requeues_itself_on_its_time_limit_signal_and_resumes_exactly(tmp_path):
    runs, reference_runs = tmp_path / "runs", tmp_path / "reference" / "runs"
    reference_runs.parent.mkdir(parents=True)
    with open(tmp_path / "reference.out", "w") as log:  # the same run, never interrupted, alongside
        reference = subprocess.Popen(cli_command(reference_runs, *ARGS), env=cli_env(), stdout=log,
                                     stderr=subprocess.STDOUT)
    with open(tmp_path / "command.out", "w") as log:
        child = subprocess.Popen(cli_command(runs, *ARGS, "--submit", "local"), env=cli_env(), stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(child, lambda: _job(runs).get("state") == "running" and _step(runs) >= EVERY, "periodic checkpoint")
        job = _job(runs)["pid"]
        workers = _children(job)
        assert len(workers) >= 2, workers  # its two loader workers (and any helper process of torch's)
        for pid in (job, *workers):  # every process of the job, as SLURM signals a job step
            os.kill(pid, signal.SIGUSR2)
        _wait(child, lambda: _job(runs).get("state") == "requeued", "requeued job", timeout=60)
        assert _job(runs)["stopped_by"] == "SIGUSR2" and EVERY < _step(runs) < STEPS  # saved at the stop
        assert child.wait(300) == 0, (tmp_path / "command.out").read_text()[-3000:]
        assert_nothing_left(child.pid)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        kill_session(child.pid)
        reference.wait(300)
    out = (tmp_path / "command.out").read_text()
    assert "[1/1 done]" in out and "your report: " in out, out[-3000:]
    assert (_job(runs)["state"], _job(runs)["starts"]) == ("done", 2)
    assert reference.returncode == 0, (tmp_path / "reference.out").read_text()[-3000:]

    record = json.loads((runs / RUN / "metrics.json").read_text())
    expected = json.loads((reference_runs / RUN / "metrics.json").read_text())
    assert record["metrics"] == expected["metrics"] and record["resumed_from"]  # exact floats
    final = torch.load(runs / RUN / "checkpoints" / "last.ckpt", weights_only=True)
    uninterrupted = torch.load(reference_runs / RUN / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == uninterrupted["global_step"] == STEPS
    assert all(torch.equal(v, uninterrupted["state_dict"][k]) for k, v in final["state_dict"].items())


def test_sigterm_to_a_local_submission_stops_its_jobs_in_one_line_with_143(tmp_path):
    """The command in the foreground, as `run` is: SIGTERM stops every job (each saves at its batch boundary), and
    the command ends with the one line `run` ends with and status 143, not a traceback."""
    runs = tmp_path / "runs"
    args = ("--epochs", "20", "--set", "trainer.checkpoint_every_n_steps=1", "--num-workers", "2")
    with open(tmp_path / "command.out", "w") as log:
        child = subprocess.Popen(cli_command(runs, *args, "--submit", "local"), env=cli_env(), stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(child, lambda: _job(runs).get("state") == "running" and _step(runs) >= 1, "a training job")
        os.kill(child.pid, signal.SIGTERM)
        assert child.wait(120) == 143, (tmp_path / "command.out").read_text()[-3000:]
        assert_nothing_left(child.pid)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        kill_session(child.pid)
    out = (tmp_path / "command.out").read_text()
    assert "Traceback" not in out and out.count("interrupted by SIGTERM: ") == 1, out[-3000:]
    assert _job(runs)["state"] == "stopped" and 1 <= _step(runs) < 80
