"""A micro table of two runs on a real one-node SLURM (``slurm_cluster.py`` beside this file), through ``run --submit
slurm``: each run one job of a job array, submitted held (``status`` says queued, and the same command again submits
nothing), released (running), then preempted mid-training, one by ``scontrol requeue`` (SIGTERM, as a preemption
sends it) and one by its time-limit signal (SIGUSR2, ``scancel --signal``): each saves its state at the end of its
batch in progress (after its last periodic checkpoint), ends, and waits in the queue (``status``: requeued). Started
again, both resume and end with the metrics and the weights of an uninterrupted run, bit for bit; ``status`` says
done, and the same ``run`` command then submits nothing and writes the report. An unknown partition is refused by
``sbatch`` in one line, leaving no job file.

Where SLURM is not installed this test skips, naming the packages; under CI (``$CI`` set) it fails instead."""

import json
import os
import subprocess
import time

import pytest
import torch

from experiments.__main__ import main
from tests.experiments.micro_run import MICRO_ARGS, TABLE, cli_command, cli_env
from tests.experiments.harness.cluster.slurm_cluster import PACKAGES, missing_commands, one_node_slurm

pytestmark = pytest.mark.slow  # two micro runs as SLURM jobs, each started twice, beside an uninterrupted pair

EVERY = 5  # periodic checkpoints every 5 steps of 40 (10 epochs of 4 batches): a stop between them saves its own;
# no validation pass before the end (a stop in one keeps the last periodic checkpoint). The 35 steps after the first
# periodic checkpoint leave the signals time to arrive through slurmctld and slurmd on a loaded machine (with 7, the
# runs once finished first).
ARGS = ("--seeds", "2", "--epochs", "10", "--set", f"trainer.checkpoint_every_n_steps={EVERY}",
        "--set", "trainer.check_val_every_n_epoch=10")
STEPS = 40
_JOBS = MICRO_ARGS.index("--jobs")
ON_SLURM = MICRO_ARGS[:_JOBS] + MICRO_ARGS[_JOBS + 2:]  # --jobs is for runs on this machine


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


def _submit(runs, *extra):
    return ("run", TABLE, "--runs-dir", str(runs), "--reports-dir", str(runs.parent / "reports"), *ON_SLURM, *ARGS,
            "--submit", "slurm", "--time", "10", *extra)


def _run_dir(runs, seed):
    return runs / TABLE / "mformer" / f"seed{seed}" / "tiny-k_400"


def _states(capsys, runs):
    code, out, _ = _cli(capsys, "status", TABLE, "--runs-dir", str(runs), "--rows", "mformer", "--seeds", "2",
                        "--json")
    assert code == 0
    return [run["state"] for run in json.loads(out)]


def _step(run_dir):
    path = run_dir / "checkpoints" / "last.ckpt"
    return torch.load(path, weights_only=True)["global_step"] if path.exists() else 0


def _wait(condition, what, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f}s"
        time.sleep(0.05)


def _squeue(job_id):
    out = subprocess.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip()


