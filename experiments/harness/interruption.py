"""SIGTERM and SIGINT stop a command cleanly: ``stop_on_signals`` turns either into ``Interrupted``, which the CLI
reports in one line before exiting with 128 + the signal's number (143, 130), the status a shell gives a process the
signal killed, so a scheduler records the job as interrupted, not as done.

Lightning's own SIGTERM handling is used, not replaced: while a ``Trainer`` runs it puts its handler in front of ours
(and calls ours after it), forwards the signal to the processes its launcher started (DDP), lets the batch in progress
finish on every rank and raises ``SIGTERMException``, a ``SystemExit`` whose status would be 0; ``stop_on_signals``
turns that into ``Interrupted``. SIGINT, which Lightning leaves to Python, is deferred the same way while a
``Trainer`` runs (``at_batch_boundaries``): the handler only records it, and the next batch boundary raises
``Interrupted`` (``StopAtBatchBoundary``, a callback of every run). An exception raised from a signal handler lands at
any bytecode of the main thread, inside a library's lock or queue operation too, and the cleanup Lightning then runs
could wait on that state forever (TensorBoard's writer thread, joined while the run's logger closes). A second SIGINT
before that boundary (a batch that takes long, a loader that hangs) raises at once. Outside a ``Trainer``,
``Interrupted`` is raised at once. Either way a cut run keeps the last checkpoint its ``ModelCheckpoint`` wrote
(written atomically), so the same command resumes it exactly as after a SIGKILL, and the records of finished runs are
untouched. ``stop_children`` ends the processes a command started (the workers of ``--jobs``).

SIGUSR1 and SIGUSR2, the signals a scheduler sends before a job's time limit (SLURM's ``--signal=USR2@120``), stop
the command the same way: the handler records which came (``time_limit_signal``) and sends the process SIGTERM, so
that the run saves at its batch boundary exactly as after a SIGTERM (``lightning_modules.stop_checkpoint``);
``Interrupted`` then names the time-limit signal (exit status 138 or 140). What follows the stop is the caller's: a
submitit job requeues itself (``experiments.harness.cluster.job``), a plain ``run`` inside a SLURM batch job asks
SLURM to requeue it (``requeue_slurm_job``). Loader worker processes ignore all four signals
(``data.worker_signals``): the rank's main process alone stops.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import time
import typing
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)
TIME_LIMIT_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)  # a scheduler's warning before a job's time limit
STOP_GRACE_S = 30.0  # a worker told to stop ends its batch first; one that takes longer is killed

_received: int | None = None  # the first signal since stop_on_signals was entered
_raised = False  # whether ``Interrupted`` for it has been raised (then the command is stopping: nothing more to do)
_batch_boundaries = 0  # > 0 while a Trainer runs whose batch boundaries raise ``Interrupted`` (at_batch_boundaries)
_time_limit: int | None = None  # the time-limit signal that became this process's SIGTERM, if one did


class Interrupted(BaseException):  # not an error: the user asked the command to stop
    """The command was asked to stop by ``signum`` (SIGTERM or SIGINT). A ``BaseException``, as ``KeyboardInterrupt``
    is, so that no ``except Exception`` on the way takes it for a failed run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return f"interrupted by {self.name}"


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received is not None:
        if signum == signal.SIGINT and _batch_boundaries and not _raised:
            _raise(_received)  # Ctrl+C again while waiting for the batch boundary: stop now
        return  # already stopping: a second signal must not cut the cleanup short
    _received = _time_limit if signum == signal.SIGTERM and _time_limit is not None else signum
    if signum == signal.SIGTERM and signal.getsignal(signum) is not _on_signal:
        return  # called by a running Trainer's handler: Lightning stops after the batch (SIGTERMException)
    if _batch_boundaries:
        return  # the Trainer's next batch boundary raises it (StopAtBatchBoundary)
    _raise(_received)


