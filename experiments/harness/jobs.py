"""Independent CPU runs side by side: one process per run, each on its share of the cores.

A tiny run is a 64-d ViT on batches of 16 clips: its matrix products are too small for two threads to help, and the
cores sit half idle. Two runs, each on one thread, finish in about the time of one (see the README's timing of the
quick start). Each run is still a whole ``execute`` in its own process, seeded by its configuration, so its numbers
do not depend on which other runs share the machine; the thread count it used is in its record.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from .execute import execute
from .interruption import Interrupted, raise_if_interrupted, received_signal, stop_children, stop_on_signals
from .run_lock import RunBusyError
from .spec import RunConfig

PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies
MAX_AUTO_JOBS = 4  # beyond this, tiny runs start to compete for memory bandwidth more than they gain


def _one_process_on_cpu(cfg: RunConfig) -> bool:
    t = cfg.trainer
    return t.accelerator == "cpu" and t.devices == 1 and t.num_nodes == 1


def auto_jobs(configs: Sequence[RunConfig]) -> int:
    """``--jobs auto``: one run per core (at most ``MAX_AUTO_JOBS``) when every run is one process on the CPU, else
    1 (a run on an accelerator takes the whole device; Lightning's strategies spread one run over many)."""
    if not configs or not all(_one_process_on_cpu(cfg) for cfg in configs):
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_JOBS, len(configs)))


def check_jobs(jobs: int, configs: Sequence[RunConfig]) -> None:
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    others = sorted({f"{c.table}/{c.row}" for c in configs if not _one_process_on_cpu(c)})
    if jobs > 1 and others:
        raise ValueError(f"--jobs {jobs} runs single-process CPU runs side by side, but {', '.join(others[:3])} "
                         f"train on an accelerator or on several devices; use --jobs 1 (Lightning's --devices and "
                         f"--strategy spread one run over many)")


def end_with_parent(parent: int) -> None:
    """End this process when ``parent`` dies, however it dies (``kill -9`` too, which leaves it no time to stop its
    workers): a worker left behind would train on, then wait forever for a command that is gone. On Linux the kernel
    sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``); elsewhere a watchdog thread checks the parent
    every second. The run is then cut as by ``kill -9``: its last checkpoint (written atomically) is where the same
    command resumes it, and its lock goes with the process."""
    import ctypes
    import threading

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        set_up = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no prctl: not Linux
        set_up = False
    if not set_up:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(128 + signal.SIGKILL)

        threading.Thread(target=watch, name="end-with-parent", daemon=True).start()
    if os.getppid() != parent:  # it died before the signal was asked for
        os._exit(128 + signal.SIGKILL)


def _start_job(threads: int, parent: int) -> None:
    import torch

    end_with_parent(parent)
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # DataLoader workers inherit it
    # Between runs a worker waits for work: a Ctrl+C (which reaches every process of the terminal) must not end it
    # with a traceback; the command stops it. SIGTERM keeps its default there: an idle worker it reaches just ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_job(cfg: RunConfig, runs_root: str, force: bool) -> dict[str, Any] | RunBusyError:
    """One run in a worker; a run another command holds comes back as its ``RunBusyError`` (a skip, not a failure);
    a signal stops it with ``Interrupted``, which stops the command."""
    with stop_on_signals():
        try:
            record = execute(cfg, runs_root, force=force, progress_bar=False, echo=lambda line: None)
        except RunBusyError as busy:
            return busy
        raise_if_interrupted()  # its record is written; a signal it got at the end still stops the command
        return record


class RunFailedError(ValueError):
    """A run that failed in a worker process, with the run named in front of its error's message."""


def _naming_the_run(err: Exception, cfg: RunConfig) -> Exception:
    """The worker's error with the run it came from: a ValueError or KeyError (what the command line prints as
    one line) becomes a ``RunFailedError`` whose message starts with the run; any other error keeps its type and
    traceback and gets the run as a note."""
    run = f"{cfg.table} row={cfg.row} column={cfg.column} seed={cfg.seed} scale={cfg.scale}"
    if isinstance(err, (ValueError, KeyError)):
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        return RunFailedError(f"{run}: {message}")
    if hasattr(err, "add_note"):
        err.add_note(f"in the run {run}")
    return err


def run_side_by_side(configs: Sequence[RunConfig], jobs: int, runs_root: str | Path, force: bool
                     ) -> Iterator[tuple[int, dict[str, Any] | RunBusyError]]:
    """Train ``configs`` in ``jobs`` worker processes; yields (index into configs, record) as each run ends, or
    (index, ``RunBusyError``) for a run another command holds.

    Every run gets ``cores // jobs`` threads. A run that fails stops the table with its error, which names the
    run, after the runs already started have ended (their records are kept). ``Interrupted`` (a signal to this
    process or to a worker) stops every worker at once, each after its batch in progress (``stop_children``), and
    is raised once none is left."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch threads or decoders
    # workers are spawned by this (the main) thread, which the parent-death signal is tied to (``end_with_parent``)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_job,
                             initargs=(threads, os.getpid())) as pool:
        pending: dict[Future, int] = {pool.submit(_run_job, cfg, str(runs_root), force): i
                                      for i, cfg in enumerate(configs)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                # every run that ended in this wait is reported before a failure among them stops the table
                ended = sorted((pending.pop(future), future) for future in done)
                failed = [(index, future.exception()) for index, future in ended if future.exception() is not None]
                for index, future in ended:
                    if future.exception() is None:
                        yield index, future.result()
                if failed:
                    index, err = failed[0]
                    named = _naming_the_run(err, configs[index])
                    if named is err:
                        raise err
                    raise named from err
        except BaseException as err:
            for future in pending:
                future.cancel()
            # a signal, here or in a worker (or while the caller handled a run: the generator is closed then)
            signum = err.signum if isinstance(err, Interrupted) else received_signal()
            if signum is not None:
                pool.shutdown(wait=False, cancel_futures=True)  # an idle worker ends, and the busy ones are told
                stop_children(signum)
            raise
