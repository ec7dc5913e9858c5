"""One writer per run directory: the lock a process holds while it trains, tests or records a run, so a second
command started on the same runs folder skips that run (``RunBusyError``, naming the directory and the process that
holds it) instead of training it twice into the same TensorBoard folder and checkpoints. ``RunDir.hold`` takes it
(``experiments.harness.run_dir``, which names the lock file).

The lock is ``filelock``'s ``fcntl.flock`` on a lock file beside the run directory (beside, not inside: a run that
``--force`` moves away keeps its lock in place, and a run refused before it starts leaves no directory). The kernel
releases such a lock when its process ends, however it ends: the lock of a killed run is free by construction, and the
next command takes it over and resumes the run. A process the holder forks (a DataLoader worker) does not keep it:
filelock closes the lock's descriptor in a forked child. The file itself stays (removing it would race with a waiter)
and holds the last holder's process id, host, start time and what it does with the run (trains it, submits it as a
job), which the message of a busy run reads.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout


class RunBusyError(ValueError):
    """Another live process holds the run's lock: it is training, testing or recording that run now."""


class RunLockError(ValueError):
    """The run's lock path holds something no command wrote there (a folder, a link): the run cannot be locked."""


_doing = ContextVar("doing", default="running it")  # what the process taking a lock does with the run


def _write_holder(fd: int) -> None:
    """Called by filelock with the lock held: who holds it and what for, for the message another command prints."""
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "doing": _doing.get(),
              "since": datetime.now(UTC).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)


def holder(lock_file: Path) -> dict | None:
    """What a run's lock file says of the process that last took it (pid, host, since), or None if it says nothing
    readable (not written yet, or not a lock file of ours)."""
    for attempt in range(3):  # the holder writes its id just after it takes the lock
        try:
            found = json.loads(lock_file.read_text())
            if isinstance(found, dict) and isinstance(found.get("pid"), int):
                return found
        except (OSError, ValueError):
            pass
        time.sleep(0.05 * (attempt + 1))
    return None


def _file_lock(lock_file: Path) -> FileLock:
    """This process's lock object of ``lock_file`` (one per path: taking it again within the process is re-entrant)."""
    return FileLock(lock_file, is_singleton=True, on_acquired=_write_holder)


@contextmanager
def hold_lock(lock_file: Path, run_dir: Path, doing: str = "running it") -> Iterator[None]:
    """Hold ``run_dir``'s lock (``lock_file``) for the block, ``doing`` what it says (the lock file keeps it for
    another command's message); ``RunBusyError`` at once if another process holds it. Re-entrant within a process
    (the same lock object per path: the first holder's ``doing`` stays)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    check_lock_file(lock_file)
    lock = _file_lock(lock_file)
    said = _doing.set(doing)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise RunBusyError(busy_message(run_dir, lock_file)) from None
    finally:
        _doing.reset(said)
    try:
        yield
    finally:
        lock.release()


def check_lock_file(lock_file: Path) -> None:
    """A lock path that is a folder, a link or another special file is no lock of ours: taking it would fail deep in
    filelock (a folder), or lock and overwrite whatever a link points at. ``RunLockError`` naming it instead (checked
    with the run's other options before anything is written, and again when the lock is taken)."""
    try:
        mode = os.lstat(lock_file).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = "a symlink" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise RunLockError(f"{lock_file}: the run's lock file is {kind}, not a file this command wrote; remove it (a "
                           f"lock file holds only its last holder's process id) and run the command again")


def held_elsewhere(lock_file: Path) -> bool:
    """Whether another live process (or another thread of this one) holds the lock now. The probe takes the lock's
    shared side for an instant and lets it go: a command that tries to take the lock at that very instant finds it
    busy, so the harness itself takes the lock (``hold_lock``) rather than ask first."""
    if _file_lock(lock_file).is_locked:  # this thread holds it: the run is this process's own
        return False
    check_lock_file(lock_file)
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except FileNotFoundError:  # no process ever took it
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # which lets the probe's own hold go
    return False


def lock_holder(lock_file: Path) -> tuple[str, str]:
    """(which process holds a lock, as its file says: "process N since T", what it does with the run)."""
    found = holder(lock_file) or {}
    doing = found.get("doing") if isinstance(found.get("doing"), str) else "running it"
    if not found:
        return f"another process (its lock {lock_file} does not say which)", doing
    here = found.get("host") in (None, socket.gethostname())
    return f"process {found['pid']}" + ("" if here else f" on {found['host']}") + f" since {found.get('since')}", doing


def busy_message(run_dir: Path, lock_file: Path) -> str:
    """The line that says which process holds the run, doing what (``RunBusyError``'s message)."""
    who, doing = lock_holder(lock_file)
    after = "its result is recorded there when it ends (run this command again then to use it)" \
        if doing.startswith("running it") else "`python -m experiments status` says where it stands"
    return f"{run_dir}: skipped, {who} is {doing} in this runs folder; {after}"
