"""Each run's state: ``done`` (its record is there), ``not submitted``, ``queued``, ``running``, ``requeued`` (it ran,
was preempted or reached its time limit, and waits to run again), ``stopped`` (a signal ended its job and no scheduler
will start it again: cancelled, or stopped on this machine) or ``failed``, with its job's id, nodes, log and, for a
failed job, the last line of its error. What the scheduler says now (``experiments.harness.cluster.scheduler``) comes
first; where it cannot say, the run's job file decides alone, its heartbeat telling a live job from one that died
without a word. ``run --submit`` submits the runs that are neither done nor queued, running or requeued.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..records import DamagedRecordError
from ..spec import RunConfig
from .job_file import STALE_S, read_job, seconds_since
from .scheduler import JobNow, scheduler_states

LIVE = ("queued", "running", "requeued")  # a job of the run will still train it: not submitted again


@dataclass(frozen=True)
class RunStatus:
    run_dir: Path
    state: str
    job: dict[str, Any]  # its job file ({} where it has none)
    nodes: str = ""
    note: str = ""  # why a queued job waits, what a failed one said, ...

    @property
    def job_id(self) -> str:
        return str(self.job.get("job_id") or "")

    @property
    def log(self) -> str:
        """The job's output log while it lives, its error log once it has ended."""
        return str(self.job.get("stdout" if self.state in LIVE else "stderr") or "")


EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception)\b")  # a Python traceback's last line
ERROR_LINE = re.compile(r"\berror\b", re.IGNORECASE)  # srun's, SLURM's: "srun: error: ...", "*** JOB 5 ... ***"


def last_error_line(job: dict[str, Any]) -> str:
    """The last line of what stopped a job: its job file's ``error`` (task 0 wrote it), else the last line of the
    first of its tasks' error logs (task 0's first) that ends with a Python exception, else with an error of srun
    or SLURM (another task's failure ends them all), else the last line of task 0's error log, else of its output
    log."""
    if job.get("error"):
        return str(job["error"]).strip().splitlines()[-1]
    first = Path(job.get("stderr") or "")
    others = sorted(first.parent.glob(f"{job.get('job_id')}_*_log.err")) if job.get("job_id") and first.name else []
    lasts = [line for line in (_last_line(path) for path in dict.fromkeys([first, *others])) if line]
    found = [line for pattern in (EXCEPTION_LINE, ERROR_LINE) for line in lasts if pattern.search(line)]
    return (found or lasts or [_last_line(Path(job.get("stdout") or "")) or "its logs say nothing"])[0]


def _last_line(path: Path) -> str | None:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except (OSError, ValueError):
        return None
    return lines[-1] if lines else None


def _from_scheduler(job: dict[str, Any], now: JobNow) -> tuple[str, str, str]:
    """(state, nodes, note) of a run whose job the scheduler knows."""
    started = int(job.get("starts") or 0) > 0 or now.restarts > 0
    if now.pending:
        if now.reason == "DependencyNeverSatisfied":
            return "failed", "", "it waits for a job that failed (DependencyNeverSatisfied)"
        return ("requeued" if started else "queued"), "", now.reason
    if now.running:
        return "running", now.nodes or str(job.get("nodes") or ""), ""
    said = job.get("state")  # the job ended (or is gone): what did it write on its way out?
    if said == "failed":
        return "failed", "", last_error_line(job)
    if said in ("stopped", "requeued"):
        why = f"stopped by {job.get('stopped_by') or 'a signal'}"
        return "stopped", "", f"{why}; its job ended ({now.state}) without being requeued"
    what = {"COMPLETED": "its job ended without writing the run's record", "ENDED": "its job ended",
            "GONE": "its job ended"}.get(now.state, f"its job ended {now.state}")
    return "failed", "", f"{what}: {last_error_line(job)}"


