"""Callbacks a table run trains with: ``RunState`` says in every checkpoint which run, configured how, wrote it;
``LogRunConfig`` puts the run's configuration into TensorBoard (``hparams.yaml`` and the HParams dashboard, through
``log_hparams_session``, which an evaluation-only run calls itself); ``StopAtBatchBoundary`` runs a check between
batches (the command's: did a signal ask it to stop); ``TrainingProgress`` keeps how far the training is, for a job's
heartbeat (``training_progress``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


class RunState(Callback):
    """Saves ``run`` (the run's place and configuration) with the trainer's process count as ``world_size`` in every
    checkpoint, under ``state_key``, so that a later command can check a checkpoint is its own before resuming it;
    restores nothing (that check happens before the fit)."""

    def __init__(self, state_key: str, run: dict[str, Any]) -> None:
        self._state_key = state_key
        self.run = run
        self.world_size: int | None = None  # set once the trainer knows it

    @property
    def state_key(self) -> str:
        return self._state_key

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.world_size = trainer.world_size

    def state_dict(self) -> dict[str, Any]:
        return {**self.run, "world_size": self.world_size}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass


class StopAtBatchBoundary(Callback):
    """Calls ``check`` before every training batch and after every validation, test and prediction batch: an
    exception it raises stops the Trainer there, at a point where no step, logger write or checkpoint is half done,
    and Lightning's own handling of an interrupted run (loggers finalized, loaders shut down) follows. Not after a
    training batch: the checkpoint callbacks, which Lightning runs after every other, may save that batch first
    (``CheckpointOnStop``); the next boundary stops the run."""

    def __init__(self, check: Callable[[], None]) -> None:
        self.check = check

    def on_train_batch_start(self, *_: Any) -> None:
        self.check()

    def on_validation_batch_end(self, *_: Any) -> None:
        self.check()

    def on_test_batch_end(self, *_: Any) -> None:
        self.check()

    def on_predict_batch_end(self, *_: Any) -> None:
        self.check()


class LogRunConfig(Callback):
    """The row's whole configuration as TensorBoard hyper-parameters: into ``hparams.yaml`` when fitting starts, and,
    once tested, into the HParams dashboard as the run's session (``log_hparams_session``), beside its scalars, so a
    table's runs compare side by side there. ``params`` is read when fitting starts: what the trainer settles (the
    global batch and lr) may be added to it until then."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.logger.log_hyperparams(self.params)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            log_hparams_session(trainer.logger, self.params, trainer.global_step)


def log_hparams_session(logger: Any, params: dict[str, Any], step: int) -> None:
    """The run's configuration into TensorBoard's HParams dashboard as one session: its start and end summaries
    only. Lightning's ``log_hyperparams(params, metrics)`` also writes an experiment summary into every run, and the
    dashboard then takes the columns of whichever run it reads first (rows with other options, or the verb / noun
    metrics, vanish); with sessions alone it builds the columns from every run, and its metric columns are the runs'
    scalars (``test/top1``, ``val/loss``, ...), in the Scalars tab's units. Flattened as Lightning flattens them
    (``model/overrides/attn_layer``)."""
    from lightning.fabric.utilities.logger import _convert_params, _flatten_dict
    from torch.utils.tensorboard.summary import hparams

    flat = logger._sanitize_params(_flatten_dict(_convert_params(params)))
    _, session_start, session_end = hparams(flat, {})
    writer = logger.experiment._get_file_writer()
    writer.add_summary(session_start, step)
    writer.add_summary(session_end, step)
    writer.flush()


_progress: dict[str, Any] | None = None  # the training in progress in this process (one at a time), if any


def training_progress() -> dict[str, Any] | None:
    """How far this process's training is: ``step`` and ``epoch`` now (the epoch in progress, from 1), ``steps``
    and ``epochs`` in all (None where
    unknown), and ``step_at_start`` at ``started_at`` (an ISO time), when this process's fit began (a resumed run
    starts past 0): what a job's heartbeat writes into its job file, for ``status``'s ETA. None before any fit."""
    return None if _progress is None else dict(_progress)


class TrainingProgress(Callback):
    """Records the trainer's step and epoch after every training batch (a dictionary update: nothing waits)."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        global _progress
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else trainer.estimated_stepping_batches
        _progress = {"step": trainer.global_step, "steps": int(total) if math.isfinite(total) else None,
                     "epoch": trainer.current_epoch + 1, "epochs": trainer.max_epochs if trainer.max_epochs else None,
                     "step_at_start": trainer.global_step,
                     "started_at": datetime.now(UTC).isoformat(timespec="seconds")}

    def on_train_batch_end(self, trainer: L.Trainer, *_: Any) -> None:
        if _progress is not None:
            _progress.update(step=trainer.global_step, epoch=trainer.current_epoch + 1)  # the epoch in progress
