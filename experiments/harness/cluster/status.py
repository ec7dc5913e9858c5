"""Each run's state, and why (the note of its line), from what ``run`` would do with it (``RunDir.next_step``) and
its job:

- ``done``: its record, of this run and configuration, is there; ``not submitted``: no job file (the note says what
  ``run`` would do: resume, reuse, skip for its data);
- ``refused``: ``run`` would refuse it (a record or checkpoint of another run or configuration, a damaged one: the
  note says which), and no job of it is queued or running; ``busy``: another command holds it (training it, or
  submitting it as a job), and no job of it is queued or running;
- ``queued``: pending, with SLURM's reason (``Priority``, ``Resources``, ...; a held job says how to release it);
- ``cannot start``: pending for a reason SLURM does not get over by itself (a request its partition cannot hold,
  a time limit above the partition's, an invalid account or QOS, down nodes or partition: ``NEVER_STARTS``); the
  note names the reason, the ``scancel`` and the options to submit it again with;
- ``running``: on its nodes, with its heartbeat's step, epoch, time of this start and ETA (``progress_of``);
- ``requeued``: it ran, was preempted or reached its time limit, and waits to run again;
- ``stopped``: resumable, nothing of the run went wrong: its job was cancelled (before it started, when it never
  ran, or after) or preempted and not requeued, or it saved its state on a signal and no scheduler will start it
  again (the note says which);
- ``failed``: its job ended without the run's record: SLURM's ending said plainly (time limit without a requeue,
  out of memory, a node failure) and the line of its logs that says why (``last_error_line``: a Python exception,
  else how a task ended, else SLURM's word, else another error line; never srun's noise); also a job that waits for
  a failed one.

What the scheduler says now (``experiments.harness.cluster.scheduler``) comes first; where it cannot be asked (no
SLURM here), the run's job file decides alone, its heartbeat telling a live job from one that died without a word.
Where SLURM is here but did not answer, the job file decides too, and the note says so: the silence of a controller
is never taken for the end of a job. ``run --submit`` submits the runs that are neither done nor in SLURM's queue
(``LIVE``); a job that cannot start stays there until it is cancelled, so that the next submission carries the fix
its note names rather than a copy of the same request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..plan import planned_steps
from ..progress import duration
from ..records import DamagedRecordError
from ..run_dir import RunDir, RunsTree, Step
from ..spec import RunConfig
from .job_file import STALE_S, read_job, seconds_since
from .scheduler import NO_ANSWER, JobNow, scheduler_states

# a job of the run is in SLURM's queue or running: not submitted again (one that cannot start waits to be cancelled)
LIVE = ("queued", "running", "requeued", "cannot start")
NEVER_RAN = "before it started: it never ran"  # the end of a stopped job's note where it left no log
ORDER = ("done", "running", "requeued", "queued", "cannot start", "busy", "stopped", "failed", "refused",
         "not submitted")


@dataclass(frozen=True)
class RunStatus:
    run_dir: Path
    state: str
    job: dict[str, Any]  # its job file ({} where it has none)
    nodes: str = ""
    note: str = ""  # why a queued job waits, what a failed one said, ...
    progress: dict[str, Any] | None = None  # how far its training is (``progress_of``), where its job file says
    next: str = ""  # what ``run`` would do with it (``Step.line``), where the caller knows the run

    @property
    def job_id(self) -> str:
        return str(self.job.get("job_id") or "")

    @property
    def log(self) -> str:
        """The job's output log while it lives, its error log once it has ended; none for a job that never ran
        (SLURM writes a job's logs as it starts)."""
        return "" if self.note.endswith(NEVER_RAN) else str(self.job.get("stdout" if self.state in LIVE else "stderr")
                                                             or "")


# --- the line of a job's logs that says why it ended ----------------------------------------------------------------

EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception)\b")  # a Python traceback's last line
TASK_END_LINE = re.compile(  # srun's word on how a task ended, the kernel's OOM killer
    r"\btasks? [\d,-]+: (Killed|Terminated|Exited with exit code \d+|Out Of Memory|Segmentation fault|Aborted|"
    r"Bus error|Floating point exception|Illegal instruction)|\bout of memory\b|\boom[-_ ]kill", re.IGNORECASE)
