"""``run --submit local``: the jobs a submission plans, through submitit's local executor on this machine, so that a
laptop or a test takes the very path a SLURM job takes (the pickled ``RunJob``, its job file and heartbeat, a stop
that saves, a requeue through submitit's checkpoint hook, which the local executor answers by starting the job
again).

The command stays in the foreground, as ``run`` does: ``--jobs N`` jobs at a time (one task each: Lightning's own
launcher starts a run's other processes on this machine), a job after the jobs it waits for, each job's end said in
one line. SIGTERM or Ctrl+C stops every job (each saves its run's state at the end of its batch in progress) and the
same command resumes them. A ``kill -9`` of the command ends them too: each job watches it (``RunJob``'s
``end_with``).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..interruption import Interrupted, stop_on_signals
from ..run_dir import RunDir, RunsTree
from ..run_lock import RunBusyError
from .status import RunStatus, last_error_line, statuses_of
from .submission import PlannedJob, executor, write_job_file

POLL_S = 0.5
STOP_WAIT_S = 60.0  # jobs told to stop end their batch and save; one still there after this is killed


def run_locally(jobs: Sequence[PlannedJob], runs_root: str | Path, parallel: int, argv: Sequence[str],
                echo: Callable[[str], None]) -> tuple[list[Path], list[Path]]:
    """Run the planned jobs here, ``parallel`` at a time, each once the runs it waits for are done; returns (the
    runs done, the runs not done)."""
    runs_root = Path(runs_root)
    folder = RunsTree(runs_root).submission_folder()
    waiting, running = list(jobs), {}
    done: list[Path] = []
    failed: list[Path] = []
    with stop_on_signals():
        try:
            while waiting or running:
                for job in _ready(waiting, running, done, failed, parallel, runs_root, echo):
                    handle = _start(job, runs_root, folder, argv, echo)
                    if handle is None:
                        failed.append(RunDir.of(job.cfg, runs_root).path)
                    else:
                        running[RunDir.of(job.cfg, runs_root).path] = (job, handle)
                for path in [p for p, (_, handle) in running.items() if handle.done()]:
                    ended = running.pop(path)[0].cfg
                    status = statuses_of([path], runs_root, {path: RunDir(path).next_step(ended, runs_root)})[path]
                    (done if status.state == "done" else failed).append(path)
                    _say_ended(status, len(done) + len(failed), len(jobs), echo)
                time.sleep(POLL_S)
        except Interrupted:
            _stop([handle for _, handle in running.values()])
            raise
    return done, failed


def _ready(waiting: list[PlannedJob], running: dict, done: list[Path], failed: list[Path], parallel: int,
           runs_root: Path, echo: Callable[[str], None]) -> list[PlannedJob]:
    """The waiting jobs to start now (removed from ``waiting``); a job whose source run failed is dropped."""
    ready = []
    for job in list(waiting):
        path = RunDir.of(job.cfg, runs_root).path
        if job.after_jobs or any(source in failed for source in job.after):
            waiting.remove(job)
            failed.append(path)
            why = "another command's job" if job.after_jobs else "a run that failed"
            echo(f"[not started] {path}: it waits for {why}")
        elif all(source in done for source in job.after) and len(running) + len(ready) < parallel:
            waiting.remove(job)
            ready.append(job)
    return ready


def _start(job: PlannedJob, runs_root: Path, folder: Path, argv: Sequence[str], echo: Callable[[str], None]
           ) -> Any | None:
    """Start one local job and write its job file, holding the run's lock meanwhile (None: another command holds
    the run)."""
    from .job import RunJob

    path = RunDir.of(job.cfg, runs_root).path
    resources = dataclasses.replace(job.resources, tasks_per_node=1)  # Lightning starts a run's other processes
    try:
        with RunDir(path).hold("starting it as a local job"):
            ex = executor("local", folder, resources, job.cfg.table, None)
            handle = ex.submit(RunJob(job.cfg, runs_root, reuse_only=job.reuse_only, end_with=os.getpid()))
            write_job_file(job, handle, "local", folder, runs_root, {}, argv)
    except RunBusyError as busy:
        echo(f"[not started] {busy}")
        return None
    echo(f"[started] {path}: local job {handle.job_id}, {job.action} (log: {handle.paths.stdout})")
    return handle


def _say_ended(status: RunStatus, n: int, total: int, echo: Callable[[str], None]) -> None:
    if status.state == "done":
        echo(f"[{n}/{total} done] {status.run_dir}")
    else:
        echo(f"[{n}/{total} {status.state}] {status.run_dir}: {status.note or last_error_line(status.job)} "
             f"(log: {status.log})")


def _stop(handles: Sequence[Any]) -> None:
    """SIGTERM each running job's controller (it passes it on to the job, which saves and ends), wait for them,
    then kill what is left."""
    for handle in handles:
        try:
            os.kill(int(handle.job_id), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass
    deadline = time.monotonic() + STOP_WAIT_S
    while any(not handle.done() for handle in handles) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    for handle in handles:
        if not handle.done():
            handle.cancel()
