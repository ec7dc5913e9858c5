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
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


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
            return super().__iter__()
