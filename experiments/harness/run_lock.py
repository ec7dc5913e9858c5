"""One writer per run directory: ``hold_run`` locks a run for the process that trains, tests or records it, so a
second command started on the same runs folder skips that run (``RunBusyError``, naming the directory and the
process that holds it) instead of training it twice into the same TensorBoard folder and checkpoints.

The lock is ``filelock``'s ``fcntl.flock`` on ``.<column>.lock`` beside the run directory (beside, not inside: a run
that ``--force`` moves away keeps its lock in place, and a run refused before it starts leaves no directory). The
kernel releases such a lock when its process ends, however it ends: the lock of a killed run is free by construction,
and the next command takes it over and resumes the run. A process the holder forks (a DataLoader worker) does not
keep it: filelock closes the lock's descriptor in a forked child. The file itself stays (removing it would race with a
waiter) and holds the last holder's process id, host and start time, which the message of a busy run reads.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout


class RunBusyError(ValueError):
    """Another live process holds the run's lock: it is training, testing or recording that run now."""


class RunLockError(ValueError):
    """The run's lock path holds something no command wrote there (a folder, a link): the run cannot be locked."""


def lock_path(run_dir: str | Path) -> Path:
    """The lock file of a run directory: ``runs/<table>/<row>/seed<k>/.<scale>-<column>.lock``."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.lock"


def _write_holder(fd: int) -> None:
    """Called by filelock with the lock held: who holds it, for the message another command prints."""
    holder = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": datetime.now(UTC).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)


def holder(run_dir: str | Path) -> dict | None:
    """What the run's lock file says of the process that last took it (pid, host, since), or None if it says
    nothing readable (not written yet, or not a lock file of ours)."""
    path = lock_path(run_dir)
    for attempt in range(3):  # the holder writes its id just after it takes the lock
        try:
            found = json.loads(path.read_text())
            if isinstance(found, dict) and isinstance(found.get("pid"), int):
                return found
        except (OSError, ValueError):
            pass
        time.sleep(0.05 * (attempt + 1))
    return None


@contextmanager
def hold_run(run_dir: str | Path) -> Iterator[None]:
    """Hold the run's lock for the block; ``RunBusyError`` at once if another process holds it. Re-entrant within a
    process (the same lock object per path)."""
    run_dir = Path(run_dir)
    path = lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_lock_path(run_dir)
    lock = FileLock(path, is_singleton=True, on_acquired=_write_holder)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise RunBusyError(busy_message(run_dir)) from None
    try:
        yield
    finally:
        lock.release()


def check_lock_path(run_dir: str | Path) -> None:
    """A lock path that is a folder, a link or another special file is no lock of ours: taking it would fail deep in
    filelock (a folder), or lock and overwrite whatever a link points at. ``RunLockError`` naming it instead (checked
    with the run's other options before anything is written, and again when the lock is taken)."""
    path = lock_path(run_dir)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = "a symlink" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise RunLockError(f"{path}: the run's lock file is {kind}, not a file this command wrote; remove it (a lock "
                           f"file holds only its last holder's process id) and run the command again")


def busy_message(run_dir: Path) -> str:
    """The line that says which process holds the run (``RunBusyError``'s message)."""
    found = holder(run_dir)
    if found is None:
        who = f"another process (its lock {lock_path(run_dir)} does not say which)"
    else:
        here = found.get("host") in (None, socket.gethostname())
        who = f"process {found['pid']}" + ("" if here else f" on {found['host']}") + f" since {found.get('since')}"
    return (f"{run_dir}: skipped, {who} is running it in this runs folder; its result is recorded there when it "
            f"ends (run this command again then to use it)")