SLURM_END_LINE = re.compile(r"\*\*\* (JOB \S+ ON \S+ CANCELLED AT .*|.* DUE TO .*) \*\*\*")  # time limit, ...
ERROR_LINE = re.compile(r"\berror\b", re.IGNORECASE)
NOISE_LINE = re.compile(  # what srun and slurmstepd say of every ended step, whatever ended it
    r"srun: Force Terminated|srun: Job step aborted|\*\*\* STEP \S+ ON \S+ CANCELLED AT \S+ \*\*\*|"
    r"srun: (launch/slurm: _step_signal: )?Terminating|srun: forcing job termination|Bypassing signal")
# (pattern, take the last match of a log rather than its first): the first task to end is the cause, the others
# are ended by srun; a traceback's last exception line is the one that ended it
RANKED = ((EXCEPTION_LINE, True), (TASK_END_LINE, False), (SLURM_END_LINE, False), (ERROR_LINE, True))
TAIL_BYTES = 256 * 1024  # what is read of each log: its end


def last_error_line(job: dict[str, Any]) -> str:
    """The one line that says what stopped a job: its job file's ``error`` (task 0 wrote it), else the best line of
    its tasks' error logs (task 0's first, then the others): a Python exception line, else a line on how a task
    ended (killed, an exit code, out of memory), else SLURM's ``*** JOB ... CANCELLED ... ***``, else another error
    line; else the last line of task 0's error log, else of its output log, noise left out."""
    if job.get("error"):
        return str(job["error"]).strip().splitlines()[-1]
    first = Path(job.get("stderr") or "")
    others = sorted(first.parent.glob(f"{job.get('job_id')}_*_log.err")) if job.get("job_id") and first.name else []
    logs = [_meaningful_lines(path) for path in dict.fromkeys([first, *others])]
    for pattern, last in RANKED:
        for lines in logs:
            found = [line for line in lines if pattern.search(line)]
            if found:
                return found[-1 if last else 0]
    return (logs[0] or _meaningful_lines(Path(job.get("stdout") or "")) or ["its logs say nothing"])[-1]


def _meaningful_lines(path: Path) -> list[str]:
    """The non-blank lines of the end of a log, srun's noise left out ([] where it cannot be read)."""
    if not path.name:
        return []
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, 2) - TAIL_BYTES))
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not NOISE_LINE.search(line)]


# --- what SLURM's reason for a pending job means ----------------------------------------------------------------------

