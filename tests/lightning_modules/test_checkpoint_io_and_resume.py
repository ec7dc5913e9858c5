"""Checkpoint writing, data-wait timing, resume hand-over and the caches, checked against plain loops and literals.

- ``SafeCheckpointIO.save_checkpoint``: the temporary file is a hidden sibling of the target (same filesystem),
  fsynced before it is renamed over the target; a write that fails leaves no checkpoint and no temporary file.
- ``DataWaitMonitor`` driven by a fake clock: waiting (the timed fetches), step and fraction totals against
  hand-summed literals across mid-epoch validation, epoch-end validation, a slow checkpoint write and a mid-epoch
  resume, and its state round trip; in a Trainer, slow checkpoint writes are not counted as waiting.
- ``ExactResumeCallback``: the saved loader state goes to the trainer's training loader (once), a loader that cannot
  take it is refused, and the generator state lands at the first training batch, not when it is loaded.
- ``EpochSampler`` over several ranks against ``DistributedSampler``'s recipe written out (randperm seeded by
  seed + epoch, padded, strided by rank), offset by ``epoch * len(dataset)``.
- ``build_once``: staged in a sibling of the target, nothing left after a failed write, a lost race uses the
  winner's set, a failed rename with no winner raises.
- Cache keys: ``DecodedVideoCache`` tells apart two frame folders of the same relative name, size and time;
  ``listops_dir`` changes with every ``ListOpsSpec`` field.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.data.test_formats import frame_ids, index_frames  # frames that show their index as stripes
from tests.experiments.harness.test_resume_reference import Draws, process_draws

# --- SafeCheckpointIO: where and how the bytes are staged ----------------------------------------------------------

def test_a_checkpoint_is_staged_in_a_hidden_sibling_and_fsynced_before_the_rename(tmp_path, monkeypatch):
    import data.atomic_write as atomic
    from lightning_modules.checkpoint_io import SafeCheckpointIO

    events = []
    real_fsync, real_replace = atomic.os.fsync, atomic.os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (events.append(("fsync",)), real_fsync(fd))[1])
    monkeypatch.setattr(atomic.os, "replace",
                        lambda src, dst: (events.append(("replace", Path(src), Path(dst))), real_replace(src, dst))[1])
    target = tmp_path / "checkpoints" / "last.ckpt"
    SafeCheckpointIO().save_checkpoint({"global_step": 7, "w": torch.arange(4.0)}, target)

    assert [e[0] for e in events] == ["fsync", "replace"]  # on disk before the name points at it
    _, staged, renamed_to = events[1]
    # beside the target: a rename within one directory is atomic; one from /tmp may be a copy across filesystems
    assert staged.parent == target.parent and renamed_to == target
    assert staged.name.startswith(".last.ckpt.") and staged.name.endswith(".tmp")
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]
    assert SafeCheckpointIO().load_checkpoint(target)["global_step"] == 7


def test_a_checkpoint_write_that_fails_leaves_neither_a_checkpoint_nor_a_temporary(tmp_path, monkeypatch):
    import data.atomic_write as atomic
    from lightning_modules.checkpoint_io import SafeCheckpointIO

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    target = tmp_path / "last.ckpt"
    with pytest.raises(OSError, match="No space"):
        SafeCheckpointIO().save_checkpoint({"global_step": 1}, target)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="storage_options"):  # a remote-storage option would be silently dropped
        SafeCheckpointIO().save_checkpoint({"global_step": 1}, target, storage_options={"anon": True})


# --- DataWaitMonitor against a fake clock ------------------------------------------------------------------------

class _Clock:
    """``time.perf_counter`` stand-in returning whatever ``now`` was last set to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _at(clock, seconds, hook, *args):
    clock.now = seconds
    hook(None, _LOG_SINK, *args)


def _fetch(clock, monitor, start, stop):
    """The training loop's fetch of a batch, as Lightning's profiler hooks bracket it."""
    from lightning_modules.data_wait import TRAIN_FETCH_ACTION

    clock.now = start
    monitor.fetch_timer.start(TRAIN_FETCH_ACTION)
    monitor.fetch_timer.start("[_EvaluationLoop].val_next")  # other actions are not timed
    clock.now = stop
    monitor.fetch_timer.stop("[_EvaluationLoop].val_next")
    monitor.fetch_timer.stop(TRAIN_FETCH_ACTION)


