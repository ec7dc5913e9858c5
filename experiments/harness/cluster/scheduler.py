"""What the scheduler says of jobs now: SLURM's ``squeue`` for every state (``-t all``: a queued or running job,
with its nodes and why it waits, and a job that ended within SLURM's ``MinJobAge``, with how it ended: CANCELLED,
TIMEOUT, OUT_OF_MEMORY, ...) and, for a job ``squeue`` no longer lists, ``sacct`` where accounting is on; a local
job (submitit's local executor) is alive while its controller process is, on the machine that started it.

Two silences are told apart. SLURM that cannot be asked from here (no ``squeue`` on the PATH, another machine's
local job) is None, and ``status`` goes by the job files alone. SLURM that is here but did not answer (``squeue``
failed or timed out: the controller is down or overloaded) is ``NO_ANSWER``, with the first line of what ``squeue``
said, so that ``status`` never takes the silence of a controller for the end of a job. ``sacct`` failing is taken
for accounting being off: a job ``squeue`` answered without is ``GONE``, ended long ago."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

QUERY_TIMEOUT_S = 30.0
NO_ANSWER = "NO_ANSWER"  # JobNow.state where squeue is here but did not answer (its reason: what it said)
SQUEUE_FIELDS = "JobArrayID:0|,State:0|,NodeList:0|,Reason:0|,RestartCnt:0"


@dataclass(frozen=True)
class JobNow:
    """A job as the scheduler sees it: SLURM's state name (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT,
    ...; GONE: neither ``squeue`` nor ``sacct`` lists it any more; NO_ANSWER: ``squeue`` did not answer; a live
    local job is RUNNING, an ended one ENDED), its nodes (none for a job that never started), why a pending job
    waits (SLURM's reason, e.g. ``Priority`` or ``ReqNodeNotAvail, UnavailableNodes:gpu07``; for NO_ANSWER, what
    ``squeue`` said), and how often SLURM requeued it."""

    state: str
    nodes: str = ""
    reason: str = ""
    restarts: int = 0  # SLURM's count of the job's requeues

    @property
    def pending(self) -> bool:
        return self.state in ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
                              "SUSPENDED", "STOPPED")

    @property
    def running(self) -> bool:
        return self.state in ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING")


class NoAnswer(Exception):
    """A scheduler command that is here did not answer (it failed, or took longer than ``QUERY_TIMEOUT_S``); the
    message is the first line of what it said."""


def run_query(command: list[str]) -> str | None:
    """A scheduler command's output; None where the command is not on this machine's PATH; ``NoAnswer`` where it is
    but failed or timed out."""
    if shutil.which(command[0]) is None:
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise NoAnswer(f"{command[0]} gave no answer in {QUERY_TIMEOUT_S:g} s") from None
    except OSError as err:
        raise NoAnswer(f"{command[0]}: {err}") from None
    if out.returncode != 0:
        raise NoAnswer(_first_line(out.stderr or out.stdout) or f"{command[0]} exited with status {out.returncode}")
    return out.stdout


def _first_line(text: str) -> str:
    """The line that says most of a failed command's error: its ``fatal:`` line (SLURM's commands print resolver
    noise before it), else its first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return next((line for line in lines if "fatal:" in line), lines[0] if lines else "")


def slurm_jobs(job_ids: Iterable[str]) -> dict[str, JobNow] | None:
    """{job id: what SLURM says of it} for the ids it knows (array tasks as ``<array>_<task>``), each NO_ANSWER where
    ``squeue`` did not answer; None where SLURM cannot be asked from here."""
    wanted = set(job_ids)
    if not wanted:
        return {}
    try:
        listed = run_query(["squeue", "-h", "-r", "-t", "all", "-u", getpass.getuser(), "-O", SQUEUE_FIELDS])
    except NoAnswer as silent:
        return {job_id: JobNow(NO_ANSWER, reason=str(silent)) for job_id in wanted}
    if listed is None:
        return None
    found = {}
    for line in listed.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 5 and parts[0] in wanted:
            reason = "" if parts[3] in ("None", "(null)") else parts[3]
            found[parts[0]] = JobNow(parts[1], _nodes(parts[2]), reason, int(parts[4]) if parts[4].isdigit() else 0)
    gone = wanted - found.keys()
    if gone:
        found.update(_accounted(gone))
    return found


def _nodes(listed: str) -> str:
    """A node list as SLURM prints it, "" for none (a job that was never given nodes)."""
    return "" if listed.strip() in ("", "(null)", "None assigned", "n/a") else listed.strip()


def _accounted(job_ids: set[str]) -> dict[str, JobNow]:
    """What ``sacct`` says of jobs ``squeue`` no longer lists (nothing where accounting is off or does not answer)."""
    try:
        listed = run_query(["sacct", "-n", "-P", "-X", "-o", "JobID,State,NodeList", "-j", ",".join(sorted(job_ids))])
    except NoAnswer:
        return {}
    found = {}
    for line in (listed or "").splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0] in job_ids and parts[1].split():
            found[parts[0]] = JobNow(parts[1].split()[0], _nodes(parts[2]))  # "CANCELLED by 0" -> CANCELLED
    return found


def local_job(job: dict) -> JobNow | None:
    """A local job's controller process, on the machine that started it: RUNNING while it lives, else ENDED; None
    on another machine (this one cannot see its processes)."""
    if job.get("submitted_on") != socket.gethostname() or not str(job.get("job_id", "")).isdigit():
        return None
    pid = int(job["job_id"])
    if Path("/proc").is_dir():  # Linux: the process must still be a controller (its id may have gone to another)
        try:
            alive = b"submitit.local._local" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            alive = False
    else:
        try:
            os.kill(pid, 0)
            alive = True
        except OSError:
            alive = False
    return JobNow("RUNNING", socket.gethostname()) if alive else JobNow("ENDED")


def scheduler_states(jobs: Iterable[dict]) -> dict[str, JobNow | None]:
    """{job id: what its scheduler says now (NO_ANSWER where SLURM did not answer), or None where it cannot be
    asked} for job files' jobs."""
    jobs = [job for job in jobs if job.get("job_id")]
    slurm = [str(job["job_id"]) for job in jobs if job.get("executor") == "slurm"]
    known = slurm_jobs(slurm) if slurm else {}
    out: dict[str, JobNow | None] = {}
    for job in jobs:
        job_id = str(job["job_id"])
        if job.get("executor") == "slurm":
            out[job_id] = None if known is None else known.get(job_id, JobNow("GONE"))  # ended long ago
        else:
            out[job_id] = local_job(job)
    return out


def cancel(job_id: str) -> bool:
    """``scancel`` a SLURM job; whether SLURM took it."""
    try:
        return run_query(["scancel", job_id]) is not None
    except NoAnswer:
        return False