# SLURM's pending reasons (https://slurm.schedmd.com/job_reason_codes.html) under which a job does not start as it
# was submitted: {reason: (what stops it, what to submit it again with)}
NEVER_STARTS = {
    "PartitionConfig": ("the partition cannot hold the job's request (CPUs, GPUs or memory per node)",
                        "fewer (--cpus-per-task C, --gpus-per-node G, --mem-gb M)"),
    "PartitionTimeLimit": ("its time limit is above the partition's",
                           "a shorter --time (the partition's MaxTime is shown by `sinfo -o %l`)"),
    "PartitionNodeLimit": ("its node count is outside the partition's limits (or the nodes it needs are down)",
                           "fewer --nodes (the partition's MaxNodes is shown by `sinfo -o %s`)"),
    "PartitionDown": ("its partition is down", "another --partition (`sinfo -s` lists them), or wait for the "
                                               "cluster's admins to bring it up"),
    "PartitionInactive": ("its partition is inactive", "another --partition (`sinfo -s` lists them), or wait for "
                                                       "the cluster's admins to bring it up"),
    "InvalidAccount": ("its account is not valid",
                       "another --account (yours: `sacctmgr show assoc user=$USER format=account`)"),
    "InvalidQOS": ("its QOS is not valid", "another --qos (yours: `sacctmgr show assoc user=$USER format=qos`)"),
    "AccountNotAllowed": ("its account may not use its partition", "another --account or --partition"),
    "QOSNotAllowed": ("its QOS is not allowed for its account or partition", "another --qos or --partition"),
    "QOSMaxWallDurationPerJobLimit": ("its time limit is above its QOS's MaxWall", "a shorter --time (the QOS's "
                                      "MaxWall: `sacctmgr show qos format=name,maxwall`)"),
    "AssocMaxWallDurationPerJobLimit": ("its time limit is above its account's MaxWall", "a shorter --time (the "
                                        "limit: `sacctmgr show assoc user=$USER format=account,maxwall`)"),
    "BadConstraints": ("no node can ever meet its request",
                       "another --constraint, or fewer (--cpus-per-task C, --gpus-per-node G, --mem-gb M)"),
    "MaxMemPerLimit": ("its memory is above the cluster's maximum per CPU or per node", "less --mem-gb M"),
    "ReservationDeleted": ("its reservation no longer exists", "no reservation (drop --slurm-option reservation)"),
}
PER_JOB_LIMIT = re.compile(r"^(Assoc|QOS)Max(\w+?)Per(Job|Node)(Limit)?$")  # AssocMaxNodePerJobLimit, QOSMaxGRESPerJob
PER_JOB_FIX = (("Minutes", "a shorter --time, or fewer resources"), ("Node", "fewer --nodes"),
               ("Cpu", "fewer --cpus-per-task C"), ("GRES", "fewer --gpus-per-node G"), ("Mem", "less --mem-gb M"))


def never_starts(reason: str, job_id: str) -> str | None:
    """The note of a job SLURM keeps pending for ``reason`` that it will not get over by itself: what stops it, and
    how to submit it again; None for an ordinary wait (Priority, Resources, Dependency, a hold, ...)."""
    name, _, detail = reason.partition(",")
    name, detail = name.strip(), detail.strip()
    found = NEVER_STARTS.get(name)
    limit = PER_JOB_LIMIT.match(name)
    if found is None and limit:
        fix = next((fix for word, fix in PER_JOB_FIX if word in limit.group(2)),
                   "fewer resources (--nodes, --gpus-per-node G, --cpus-per-task C, --mem-gb M)")
        found = (f"it asks for more than its {'QOS' if limit.group(1) == 'QOS' else 'account'} allows a job", fix)
    elif found is None and name.startswith("QOSMin"):
        found = ("it asks for less than its QOS's minimum", "more resources, or another --qos")
    elif found is None and name == "ReqNodeNotAvail" and detail.partition("UnavailableNodes:")[2].strip():
        found = (f"the nodes it can run on are down or drained ({detail})",
                 "another --partition or --constraint, or wait for the cluster's admins to bring them back")
    if found is None:
        return None
    return f"{name}: {found[0]}: cancel it (`scancel {job_id}`) and submit again with {found[1]}"


def _pending(job: dict[str, Any], now: JobNow) -> tuple[str, str, str]:
    """(state, nodes, note) of a run whose job SLURM keeps pending."""
    started = int(job.get("starts") or 0) > 0 or now.restarts > 0
    waiting = "requeued" if started else "queued"
    job_id = str(job.get("job_id") or "")
    reason = now.reason.partition(",")[0].strip()
    if reason == "DependencyNeverSatisfied":
        return "failed", "", "it waits for a job that failed (DependencyNeverSatisfied)"
    fix = never_starts(now.reason, job_id)
    if fix:
        return "cannot start", "", fix + (f" (it asks for {job['resources']})" if job.get("resources") else "")
    if reason == "JobHeldUser":
        return waiting, "", f"held (JobHeldUser): `scontrol release {job_id}` lets it start"
    if reason == "JobHoldMaxRequeue":
        return waiting, "", f"held after SLURM requeued it its maximum number of times (JobHoldMaxRequeue): " \
                            f"`scontrol release {job_id}` lets it start again"
    if reason == "JobHeldAdmin":
        return waiting, "", "held by the cluster's admins (JobHeldAdmin)"
    return waiting, "", now.reason


