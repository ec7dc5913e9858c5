"""A micro table on a real one-node SLURM (``slurm_cluster.py`` beside this file), through ``run --submit slurm``, its
runs loading with two worker processes each, as every real run does (SLURM signals every process of a job step:
the workers ignore the signals, the training process saves and stops).

Three runs, one job each of a job array, submitted held (``status`` says queued, and the same command again submits
nothing), released (running), then stopped mid-training three ways, each after its first periodic checkpoint:
``scontrol requeue`` (SIGTERM, as a preemption sends it), ``scancel --signal=USR2`` (the time-limit signal) and a
plain ``scancel``. Each saves its state at the end of its batch in progress; the first two wait in the queue
(``status``: requeued), the cancelled one reads ``stopped`` and the same ``run`` command submits it again. All three
end with the metrics and the weights of uninterrupted runs, bit for bit; the job that ends last writes the report
(``status`` names it), and the same ``run`` command then submits nothing. Before all this, an unknown partition is
refused by ``sbatch`` in one line, and a ``--time`` over the partition's limit and more CPUs than its node has are
refused before ``sbatch``, each in one line naming the fix; none leaves a job file.

A fourth run, on its own, meets a real time limit (cut to 2 minutes while it trains: SLURM's own signal, 120 s
before it): saved, requeued by its job through submitit, resumed, exact.

Where SLURM is not installed these tests skip, naming the packages; under CI (``$CI`` set) they fail instead."""

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import torch

from experiments.__main__ import main
from tests.experiments.harness.cluster.slurm_cluster import (
    NODE_CPUS,
    PACKAGES,
    SHORT_MAX_MIN,
    SHORT_PARTITION,
    missing_commands,
    one_node_slurm,
)
from tests.experiments.micro_run import MICRO_ARGS, TABLE, cli_command, cli_env

pytestmark = pytest.mark.slow  # micro runs as SLURM jobs, each started twice or more, beside uninterrupted ones

EVERY = 5  # periodic checkpoints every 5 steps of 40 (10 epochs of 4 batches): a stop between them saves its own;
# no validation pass before the end (a stop in one keeps the last periodic checkpoint). The 35 steps after the first
# periodic checkpoint leave the signals time to arrive through slurmctld and slurmd on a loaded machine (with 7, the
# runs once finished first).
ARGS = ("--epochs", "10", "--set", f"trainer.checkpoint_every_n_steps={EVERY}",
        "--set", "trainer.check_val_every_n_epoch=10")
STEPS = 40
SEEDS = 3
_JOBS = MICRO_ARGS.index("--jobs")
WORKERS = ("--num-workers", "2")  # the micro run's own 0 would leave out what SLURM's signals do to loader workers
ON_SLURM = [arg for arg in MICRO_ARGS[:_JOBS] + MICRO_ARGS[_JOBS + 2:]]  # --jobs is for runs on this machine
_WORKERS = ON_SLURM.index("--num-workers")
ON_SLURM[_WORKERS:_WORKERS + 2] = WORKERS
# the time-limited run: submitted with --time 10, its limit cut to 2 minutes once it has trained 100 steps
# (`scontrol update TimeLimit`, which a user may do to a job of theirs): SLURM's time-limit signal, due 120 s before
# the limit, is then due at once, and its controller sends it at its next look (every 30 s). The run's 1,500 steps
# left take longer than that: 0.06 s a step here (a 2-core EPYC, beside its reference), about 0.025 s on a machine
# 2.4 times faster.
TIME_LIMIT_ARGS = ("--epochs", "400", "--set", "trainer.checkpoint_every_n_steps=100",
                   "--set", "trainer.check_val_every_n_epoch=400")
TIME_LIMIT_STEPS = 1600


@pytest.fixture
def slurm(tmp_path, monkeypatch):
    missing = missing_commands()
    if missing:
        message = f"needs SLURM (`apt-get install {PACKAGES}`): {', '.join(missing)} not found"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with one_node_slurm(tmp_path / "slurm") as env:
        monkeypatch.setenv("SLURM_CONF", env["SLURM_CONF"])
        yield env


def _cli(capsys, *argv):
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _submit(runs, *extra, args=ARGS, seeds=SEEDS, minutes=10):
    return ("run", TABLE, "--runs-dir", str(runs), "--reports-dir", str(runs.parent / "reports"), *ON_SLURM, *args,
            "--seeds", str(seeds), "--submit", "slurm", "--time", str(minutes), *extra)


def _reference(tmp_path, *args, seeds=SEEDS):
    """The same runs, never interrupted, started now alongside (a process to wait for) into reference/runs."""
    runs = tmp_path / "reference" / "runs"
    runs.parent.mkdir(parents=True)
    with open(tmp_path / "reference.out", "w") as log:
        return subprocess.Popen(cli_command(runs, *WORKERS, *args, "--seeds", str(seeds)), env=cli_env(), stdout=log,
                                stderr=subprocess.STDOUT), runs


def _run_dir(runs, seed):
    return runs / TABLE / "mformer" / f"seed{seed}" / "tiny-k_400"


