"""How much of a training step is spent waiting for data.

The wait is the time the training loop spends in ``next()`` on its data fetcher, which Lightning brackets with its
profiler's ``start``/``stop`` of the action ``TRAIN_FETCH_ACTION``: ``TrainFetchTimer`` is a profiler that times
that action and nothing else (the Trainer gets it as ``profiler=monitor.fetch_timer``). The gap between two batches
holds more than the fetch (checkpoint writes and logger writes run after this callback's ``on_train_batch_end``:
Lightning calls the checkpoint callbacks last), so the gap is not the wait. An epoch's first batch waits from
``on_train_epoch_start``: starting the DataLoader's workers counts as waiting too. The step is the time between
consecutive ``on_train_batch_end``s, mid-epoch validation left out.
"""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.profilers import Profiler

# Lightning's name for the training loop's fetch of its next batch (``_TrainingEpochLoop._on_before_fetch``)
TRAIN_FETCH_ACTION = "[_TrainingEpochLoop].train_dataloader_next"


class TrainFetchTimer(Profiler):
    """A Lightning profiler that only sums the time the training loop spends fetching batches (``fetch_s``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fetch_s = 0.0
        self._started: float | None = None

    def start(self, action_name: str) -> None:
        if action_name == TRAIN_FETCH_ACTION:
            self._started = time.perf_counter()

    def stop(self, action_name: str) -> None:
        if action_name == TRAIN_FETCH_ACTION and self._started is not None:
            self.fetch_s += time.perf_counter() - self._started
            self._started = None


class DataWaitMonitor(Callback):
    """Measure the fraction of training wall time spent waiting for the next batch.

    Logs ``perf/data_wait_fraction`` (cumulative over the run so far) at the end of every training epoch, and
    keeps the totals for the run record: ``summary()``. The Trainer must take its ``fetch_timer`` as its profiler
    (``L.Trainer(callbacks=[monitor], profiler=monitor.fetch_timer)``); ``setup`` refuses a Trainer that does not.

    Args:
        log_fraction: whether to log the fraction through the LightningModule at every epoch end.
    """

    def __init__(self, log_fraction: bool = True) -> None:
        self.log_fraction = log_fraction
        self.fetch_timer = TrainFetchTimer()
        self.wait_s = 0.0  # total time spent fetching batches (an epoch's first: since the epoch started)
        self.step_s = 0.0  # total time from a batch's end (or the epoch's start) to the next batch's end
        self.steps = 0
        self._mark: float | None = None  # when the current step started
        self._epoch_start: float | None = None  # set until the epoch's first batch starts
        self._fetched = 0.0  # the fetch timer's total when the previous batch started
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

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.profiler is not self.fetch_timer:
            raise ValueError(f"{type(self).__name__} times batch fetches through Lightning's profiler hooks: pass "
                             f"L.Trainer(profiler=monitor.fetch_timer), not {type(trainer.profiler).__name__}")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._mark = self._epoch_start = time.perf_counter()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        now, fetched = time.perf_counter(), self.fetch_timer.fetch_s
        if self._epoch_start is not None:  # the workers' start-up and the first fetch
            waited, self._epoch_start = now - self._epoch_start, None
        else:
            waited = fetched - self._fetched
        self.wait_s += waited
        self._fetched = fetched
        # no mark: the first batch of a run resumed mid-epoch (Lightning calls no on_train_epoch_start then)
        self._step_start = self._mark if self._mark is not None else now - waited

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
        self._mark = self._epoch_start = None  # validation runs next: its time is neither waiting nor training
        if self.log_fraction and self.steps:
            pl_module.log("perf/data_wait_fraction", self.data_wait_fraction, on_step=False, on_epoch=True)

    def state_dict(self) -> dict[str, float]:
        return {"wait_s": self.wait_s, "step_s": self.step_s, "steps": self.steps}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.wait_s, self.step_s, self.steps = state_dict["wait_s"], state_dict["step_s"], int(state_dict["steps"])
