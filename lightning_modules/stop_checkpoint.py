"""``CheckpointOnStop``: a run asked to stop (SIGTERM: a scheduler's preemption, requeue or cancel, ``kill``) while
it trains saves its whole state at the end of the training batch in progress, then stops, so that it resumes there
instead of at the last periodic checkpoint (``trainer.checkpoint_every_n_steps`` steps earlier, hours at paper
scale).

Lightning notes SIGTERM in ``trainer.received_sigterm`` and stops at the next of its checks (``SIGTERMException``)
without saving; one of those checks follows ``on_train_batch_end``, so a signal that lands just after this callback
looked would stop the run unsaved. While the training loop runs, this callback therefore takes SIGTERM first and holds
it: at the end of the batch in progress it saves, to the path it is given, at the very point where ``ModelCheckpoint``
writes its periodic last checkpoint there (a resume from it is the exact resume a periodic one is:
``lightning_modules.resume``), then hands the signal to Lightning's handler and stops. During a validation pass, and
outside the training loop, the signal goes to Lightning at once, as before. A stop the command holds itself until a
batch boundary (``also_when``: a SIGINT) is saved the same way at the end of a training batch; the command's own check
stops the run at the next boundary. On several processes the ranks agree first (any rank asked: all save, together, at
the same batch), since a checkpoint is written collectively.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException


class CheckpointOnStop(Checkpoint):  # a Checkpoint: Lightning runs it after the other callbacks, ModelCheckpoint too
    def __init__(self, path: str | Path, also_when: Callable[[], bool] = lambda: False) -> None:
        self.path = Path(path)
        self.also_when = also_when  # another stop asked of the run, which a later callback raises
        self._lightning: Any = None  # Lightning's SIGTERM handler while this callback holds the signal
        self._asked = False
        self._training = False

    def _hold(self, signum: int, frame: Any) -> None:
        self._asked = True

    def _take_signal(self) -> None:
        """Hold SIGTERM from here on (only the main thread may set a handler)."""
        handler = signal.getsignal(signal.SIGTERM)
        if self._lightning is None and callable(handler) and threading.current_thread() is threading.main_thread():
            self._lightning = handler
            signal.signal(signal.SIGTERM, self._hold)

    def _give_signal(self) -> None:
        """Lightning's handler back, and the signal held meanwhile handed to it, as if it came now."""
        if self._lightning is None:
            return
        lightning, self._lightning = self._lightning, None
        signal.signal(signal.SIGTERM, lightning)
        if self._asked:
            self._asked = False
            lightning(signal.SIGTERM, None)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._training, self._asked = True, False
        self._take_signal()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        asked = self._asked or bool(trainer.received_sigterm)
        held = self.also_when()
        if trainer.world_size > 1:
            asked = trainer.strategy.reduce_boolean_decision(asked, all=False)
            held = trainer.strategy.reduce_boolean_decision(held, all=False)
        if asked or held:
            trainer.save_checkpoint(self.path, weights_only=False)
        if asked:
            self._asked = True  # every rank hands it on, together (Lightning's handler may broadcast)
            self._give_signal()
            raise SIGTERMException()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._give_signal()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._training and not trainer.received_sigterm:
            self._take_signal()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._training = False
        self._give_signal()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """The fit failed: Lightning's handler back, a held signal dropped (the failure is what the run reports)."""
        self._training, self._asked = False, False
        self._give_signal()