def _job(runs, seed):
    return json.loads((_run_dir(runs, seed) / "job.json").read_text())


def _status_argv(out):
    """The status command a submission prints, as argv: it carries the submission's rows, seeds and options."""
    found = re.search(r"# `python -m experiments (status [^`]*)` follows them", out)
    assert found, out
    return shlex.split(found.group(1))


def _status(capsys, status, json_out=True):
    code, out, _ = _cli(capsys, *status, *(["--json"] if json_out else []))
    assert code == 0
    return json.loads(out) if json_out else out


def _states(capsys, status):
    return [run["state"] for run in _status(capsys, status)]


def _step(run_dir):
    path = run_dir / "checkpoints" / "last.ckpt"
    return torch.load(path, weights_only=True)["global_step"] if path.exists() else 0


def _wait(condition, what, timeout=300.0, every=None):
    """Poll ``condition``; ``every`` (a callable) runs at each poll too (start a requeued job now)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f}s"
        if every is not None:
            every()
        time.sleep(0.05 if every is None else 2)


def _squeue(job_id):
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", job_id, "-o", "%T"], capture_output=True,
                         text=True)
    return out.stdout.strip()


def _squeue_all():
    return subprocess.run(["squeue", "-h", "-t", "all"], capture_output=True, text=True).stdout.strip()


def _start_now(*job_ids):
    """A requeued job waits (SLURM holds it back a while): start the pending ones of ``job_ids`` now."""
    pending = [job for job in job_ids if _squeue(job) == "PENDING"]
    if pending:
        subprocess.run(["scontrol", "update", f"jobid={','.join(pending)}", "StartTime=now"], capture_output=True)


def _assert_exact(runs, reference_runs, seed, steps):
    """The run resumed after its stops ends with the metrics and weights of the uninterrupted one, bit for bit."""
    record = json.loads((_run_dir(runs, seed) / "metrics.json").read_text())
    expected = json.loads((_run_dir(reference_runs, seed) / "metrics.json").read_text())
    assert record["metrics"] == expected["metrics"] and record["resumed_from"], seed  # exact floats
    final = torch.load(_run_dir(runs, seed) / "checkpoints" / "last.ckpt", weights_only=True)
    uninterrupted = torch.load(_run_dir(reference_runs, seed) / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == uninterrupted["global_step"] == steps
    assert all(torch.equal(v, uninterrupted["state_dict"][k]) for k, v in final["state_dict"].items()), seed


def _no_worker_crash(runs, seed):
    """No task log of the run's jobs says a loader worker was killed (what SLURM's signals did before)."""
    job = _job(runs, seed)
    logs = [path for path in Path(job["stderr"]).parent.glob("*_log.*")]
    assert logs
    text = "".join(path.read_text(errors="replace") for path in logs)
    assert "DataLoader worker" not in text and "killed by signal" not in text, text[-3000:]


def test_a_micro_table_on_slurm_is_preempted_requeued_cancelled_and_resumed_exactly(slurm, tmp_path, capsys):
    runs = tmp_path / "runs"
    reference, reference_runs = _reference(tmp_path, *ARGS)
    try:
        code, out, err = _cli(capsys, *_submit(runs, "--partition", "nope"))
        assert code == 2 and err.count("\n") == 1, err
        assert err.startswith("error: sbatch refused") and "Invalid partition name specified" in err, err
        assert not list(runs.glob("*/*/seed*/*/job.json"))
        # what the partition cannot hold is refused before sbatch, in one line that names the fix
        code, out, err = _cli(capsys, *_submit(runs, "--partition", SHORT_PARTITION))  # --time 10 > MaxTime 5
        assert code == 2 and err.count("\n") == 1 and f"(--time {SHORT_MAX_MIN}" in err, err
        code, out, err = _cli(capsys, *_submit(runs, "--cpus-per-task", str(NODE_CPUS + 1)))
        assert code == 2 and err.count("\n") == 1 and f"its largest node has {NODE_CPUS}" in err, err
        assert not list(runs.glob("*/*/seed*/*/job.json")) and not _squeue_all()

        code, out, err = _cli(capsys, *_submit(runs, "--slurm-option", "hold"))
        assert code == 0, out + err
        status = _status_argv(out)
        jobs = [_job(runs, seed)["job_id"] for seed in range(SEEDS)]
        assert len({job.split("_")[0] for job in jobs}) == 1  # one job array
        assert _states(capsys, status) == ["queued"] * SEEDS
        code, out, _ = _cli(capsys, *_submit(runs, "--slurm-option", "hold"))
        assert code == 0 and out.count("queued as job") == SEEDS and "# 0 job(s) submitted" in out, out

        subprocess.run(["scontrol", "release", *jobs], check=True)
        _wait(lambda: all(_squeue(job) == "RUNNING" for job in jobs), "running jobs", timeout=120)
        assert _states(capsys, status) == ["running"] * SEEDS
        stop = {0: ["scontrol", "requeue", jobs[0]],  # SIGTERM, as a preemption sends it
                1: ["scancel", "--signal=USR2", jobs[1]],  # the time-limit signal
                2: ["scancel", jobs[2]]}  # the user's cancel: SIGTERM, then the job ends for good
        while stop:  # each as soon as it is past its periodic checkpoint
            _wait(lambda: any(_step(_run_dir(runs, s)) >= EVERY for s in stop), "periodic checkpoint")
            for seed in [s for s in stop if _step(_run_dir(runs, s)) >= EVERY]:
                subprocess.run(stop.pop(seed), check=True)
        _wait(lambda: _squeue(jobs[0]) == _squeue(jobs[1]) == "PENDING" and _squeue(jobs[2]) in ("CANCELLED", ""),
              "two requeued jobs and a cancelled one", timeout=120)
        _wait(lambda: _job(runs, 2)["state"] != "running", "the cancelled job's last word", timeout=60)
        assert _states(capsys, status) == ["requeued", "requeued", "stopped"]
        said = [_job(runs, seed) for seed in range(SEEDS)]
        assert [(s["state"], s["stopped_by"], s["starts"]) for s in said] == [
            ("stopped", "SIGTERM", 1), ("requeued", "SIGUSR2", 1), ("stopped", "SIGTERM", 1)]
        stopped_at = [_step(_run_dir(runs, seed)) for seed in range(SEEDS)]
        assert all(EVERY < step < STEPS for step in stopped_at), stopped_at  # saved at the stop, not periodically

        code, out, _ = _cli(capsys, *_submit(runs))  # the same command: the cancelled run again, resumed
        assert code == 0 and "# 1 job(s) submitted" in out and "resume from" in out, out
        jobs[2] = _job(runs, 2)["job_id"]
        _wait(lambda: all((_run_dir(runs, seed) / "metrics.json").exists() for seed in range(SEEDS)), "records",
              every=lambda: _start_now(*jobs))
        _wait(lambda: not any(_squeue(job) in ("RUNNING", "COMPLETING") for job in jobs), "jobs ending", 60)
        assert _states(capsys, status) == ["done"] * SEEDS
        assert [_job(runs, seed)["starts"] for seed in range(SEEDS)] == [2, 2, 1]  # the third: a new job
        report = runs.parent / "reports" / f"{TABLE}.md"
        assert report.exists()  # written by the job that ended last, without another command
        assert [_job(runs, seed).get("report") for seed in range(SEEDS)].count(str(report)) >= 1
        assert f"report: {report} (written by job" in _status(capsys, status, json_out=False)
        code, out, _ = _cli(capsys, *_submit(runs))
        assert code == 0 and "# 0 job(s) submitted" in out and "your report: " in out, out
    finally:
        if reference.poll() is None:
            reference.wait(300)
    assert reference.returncode == 0, (tmp_path / "reference.out").read_text()[-3000:]
    for seed in range(SEEDS):
        _assert_exact(runs, reference_runs, seed, STEPS)
        _no_worker_crash(runs, seed)


def test_a_run_on_slurm_meets_its_time_limit_saves_requeues_and_resumes_exactly(slurm, tmp_path, capsys):
    runs = tmp_path / "runs"
    reference, reference_runs = _reference(tmp_path, *TIME_LIMIT_ARGS, seeds=1)
    try:
        code, out, err = _cli(capsys, *_submit(runs, args=TIME_LIMIT_ARGS, seeds=1, minutes=10))
        assert code == 0, out + err
        status = _status_argv(out)
        job = _job(runs, 0)["job_id"]
        _wait(lambda: _step(_run_dir(runs, 0)) >= 100, "a periodic checkpoint", timeout=300)
        subprocess.run(["scontrol", "update", f"jobid={job}", "TimeLimit=2"], check=True)  # its limit, nearer
        _wait(lambda: _job(runs, 0).get("state") == "requeued", "the time-limit signal's requeue", timeout=120)
        said = _job(runs, 0)
        assert (said["stopped_by"], said["starts"]) == ("SIGUSR2", 1), said
        assert 100 < _step(_run_dir(runs, 0)) < TIME_LIMIT_STEPS  # saved at the stop
        _wait(lambda: _squeue(job) == "PENDING", "the requeued job", timeout=60)
        subprocess.run(["scontrol", "update", f"jobid={job}", "TimeLimit=10"], check=True)  # room to finish
        _wait(lambda: (_run_dir(runs, 0) / "metrics.json").exists(), "the record", timeout=600,
              every=lambda: _start_now(job))
        _wait(lambda: _squeue(job) not in ("RUNNING", "COMPLETING"), "the job ending", 60)  # the report comes after
        assert _states(capsys, status) == ["done"]
        assert _job(runs, 0)["starts"] == 2 and (runs.parent / "reports" / f"{TABLE}.md").exists()
    finally:
        if reference.poll() is None:
            reference.wait(600)
    assert reference.returncode == 0, (tmp_path / "reference.out").read_text()[-3000:]
    _assert_exact(runs, reference_runs, 0, TIME_LIMIT_STEPS)
    _no_worker_crash(runs, 0)
