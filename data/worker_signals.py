"""Loader worker processes ignore the signals that ask a run to stop.

A scheduler signals every process of a job step, not only the one it started: SLURM's ``scancel``, ``scontrol
requeue``, a preemption and the time-limit signal (``--signal=USR2@120``) reach the loader workers too, as Ctrl+C
reaches every process of a terminal's foreground group. A worker that dies of SIGTERM (or of SIGUSR1/SIGUSR2, whose
default action is to end the process) makes the training process raise ``DataLoader worker (pid …) is killed by
signal`` at its next batch, before it could save its state at the batch boundary. So the stop belongs to the rank's
main process alone (``experiments.harness.interruption``, ``lightning_modules.stop_checkpoint``): each worker ignores
these signals from its first instruction, and ends when its parent does, as PyTorch's workers always do (they watch
their parent and leave once it is gone).

The workers are forked with these signals blocked (``StopSignalsBlocked``): a signal that lands while they start
waits, in the parent, until they have started, and in a worker it is discarded by ``ignore_stop_signals``, its
``worker_init_fn``. Without the block, a signal between a worker's fork and its ``worker_init_fn`` would still end it.

A refusal in a worker (a ``ValueError`` or ``KeyError`` that names a bad file) reaches the training process as
PyTorch re-raises it: the same type, its message the worker's whole traceback. ``worker_refusals_as_raised`` gives it
back its own message, so that the command says it in one line, as it says a refusal of the training process.

A process that exits with workers still running (a persistent loader's, or an epoch left unfinished, outside
Lightning, which shuts its loaders' workers down itself) ends them first (``end_workers_at_exit``): multiprocessing's
own exit handler would send them SIGTERM, which they ignore, and then wait for them forever.
"""

from __future__ import annotations

import ast
import atexit
import multiprocessing.util  # noqa: F401  (its exit handler must be registered before ours)
import re
import signal
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from typing import Any

from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)
# What PyTorch makes of an error in a worker (``torch.utils.data._utils.ExceptionWrapper.reraise``)
_WORKER_ERROR = re.compile(r"Caught (\w+) in DataLoader worker process \d+\.\nOriginal Traceback")
# The worker-starting iterators of the loaders below, and their workers, for ``end_workers_at_exit``: the workers
# apart, since an iterator collected after a shutdown its workers outlived (they ignore its SIGTERM) leaves them behind
_ITERATORS: weakref.WeakSet[_MultiProcessingDataLoaderIter] = weakref.WeakSet()
_WORKERS: weakref.WeakSet[Any] = weakref.WeakSet()


def ignore_stop_signals(worker_id: int) -> None:
    """A loader worker's ``worker_init_fn``: ignore the stop signals, and discard one that came while it started."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def with_stop_signals_ignored(worker_init_fn: Callable[[int], Any] | None) -> Callable[[int], Any]:
    """``ignore_stop_signals``, then the loader's own ``worker_init_fn`` if it has one."""
    if worker_init_fn is None or worker_init_fn is ignore_stop_signals:
        return ignore_stop_signals
    return _Chained(worker_init_fn)


class _Chained:
    """Picklable (a worker started by ``spawn`` or ``forkserver`` receives it pickled)."""

    def __init__(self, worker_init_fn: Callable[[int], Any]) -> None:
        self.worker_init_fn = worker_init_fn

    def __call__(self, worker_id: int) -> None:
        ignore_stop_signals(worker_id)
        self.worker_init_fn(worker_id)


class StopSignalsBlocked:
    """Within the block, the stop signals wait in this thread (the one that forks the workers); the mask before it
    is restored after it, and a signal that came meanwhile is delivered then."""

    def __enter__(self) -> None:
        self._before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self._before)


class StopSafeDataLoader(DataLoader):
    """A ``DataLoader`` whose worker processes leave the stop signals to the process that trains (see the module's
    text). A subclass, so that Lightning can re-create it with a distributed sampler."""

    def __init__(self, *args: Any, worker_init_fn: Callable[[int], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, worker_init_fn=with_stop_signals_ignored(worker_init_fn), **kwargs)

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers == 0:
            return super().__iter__()
        with StopSignalsBlocked():  # the workers start here (every epoch, or once if persistent)
            iterator = super().__iter__()
        if isinstance(iterator, _MultiProcessingDataLoaderIter):
            _ITERATORS.add(iterator)
            _WORKERS.update(iterator._workers)
        return worker_refusals_as_raised(iterator)


def end_workers_at_exit() -> None:
    """End the workers of the loaders above that are still running when the interpreter exits: each is asked to
    leave, as at an epoch's end, and one that has not left within PyTorch's wait is killed. Registered after
    multiprocessing's exit handler, so it runs before it: that one ends daemonic children with SIGTERM, which these
    workers ignore, and then joins them."""
    try:
        for iterator in list(_ITERATORS):
            iterator._shutdown_workers()  # what the iterator's own __del__ and Lightning's teardown call
    finally:  # an error there is still printed (atexit does), and no worker is left for the join to wait on
        for worker in list(_WORKERS):
            if worker.is_alive():
                worker.kill()
                worker.join()


atexit.register(end_workers_at_exit)  # after multiprocessing.util's handler (imported above), so run before it


def worker_refusals_as_raised(batches: Iterable[Any]) -> Iterator[Any]:
    """``batches``, a ``ValueError`` or ``KeyError`` raised in a loader worker coming out with the message it was
    raised with (PyTorch's re-raise makes it the worker's traceback); any other error, a bug, keeps that traceback."""
    try:
        yield from batches
    except (ValueError, KeyError) as err:
        message = worker_error_message(err)
        if message is None:
            raise
        raise type(err)(message) from err


def worker_error_message(err: BaseException) -> str | None:
    """The message an error raised in a loader worker had there, read from the traceback PyTorch re-raised it with
    (its last line that starts with the error's type); None for an error that did not come from a worker."""
    text = str(err.args[0]) if err.args else ""
    found = _WORKER_ERROR.match(text)
    if found is None:
        return None
    kind = re.compile(rf"(?:[\w.]+\.)?{found.group(1)}: ?(.*)")
    lines = [line for line in text.splitlines() if kind.fullmatch(line)]
    if not lines:
        return None
    message = kind.fullmatch(lines[-1]).group(1)
    if isinstance(err, KeyError):  # a traceback writes a KeyError's key as its repr
        with suppress(ValueError, SyntaxError):
            key = ast.literal_eval(message)
            return key if isinstance(key, str) else message
    return message
