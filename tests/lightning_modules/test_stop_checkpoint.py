"""``CheckpointOnStop``: a SIGTERM that lands during a training batch saves the whole state at that batch's end, as
``ModelCheckpoint`` would have at that step, and stops the fit; resumed from that file, the fit ends with the weights
of a fit that was never stopped. A plain linear model on a fixed tensor set, in this process (Lightning's own
handler takes the signal; the test's handler stands behind it, so the process is never ended by it)."""

from __future__ import annotations

import os
import signal

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.stop_checkpoint import CheckpointOnStop

STEPS, SIGNAL_AT = 8, 3  # the signal lands while the 3rd step trains (an epoch is one batch: a plain loader
# resumes at an epoch's end; mid-epoch resumes need the runs' own loaders:
# tests/experiments/harness/cluster/test_slurm_jobs.py)


class _Linear(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _SignalAt(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == SIGNAL_AT - 1 and not trainer.received_sigterm:
            os.kill(os.getpid(), signal.SIGTERM)


class _SignalAfterTheCheck(Checkpoint):
    """Sends SIGTERM from the end of a batch, after ``CheckpointOnStop`` has looked (a Checkpoint after it runs after
    it): Lightning's own check at the end of that batch would stop the run there, unsaved."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == SIGNAL_AT - 1:
            os.kill(os.getpid(), signal.SIGTERM)


def _fit(tmp_path, callbacks, ckpt_path=None):
    torch.manual_seed(0)
    model = _Linear()
    data = TensorDataset(torch.arange(32.0).reshape(8, 4) / 32, torch.arange(8.0).reshape(8, 1) / 8)
    trainer = L.Trainer(max_steps=STEPS, max_epochs=-1, logger=False, enable_checkpointing=bool(callbacks),
                        enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                        default_root_dir=tmp_path, accelerator="cpu", devices=1)
    trainer.fit(model, DataLoader(data, batch_size=8), ckpt_path=ckpt_path)
    return trainer, model


@pytest.fixture
def sigterm_kept():
    """A SIGTERM handler behind Lightning's, so that the signal never ends pytest itself."""
    seen = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_sigterm_mid_fit_saves_that_batch_and_the_fit_resumes_to_the_same_weights(tmp_path, sigterm_kept):
    path = tmp_path / "last.ckpt"
    with pytest.raises(SIGTERMException):
        _fit(tmp_path, [_SignalAt(), CheckpointOnStop(path)])
    assert sigterm_kept == [signal.SIGTERM]  # Lightning's handler ran, then the one behind it
    assert torch.load(path, weights_only=True)["global_step"] == SIGNAL_AT  # the batch in progress, completed

    _, resumed = _fit(tmp_path, [CheckpointOnStop(path)], ckpt_path=path)
    _, uninterrupted = _fit(tmp_path, [])
    assert resumed.layer.weight.tolist() == uninterrupted.layer.weight.tolist()
    assert resumed.layer.bias.tolist() == uninterrupted.layer.bias.tolist()


def test_a_sigterm_just_after_its_look_is_held_to_the_next_batch_end_and_saved_there(tmp_path, sigterm_kept):
    path = tmp_path / "last.ckpt"
    with pytest.raises(SIGTERMException):
        _fit(tmp_path, [CheckpointOnStop(path), _SignalAfterTheCheck()])
    assert sigterm_kept == [signal.SIGTERM]
    assert torch.load(path, weights_only=True)["global_step"] == SIGNAL_AT


def test_without_a_signal_it_saves_nothing(tmp_path):
    path = tmp_path / "last.ckpt"
    trainer, _ = _fit(tmp_path, [CheckpointOnStop(path)])
    assert trainer.global_step == STEPS and not path.exists()


def test_a_stop_the_command_holds_is_saved_at_the_batch_end_and_left_to_its_check(tmp_path):
    """A SIGINT the command holds to the batch boundary (``also_when``): the batch in progress is saved; stopping is
    the command's check's (here: a callback raising at the next batch start), and the fit resumes to the same
    weights."""
    held = []

    class _Stop(BaseException):  # as the command's Interrupted
        pass

    class _HeldAt(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if held:
                raise _Stop  # the command's check at the next boundary
            if trainer.global_step == SIGNAL_AT - 1:
                held.append(signal.SIGINT)

    path = tmp_path / "last.ckpt"
    with pytest.raises(_Stop):
        _fit(tmp_path, [_HeldAt(), CheckpointOnStop(path, also_when=lambda: bool(held))])
    assert torch.load(path, weights_only=True)["global_step"] == SIGNAL_AT
    _, resumed = _fit(tmp_path, [CheckpointOnStop(path)], ckpt_path=path)
    _, uninterrupted = _fit(tmp_path, [])
    assert resumed.layer.weight.tolist() == uninterrupted.layer.weight.tolist()