# --- what an ended job means ------------------------------------------------------------------------------------------

ENDINGS = {  # SLURM's state of an ended job, said plainly (any other: "its job ended <STATE>")
    "CANCELLED": "its job was cancelled (CANCELLED)",
    "TIMEOUT": "its job reached its time limit without being requeued (TIMEOUT)",
    "OUT_OF_MEMORY": "its job ran out of memory (OUT_OF_MEMORY; --mem-gb asks for more)",
    "NODE_FAIL": "a node of its job failed (NODE_FAIL)",
    "PREEMPTED": "its job was preempted and not requeued (PREEMPTED)",
    "BOOT_FAIL": "the nodes of its job failed to boot (BOOT_FAIL)",
    "DEADLINE": "its job reached its deadline (DEADLINE)",
    "COMPLETED": "its job ended without writing the run's record",
    "ENDED": "its job ended", "GONE": "its job ended",
}
STOPPED_BY_SCHEDULER = ("CANCELLED", "PREEMPTED")  # nothing went wrong with the run: it resumes
RUN_SAID_IT = ("FAILED", "COMPLETED", "ENDED", "GONE")  # the job file's error says all there is


def never_ran(job: dict[str, Any], now: JobNow) -> bool:
    """The job never started: its job file was never taken over by a task, SLURM never gave it nodes nor requeued
    it, and it left no log (SLURM writes one as the job starts)."""
    logs = [Path(str(job[key])) for key in ("stdout", "stderr") if job.get(key)]
    return job.get("state") == "queued" and not int(job.get("starts") or 0) and not now.restarts \
        and not now.nodes and not any(log.exists() for log in logs)


def _ended(job: dict[str, Any], now: JobNow) -> tuple[str, str, str]:
    """(state, nodes, note) of a run whose job has ended (or is gone) without the run's record: ``stopped`` where
    the scheduler ended it (cancelled, preempted) or the run saved its state on a signal, else ``failed``."""
    said = job.get("state")  # what the job wrote on its way out
    ending = ENDINGS.get(now.state, f"its job ended {now.state}")
    if said == "failed":
        error = last_error_line(job)
        return "failed", "", error if now.state in RUN_SAID_IT else f"{ending}: {error}"
    if never_ran(job, now):
        if now.state in ("GONE", "ENDED"):
            ending = "its job ended without a log (cancelled, most likely)"
        return "stopped", "", f"{ending} {NEVER_RAN}"
    stopped_by = f"stopped by {job['stopped_by']}" if job.get("stopped_by") else ""
    if now.state in STOPPED_BY_SCHEDULER:
        return "stopped", "", f"{ending} after it started" + (f"; {stopped_by}" if stopped_by else "")
    if said in ("stopped", "requeued"):
        if now.state in ENDINGS and now.state not in RUN_SAID_IT:
            return "stopped", "", f"{ending}; {stopped_by or 'stopped by a signal'}"
        return "stopped", "", f"{stopped_by or 'stopped by a signal'}; its job ended ({now.state}) without being " \
                              f"requeued"
    return "failed", "", f"{ending}: {last_error_line(job)}"


def _from_scheduler(job: dict[str, Any], now: JobNow) -> tuple[str, str, str]:
    """(state, nodes, note) of a run whose job the scheduler was asked about."""
    if now.state == NO_ANSWER:
        state, nodes, note = _from_job_file(job, "SLURM may have requeued it since")
        head = f"SLURM did not answer ({now.reason}); state from the job file"
        return state, nodes, f"{head}: {note}" if note else head
    if now.pending:
        return _pending(job, now)
    if now.running:
        return "running", now.nodes or str(job.get("nodes") or ""), ""
    return _ended(job, now)


