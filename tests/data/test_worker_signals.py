"""Loader workers leave the stop signals to the training process (``data.worker_signals``): a SIGTERM, SIGINT,
SIGUSR1 or SIGUSR2 sent to every worker, as a scheduler signals every process of a job step, ends none of them and
the epoch goes on to its last batch; a plain ``DataLoader``'s worker dies of the same SIGTERM and its loader raises.
A signal that lands while the workers start waits, and the loader's own ``worker_init_fn`` still runs. A process that
exits with workers still running ends them, and itself, instead of waiting for them forever."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from data.datamodule import ResumableDataLoader, SkipNoneDataLoader
from data.worker_signals import STOP_SIGNALS, StopSafeDataLoader, StopSignalsBlocked, ignore_stop_signals


class _Slow(Dataset):
    """Items that take a while, so that the workers are busy when the signals come."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> torch.Tensor:
        time.sleep(0.05)
        return torch.tensor([index])


def _signal_every_worker(workers, signums) -> None:
    for worker in workers:
        for signum in signums:
            os.kill(worker.pid, signum)


@pytest.mark.parametrize("loader_class", [StopSafeDataLoader, SkipNoneDataLoader])
def test_every_stop_signal_sent_to_the_workers_ends_none_of_them(loader_class):
    loader = loader_class(_Slow(), batch_size=2, num_workers=2, persistent_workers=True)
    iterator = iter(loader)
    batches = [next(iterator)]
    workers = loader._iterator._workers  # persistent: the loader keeps its iterator, and its workers after the epoch
    _signal_every_worker(workers, STOP_SIGNALS)
    time.sleep(0.3)  # a signal's default action would have ended them by now
    batches += list(iterator)
    assert torch.cat(batches).flatten().tolist() == list(range(16))  # every batch, in order
    assert all(worker.is_alive() for worker in workers)
    assert torch.cat(list(loader)).flatten().tolist() == list(range(16))  # and the next epoch too


def test_a_plain_loader_worker_dies_of_the_same_sigterm():
    """The failure the module prevents: SIGTERM ends a plain DataLoader's worker, and its loader raises."""
    loader = DataLoader(_Slow(), batch_size=2, num_workers=2)
    iterator = iter(loader)
    next(iterator)
    _signal_every_worker(iterator._workers, [signal.SIGTERM])
    with pytest.raises(RuntimeError, match="killed by signal: Terminated|exited unexpectedly"):
        list(iterator)


def test_the_training_loader_keeps_its_workers_through_the_signals():
    """``ResumableDataLoader`` (what every run trains from) is a ``StopSafeDataLoader`` too."""
    assert issubclass(ResumableDataLoader, StopSafeDataLoader)
    assert issubclass(SkipNoneDataLoader, StopSafeDataLoader)


def _mark_worker(worker_id: int) -> None:
    torch.utils.data.get_worker_info().dataset.marked = signal.getsignal(signal.SIGTERM)


class _Reports(Dataset):
    marked = None

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        return int(self.marked == signal.SIG_IGN)


def test_the_loaders_own_worker_init_fn_runs_after_the_signals_are_ignored():
    loader = StopSafeDataLoader(_Reports(), batch_size=4, num_workers=1, worker_init_fn=_mark_worker)
    assert next(iter(loader)).tolist() == [1, 1, 1, 1]  # its worker_init_fn saw SIGTERM ignored already


def test_a_signal_that_lands_while_workers_start_waits_for_them():
    """Blocked in the thread that forks the workers, delivered to it once they have started, never to them."""
    got = []
    before = signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    try:
        with StopSignalsBlocked():
            # to this thread (a signal to the process may go to any thread that does not block it: the test runner's)
            signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
            assert got == [] and signal.SIGUSR1 in signal.sigpending()
        assert got == [signal.SIGUSR1]
        assert signal.SIGUSR1 not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_ignore_stop_signals_discards_a_pending_one(tmp_path):
    """In a forked child with the signals blocked (as a worker starts), ``ignore_stop_signals`` drops a pending
    SIGTERM instead of dying of it once unblocked."""
    pid = os.fork()
    if pid == 0:  # the child: exits 0 only if it survives
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            os.kill(os.getpid(), signal.SIGTERM)
            ignore_stop_signals(0)
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


_EXIT_WITH_WORKERS = """
import sys, time
import torch
from torch.utils.data import Dataset
from data.worker_signals import StopSafeDataLoader

torch.utils.data._utils.MP_STATUS_CHECK_INTERVAL = 0.5  # PyTorch's wait for a worker to leave (5 s), shortened

class Items(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        if sys.argv[1] == "stuck" and index >= 2:
            time.sleep(600)  # a worker that cannot take the request to leave
        return torch.tensor([index])

loader = StopSafeDataLoader(Items(), batch_size=2, num_workers=2, persistent_workers=sys.argv[1] == "persistent")
iterator = iter(loader)
next(iterator)
workers = iterator.gi_frame.f_locals["batches"]._workers
if sys.argv[1] == "persistent":
    list(iterator)  # the epoch ends; the workers stay for the next one
print(" ".join(str(worker.pid) for worker in workers), flush=True)
"""


@pytest.mark.parametrize("case", ["persistent", "unfinished", "stuck"])
def test_a_process_that_exits_with_workers_running_ends_them_and_itself(case):
    """multiprocessing's exit handler ends daemonic children with SIGTERM, which these workers ignore, and then waits
    for them; ``end_workers_at_exit`` ends them first. Persistent workers after an epoch, an epoch left unfinished,
    and workers busy with an item that never ends."""
    done = subprocess.run([sys.executable, "-c", _EXIT_WITH_WORKERS, case], capture_output=True, text=True,
                          timeout=30, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    for pid in map(int, done.stdout.split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