_LOG_SINK = SimpleNamespace(log=lambda *args, **kwargs: None)


def test_data_wait_totals_across_mid_epoch_validation_epoch_end_validation_and_a_resume(monkeypatch):
    from lightning_modules import data_wait
    from lightning_modules.data_wait import DataWaitMonitor

    clock = _Clock()
    monkeypatch.setattr(data_wait.time, "perf_counter", clock)
    monitor = DataWaitMonitor(log_fraction=False)
    m = monitor
    # epoch 0: wait 0->1 (worker start-up, then the fetch 0.5->1), compute 1->3; a checkpoint write 3->3.5 is
    # training time, not waiting; mid-epoch validation 3.5->10 (neither waiting nor training); fetch 10.5->11,
    # compute 11->12
    _at(clock, 0.0, m.on_train_epoch_start)
    _fetch(clock, m, 0.5, 1.0)
    _at(clock, 1.0, m.on_train_batch_start, None, 0)
    _at(clock, 3.0, m.on_train_batch_end, None, None, 0)
    _at(clock, 3.5, m.on_validation_start)
    _at(clock, 10.0, m.on_validation_end)
    _fetch(clock, m, 10.5, 11.0)
    _at(clock, 11.0, m.on_train_batch_start, None, 1)
    _at(clock, 12.0, m.on_train_batch_end, None, None, 1)
    # epoch-end validation 13->20 and the gap until the next epoch starts are not counted either
    _at(clock, 12.5, m.on_train_epoch_end)
    _at(clock, 13.0, m.on_validation_start)
    _at(clock, 20.0, m.on_validation_end)
    # epoch 1: wait 21->23 (worker start-up included), compute 23->24; then a slow checkpoint write 24->27 and a
    # fetch 27->27.25, compute 27.25->28
    _at(clock, 21.0, m.on_train_epoch_start)
    _fetch(clock, m, 22.0, 23.0)
    _at(clock, 23.0, m.on_train_batch_start, None, 0)
    _at(clock, 24.0, m.on_train_batch_end, None, None, 0)
    _fetch(clock, m, 27.0, 27.25)
    _at(clock, 27.25, m.on_train_batch_start, None, 1)
    _at(clock, 28.0, m.on_train_batch_end, None, None, 1)

    wait, step = 1 + 0.5 + 2 + 0.25, (3 - 0) + (12 - 10) + (24 - 21) + (28 - 24)  # hand sums of the spans above
    assert monitor.summary() == {"data_wait_fraction": wait / step, "data_wait_s": wait, "train_step_s": step,
                                 "train_steps": 4, "mean_step_s": step / 4}
    assert (wait, step) == (3.75, 12)

    # a resumed process: totals come back from the checkpoint; Lightning calls no on_train_epoch_start mid-epoch,
    # so its first batch waits for its fetch alone, and its step starts with that fetch
    resumed = DataWaitMonitor(log_fraction=False)
    resumed.load_state_dict(torch.load(_round_trip(monitor.state_dict()), weights_only=True))
    _fetch(clock, resumed, 99.0, 100.0)
    _at(clock, 100.0, resumed.on_train_batch_start, None, 1)
    _at(clock, 100.5, resumed.on_train_batch_end, None, None, 1)
    assert (resumed.wait_s, resumed.step_s, resumed.steps) == (4.75, 13.5, 5)
    assert resumed.summary()["mean_step_s"] == 13.5 / 5