def _from_job_file(job: dict[str, Any], requeued: str = "no scheduler here to say whether it was requeued"
                   ) -> tuple[str, str, str]:
    """(state, nodes, note) of a run from its job file alone (``requeued``: what is known of a stopped job's
    requeue)."""
    said = job.get("state")
    if said == "running":
        silent = seconds_since(job.get("alive_at"))
        if silent is not None and silent > STALE_S:
            return "failed", "", f"no sign of life since {job.get('alive_at')}: {last_error_line(job)}"
        return "running", str(job.get("nodes") or ""), ""
    if said == "stopped":
        return "stopped", "", f"stopped by {job.get('stopped_by') or 'a signal'} ({requeued})"
    if said == "failed":
        return "failed", "", last_error_line(job)
    if said == "done":
        return "failed", "", "its job ended without writing the run's record"
    return said, "", ""


# --- how far a running job is ---------------------------------------------------------------------------------------

def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def progress_of(job: dict[str, Any], running: bool) -> dict[str, Any] | None:
    """The job file's ``progress`` (step and epoch now, their totals, the step this start began at and when),
    checked, with ``elapsed_s`` (this start's time so far) and ``eta_s`` (this start's pace over the steps left)
    for a running job; None where the job file has none or a malformed one (an older job file)."""
    found = job.get("progress")
    if not isinstance(found, dict) or _count(found.get("step")) is None or _count(found.get("epoch")) is None:
        return None
    started_at = found.get("started_at") if seconds_since(found.get("started_at")) is not None else None
    out = {"step": found["step"], "steps": _count(found.get("steps")) or None, "epoch": found["epoch"],
           "epochs": _count(found.get("epochs")) or None, "step_at_start": _count(found.get("step_at_start")),
           "started_at": started_at, "elapsed_s": None, "eta_s": None}
    elapsed = seconds_since(started_at) if running else None
    if elapsed is None:
        return out
    out["elapsed_s"] = elapsed = max(0.0, elapsed)
    done = out["step"] - out["step_at_start"] if out["step_at_start"] is not None else 0
    if done > 0 and out["steps"]:
        out["eta_s"] = max(0.0, elapsed / done * (out["steps"] - out["step"]))
    return out


def span(seconds: float) -> str:
    """``duration``'s 45s, 3m05s, 1h02m, and 3d04h beyond a day."""
    if seconds < 86400:
        return duration(seconds)
    hours = int(round(seconds)) // 3600
    return f"{hours // 24}d{hours % 24:02d}h"


def progress_text(progress: dict[str, Any]) -> str:
    """e.g. "step 1200/40000, epoch 3/30, 2h05m this start, ETA 3d04h" (what is known of it)."""
    parts = [f"step {progress['step']}" + (f"/{progress['steps']}" if progress["steps"] else ""),
             f"epoch {progress['epoch']}" + (f"/{progress['epochs']}" if progress["epochs"] else "")]
    if progress["elapsed_s"] is not None:
        parts.append(f"{span(progress['elapsed_s'])} this start")
    if progress["eta_s"] is not None:
        parts.append(f"ETA {span(progress['eta_s'])}")
    return ", ".join(parts)


# --- the states of a table's runs -------------------------------------------------------------------------------------

def run_statuses(configs: Sequence[RunConfig], runs_root: str | Path) -> list[RunStatus]:
    """The state of each run of ``configs``, in their order (one scheduler query for all of them), from what
    ``run`` would do with each (``plan.planned_steps``, as ``run --dry-run`` asks it)."""
    folders = [RunDir.of(cfg, runs_root).path for cfg in configs]
    found = statuses_of(folders, runs_root, dict(zip(folders, planned_steps(configs, runs_root))))
    return [found[folder] for folder in folders]


