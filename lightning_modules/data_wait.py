"""How much of a training step is spent waiting for data.

Lightning fetches the next batch between one batch's ``on_train_batch_end`` and the next one's
``on_train_batch_start`` (its prefetching fetcher reads the following batch synchronously there), so that gap is
the time the loop waits for the DataLoader; the step is the time between consecutive ``on_train_batch_end``s. The
first batch of an epoch is timed from ``on_train_epoch_start``, so worker start-up counts as waiting too.
"""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import Callback


class DataWaitMonitor(Callback):
    """Measure the fraction of training wall time spent waiting for the next batch.

    Logs ``perf/data_wait_fraction`` (cumulative over the run so far) at the end of every training epoch, and
    keeps the totals for the run record: ``summary()``.

    Args:
        log_fraction: whether to log the fraction through the LightningModule at every epoch end.
    """

    def __init__(self, log_fraction: bool = True) -> None:
        self.log_fraction = log_fraction
        self.wait_s = 0.0  # total time between a batch's end (or the epoch's start) and the next batch's start
        self.step_s = 0.0  # total time from a batch's end (or the epoch's start) to the next batch's end
        self.steps = 0
        self._mark: float | None = None  # when the loop started waiting
        self._step_start = 0.0
        self._paused = False

    @property
    def data_wait_fraction(self) -> float:
        """Waiting time / training wall time over all steps so far (nan before the first step)."""
        return self.wait_s / self.step_s if self.step_s > 0 else float("nan")

    def summary(self) -> dict[str, float]:
        """The figures for a run record: fraction, total seconds waited and stepped, steps, mean step time."""
        return {
            "data_wait_fraction": self.data_wait_fraction,
            "data_wait_s": self.wait_s,
            "train_step_s": self.step_s,
            "train_steps": self.steps,
            "mean_step_s": self.step_s / self.steps if self.steps else float("nan"),
        }

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._mark = time.perf_counter()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        now = time.perf_counter()
        if self._mark is not None:
            self.wait_s += now - self._mark
            self._step_start = self._mark
        else:  # no mark (resumed mid-epoch): time the compute only
            self._step_start = now

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        now = time.perf_counter()
        self.step_s += now - self._step_start
        self.steps += 1
        self._mark = now

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._paused = self._mark is not None  # validation inside an epoch is not waiting for training data

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._paused:
            self._mark = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._mark = None  # validation runs next: its time is neither waiting nor training
        if self.log_fraction and self.steps:
            pl_module.log("perf/data_wait_fraction", self.data_wait_fraction, on_step=False, on_epoch=True)

    def state_dict(self) -> dict[str, float]:
        return {"wait_s": self.wait_s, "step_s": self.step_s, "steps": self.steps}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.wait_s, self.step_s, self.steps = state_dict["wait_s"], state_dict["step_s"], int(state_dict["steps"])