def test_data_wait_leaves_out_slow_checkpoint_writes_in_a_trainer(tmp_path):
    """Lightning runs ``ModelCheckpoint`` after every other callback's ``on_train_batch_end``: its writes fall in
    the gap between two batches, which is not waiting for data. In-memory batches, a write that sleeps 0.1 s."""
    import time

    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.plugins.io import TorchCheckpointIO
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_modules.data_wait import DataWaitMonitor

    class SlowWrites(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None):
            time.sleep(0.1)
            super().save_checkpoint(checkpoint, path, storage_options)

    class Regression(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            return self.linear(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    monitor = DataWaitMonitor(log_fraction=False)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, plugins=[SlowWrites()], profiler=monitor.fetch_timer,
                        callbacks=[ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_top_k=-1), monitor])
    trainer.fit(Regression(), DataLoader(TensorDataset(torch.randn(24, 4)), batch_size=4))
    assert monitor.steps == 6 and monitor.step_s >= 5 * 0.1  # five writes fall between the six steps
    assert monitor.data_wait_fraction < 0.1  # the gaps held 0.5 s of writes: all waiting, as measured before

    without_timer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                              enable_model_summary=False, enable_checkpointing=False,
                              callbacks=[DataWaitMonitor()])
    with pytest.raises(ValueError, match=r"profiler=monitor.fetch_timer"):
        without_timer.fit(Regression(), DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4))


def _round_trip(state):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


# --- ExactResumeCallback: which object gets the state, and when ---------------------------------------------------

class _RecordingLoader:
    def __init__(self) -> None:
        self.states = []

    def load_state_dict(self, state) -> None:
        self.states.append(state)


def _checkpoint_with_loader_state(state):
    return {"loops": {"fit_loop": {"state_dict": {"combined_loader": [state]}}}}


def test_the_saved_loader_state_goes_once_to_the_training_loader_and_an_unresumable_one_is_refused():
    from lightning_modules.resume import ExactResumeCallback

    state = {"epoch": 1, "batches_drawn": 2}
    train, val = _RecordingLoader(), _RecordingLoader()
    trainer = SimpleNamespace(train_dataloader=train, val_dataloaders=val, num_training_batches=4)
    callback = ExactResumeCallback()
    callback.on_load_checkpoint(trainer, None, _checkpoint_with_loader_state(state))
    callback.on_train_start(trainer, None)
    callback.on_train_start(trainer, None)  # a second fit with the same callback starts its epoch afresh
    assert train.states == [state] and val.states == []

    # a plain loader would silently restart the epoch: repeated samples, a different run
    callback.on_load_checkpoint(trainer, None, _checkpoint_with_loader_state(state))
    with pytest.raises(RuntimeError, match="cannot resume"):
        callback.on_train_start(SimpleNamespace(train_dataloader=[1, 2, 3], num_training_batches=3), None)


def test_the_generator_state_is_applied_at_the_first_training_batch_not_when_loaded():
    """Between the checkpoint load and the first batch a resumed run may draw (sanity check, loader set-up) where the
    uninterrupted run did not: the saved state must overwrite those draws, so it is applied at the first batch."""
    from lightning_modules.resume import ExactResumeCallback

    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    saved = torch.load(_round_trip(ExactResumeCallback().state_dict()), weights_only=True)
    expected = process_draws()

    torch.manual_seed(6), random.seed(6), np.random.seed(6)
    callback = ExactResumeCallback()
    callback.load_state_dict(saved)
    process_draws()  # what a resumed process draws before training starts
    callback.on_train_batch_start(None, None, None, 3)  # a resumed epoch's first batch index need not be 0
    assert process_draws() == expected


# --- EpochSampler over several ranks ------------------------------------------------------------------------------

