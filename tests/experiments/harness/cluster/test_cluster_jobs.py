"""The job layer without a scheduler (``experiments.harness.cluster``): what ``run --submit --dry-run`` plans for
a paper table, the one-line refusals (no submitit, no SLURM here, a partition ``sbatch`` refuses, options without
``--submit``), which runs a submission leaves out or shares (done, queued or running, one configuration in two tables,
a run that starts from another's checkpoint), each state ``status`` reads from job files and what the scheduler says
(faked here), a job that fails at start, the run's lock across a requeue and across hosts, and the pending note of a
report. ``tests/experiments/harness/cluster/test_slurm_jobs.py`` takes the same path through a real SLURM."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from experiments.__main__ import main
from experiments.harness.cluster import job as job_module
from experiments.harness.cluster import status as status_module
from experiments.harness.cluster.job import RunJob, _check_no_other_host_runs_it, _take_lock
from experiments.harness.cluster.job_file import now, pending_note, read_job, write_job
from experiments.harness.cluster.resources import JobOptions
from experiments.harness.cluster.scheduler import JobNow
from experiments.harness.cluster.status import run_statuses, status_line, summary
from experiments.harness.cluster.submission import config_key, plan_submission
from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import RunDir
from experiments.harness.run_lock import RunBusyError
from tests.experiments.micro_run import MICRO_ARGS, ROW, TABLE

ON_SLURM = MICRO_ARGS[:MICRO_ARGS.index("--jobs")] + MICRO_ARGS[MICRO_ARGS.index("--jobs") + 2:]


def _cli(capsys, *argv):
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _micro(runs, *extra):
    return ("run", TABLE, "--runs-dir", str(runs), "--reports-dir", str(runs.parent / "reports"), *ON_SLURM, *extra)


def _scheduler_says(monkeypatch, answers):
    """``status`` asks this instead of squeue/sacct: {job id: JobNow or None (cannot say)}."""
    monkeypatch.setattr(status_module, "scheduler_states",
                        lambda jobs: {str(job["job_id"]): answers.get(str(job["job_id"])) for job in jobs})


# --- what a paper table asks for ---------------------------------------------------------------------------------

def test_a_paper_table_dry_run_is_one_job_per_run_on_the_papers_nodes_and_gpus(capsys, tmp_path):
    code, out, err = _cli(capsys, "run", "mformer_table4", "--scale", "paper", "--submit", "slurm", "--dry-run",
                          "--runs-dir", str(tmp_path / "runs"))
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(lines) == 10  # 5 rows x K-400 and SSv2, one seed at paper scale
    for line in lines:  # Motionformer's 4 nodes of 8 GPUs; a task per GPU with its loader processes and itself
        # presets: Kinetics and SSv2 13 loader processes each (the loader rule's cap): 8 tasks x 14 = 112 cores
        assert line.endswith("train, a job of 4 nodes x 8 GPUs (8 tasks a node, 14 CPUs a task), 4320 min")
    assert "# sbatch call 1: 10 job(s) of 4 nodes x 8 GPUs (8 tasks a node, 14 CPUs a task), 4320 min" in out
    sbatch = [line.removeprefix("#SBATCH ") for line in out.splitlines() if line.startswith("#SBATCH ")]
    assert {"--array=0-9%10", "--nodes=4", "--ntasks-per-node=8", "--gpus-per-node=8", "--cpus-per-task=14",
            "--time=4320", "--signal=USR2@120", "--requeue"} <= set(sbatch)
    assert "# nothing submitted (--dry-run)" in out and not (tmp_path / "runs").exists()


def test_nodes_and_gpus_per_node_set_the_runs_trainer_and_a_device_count_is_needed(capsys, tmp_path):
    code, out, _ = _cli(capsys, "run", "mformer_table4", "--scale", "paper", "--rows", "joint", "--submit", "slurm",
                        "--dry-run", "--nodes", "2", "--gpus-per-node", "4", "--json", "--runs-dir", str(tmp_path))
    assert code == 0 and all("--nodes=2" in job["sbatch"] and "--gpus-per-node=4" in job["sbatch"]
                             for job in json.loads(out)["jobs"])
    code, _, err = _cli(capsys, "run", "d3da_figureA1", "--scale", "paper", "--submit", "slurm", "--dry-run",
                        "--runs-dir", str(tmp_path))
    assert code == 2 and "trainer.devices='auto' says no device count" in err and err.count("\n") == 1, err


# --- one line each, nothing left behind ----------------------------------------------------------------------------

def test_without_submitit_the_submission_stops_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` raises ImportError
    code, out, err = _cli(capsys, *_micro(tmp_path / "runs", "--submit", "slurm"))
    assert code == 2 and err == ("error: --submit needs submitit, which is not installed here: `pip install "
                                 "submitit==1.5.4` (requirements.txt pins it); nothing was submitted\n")
    assert not (tmp_path / "runs").exists()


def test_without_slurm_here_the_submission_stops_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = _cli(capsys, *_micro(tmp_path / "runs", "--submit", "slurm"))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: --submit slurm: SLURM's sbatch and srun are not on this machine's PATH")


def _fake_slurm(folder: Path, sbatch_stderr: str) -> Path:
    """``srun`` that does nothing and an ``sbatch`` that refuses every job with ``sbatch_stderr``."""
    folder.mkdir(parents=True)
    (folder / "srun").write_text("#!/bin/sh\nexit 0\n")
    (folder / "sbatch").write_text(f"#!/bin/sh\nprintf '{sbatch_stderr}' >&2\nexit 1\n")
    for name in ("srun", "sbatch"):
        (folder / name).chmod(0o755)
    return folder


def test_a_partition_sbatch_refuses_is_one_line_and_leaves_no_job_file(capsys, tmp_path, monkeypatch):
    fake = _fake_slurm(tmp_path / "bin", "sbatch: error: invalid partition specified: nope\\nsbatch: error: "
                                         "Batch job submission failed: Invalid partition name specified\\n")
    monkeypatch.setenv("PATH", f"{fake}:{Path(sys.executable).parent}:/usr/bin:/bin")
    runs = tmp_path / "runs"
    code, _, err = _cli(capsys, *_micro(runs, "--submit", "slurm", "--partition", "nope"))
    assert code == 2 and err == (
        "error: sbatch refused 1 job(s) (1 node x CPU (1 task a node, 1 CPU a task), 4320 min): sbatch: error: Batch "
        "job submission failed: Invalid partition name specified; the other runs are left as they were "
        "(resumable): fix the option and run the same command again\n")
    assert not list(runs.rglob("job.json")) and not list((runs / ".jobs").iterdir())


@pytest.mark.parametrize("extra, says", [
    (("--partition", "gpu"), "error: --partition describe(s) a job: add --submit slurm (or --submit local)\n"),
    (("--submit", "slurm", "--jobs", "2"), "error: --jobs: each SLURM job has its own allocation; --submit local "
                                           "runs --jobs at a time here\n"),
    (("--submit", "local", "--qos", "high"), "error: --qos: SLURM options; --submit local runs the jobs on this "
                                             "machine\n"),
    (("--submit", "slurm", "--dry-run", "--nodes", "2", "--num-nodes", "3"),
     "error: --nodes 2 and --num-nodes 3 disagree; give one\n"),
])
def test_options_that_do_not_go_together_are_one_line(capsys, tmp_path, extra, says):
    code, _, err = _cli(capsys, *_micro(tmp_path / "runs", *extra))
    assert code == 2 and err == says


# --- which runs a submission sends, and as what --------------------------------------------------------------------

def _queued(run_dir, job_id, cfg=None, executor="slurm", **fields):
    write_job(run_dir, {"state": "queued", "executor": executor, "job_id": job_id, "starts": 0,
                        "config_key": config_key(cfg) if cfg else None, "stdout": "", "stderr": "", **fields})


def _record(cfg, runs):
    """A finished run's record, as reuse reads it."""
    path = RunDir.of(cfg, runs).path / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": cfg.seed,
                                "scale": cfg.scale, "metrics": {"top1": 50.0}, "config": cfg.to_dict()}))


