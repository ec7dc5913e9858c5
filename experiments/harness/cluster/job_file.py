"""A run's job file, in its run folder (``RunDir.job_file``): which scheduler job trains the run, with which resources
and logs, and how far the job is. The command that submits the job writes it, and the job rewrites it as it starts,
beats and ends; both hold the run's lock meanwhile (``experiments.harness.run_dir.RunDir.hold``), so neither overwrites
the other, and each write replaces the file atomically, so a reader (``status``, a later ``run --submit``, ``reports
build``) never needs the lock and never sees half a file. Imports no torch and no submitit.

The states a job file records (``experiments.harness.cluster.status`` weighs them against what the scheduler says
now):

- ``queued``: submitted, not started yet;
- ``running``: started, on ``nodes``; ``alive_at`` is rewritten every ``HEARTBEAT_S`` while it runs, so a job that
  died without a word (a node lost, a SIGKILL) shows as silent once ``STALE_S`` have passed;
- ``done``: the run's record is written;
- ``failed``: with ``error``, the last line of what stopped it;
- ``stopped``: a signal stopped it (``stopped_by``: a preemption, a requeue or a cancel send SIGTERM);
- ``requeued``: it saved its state and requeued itself before its time limit.

Every field a reader takes is declared in ``JobFields`` and checked when the file is read (``read_job``): a job
file is a user's file as much as a record, and a ``starts`` of ``[1]``, ``inf`` or ``"x"`` is one line naming the
file and the field, not a traceback in ``status``.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from data.schemas import describe

from ..records import DamagedRecordError, read_json
from ..run_dir import RunDir, RunsTree

HEARTBEAT_S = 60.0  # a running job rewrites its alive_at this often
STALE_S = 3 * HEARTBEAT_S  # a running job silent this long is taken for dead where no scheduler says otherwise
STATES = ("queued", "running", "done", "failed", "stopped", "requeued")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def seconds_since(stamp: str | None) -> float | None:
    """Seconds from an ISO time a job file holds to now (None: no time, or not one)."""
    try:
        return time.time() - datetime.fromisoformat(stamp).timestamp()
    except (TypeError, ValueError):
        return None


def job_fix(run_dir: str | Path) -> str:
    return (f"delete {RunDir(run_dir).job_file} (it only says which job trains the run; `run --submit` writes it "
            f"again), after checking with `squeue` that no job of the run is queued or running")


MAX_STARTS = 10**6  # a job requeues itself at most 30 times; a count past this is no count of starts
Text = StrictStr | None
Count = Annotated[StrictInt, Field(ge=0, le=MAX_STARTS)]


class JobFields(BaseModel):
    """What the readers of a job file (``status``, a later ``run --submit``, the job itself) take from it, each of
    its type, strictly (``"5"`` is no count); keys no reader takes pass."""

    model_config = ConfigDict(extra="allow", frozen=True)

    state: Literal[STATES]
    executor: Text = None
    job_id: Text = None
    instance: Text = None
    host: Text = None
    pid: Annotated[StrictInt, Field(ge=0, le=2**31)] | None = None
    nodes: Text = None
    submitted_at: Text = None
    submitted_on: Text = None
    started_at: Text = None
    alive_at: Text = None
    ended_at: Text = None
    folder: Text = None
    stdout: Text = None
    stderr: Text = None
    resources: Text = None
    sbatch: list[StrictStr] | None = None
    config_key: Text = None
    action: Text = None
    reuses: Text = None
    after: list[StrictStr] | None = None
    earlier_jobs: list[StrictStr] | None = None
    command: Text = None
    starts: Count | None = None
    error: Text = None
    stopped_by: Text = None
    progress: Any = None  # checked field by field where it is read (``status.progress_of``), a bad one shown as none
    report: Text = None
    report_at: Text = None
    report_error: Text = None


def read_job(run_dir: str | Path, runs_root: str | Path | None = None) -> dict[str, Any] | None:
    """The run's job file, or None where it has none; one that is not a JSON object of ``JobFields`` raises
    ``DamagedRecordError`` naming it, the field and what to do. ``runs_root``: the runs folder it must lie in once
    links are resolved (``RunDir.checked_file``; a command that reads the tree gives it, a job reads its own)."""
    path = RunDir(run_dir).job_file
    if not os.path.lexists(path):
        return None
    if runs_root is not None:
        RunDir(run_dir).checked_file(path, runs_root, fix=job_fix(run_dir))
    found = read_json(path, job_fix(run_dir))
    if not isinstance(found, dict):
        raise DamagedRecordError(f"{path}: not a job file (not a JSON object); {job_fix(run_dir)}")
    try:
        JobFields.model_validate(found)
    except ValidationError as err:
        raise DamagedRecordError(f"{path}: not a job file ({describe(err)}); {job_fix(run_dir)}") from None
    return found


def write_job(run_dir: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """Replace the run's job file with ``record`` (atomically; the caller holds the run's lock)."""
    from data.atomic_write import atomic_write_text  # only when a job file is written: reading one needs no data

    atomic_write_text(RunDir(run_dir).job_file, json.dumps(record, indent=1, sort_keys=True))
    return record


def update_job(run_dir: str | Path, **fields: Any) -> dict[str, Any]:
    """The run's job file with ``fields`` set (the caller holds the run's lock); a run without one gets one."""
    return write_job(run_dir, {**(read_job(run_dir) or {}), **fields})


def pending_runs(runs_root: str | Path, table_id: str) -> dict[Path, dict[str, Any]]:
    """{run folder: its job file} of the table's runs that were submitted and have no record yet (a damaged job file
    counts as ``failed``, its error saying so)."""
    pending = {}
    for path in RunsTree(runs_root).job_files(table_id, unrecorded=True):
        try:
            pending[path.parent] = read_job(path.parent, runs_root) or {}
        except DamagedRecordError as err:
            pending[path.parent] = {"state": "failed", "error": str(err)}
    return pending


def pending_note(runs_root: str | Path | None, table_id: str) -> list[str]:
    """The lines a report of local runs adds when some of the table's runs were submitted and have no record yet:
    how many, in which state their job files last said, and the command that asks the scheduler."""
    if runs_root is None:
        return []
    pending = pending_runs(runs_root, table_id)
    if not pending:
        return []
    states: dict[str, int] = {}
    for job in pending.values():
        states[job.get("state", "failed")] = states.get(job.get("state", "failed"), 0) + 1
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    return [f"**Pending:** {len(pending)} submitted run(s) of this table have no record yet ({counts}, as their "
            f"job files last said); their cells fill in when they finish. `python -m experiments status {table_id}` "
            f"asks the scheduler.", ""]