def test_a_micro_table_on_slurm_is_preempted_requeued_and_resumed_exactly(slurm, tmp_path, capsys):
    runs = tmp_path / "runs"
    reference_runs = tmp_path / "reference" / "runs"
    reference_runs.parent.mkdir(parents=True)
    with open(tmp_path / "reference.out", "w") as log:  # the same two runs, never interrupted, alongside
        reference = subprocess.Popen(cli_command(reference_runs, *ARGS), env=cli_env(), stdout=log,
                                     stderr=subprocess.STDOUT)
    try:
        code, out, err = _cli(capsys, *_submit(runs, "--partition", "nope"))
        assert code == 2 and err.count("\n") == 1, err
        assert err.startswith("error: sbatch refused") and "Invalid partition name specified" in err, err
        assert not list(runs.glob("*/*/seed*/*/job.json"))

        code, out, err = _cli(capsys, *_submit(runs, "--slurm-option", "hold"))
        assert code == 0, out + err
        jobs = [json.loads((_run_dir(runs, seed) / "job.json").read_text())["job_id"] for seed in (0, 1)]
        assert jobs[0].split("_")[0] == jobs[1].split("_")[0]  # one job array
        assert _states(capsys, runs) == ["queued", "queued"]
        code, out, _ = _cli(capsys, *_submit(runs, "--slurm-option", "hold"))
        assert code == 0 and out.count("queued as job") == 2 and "# 0 job(s) submitted" in out, out

        subprocess.run(["scontrol", "release", *jobs], check=True)
        _wait(lambda: all(_squeue(job) == "RUNNING" for job in jobs), "running jobs", timeout=120)
        assert _states(capsys, runs) == ["running", "running"]
        preempt = {0: ["scontrol", "requeue", jobs[0]],  # SIGTERM, as a preemption sends it
                   1: ["scancel", "--signal=USR2", jobs[1]]}  # the time-limit signal
        _wait(lambda: any(_step(_run_dir(runs, seed)) >= EVERY for seed in (0, 1)), "periodic checkpoint")
        while preempt:  # each as soon as it is past its periodic checkpoint
            for seed in [s for s in preempt if _step(_run_dir(runs, s)) >= EVERY]:
                subprocess.run(preempt.pop(seed), check=True)
            _wait(lambda: not preempt or any(_step(_run_dir(runs, s)) >= EVERY for s in preempt), "checkpoint")
        _wait(lambda: all(_squeue(job) == "PENDING" for job in jobs), "requeued jobs", timeout=120)
        assert _states(capsys, runs) == ["requeued", "requeued"]
        said = [json.loads((_run_dir(runs, seed) / "job.json").read_text()) for seed in (0, 1)]
        assert [(s["state"], s["stopped_by"], s["starts"]) for s in said] == [
            ("stopped", "SIGTERM", 1), ("requeued", "SIGUSR2", 1)]
        stopped_at = [_step(_run_dir(runs, seed)) for seed in (0, 1)]
        assert all(EVERY < step < STEPS for step in stopped_at), stopped_at  # saved at the stop, not periodically

        subprocess.run(["scontrol", "update", f"jobid={jobs[0]},{jobs[1]}", "StartTime=now"], check=True)
        _wait(lambda: all((_run_dir(runs, seed) / "metrics.json").exists() for seed in (0, 1)), "records")
        _wait(lambda: not any(_squeue(job) in ("RUNNING", "COMPLETING") for job in jobs), "jobs ending", 60)
        assert _states(capsys, runs) == ["done", "done"]
        for seed in (0, 1):
            log = (_run_dir(runs, seed) / "job.json").read_text()
            assert json.loads(log)["starts"] == 2
        code, out, _ = _cli(capsys, *_submit(runs))
        assert code == 0 and "# 0 job(s) submitted" in out and "your report: " in out, out
        assert (runs.parent / "reports" / f"{TABLE}.md").exists()
    finally:
        if reference.poll() is None:
            reference.wait(300)
    assert reference.returncode == 0, (tmp_path / "reference.out").read_text()[-3000:]

    for seed in (0, 1):
        record = json.loads((_run_dir(runs, seed) / "metrics.json").read_text())
        expected = json.loads((_run_dir(reference_runs, seed) / "metrics.json").read_text())
        assert record["metrics"] == expected["metrics"] and record["resumed_from"], seed  # exact floats
        final = torch.load(_run_dir(runs, seed) / "checkpoints" / "last.ckpt", weights_only=True)
        uninterrupted = torch.load(_run_dir(reference_runs, seed) / "checkpoints" / "last.ckpt", weights_only=True)
        assert final["global_step"] == uninterrupted["global_step"] == STEPS
        assert all(torch.equal(v, uninterrupted["state_dict"][k]) for k, v in final["state_dict"].items()), seed