@pytest.mark.parametrize("size,num_replicas", [(10, 3), (7, 2)])
def test_the_epoch_sampler_over_ranks_is_distributed_samplers_recipe_offset_by_the_epoch(size, num_replicas):
    from data.resumable import EpochSampler, SeededItems

    seed = 4
    items = SeededItems(Draws(size), seed)
    per_rank = -(-size // num_replicas)  # ceil: the last ranks are padded from the start of the permutation
    for epoch in (0, 2):
        generator = torch.Generator()
        generator.manual_seed(seed + epoch)
        order = torch.randperm(size, generator=generator).tolist()
        padded = (order * num_replicas)[: per_rank * num_replicas]
        positions = set()
        for rank in range(num_replicas):
            sampler = EpochSampler(items, seed, num_replicas=num_replicas, rank=rank)
            sampler.set_epoch(epoch)
            got = list(sampler)
            assert got == [epoch * size + i for i in padded[rank::num_replicas]]
            positions.update(got)
        # each position decodes, as SeededItems reads it, to this epoch and a real index; all indices are covered
        assert {divmod(p, size) for p in positions} == {(epoch, i) for i in range(size)}


# --- build_once ---------------------------------------------------------------------------------------------------

def test_build_once_stages_in_a_sibling_and_leaves_nothing_after_a_failed_write(tmp_path):
    from data.cache import build_once

    target = tmp_path / "sets" / "synth-abc"
    staged = []

    def write(tmp):
        staged.append(tmp)
        (tmp / "train.csv").write_text("a,0\n")

    assert build_once(target, write) == target and (target / "train.csv").read_text() == "a,0\n"
    assert staged[0].parent == target.parent and staged[0].name.startswith(".synth-abc-")
    assert build_once(target, lambda tmp: pytest.fail("a built set is rebuilt")) == target

    other = tmp_path / "sets" / "synth-def"

    def half_then_fail(tmp):
        (tmp / "train.csv").write_text("half")
        raise RuntimeError("decoder crashed")

    with pytest.raises(RuntimeError, match="decoder crashed"):
        build_once(other, half_then_fail)
    assert sorted(p.name for p in (tmp_path / "sets").iterdir()) == ["synth-abc"]  # no half set, no temporary


def test_build_once_uses_the_winners_set_after_a_lost_race_and_raises_when_there_is_none(tmp_path, monkeypatch):
    from data import cache
    from data.cache import build_once

    target = tmp_path / "synth-race"

    def write_while_another_process_finishes(tmp):
        (tmp / "who").write_text("loser")
        target.mkdir()  # the other process renames its (complete) set into place first
        (target / "who").write_text("winner")

    assert build_once(target, write_while_another_process_finishes) == target
    assert (target / "who").read_text() == "winner"
    assert [p.name for p in tmp_path.iterdir()] == ["synth-race"]

    def cross_device(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(cache.os, "rename", cross_device)
    lonely = tmp_path / "synth-alone"
    with pytest.raises(OSError, match="cross-device"):  # no winner: the failure must not pass for success
        build_once(lonely, lambda tmp: (tmp / "who").write_text("me"))
    assert not lonely.exists() and [p.name for p in tmp_path.iterdir()] == ["synth-race"]


# --- cache keys ---------------------------------------------------------------------------------------------------

def test_the_decoded_video_cache_keys_a_relative_path_by_its_absolute_location(tmp_path, monkeypatch):
    """Two runs' data roots, each with ``frames/0001`` of the same size and time but other frames: a cache keyed by
    the relative path would hand the second root the first root's frames."""
    from data.video_io import DecodedVideoCache, write_frame_folder

    forward = write_frame_folder(tmp_path / "a" / "frames" / "0001", index_frames(6))
    backward = write_frame_folder(tmp_path / "b" / "frames" / "0001", index_frames(6)[::-1].copy())
    for folder in (forward, backward):
        os.utime(folder, ns=(10 ** 18, 10 ** 18))
    assert os.stat(forward).st_size == os.stat(backward).st_size  # only the location tells them apart

    cache = DecodedVideoCache(max_bytes=10 ** 9)
    clips = []
    for root in ("a", "b"):
        monkeypatch.chdir(tmp_path / root)
        clips.append(cache.open(Path("frames") / "0001").get_clip(0, 0, frame_indices=range(6)))
    assert frame_ids(clips[0]) == [0, 1, 2, 3, 4, 5] and frame_ids(clips[1]) == [5, 4, 3, 2, 1, 0]


def test_the_listops_cache_directory_changes_with_every_spec_field(tmp_path):
    from data.lra import ListOpsSpec, listops_dir

    small = dict(num_train=20, num_val=5, num_test=5, min_length=10, max_length=60, max_depth=4, max_args=4, seed=0)
    assert {f.name for f in dataclasses.fields(ListOpsSpec)} == set(small)  # a new field must join this test
    base = listops_dir(tmp_path, **small)
    assert base == listops_dir(tmp_path, **dict(reversed(small.items())))  # the order of the keywords is not a key
    for name, value in small.items():
        assert listops_dir(tmp_path, **{**small, name: value + 1}) != base, name
