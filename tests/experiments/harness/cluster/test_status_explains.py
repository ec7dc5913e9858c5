"""What ``python -m experiments status TABLE`` says of each run, and why (issue 73): a job cancelled before it started
or after (``stopped``, saying so), one that reached its time limit, ran out of memory, lost a node or was preempted;
the line of its logs that says why it failed, chosen by meaning rather than by position (srun's last words are
noise); a controller that does not answer told apart from no SLURM here (the job file decides, and the note says
so); pending reasons that never clear by themselves (``cannot start``, with the fix, and not submitted again); and
a running job's step, epoch, time and ETA from its heartbeat.

No SLURM runs here: ``scheduler.run_query``, the one function that runs ``squeue`` and ``sacct``, is replaced by a
fake that answers as they would, or, to test it, sees small ``squeue`` scripts on the PATH."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from experiments.__main__ import main
from experiments.harness.cluster import scheduler
from experiments.harness.cluster.job_file import now, write_job
from experiments.harness.cluster.resources import JobOptions
from experiments.harness.cluster.scheduler import JobNow, NoAnswer, run_query, slurm_jobs
from experiments.harness.cluster.status import last_error_line, run_statuses, status_line, summary
from experiments.harness.cluster.submission import plan_submission
from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import RunDir
from tests.experiments.micro_run import ROW, TABLE

JOB_ID = "5_1"
CONTROLLER_DOWN = "squeue: error: slurm_load_jobs error: Unable to contact slurm controller (connect failure)"


def _slurm(monkeypatch, squeue=None, sacct=None):
    """``squeue`` and ``sacct`` answer with these: their output (a str), None (not on this machine) or an exception
    (``NoAnswer``: here, but failed). Returns the commands asked, in order."""
    asked = []

    def fake(command):
        asked.append(command)
        said = {"squeue": squeue, "sacct": sacct}.get(command[0])
        if isinstance(said, Exception):
            raise said
        return said

    monkeypatch.setattr(scheduler, "run_query", fake)
    return asked


def _listed(state, nodes="", reason="None", restarts=0):
    """One line of ``squeue -h -O JobArrayID:0|,State:0|,NodeList:0|,Reason:0|,RestartCnt:0`` for the job."""
    return f"{JOB_ID}|{state}|{nodes}|{reason}|{restarts}\n"


def _run(tmp_path, **job):
    """The micro table's run with a SLURM job file (its logs under tmp_path, absent unless written)."""
    runs = tmp_path / "runs"
    cfg = resolve_runs(TABLE, "tiny", [ROW], 1)[0]
    write_job(RunDir.of(cfg, runs).path, {"executor": "slurm", "job_id": JOB_ID, "starts": 0,
                                          "stdout": str(tmp_path / f"{JOB_ID}_0_log.out"),
                                          "stderr": str(tmp_path / f"{JOB_ID}_0_log.err"), **job})
    return cfg, runs


def _status(cfg, runs):
    [found] = run_statuses([cfg], runs)
    line = status_line(cfg, found, runs)
    assert "\n" not in line
    return found, line


def _ago(seconds):
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="seconds")


# --- cancelled: stopped, before it started or after ----------------------------------------------------------------

@pytest.mark.parametrize("squeue, sacct, note", [
    (_listed("CANCELLED"), None, "its job was cancelled (CANCELLED) before it started: it never ran"),
    ("", f"{JOB_ID}|CANCELLED by 1000|None assigned\n",
     "its job was cancelled (CANCELLED) before it started: it never ran"),  # squeue dropped it, sacct keeps it
    ("", None, "its job ended without a log (cancelled, most likely) before it started: it never ran"),  # no sacct
])
def test_a_job_cancelled_while_pending_is_stopped_and_never_ran(tmp_path, monkeypatch, squeue, sacct, note):
    cfg, runs = _run(tmp_path, state="queued")
    asked = _slurm(monkeypatch, squeue=squeue, sacct=sacct)
    found, line = _status(cfg, runs)
    assert (found.state, found.note) == ("stopped", note), line
    assert "log:" not in line  # it never ran: SLURM wrote no log
    assert asked[0][:5] == ["squeue", "-h", "-r", "-t", "all"]  # ended jobs too, not only pending and running ones
    assert [command[0] for command in asked] == ["squeue"] + (["sacct"] if not squeue else [])
    assert summary([found]) == "1 stopped"