def _on_time_limit(signum: int, frame: FrameType | None) -> None:
    """SIGUSR1/SIGUSR2: stop as SIGTERM stops (whichever handler holds SIGTERM now: Lightning's while a Trainer runs,
    ``CheckpointOnStop``'s while it trains, ``_on_signal`` otherwise), remembering which signal asked."""
    global _time_limit
    if _time_limit is not None or _received is not None:
        return  # already stopping
    _time_limit = signum
    os.kill(os.getpid(), signal.SIGTERM)


def _raise(signum: int) -> typing.NoReturn:
    global _raised
    _raised = True
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise ``Interrupted`` (see the module's text); the handlers before it are
    restored after it. Only in the main thread, as every signal handler."""
    global _received, _raised, _time_limit
    _received, _raised, _time_limit = None, False, None
    previous = {signum: signal.signal(signum, _on_signal) for signum in SIGNALS}
    previous.update({signum: signal.signal(signum, _on_time_limit) for signum in TIME_LIMIT_SIGNALS})
    try:
        yield
    except SystemExit as stop:  # Lightning's SIGTERMException (status None: 0)
        if _received is None:
            raise
        raise Interrupted(_received) from stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received, _raised, _time_limit = None, False, None


@contextmanager
def at_batch_boundaries() -> Iterator[None]:
    """Within the block (a Trainer's fit or test, whose callbacks include ``StopAtBatchBoundary``), a SIGINT is
    recorded and raised as ``Interrupted`` at the next batch boundary, not where the signal lands."""
    global _batch_boundaries
    _batch_boundaries += 1
    try:
        yield
    finally:
        _batch_boundaries -= 1


def received_signal() -> int | None:
    """The signal that asked this process to stop, if one did (within ``stop_on_signals``)."""
    return _received


def time_limit_signal() -> int | None:
    """The time-limit signal (SIGUSR1 or SIGUSR2) that stopped this process, if one did (within
    ``stop_on_signals``)."""
    return _time_limit


def requeue_slurm_job(signum: int) -> str | None:
    """After a time-limit signal stopped a plain ``run`` (not a submitit job, which requeues itself) inside a SLURM
    batch job: ask SLURM to start the job again (``scontrol requeue``, what Lightning's own auto-requeue runs), so that
    the job's script runs the same command, which resumes. Returns the line that says what happened; None outside
    such a job or for any other signal."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job_id = f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")
    if signum not in TIME_LIMIT_SIGNALS or not job_id or os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    try:
        done = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"SLURM job {job_id} not requeued ({err}); submit the same command again to resume"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["scontrol requeue failed"])[-1]
        return f"SLURM job {job_id} not requeued ({why}); submit the same command again to resume"
    return f"SLURM job {job_id} requeued: it starts the same command again, which resumes"


def interruption_pending() -> bool:
    """Whether a signal was recorded whose ``Interrupted`` has not been raised yet (a SIGINT held to the batch
    boundary)."""
    return _received is not None and not _raised


def raise_if_interrupted() -> None:
    """Raise ``Interrupted`` if a signal came while a ``Trainer`` ran and has not been raised yet: at its batch
    boundaries (``StopAtBatchBoundary``), and between the steps of a run (after its last batch, at the end of a fit),
    so that none starts after a signal."""
    if _received is not None:
        _raise(_received)


def stop_children(signum: int, grace_s: float = STOP_GRACE_S) -> None:
    """Pass ``signum`` on to every live process this one started through ``multiprocessing`` (the workers of
    ``--jobs``), wait up to ``grace_s`` seconds for them to end, then kill those still running: none outlives the
    command. A worker pool must have been told to shut down first, or its idle workers wait for work."""
    children = multiprocessing.active_children()
    for child in children:
        with suppress(ProcessLookupError):
            os.kill(child.pid, signum)
    deadline = time.monotonic() + grace_s
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
    for child in children:
        if child.is_alive():
            child.kill()
            child.join()
