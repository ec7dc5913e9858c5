"""``stop_on_signals``: SIGTERM and SIGINT become ``Interrupted`` (exit status 143, 130), at once outside a Trainer and
after Lightning's own stop inside one; ``stop_children`` leaves no child process running."""

import multiprocessing
import os
import signal
import time

import pytest

from experiments.harness.interruption import Interrupted, raise_if_interrupted, stop_children, stop_on_signals


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_outside_a_trainer_interrupts_at_once(signum, status):
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as stop:
        with stop_on_signals():
            os.kill(os.getpid(), signum)
            time.sleep(5)  # cut short by the handler
    assert stop.value.exit_code == status and str(stop.value) == f"interrupted by {signal.Signals(signum).name}"
    assert signal.getsignal(signum) is before


def test_inside_a_trainer_lightning_stops_and_its_exit_becomes_interrupted():
    """A running Trainer puts its SIGTERM handler in front of ours and calls ours after it; Lightning then ends the
    batch and raises ``SIGTERMException``, a ``SystemExit`` that would exit with status 0."""
    with pytest.raises(Interrupted) as stop:
        with stop_on_signals():
            ours = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, lambda signum, frame: ours(signum, frame))  # as Lightning composes them
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # not cut short: Lightning decides when to stop
            with pytest.raises(Interrupted):
                raise_if_interrupted()  # what a run checks between its steps
            raise SystemExit  # Lightning's SIGTERMException
    assert stop.value.exit_code == 143
    raise_if_interrupted()  # the next command's block starts afresh


def test_an_exit_without_a_signal_is_left_alone():
    with pytest.raises(SystemExit) as stop:
        with stop_on_signals():
            raise SystemExit(3)
    assert stop.value.code == 3


def _ignore_sigterm(ready):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready.set()
    time.sleep(60)


def test_stop_children_ends_each_child_and_kills_one_that_ignores_the_signal():
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    polite = context.Process(target=time.sleep, args=(60,))
    stubborn = context.Process(target=_ignore_sigterm, args=(ready,))
    polite.start()
    stubborn.start()
    assert ready.wait(60)
    stop_children(signal.SIGTERM, grace_s=1.0)
    assert polite.exitcode == -signal.SIGTERM and stubborn.exitcode == -signal.SIGKILL
    assert multiprocessing.active_children() == []