def statuses_of(run_dirs: Sequence[Path], runs_root: str | Path, steps: dict[Path, Step] | None = None
                ) -> dict[Path, RunStatus]:
    """{run folder: its state} (one scheduler query for all of them), from what ``run`` would do with each
    (``steps``: its ``RunDir.next_step``, where the caller knows the run; a folder without one is read from its job
    alone) and its job. A job file is read only inside ``runs_root``: one that links out of it is ``failed``, its
    note saying so, and nothing of the file it leads to is shown."""
    jobs: dict[Path, dict[str, Any]] = {}
    damaged: dict[Path, str] = {}
    for run_dir in run_dirs:
        try:
            jobs[run_dir] = read_job(run_dir, runs_root) or {}
        except DamagedRecordError as err:
            jobs[run_dir], damaged[run_dir] = {}, str(err)
    now = scheduler_states(job for job in jobs.values() if job)
    out = {}
    for run_dir, job in jobs.items():
        step = (steps or {}).get(run_dir)
        said = step.line(runs_root) if step is not None else ""
        state, nodes, note, progress = "not submitted", "", "", None
        if step is not None and step.action == "done":
            state = "done"
        elif run_dir in damaged:
            state, note = "failed", damaged[run_dir]
        elif job:
            seen = now.get(str(job.get("job_id") or ""))
            state, nodes, note = _from_job_file(job) if seen is None else _from_scheduler(job, seen)
            progress = progress_of(job, state == "running")
        if step is not None and step.action in ("refuse", "busy") and state not in LIVE:
            state, note = "refused" if step.action == "refuse" else "busy", step.why
        elif state == "not submitted" and step is not None and step.action != "train":
            note = said
        out[run_dir] = RunStatus(run_dir, state, job, nodes, note, progress, said)
    return out


def status_line(cfg: RunConfig, status: RunStatus, runs_root: str | Path) -> str:
    """One run's line: its place, state, job, nodes, its note and (running) its progress, and (for a live or ended
    job) its log."""
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
    said = [status.note] if status.note else []
    if status.state == "running" and status.progress:
        said.append(progress_text(status.progress))
    if said:
        parts.append(f"- {'; '.join(said)}")
    if status.log and status.state in ("running", "failed", "requeued", "stopped"):
        parts.append(f"log: {status.log}")
    return " ".join(parts)


def status_json(configs: Sequence[RunConfig], statuses: Sequence[RunStatus]) -> list[dict[str, Any]]:
    return [{"run_dir": str(s.run_dir), "row": cfg.row, "column": cfg.column, "seed": cfg.seed, "scale": cfg.scale,
             "state": s.state, "job_id": s.job_id or None, "nodes": s.nodes or None, "log": s.log or None,
             "note": s.note or None, "starts": int(s.job.get("starts") or 0), "progress": s.progress,
             "next": s.next or None}
            for cfg, s in zip(configs, statuses)]


def seed_folders_left_out(runs_root: str | Path, table: str, scale: str, max_seeds: int) -> list[str]:
    """A note for each seed folder of ``table`` holding runs at ``scale`` that no ``run`` makes (``seed<k>`` with
    ``k`` of ``max_seeds`` or more, or no number): ``status`` shows seeds 0 to ``max_seeds - 1`` only, and names
    each folder it leaves out rather than passing over it in silence."""
    from data.root_files import shown

    return [f"note: {shown(folder)} left out: `run` makes the seed folders seed0 to seed{max_seeds - 1}"
            for folder in RunsTree(runs_root).seeds(table, scale, max_seeds)[1]]


def summary(statuses: Sequence[RunStatus]) -> str:
    """e.g. "3 done, 1 running, 1 queued"."""
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    return ", ".join(f"{counts[state]} {state}" for state in ORDER if state in counts)