def _from_job_file(job: dict[str, Any]) -> tuple[str, str, str]:
    """(state, nodes, note) of a run from its job file alone (no scheduler to ask)."""
    said = job.get("state")
    if said == "running":
        silent = seconds_since(job.get("alive_at"))
        if silent is not None and silent > STALE_S:
            return "failed", "", f"no sign of life since {job.get('alive_at')}: {last_error_line(job)}"
        return "running", str(job.get("nodes") or ""), ""
    if said == "stopped":
        return "stopped", "", f"stopped by {job.get('stopped_by') or 'a signal'} (no scheduler here to say whether " \
                              f"it was requeued)"
    if said == "failed":
        return "failed", "", last_error_line(job)
    if said == "done":
        return "failed", "", "its job ended without writing the run's record"
    return said, "", ""


def run_statuses(configs: Sequence[RunConfig], runs_root: str | Path) -> list[RunStatus]:
    """The state of each run of ``configs``, in their order (one scheduler query for all of them)."""
    found = statuses_of([cfg.run_dir(runs_root) for cfg in configs])
    return [found[cfg.run_dir(runs_root)] for cfg in configs]


def statuses_of(run_dirs: Sequence[Path]) -> dict[Path, RunStatus]:
    """{run folder: its state} (one scheduler query for all of them)."""
    jobs: dict[Path, dict[str, Any]] = {}
    damaged: dict[Path, str] = {}
    for run_dir in run_dirs:
        try:
            jobs[run_dir] = read_job(run_dir) or {}
        except DamagedRecordError as err:
            jobs[run_dir], damaged[run_dir] = {}, str(err)
    now = scheduler_states(job for job in jobs.values() if job)
    out = {}
    for run_dir, job in jobs.items():
        if (run_dir / "metrics.json").exists():
            out[run_dir] = RunStatus(run_dir, "done", job)
        elif run_dir in damaged:
            out[run_dir] = RunStatus(run_dir, "failed", job, note=damaged[run_dir])
        elif not job:
            resumable = (run_dir / "checkpoints" / "last.ckpt").exists()
            out[run_dir] = RunStatus(run_dir, "not submitted", job,
                                     note="resumable from checkpoints/last.ckpt" if resumable else "")
        else:
            seen = now.get(str(job.get("job_id") or ""))
            state, nodes, note = _from_job_file(job) if seen is None else _from_scheduler(job, seen)
            out[run_dir] = RunStatus(run_dir, state, job, nodes, note)
    return out


def status_line(cfg: RunConfig, status: RunStatus, runs_root: str | Path) -> str:
    """One run's line: its place, state, job, nodes, and its note or (for a live or failed job) its log."""
    where = f"{cfg.row} / {cfg.column} seed {cfg.seed}"
    parts = [f"{where:<34} {status.state:<13}"]
    if status.job_id:
        parts.append(f"job {status.job_id}")
    if status.job.get("reuses"):
        parts.append(f"(copies {status.job['reuses']} once done)")
    if status.nodes:
        parts.append(f"on {status.nodes}")
    starts = int(status.job.get("starts") or 0)
    if starts > 1 and status.state in LIVE:
        parts.append(f"(started {starts} times)")
    if status.note:
        parts.append(f"- {status.note}")
    if status.log and status.state in ("running", "failed", "requeued", "stopped"):
        parts.append(f"log: {status.log}")
    return " ".join(parts)


def status_json(configs: Sequence[RunConfig], statuses: Sequence[RunStatus]) -> list[dict[str, Any]]:
    return [{"run_dir": str(s.run_dir), "row": cfg.row, "column": cfg.column, "seed": cfg.seed, "scale": cfg.scale,
             "state": s.state, "job_id": s.job_id or None, "nodes": s.nodes or None, "log": s.log or None,
             "note": s.note or None, "starts": int(s.job.get("starts") or 0)}
            for cfg, s in zip(configs, statuses)]


def summary(statuses: Sequence[RunStatus]) -> str:
    """e.g. "3 done, 1 running, 1 queued"."""
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    order = ("done", "running", "requeued", "queued", "stopped", "failed", "not submitted")
    return ", ".join(f"{counts[state]} {state}" for state in order if state in counts)
