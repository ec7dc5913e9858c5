"""What the scheduler says of jobs now: SLURM's ``squeue`` (a queued, running or recently ended job, with its nodes
and why it waits) and, for a job ``squeue`` no longer lists, ``sacct`` where accounting is on; a local job (submitit's
local executor) is alive while its controller process is, on the machine that started it. Where neither answers
(no SLURM here, accounting off, another machine's local job), the answer is None and ``status`` goes by the job
files alone."""

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


@dataclass(frozen=True)
class JobNow:
    """A job as the scheduler sees it: SLURM's state name (PENDING, RUNNING, COMPLETED, FAILED, ...; GONE: neither
    ``squeue`` nor ``sacct`` lists it any more; a live local job is RUNNING, an ended one ENDED), its nodes, and why
    a pending job waits (SLURM's reason), and how often SLURM requeued it."""

    state: str
    nodes: str = ""
    reason: str = ""
    restarts: int = 0  # SLURM's count of the job's requeues

    @property
    def pending(self) -> bool:
        return self.state in ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
                              "SUSPENDED")

    @property
    def running(self) -> bool:
        return self.state in ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING")


def _run(command: list[str]) -> str | None:
    """A query's output, or None where it cannot answer (not installed, refused, too slow)."""
    if shutil.which(command[0]) is None:
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def slurm_jobs(job_ids: Iterable[str]) -> dict[str, JobNow] | None:
    """{job id: what SLURM says of it} for the ids it knows (array tasks as ``<array>_<task>``); None where SLURM
    cannot be asked from here."""
    wanted = set(job_ids)
    if not wanted:
        return {}
    listed = _run(["squeue", "-h", "-r", "-u", getpass.getuser(),
                   "-O", "JobArrayID:0|,State:0|,NodeList:0|,Reason:0|,RestartCnt:0"])
    if listed is None:
        return None
    found = {}
    for line in listed.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 5 and parts[0] in wanted:
            reason = "" if parts[3] in ("None", "(null)") else parts[3]
            found[parts[0]] = JobNow(parts[1], parts[2], reason, int(parts[4]) if parts[4].isdigit() else 0)
    gone = wanted - found.keys()
    if gone:
        found.update(_accounted(gone))
    return found


def _accounted(job_ids: set[str]) -> dict[str, JobNow]:
    """What ``sacct`` says of jobs ``squeue`` no longer lists (nothing where accounting is off)."""
    listed = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State,NodeList", "-j", ",".join(sorted(job_ids))])
    found = {}
    for line in (listed or "").splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0] in job_ids:
            found[parts[0]] = JobNow(parts[1].split()[0], parts[2])  # "CANCELLED by 0" -> CANCELLED
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
    """{job id: what its scheduler says now, or None where it cannot say} for job files' jobs."""
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
    return _run(["scancel", job_id]) is not None
