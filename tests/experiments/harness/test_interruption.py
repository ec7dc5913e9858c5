"""``stop_on_signals``: SIGTERM and SIGINT become ``Interrupted`` (exit status 143, 130), at once outside a Trainer and
at a batch boundary inside one (Lightning's own stop for SIGTERM, ``StopAtBatchBoundary`` for SIGINT); a time-limit
signal (SIGUSR1, SIGUSR2) stops as SIGTERM does and is named (138, 140), and a plain ``run`` inside a SLURM batch job
then asks SLURM to requeue it; ``stop_children`` leaves no child process running."""

import multiprocessing
import os
import signal
import time

import pytest

from experiments.harness.interruption import (
    Interrupted,
    at_batch_boundaries,
    raise_if_interrupted,
    requeue_slurm_job,
    stop_children,
    stop_on_signals,
    time_limit_signal,
)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_outside_a_trainer_interrupts_at_once(signum, status):
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as stop:
        with stop_on_signals():
            os.kill(os.getpid(), signum)
            time.sleep(5)  # cut short by the handler
    assert stop.value.exit_code == status and str(stop.value) == f"interrupted by {signal.Signals(signum).name}"
    assert signal.getsignal(signum) is before


@pytest.mark.parametrize("signum, status", [(signal.SIGUSR1, 138), (signal.SIGUSR2, 140)])
def test_a_time_limit_signal_stops_as_sigterm_does_and_is_named(signum, status):
    """Outside a Trainer at once; the SIGTERM it becomes goes through whatever handler holds SIGTERM (Lightning's, or
    ``CheckpointOnStop``'s, inside a fit: the run saves at its batch boundary)."""
    seen = []
    with pytest.raises(Interrupted) as stop:
        with stop_on_signals():
            os.kill(os.getpid(), signum)
            time.sleep(5)  # cut short
    assert stop.value.exit_code == status and str(stop.value) == f"interrupted by {signal.Signals(signum).name}"
    with pytest.raises(Interrupted) as stop:
        with stop_on_signals():
            ours = signal.getsignal(signal.SIGTERM)

            def lightning(signum_, frame):  # as a running Trainer composes its handler with ours
                seen.append(signum_)
                ours(signum_, frame)

            signal.signal(signal.SIGTERM, lightning)
            os.kill(os.getpid(), signum)
            time.sleep(0.2)  # not cut short: Lightning decides when to stop
            assert seen == [signal.SIGTERM] and time_limit_signal() == signum
            os.kill(os.getpid(), signum)  # again while stopping: nothing more
            time.sleep(0.1)
            assert seen == [signal.SIGTERM]
            raise SystemExit  # Lightning's SIGTERMException
    assert stop.value.signum == signum and time_limit_signal() is None
    assert signal.getsignal(signum) is signal.SIG_DFL


def _fake_scontrol(tmp_path, monkeypatch, status=0):
    """An ``scontrol`` on PATH that records its arguments and exits with ``status``."""
    script = tmp_path / "bin" / "scontrol"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/calls\necho 'scontrol: error: Requeue failed' >&2\n"
                      f"exit {status}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SUBMITIT_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "calls"


def test_a_plain_run_in_a_slurm_batch_job_is_requeued_after_a_time_limit_signal(tmp_path, monkeypatch):
    calls = _fake_scontrol(tmp_path, monkeypatch)
    assert requeue_slurm_job(signal.SIGUSR2) is None and not calls.exists()  # not in a SLURM job
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert requeue_slurm_job(signal.SIGTERM) is None  # a cancel or a preemption: SLURM decides
    assert requeue_slurm_job(signal.SIGUSR2) == "SLURM job 77 requeued: it starts the same command again, which resumes"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "76")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert requeue_slurm_job(signal.SIGUSR1).startswith("SLURM job 76_3 requeued")
    assert calls.read_text().splitlines() == ["requeue 77", "requeue 76_3"]
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")  # a submitit job requeues itself through submitit
    assert requeue_slurm_job(signal.SIGUSR2) is None and len(calls.read_text().splitlines()) == 2


def test_a_refused_requeue_says_why_and_how_to_resume(tmp_path, monkeypatch):
    _fake_scontrol(tmp_path, monkeypatch, status=1)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert requeue_slurm_job(signal.SIGUSR2) == ("SLURM job 77 not requeued (scontrol: error: Requeue failed); "
                                                 "submit the same command again to resume")


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


def test_inside_a_trainer_a_sigint_waits_for_the_batch_boundary_and_a_second_one_does_not():
    """An exception raised where the signal lands could leave a library's lock or queue half changed; the first SIGINT
    is only recorded, the next batch boundary raises it; a second SIGINT before that raises at once."""
    with stop_on_signals():
        with at_batch_boundaries():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # not cut short: mid-batch
            with pytest.raises(Interrupted) as stop:
                raise_if_interrupted()  # the boundary (StopAtBatchBoundary's check)
            assert stop.value.exit_code == 130
            os.kill(os.getpid(), signal.SIGINT)  # already stopping: the cleanup is not cut short
            time.sleep(0.2)
    with pytest.raises(Interrupted):
        with stop_on_signals():
            with at_batch_boundaries():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C again: the boundary is not waited for
                time.sleep(5)  # cut short by the handler
    with pytest.raises(Interrupted):  # outside the Trainer's fit or test: at once again
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)


def test_stop_at_batch_boundary_stops_a_fit_between_batches_and_lightning_cleans_up(tmp_path):
    """A SIGINT during a training step: the step ends, the Trainer stops at the boundary after it, and Lightning's
    handling of an interrupted fit closes the logger (its writer thread ends) before ``Interrupted`` leaves."""
    import threading

    import lightning as L
    import torch
    from lightning.pytorch.demos.boring_classes import BoringModel
    from lightning.pytorch.loggers import TensorBoardLogger

    from lightning_modules.run_callbacks import StopAtBatchBoundary

    steps = []

    class SignalledMidStep(BoringModel):
        def training_step(self, batch, batch_idx):
            if batch_idx == 2:
                os.kill(os.getpid(), signal.SIGINT)
            steps.append(batch_idx)
            return super().training_step(batch, batch_idx)

    trainer = L.Trainer(max_epochs=1, limit_val_batches=0, logger=TensorBoardLogger(tmp_path), log_every_n_steps=1,
                        callbacks=[StopAtBatchBoundary(raise_if_interrupted)], enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, accelerator="cpu")
    threads = set(threading.enumerate())
    with pytest.raises(Interrupted):
        with stop_on_signals(), at_batch_boundaries():
            trainer.fit(SignalledMidStep())
    assert steps == [0, 1, 2]  # the signalled step finished; none started after it
    assert set(threading.enumerate()) <= threads  # the logger's writer thread was joined
    assert torch.is_tensor(trainer.lightning_module.layer.weight)


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