@pytest.mark.parametrize("job, nodes, note", [
    ({"state": "stopped", "starts": 1, "stopped_by": "SIGTERM"}, "node3",
     "its job was cancelled (CANCELLED) after it started; stopped by SIGTERM"),
    ({"state": "running", "starts": 1, "alive_at": "NOW"}, "node3",  # scancel -s KILL: no time to write a word
     "its job was cancelled (CANCELLED) after it started"),
    ({"state": "queued"}, "node3", "its job was cancelled (CANCELLED) after it started"),  # before it took the run
])
def test_a_job_cancelled_after_it_started_is_stopped(tmp_path, monkeypatch, job, nodes, note):
    cfg, runs = _run(tmp_path, **{k: now() if v == "NOW" else v for k, v in job.items()})
    _slurm(monkeypatch, squeue=_listed("CANCELLED", nodes))
    found, line = _status(cfg, runs)
    assert (found.state, found.note) == ("stopped", note), line
    assert f"log: {tmp_path / f'{JOB_ID}_0_log.err'}" in line


def test_a_failed_run_whose_job_was_then_cancelled_stays_failed_with_its_error(tmp_path, monkeypatch):
    cfg, runs = _run(tmp_path, state="failed", starts=1, error="RuntimeError: NCCL timeout")
    _slurm(monkeypatch, squeue=_listed("CANCELLED", "node3"))
    found, _ = _status(cfg, runs)
    assert (found.state, found.note) == ("failed", "its job was cancelled (CANCELLED): RuntimeError: NCCL timeout")


# --- how else a job ends --------------------------------------------------------------------------------------------

TIME_LIMIT = "slurmstepd: error: *** JOB 5 ON node3 CANCELLED AT 2024-05-01T10:00:00 DUE TO TIME LIMIT ***"


@pytest.mark.parametrize("slurm_state, job, log, state, note", [
    ("TIMEOUT", {"state": "running"}, f"{TIME_LIMIT}\nsrun: Force Terminated StepId=5.0\n", "failed",
     f"its job reached its time limit without being requeued (TIMEOUT): {TIME_LIMIT}"),
    ("TIMEOUT", {"state": "requeued", "stopped_by": "SIGUSR2"}, "", "stopped",  # saved, but the requeue failed
     "its job reached its time limit without being requeued (TIMEOUT); stopped by SIGUSR2"),
    ("OUT_OF_MEMORY", {"state": "running"},
     "slurmstepd: error: Detected 1 oom_kill event in StepId=5.0. Some of the step tasks have been OOM Killed.\n"
     "srun: error: node3: task 0: Out Of Memory\nsrun: Terminating StepId=5.0\n", "failed",
     "its job ran out of memory (OUT_OF_MEMORY; --mem-gb asks for more): slurmstepd: error: Detected 1 oom_kill "
     "event in StepId=5.0. Some of the step tasks have been OOM Killed."),
    ("NODE_FAIL", {"state": "running"}, "", "failed", "a node of its job failed (NODE_FAIL): its logs say nothing"),
    ("PREEMPTED", {"state": "stopped", "stopped_by": "SIGTERM"}, "", "stopped",
     "its job was preempted and not requeued (PREEMPTED) after it started; stopped by SIGTERM"),
    ("FAILED", {"state": "running"}, "srun: error: node3: task 0: Killed\nsrun: Force Terminated StepId=5.0\n",
     "failed", "its job ended FAILED: srun: error: node3: task 0: Killed"),
])
def test_how_a_job_ended_is_said_plainly(tmp_path, monkeypatch, slurm_state, job, log, state, note):
    cfg, runs = _run(tmp_path, starts=1, alive_at=now(), **job)
    if log:
        (tmp_path / f"{JOB_ID}_0_log.err").write_text(log)
    _slurm(monkeypatch, squeue=_listed(slurm_state, "node3"))
    found, line = _status(cfg, runs)
    assert (found.state, found.note) == (state, note), line


