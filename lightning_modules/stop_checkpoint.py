"""``CheckpointOnStop``: a run asked to stop (SIGTERM: a scheduler's preemption, requeue or cancel, ``kill``) saves
its whole state at the end of the training batch in progress, then stops, so that it resumes there instead of at the
last periodic checkpoint (``trainer.checkpoint_every_n_steps`` steps earlier, hours at paper scale).

Lightning notes SIGTERM in ``trainer.received_sigterm`` and stops after the batch (``SIGTERMException``) without
saving. This callback saves first, at ``on_train_batch_end``, the very point where ``ModelCheckpoint`` writes its
periodic ``last.ckpt``, so a resume from it is the exact resume a periodic one is (``lightning_modules.resume``).
It is a ``Checkpoint``, which Lightning runs after the other callbacks and after ``ModelCheckpoint``: a signal that
lands while the periodic checkpoint is written is still seen at this batch. One that lands after this check, in the
few bookkeeping steps before Lightning's own, or during a validation or test pass, stops the run at its last
checkpoint, as before. On several processes the ranks agree first (any rank asked: all save, together, at the same
batch), since a checkpoint is written collectively.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException


class CheckpointOnStop(Checkpoint):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        asked = bool(trainer.received_sigterm)
        if trainer.world_size > 1:
            asked = trainer.strategy.reduce_boolean_decision(asked, all=False)
        if asked:
            trainer.save_checkpoint(self.path, weights_only=False)
            raise SIGTERMException()