def test_one_configuration_in_two_tables_trains_once(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    table3a = resolve_runs("mformer_table3a", "tiny", ["exact"], 1)[0]
    table4 = resolve_runs("mformer_table4", "tiny", None, 1)
    same = next(cfg for cfg in table4 if cfg.row == "traj_attT_normS" and cfg.column == "K-400")
    assert config_key(same) == config_key(table3a)  # exact trajectory attention: Table 3a's row

    plan = plan_submission([table3a, *table4], runs, JobOptions(), force=False, dry_run=False)
    trains = [job for job in plan.jobs if not job.reuse_only]
    assert len(trains) == 10 and [j.cfg for j in plan.jobs if j.reuse_only] == [same]
    copy = next(job for job in plan.jobs if job.reuse_only)
    assert copy.after == (RunDir.of(table3a, runs).path,) and copy.resources.gpus_per_node == 0

    _queued(RunDir.of(table3a, runs).path, "7", table3a)  # Table 3a submitted earlier: its job waits in the queue
    _scheduler_says(monkeypatch, {"7": JobNow("PENDING", reason="Priority")})
    plan = plan_submission(table4, runs, JobOptions(), force=False, dry_run=False)
    copy = next(job for job in plan.jobs if job.cfg is same)
    assert copy.reuse_only and copy.after == () and copy.after_jobs == ("7",)
    assert copy.action == "copy the record of mformer_table3a/exact/seed0/tiny-k_400 once its job is done"

    _record(table3a, runs)  # done: Table 4's run copies the record here, at once, with no job
    plan = plan_submission(table4, runs, JobOptions(), force=False, dry_run=False)
    assert plan.reuse_now == [same] and same not in [job.cfg for job in plan.jobs]


def test_done_queued_and_running_runs_are_not_submitted_again_failed_and_stopped_ones_are(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    configs = resolve_runs(TABLE, "tiny", [ROW], 5)
    _record(configs[0], runs)
    for cfg, job_id in zip(configs[1:], ("11", "12", "13", "14")):
        _queued(RunDir.of(cfg, runs).path, job_id, cfg)
    _scheduler_says(monkeypatch, {"11": JobNow("PENDING"), "12": JobNow("RUNNING", "node7"),
                                  "13": JobNow("FAILED"), "14": JobNow("GONE")})
    plan = plan_submission(configs, runs, JobOptions(), force=False, dry_run=False)
    assert [why for _, why in plan.skipped] == ["done", "queued as job 11", "running as job 12 on node7"]
    assert [job.cfg.seed for job in plan.jobs] == [3, 4]


def test_a_run_that_starts_from_another_runs_checkpoint_waits_for_its_job(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    [davis] = resolve_runs("mformer_table9", "tiny", None, 1)  # DAVIS: planned as a dry run plans missing data
    source = resolve_runs("mformer_table6b", "tiny", ["mformer"], 1)[0]
    plan = plan_submission([davis], runs, JobOptions(), force=False, dry_run=True)
    assert plan.skipped[0][1].startswith("waits for run:mformer_table6b/mformer/K-400, which is not submitted: "
                                         "submit it first")
    plan = plan_submission([source, davis], runs, JobOptions(), force=False, dry_run=True)
    assert plan.jobs[1].after == (RunDir.of(source, runs).path,)
    assert (plan.jobs[1].resources.nodes, plan.jobs[1].resources.tasks_per_node) == (1, 1)  # an evaluation
    _queued(RunDir.of(source, runs).path, "21", source)
    _scheduler_says(monkeypatch, {"21": JobNow("RUNNING", "node1")})
    plan = plan_submission([davis], runs, JobOptions(), force=False, dry_run=True)
    assert plan.jobs[0].after_jobs == ("21",)


# --- status ---------------------------------------------------------------------------------------------------------

def _status(tmp_path, monkeypatch, job, answer, metrics=False):
    runs = tmp_path / "runs"
    cfg = resolve_runs(TABLE, "tiny", [ROW], 1)[0]
    write_job(RunDir.of(cfg, runs).path, {"executor": "slurm", "job_id": "5_1", "starts": 0, "stdout": "out.log",
                                          **job})
    if metrics:
        _record(cfg, runs)
    _scheduler_says(monkeypatch, {"5_1": answer})
    [found] = run_statuses([cfg], runs)
    return found, status_line(cfg, found, runs)


@pytest.mark.parametrize("job, answer, state, note", [
    ({"state": "queued"}, JobNow("PENDING", reason="Resources"), "queued", "Resources"),
    ({"state": "stopped", "starts": 1}, JobNow("PENDING", reason="BeginTime"), "requeued", "BeginTime"),
    ({"state": "queued"}, JobNow("PENDING", restarts=1), "requeued", ""),  # requeued before it wrote a word
    ({"state": "running", "starts": 1}, JobNow("RUNNING", "gpu[01-04]"), "running", ""),
    ({"state": "queued"}, JobNow("PENDING", reason="DependencyNeverSatisfied"), "failed",
     "it waits for a job that failed (DependencyNeverSatisfied)"),
    ({"state": "failed", "error": "ValueError: x: needs data"}, JobNow("FAILED"), "failed",
     "ValueError: x: needs data"),
    ({"state": "stopped", "stopped_by": "SIGTERM"}, JobNow("CANCELLED", "node3"), "stopped",
     "its job was cancelled (CANCELLED) after it started; stopped by SIGTERM"),
    ({"state": "stopped", "stopped_by": "SIGTERM"}, JobNow("FAILED", "node3"), "stopped",
     "stopped by SIGTERM; its job ended (FAILED) without being requeued"),
    ({"state": "running", "alive_at": "NOW"}, None, "running", ""),  # no scheduler here: the heartbeat decides
    ({"state": "running", "alive_at": "2020-01-01T00:00:00+00:00"}, None, "failed",
     "no sign of life since 2020-01-01T00:00:00+00:00: its logs say nothing"),
    ({"state": "requeued", "stopped_by": "SIGUSR2"}, None, "requeued", ""),
])
def test_status_weighs_the_job_file_against_the_scheduler(tmp_path, monkeypatch, job, answer, state, note):
    job = {k: now() if v == "NOW" else v for k, v in job.items()}  # a beat as the test runs, not as it was collected
    found, line = _status(tmp_path, monkeypatch, job, answer)
    assert (found.state, found.note) == (state, note), line
    assert "\n" not in line and "job 5_1" in line


def test_a_job_that_failed_at_start_says_the_last_line_of_its_error_log(tmp_path, monkeypatch):
    log = tmp_path / "5_1_0_log.err"
    log.write_text("Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named 'experiments'\n")
    found, line = _status(tmp_path, monkeypatch, {"state": "queued", "stderr": str(log)}, JobNow("FAILED"))
    assert found.state == "failed"
    assert line.endswith(f"- its job ended FAILED: ModuleNotFoundError: No module named 'experiments' log: {log}")
    found, _ = _status(tmp_path, monkeypatch, {"state": "done"}, JobNow("COMPLETED"), metrics=True)
    assert found.state == "done"


@pytest.fixture
def in_a_local_job(monkeypatch):
    """The variables submitit's local executor gives a job's only task."""
    for name, value in {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": "4242", "SUBMITIT_LOCAL_GLOBALID": "0",
                        "SUBMITIT_LOCAL_LOCALID": "0", "SUBMITIT_LOCAL_NTASKS": "1"}.items():
        monkeypatch.setenv(name, value)


def test_a_job_whose_run_fails_at_start_writes_its_error_and_status_says_it(tmp_path, monkeypatch, in_a_local_job,
                                                                         capsys):
    runs = tmp_path / "runs"
    cfg = resolve_runs(TABLE, "tiny", [ROW], 1)[0]
    _queued(RunDir.of(cfg, runs).path, "4242", cfg, executor="local")

    def fails(*args, **kwargs):
        raise FileNotFoundError(f"{cfg.table}/{cfg.row}: needs kinetics400, not found at /data/kinetics400")

    monkeypatch.setattr(job_module, "execute", fails)
    with pytest.raises(FileNotFoundError):
        RunJob(cfg, runs)()
    job = read_job(RunDir.of(cfg, runs).path)
    assert (job["state"], job["starts"], job["job_id"]) == ("failed", 1, "4242")
    code, out, _ = _cli(capsys, "status", TABLE, "--runs-dir", str(runs), "--rows", ROW, "--seeds", "1")
    assert code == 0 and out.splitlines()[1].split()[:5] == ["mformer", "/", "K-400", "seed", "0"]
    assert out.splitlines()[1].split()[5] == "failed"
    assert "- FileNotFoundError: mformer_table6b/mformer: needs kinetics400, not found at /data/kinetics400" in out


def test_the_status_command_said_after_a_submission_asks_what_that_submission_would_do(tmp_path, capsys):
    """It names the submitted rows, seeds and options: following it lists the runs submitted, each as done once its
    record is written with those options (the bare `status` refuses them, as the bare `run` would)."""
    from argparse import Namespace

    from experiments.harness.cluster.cli import _status_command

    runs = tmp_path / "runs"
    args = Namespace(table=TABLE, scale="tiny", rows=[ROW], seeds=1, runs_dir=str(runs), data_root=None,
                     set=[("trainer.checkpoint_every_n_steps", 5)])
    command = _status_command(args, {"optim": {"epochs": 2}, "data": {"batch_size": None}})
    assert command == (f"python -m experiments status {TABLE} --scale tiny --rows {ROW} --seeds 1 --set "
                       f"optim.epochs=2 --set trainer.checkpoint_every_n_steps=5 --runs-dir {runs}")
    [cfg] = resolve_runs(TABLE, "tiny", [ROW], 1, None, {"optim": {"epochs": 2}},
                         [("trainer.checkpoint_every_n_steps", 5)])
    _record(cfg, runs)
    said = {}
    for how, argv in (("as submitted", command.split()[3:]), ("bare", ["status", TABLE, "--rows", ROW, "--seeds",
                                                                       "1", "--runs-dir", str(runs)])):
        capsys.readouterr()
        assert main([*argv, "--json"]) == 0
        said[how] = json.loads(capsys.readouterr().out)[0]
    assert said["as submitted"]["state"] == "done"
    assert said["bare"]["state"] == "refused" and "optim.epochs: 2 -> " in said["bare"]["note"]


# --- the run's lock across a requeue and across hosts ---------------------------------------------------------------

HOLD = """
import sys, time
from experiments.harness.run_dir import RunDir
with RunDir(sys.argv[1]).hold(*sys.argv[3:]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_run_another_submission_holds_is_busy_being_submitted_neither_running_nor_unsubmitted(tmp_path):
    """Two identical submissions at once: the second skips the runs the first is submitting, and says so."""
    runs = tmp_path / "runs"
    cfg = resolve_runs(TABLE, "tiny", [ROW], 1)[0]
    folder = RunDir.of(cfg, runs).path
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), "60", "submitting it as a job"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "held"
        plan = plan_submission([cfg], runs, JobOptions(), force=False, dry_run=False)
        [(skipped, why)] = plan.skipped
        assert plan.jobs == [] and skipped is cfg, why
        assert why.startswith(f"busy: process {first.pid} since ") and why.endswith(" is submitting it as a job")
        [found] = run_statuses([cfg], runs)
        assert (found.state, found.note) == ("busy", why.removeprefix("busy: ")) and summary([found]) == "1 busy"
        with pytest.raises(RunBusyError, match=rf"skipped, process {first.pid} since \S+ is submitting it as a job in "
                                               rf"this runs folder; `python -m experiments status` says where it"):
            with RunDir(folder).hold():
                pass
    finally:
        first.kill()
        first.wait()


def test_a_requeued_job_waits_for_the_lock_of_the_job_it_replaces_and_no_longer(tmp_path, capsys):
    from contextlib import ExitStack

    run_dir = tmp_path / "runs" / TABLE / ROW / "seed0" / "tiny-k_400"
    ending = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), "2"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert ending.stdout.readline().strip() == "held"
        start = time.monotonic()
        with ExitStack() as held:
            _take_lock(held, run_dir, wait_s=60)  # the job being ended lets go within seconds
        assert ending.poll() == 0 and time.monotonic() - start < 30
        assert "waiting for the run's lock" in capsys.readouterr().out
    finally:
        ending.kill()
        ending.wait()
    alive = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), "60"], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert alive.stdout.readline().strip() == "held"
        with ExitStack() as held, pytest.raises(RunBusyError, match=f"process {alive.pid} since"):
            _take_lock(held, run_dir, wait_s=0.5)  # a live job keeps its run: this one trains nothing
    finally:
        alive.kill()
        alive.wait()


def test_a_run_another_hosts_job_still_beats_for_is_not_trained_twice(tmp_path):
    run_dir = tmp_path / "run"
    write_job(run_dir, {"state": "running", "instance": "other", "host": "node-b", "job_id": "9_0", "alive_at": now()})
    stop = threading.Event()

    def beat():  # the other host's job, alive: its heartbeat moves
        while not stop.wait(0.3):
            write_job(run_dir, {**read_job(run_dir), "alive_at": f"{now()[:-6]}.{time.time_ns()}+00:00"})

    thread = threading.Thread(target=beat)
    thread.start()
    try:
        with pytest.raises(RunBusyError, match="job 9_0 on node-b is running it .* does not share flock locks across "
                                               "hosts"):
            _check_no_other_host_runs_it(run_dir, "mine", stale_s=4)
    finally:
        stop.set()
        thread.join()
    write_job(run_dir, {"state": "running", "instance": "other", "host": "node-b", "alive_at": now()})
    start = time.monotonic()
    _check_no_other_host_runs_it(run_dir, "mine", stale_s=2)  # silent: it died; taken over once stale
    assert 1 < time.monotonic() - start < 10


# --- the report of local runs ---------------------------------------------------------------------------------------

def test_a_report_notes_the_runs_still_pending(tmp_path):
    from reports.build import render_report

    runs = tmp_path / "runs"
    configs = resolve_runs(TABLE, "tiny", [ROW], 3)
    _queued(RunDir.of(configs[0], runs).path, "1")
    write_job(RunDir.of(configs[1], runs).path, {"state": "running", "job_id": "2"})
    assert pending_note(runs, TABLE)[0].startswith("**Pending:** 2 submitted run(s) of this table have no record "
                                                   "yet (1 queued, 1 running, as their job files last said)")
    assert pending_note(runs, TABLE)[0] in render_report(TABLE, runs_root=runs, out_dir=tmp_path)
    assert pending_note(None, TABLE) == [] and pending_note(tmp_path / "none", TABLE) == []