# --- the line of the logs that says why ----------------------------------------------------------------------------

KILLED = ("srun: error: node3: task 0: Killed\nsrun: Job step aborted: Waiting up to 32 seconds for job step to "
          "finish.\nslurmstepd: error: *** STEP 5.0 ON node3 CANCELLED AT 2024-05-01T10:00:00 ***\n"
          "srun: Force Terminated StepId=5.0\n")
NOISE = ("srun: Job step aborted: Waiting up to 32 seconds for job step to finish.\nslurmstepd: error: *** STEP 5.0 "
         "ON node3 CANCELLED AT 2024-05-01T10:00:00 ***\nsrun: Force Terminated StepId=5.0\n")


@pytest.mark.parametrize("logs, out, said", [
    ({0: KILLED}, "", "srun: error: node3: task 0: Killed"),  # kill -9: two lines above the last
    ({0: "Traceback (most recent call last):\n  File \"x.py\", line 1\nRuntimeError: CUDA error: an illegal memory "
         "access\n" + KILLED}, "", "RuntimeError: CUDA error: an illegal memory access"),
    ({0: "srun: error: node4: task 1: Exited with exit code 1\nsrun: error: node3: task 0: Terminated\n" + NOISE}, "",
     "srun: error: node4: task 1: Exited with exit code 1"),  # the first task to end ended the others
    ({0: "slurmstepd: error: spank plugin failed\n" + TIME_LIMIT + "\n" + NOISE}, "", TIME_LIMIT),
    ({0: "srun: error: Unable to create step for job 5: Memory required by task is not available\n" + NOISE}, "",
     "srun: error: Unable to create step for job 5: Memory required by task is not available"),
    ({0: "srun: error: node3: task 1: Exited with exit code 1\n" + NOISE, 1: "ValueError: bad batch\n"}, "",
     "ValueError: bad batch"),  # another task's exception says more than srun's word on it
    ({0: NOISE}, "epoch 3 step 1200\nsaving\n", "saving"),  # nothing but noise: the output log's last line
    ({0: NOISE, 1: NOISE}, "", "its logs say nothing"),
])
def test_the_error_line_is_chosen_by_meaning_never_srun_noise(tmp_path, logs, out, said):
    for task, text in logs.items():
        (tmp_path / f"{JOB_ID}_{task}_log.err").write_text(text)
    (tmp_path / f"{JOB_ID}_0_log.out").write_text(out)
    job = {"job_id": JOB_ID, "stderr": str(tmp_path / f"{JOB_ID}_0_log.err"),
           "stdout": str(tmp_path / f"{JOB_ID}_0_log.out")}
    assert last_error_line(job) == said
    assert last_error_line({**job, "error": "a\nFileNotFoundError: x"}) == "FileNotFoundError: x"  # the job's word


# --- SLURM that did not answer, and SLURM that is not here ----------------------------------------------------------

@pytest.mark.parametrize("job, state, more", [
    ({"state": "queued"}, "queued", ""),
    ({"state": "requeued", "starts": 1, "stopped_by": "SIGUSR2"}, "requeued", ""),
    ({"state": "running", "starts": 1, "alive_at": "NOW"}, "running", ""),
    ({"state": "stopped", "starts": 1, "stopped_by": "SIGTERM"}, "stopped",
     ": stopped by SIGTERM (SLURM may have requeued it since)"),
    ({"state": "running", "starts": 1, "alive_at": "2020-01-01T00:00:00+00:00"}, "failed",  # the job's own silence
     ": no sign of life since 2020-01-01T00:00:00+00:00: its logs say nothing"),
])
def test_a_controller_that_does_not_answer_is_never_taken_for_an_ended_job(tmp_path, monkeypatch, job, state, more):
    cfg, runs = _run(tmp_path, **{k: now() if v == "NOW" else v for k, v in job.items()})
    asked = _slurm(monkeypatch, squeue=NoAnswer(CONTROLLER_DOWN), sacct="")
    found, line = _status(cfg, runs)
    assert found.state == state, line
    assert found.note == f"SLURM did not answer ({CONTROLLER_DOWN}); state from the job file{more}"
    assert [command[0] for command in asked] == ["squeue"]  # sacct is not asked what squeue could not say


def test_without_slurm_here_the_job_file_decides_without_a_word_on_slurm(tmp_path, monkeypatch):
    cfg, runs = _run(tmp_path, state="queued")
    _slurm(monkeypatch, squeue=None)
    found, _ = _status(cfg, runs)
    assert (found.state, found.note) == ("queued", "")


def _fake_squeue(folder: Path, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "squeue").write_text(f"#!/bin/sh\n{script}\n")
    (folder / "squeue").chmod(0o755)
    return folder


def test_run_query_tells_no_squeue_from_a_squeue_that_fails_or_hangs(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert run_query(["squeue"]) is None and slurm_jobs([JOB_ID]) is None  # not here: cannot be asked
    bin_ = _fake_squeue(tmp_path / "bin", "echo 'squeue: error: resolve_ctls_from_dns_srv: res_nsearch error' >&2\n"
                                          "echo 'squeue: fatal: Could not establish a configuration source' >&2\n"
                                          "exit 1")
    monkeypatch.setenv("PATH", str(bin_))
    with pytest.raises(NoAnswer, match="^squeue: fatal: Could not establish a configuration source$"):
        run_query(["squeue"])
    assert slurm_jobs([JOB_ID]) == {JOB_ID: JobNow("NO_ANSWER", reason="squeue: fatal: Could not establish a "
                                                                      "configuration source")}
    _fake_squeue(bin_, f"echo '{CONTROLLER_DOWN}' >&2\nexit 1")
    with pytest.raises(NoAnswer, match=r"^squeue: error: slurm_load_jobs error: Unable to contact slurm controller"):
        run_query(["squeue"])
    _fake_squeue(bin_, "exec /bin/sleep 5")
    monkeypatch.setattr(scheduler, "QUERY_TIMEOUT_S", 0.3)
    with pytest.raises(NoAnswer, match=r"^squeue gave no answer in 0.3 s$"):
        run_query(["squeue"])
    _fake_squeue(bin_, f"echo '{JOB_ID}|PENDING||ReqNodeNotAvail, UnavailableNodes:gpu07|0'\n"
                       "echo '5_2|CANCELLED|node3|None|2'")  # no sacct here: 5_9 is gone
    assert slurm_jobs([JOB_ID, "5_2", "5_9"]) == {  # 5_9 is in neither: scheduler_states calls it GONE
        JOB_ID: JobNow("PENDING", "", "ReqNodeNotAvail, UnavailableNodes:gpu07"),
        "5_2": JobNow("CANCELLED", "node3", "", 2)}


# --- pending for a reason that never clears by itself --------------------------------------------------------------

@pytest.mark.parametrize("reason, words", [
    ("PartitionConfig", ["the partition cannot hold the job's request (CPUs, GPUs or memory per node)",
                         "fewer (--cpus-per-task C, --gpus-per-node G, --mem-gb M)"]),
    ("PartitionTimeLimit", ["a shorter --time (the partition's MaxTime is shown by `sinfo -o %l`)"]),
    ("PartitionNodeLimit", ["fewer --nodes"]),
    ("PartitionDown", ["its partition is down", "another --partition"]),
    ("PartitionInactive", ["its partition is inactive", "another --partition"]),
    ("ReqNodeNotAvail, UnavailableNodes:gpu[01-02]", ["down or drained (UnavailableNodes:gpu[01-02])"]),
    ("InvalidAccount", ["its account is not valid", "another --account"]),
    ("InvalidQOS", ["its QOS is not valid", "another --qos"]),
    ("QOSMaxWallDurationPerJobLimit", ["above its QOS's MaxWall", "a shorter --time"]),
    ("AssocMaxWallDurationPerJobLimit", ["above its account's MaxWall", "a shorter --time"]),
    ("BadConstraints", ["no node can ever meet its request", "another --constraint"]),
    ("QOSMaxGRESPerJob", ["more than its QOS allows a job", "fewer --gpus-per-node G"]),
    ("AssocMaxNodePerJobLimit", ["more than its account allows a job", "fewer --nodes"]),
])
@pytest.mark.parametrize("starts", [0, 1])
def test_a_job_that_can_never_start_says_so_and_how_to_fix_it(tmp_path, monkeypatch, reason, words, starts):
    cfg, runs = _run(tmp_path, state="queued" if not starts else "requeued", starts=starts)
    _slurm(monkeypatch, squeue=_listed("PENDING", reason=reason))
    found, line = _status(cfg, runs)
    assert found.state == "cannot start", line
    assert found.note.startswith(f"{reason.partition(',')[0]}: ")
    assert f": cancel it (`scancel {JOB_ID}`) and submit again with " in found.note
    assert all(word in found.note for word in words), found.note
    assert summary([found]) == "1 cannot start"


def test_a_job_that_cannot_start_names_what_it_asks_for(tmp_path, monkeypatch):
    asks = "1 node x 1 GPU (1 task a node, 9 CPUs a task), 4320 min"
    cfg, runs = _run(tmp_path, state="queued", resources=asks)
    _slurm(monkeypatch, squeue=_listed("PENDING", reason="PartitionTimeLimit"))
    found, line = _status(cfg, runs)
    assert found.note == (f"PartitionTimeLimit: its time limit is above the partition's: cancel it (`scancel "
                          f"{JOB_ID}`) and submit again with a shorter --time (the partition's MaxTime is shown by "
                          f"`sinfo -o %l`) (it asks for {asks})"), line
    assert "log:" not in line  # it never ran: no log to read


@pytest.mark.parametrize("reason, starts, state, note", [
    ("Priority", 0, "queued", "Priority"),
    ("Resources", 0, "queued", "Resources"),
    ("Dependency", 0, "queued", "Dependency"),
    ("BeginTime", 1, "requeued", "BeginTime"),
    ("ReqNodeNotAvail, UnavailableNodes:", 0, "queued", "ReqNodeNotAvail, UnavailableNodes:"),  # no node named
    ("ReqNodeNotAvail, Reserved for maintenance", 0, "queued", "ReqNodeNotAvail, Reserved for maintenance"),
    ("QOSMaxJobsPerUserLimit", 0, "queued", "QOSMaxJobsPerUserLimit"),  # the user's other jobs: it clears
    ("JobHeldUser", 0, "queued", f"held (JobHeldUser): `scontrol release {JOB_ID}` lets it start"),
    ("JobHeldUser", 1, "requeued", f"held (JobHeldUser): `scontrol release {JOB_ID}` lets it start"),
    ("JobHeldAdmin", 0, "queued", "held by the cluster's admins (JobHeldAdmin)"),
])
def test_an_ordinary_wait_stays_queued_with_its_reason(tmp_path, monkeypatch, reason, starts, state, note):
    cfg, runs = _run(tmp_path, state="queued", starts=starts)
    _slurm(monkeypatch, squeue=_listed("PENDING", reason=reason))
    found, line = _status(cfg, runs)
    assert (found.state, found.note) == (state, note), line


def test_a_job_that_cannot_start_is_not_submitted_again_as_it_is(tmp_path, monkeypatch):
    cfg, runs = _run(tmp_path, state="queued")
    _slurm(monkeypatch, squeue=_listed("PENDING", reason="PartitionConfig"))
    plan = plan_submission([cfg], runs, JobOptions(), force=False, dry_run=False)
    assert plan.jobs == [] and len(plan.skipped) == 1
    skipped, why = plan.skipped[0]  # the line run --submit prints names the fix
    assert skipped is cfg and why.startswith(f"cannot start as job {JOB_ID}: PartitionConfig")
    assert "--cpus-per-task" in why
    _slurm(monkeypatch, squeue=_listed("CANCELLED"))  # once cancelled, it is submitted again (with the fix)
    plan = plan_submission([cfg], runs, JobOptions(), force=False, dry_run=False)
    assert [job.cfg for job in plan.jobs] == [cfg] and "its job was cancelled" in plan.jobs[0].action


# --- how far a running job is ----------------------------------------------------------------------------------------

def _progress(ago=2 * 3600 + 5 * 60 + 30, **fields):
    """A heartbeat's progress, of a start ``ago`` seconds before now."""
    return {"step": 1200, "steps": 40000, "epoch": 3, "epochs": 30, "step_at_start": 0, "started_at": _ago(ago),
            **fields}


@pytest.mark.parametrize("fields, said", [  # times 30 s from a minute's edge: the test may take a few seconds
    ({}, "step 1200/40000, epoch 3/30, 2h05m this start, ETA 2d19h"),  # 7530 s / 1200 steps x 38800 left
    ({"step_at_start": 1000, "steps": 1400, "ago": 5430},  # resumed at step 1000: this start's pace, 200 steps
     "step 1200/1400, epoch 3/30, 1h30m this start, ETA 1h30m"),
    ({"steps": None, "epochs": None}, "step 1200, epoch 3, 2h05m this start"),  # totals unknown: no ETA
    ({"step_at_start": 1200, "ago": 3630}, "step 1200/40000, epoch 3/30, 1h00m this start"),  # no step yet: no ETA
])
def test_a_running_job_shows_its_step_epoch_time_and_eta(tmp_path, monkeypatch, capsys, fields, said):
    progress = _progress(**fields)
    cfg, runs = _run(tmp_path, state="running", starts=1, alive_at=now(), progress=progress)
    _slurm(monkeypatch, squeue=_listed("RUNNING", "node3"))
    found, line = _status(cfg, runs)
    assert found.state == "running"
    assert f"on node3 - {said} log: " in line, line
    capsys.readouterr()
    assert main(["status", TABLE, "--runs-dir", str(runs), "--rows", ROW, "--seeds", "1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)[0]["progress"]
    assert {key: shown[key] for key in ("step", "steps", "epoch", "epochs")} == \
           {key: progress[key] for key in ("step", "steps", "epoch", "epochs")}
    assert shown["elapsed_s"] == pytest.approx(datetime.now(UTC).timestamp()
                                               - datetime.fromisoformat(progress["started_at"]).timestamp(), abs=5)
    assert (shown["eta_s"] is None) == ("ETA" not in said)


@pytest.mark.parametrize("progress", [
    None, "step 1200", [1200, 40000], {}, {"step": "1200", "epoch": 3}, {"step": True, "epoch": 3},
    {"step": -1, "epoch": 3}, {"epoch": 3},
])
def test_a_missing_or_malformed_progress_shows_none_and_never_crashes(tmp_path, monkeypatch, capsys, progress):
    cfg, runs = _run(tmp_path, state="running", starts=1, alive_at=now(),
                     **({"progress": progress} if progress is not None else {}))
    _slurm(monkeypatch, squeue=_listed("RUNNING", "node3"))
    found, line = _status(cfg, runs)
    assert (found.state, found.progress) == ("running", None) and "step" not in line and "ETA" not in line
    capsys.readouterr()
    assert main(["status", TABLE, "--runs-dir", str(runs), "--rows", ROW, "--seeds", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["progress"] is None


def test_bad_totals_or_start_time_leave_out_only_what_they_spoil(tmp_path, monkeypatch):
    progress = {"step": 5, "epoch": 1, "steps": "many", "epochs": -1, "step_at_start": "x", "started_at": "yesterday"}
    cfg, runs = _run(tmp_path, state="running", starts=1, alive_at=now(), progress=progress)
    _slurm(monkeypatch, squeue=_listed("RUNNING", "node3"))
    found, line = _status(cfg, runs)
    assert line.split(" - ")[1].startswith("step 5, epoch 1 log: ")
    assert found.progress["eta_s"] is None and found.progress["elapsed_s"] is None


def test_a_stopped_job_keeps_its_progress_in_json_but_not_in_its_line(tmp_path, monkeypatch):
    cfg, runs = _run(tmp_path, state="stopped", starts=1, stopped_by="SIGTERM", progress=_progress())
    _slurm(monkeypatch, squeue=_listed("CANCELLED", "node3"))
    found, line = _status(cfg, runs)
    assert found.state == "stopped" and "step 1200" not in line
    assert found.progress["step"] == 1200 and found.progress["elapsed_s"] is None and found.progress["eta_s"] is None
