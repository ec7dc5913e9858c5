"""The decoded frames of a generated set, kept on disk beside it (``data.decoded_store``): the clips a dataset yields
are the same bit for bit with and without the store, a damaged store is never read (rebuilt, with a warning that
says why), a link is never followed out of the cache folder, and two processes racing decode once."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import data  # noqa: F401  (repairs torchvision before anything imports it)
from data.annotations import read_annotations
from data.datamodule import VideoDataModule
from data.datasets import VideoClipDataset
from data.decoded_store import FRAMES, INDEX, DecodedStoreError, keep_decoded_set, split_videos, store_path
from data.synthetic import SYNTHETIC_SETS, ensure_synthetic
from data.transforms import TestTransform, TrainTransform
from data.video_io import DECODED_VIDEOS, DecodedVideo, DecodedVideoCache, open_video

# a video file set (PyAV timestamps), a frame-folder set (its rate from the annotations) and untrimmed videos that
# several samples share
TINY = {"synth_objects": dict(num_train=6, num_val=3, num_video_frames=8, seed=1),
        "synth_pose": dict(num_train=4, num_val=2, num_video_frames=8, seed=1),
        "synth_verbnoun": dict(num_train=6, num_val=3, num_video_frames=6, seed=1)}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("generated")
    return {name: ensure_synthetic(name, base, **params) for name, params in TINY.items()}


def copied_set(generated: dict[str, Path], name: str, tmp_path: Path) -> Path:
    """The generated set in a cache folder of the test's own (times kept: they are part of a store's check)."""
    return Path(shutil.copytree(generated[name], tmp_path / "cache" / generated[name].name))


def split_samples(name: str, root: Path, split: str = "train") -> list:
    spec = SYNTHETIC_SETS[name]
    samples, bad = read_annotations(spec.annotation_format, root, split, num_classes=spec.num_classes)
    assert samples and not bad
    return samples


def decoded_now(sample) -> DecodedVideo:
    with open_video(sample.path, sample.fps, sample.root) as video:
        return DecodedVideo(video)


def stored(root: Path, samples) -> Path:
    return store_path(root, split_videos(root, samples))


@pytest.mark.parametrize("name", list(TINY))
def test_a_stores_frames_are_what_decoding_gives(name, generated, tmp_path):
    """Every video's frames, rate, frame count, timestamps and tolerance, written by one cache and read back by a
    fresh one (another process's view), equal a fresh decode's; they are mapped from the store, not held."""
    root = copied_set(generated, name, tmp_path)
    samples = split_samples(name, root)
    writer, reader = DecodedVideoCache(max_bytes=0), DecodedVideoCache(max_bytes=0)
    keep_decoded_set(root, samples, writer)
    assert stored(root, samples).is_dir()
    keep_decoded_set(root, samples, reader)
    assert reader.bytes == 0  # past a zero budget, only mapped frames can be held
    for sample in samples:
        expected, got = decoded_now(sample), reader.open(sample.path, sample.fps, sample.root)
        assert isinstance(got, DecodedVideo) and got.path == Path(sample.path)
        assert torch.equal(got.frames, expected.frames) and got.frames.dtype == torch.uint8
        assert (got.fps, got.num_frames, got.timing, got.tolerance) == (
            expected.fps, expected.num_frames, expected.timing, expected.tolerance)
        assert type(got.fps) is type(expected.fps)


@pytest.mark.parametrize("mode,convention", [("train", "frame_stride"), ("train", "pyslowfast_pyav"),
                                             ("test", "frame_stride"), ("test", "pyslowfast_pyav")])
def test_items_are_bit_identical_with_and_without_the_store(mode, convention, generated, tmp_path, monkeypatch):
    """The same seeded random clips and crops, over several epochs, from decoding every item and from the store."""
    root = copied_set(generated, "synth_objects", tmp_path)
    samples = split_samples("synth_objects", root)
    transform = TrainTransform(32, (32, 40), True) if mode == "train" else TestTransform(32, 3)
    kwargs = dict(num_frames=4, stride=2, num_clips=2, dense_convention=convention)
    decoding = VideoClipDataset(samples, mode, transform, "dense", **kwargs)
    cache = DecodedVideoCache(max_bytes=0)
    monkeypatch.setattr("data.datasets.DECODED_VIDEOS", cache)
    keep_decoded_set(root, samples, cache)
    kept = VideoClipDataset(samples, mode, transform, "dense", keep_decoded=True, **kwargs)
    kept.decode_all()
    for epoch in range(3):
        for index in range(len(samples)):
            torch.manual_seed(epoch * 10 + index), random.seed(epoch * 10 + index)
            expected = decoding[index]
            torch.manual_seed(epoch * 10 + index), random.seed(epoch * 10 + index)
            got = kept[index]
            assert torch.equal(got["video"], expected["video"]) and got["label"] == expected["label"]
    assert cache.bytes == 0 and len(cache._videos) == len(samples)  # every video came from the store


def test_a_datamodule_serves_the_same_batches_from_the_store_as_from_decoding(generated, tmp_path, monkeypatch):
    """A generated set named by its parameters is read through its store; the same set named by its folder
    (``root``) is decoded in the process, as before; their loaders' batches are equal bit for bit."""
    root = copied_set(generated, "synth_objects", tmp_path)
    options = dict(synthetic_params=TINY["synth_objects"], num_frames=4, batch_size=3, num_workers=0, test_clips=2,
                   failures_dir=tmp_path / "failures")
    monkeypatch.setenv("PL_GLOBAL_SEED", "5")
    batches = {}
    for way, where in (("store", dict(cache_dir=root.parent)), ("decoding", dict(root=root))):
        DECODED_VIDEOS.clear()  # the process's decoded videos: this way's own
        dm = VideoDataModule("synth_objects", **where, **options)
        dm.setup("fit")
        assert (DECODED_VIDEOS.bytes == 0) is (way == "store")  # mapped from the store, or decoded here
        torch.manual_seed(0), random.seed(0)
        batches[way] = [*dm.train_dataloader(), *dm.val_dataloader(), *dm.test_dataloader()]
    DECODED_VIDEOS.clear()
    assert len([p for p in root.parent.glob("*.decoded-*") if p.is_dir()]) == 2  # train and val, beside the set
    assert len(batches["store"]) == len(batches["decoding"]) == 2 + 1 + 1
    for got, expected in zip(batches["store"], batches["decoding"], strict=True):
        assert torch.equal(got["video"], expected["video"]) and torch.equal(got["label"], expected["label"])


# --- damage ----------------------------------------------------------------------------------------------------


def _cut(store: Path) -> None:
    path = store / FRAMES
    path.write_bytes(path.read_bytes()[:-100])


def _flip(store: Path) -> None:
    path = store / FRAMES
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 1
    path.write_bytes(bytes(content))


def _index_edited(store: Path) -> None:
    path = store / INDEX
    index = json.loads(path.read_text())
    index["videos"][0]["fps"] += 1.0  # valid JSON, a valid layout: only its checksum tells
    path.write_text(json.dumps(index))


def _index_garbled(store: Path) -> None:
    (store / INDEX).write_text("{not json")


def _frames_gone(store: Path) -> None:
    (store / FRAMES).unlink()


def _frames_a_link(store: Path) -> None:
    outside = store.parent.parent / "elsewhere.npy"
    shutil.copy(store / FRAMES, outside)  # a valid copy: only the link check can refuse it
    (store / FRAMES).unlink()
    (store / FRAMES).symlink_to(outside)


def _video_rewritten(store: Path) -> None:
    video = next((store.parent / store.name.split(".decoded-")[0] / "train").rglob("*.mp4"))
    info = video.stat()
    os.utime(video, ns=(info.st_atime_ns, info.st_mtime_ns + 10 ** 9))


@pytest.mark.parametrize("damage,reason", [
    (_cut, "frames.npy is .* bytes long"), (_flip, "frames.npy does not hash"),
    (_index_edited, "index.json does not hash"), (_index_garbled, "index.json is not the JSON"),
    (_frames_gone, "frames.npy is missing"), (_frames_a_link, "frames.npy is a symlink"),
    (_video_rewritten, "has changed since it was decoded")])
def test_a_damaged_store_is_written_again_with_a_warning(damage, reason, generated, tmp_path, caplog):
    root = copied_set(generated, "synth_objects", tmp_path)
    samples = split_samples("synth_objects", root)
    keep_decoded_set(root, samples, DecodedVideoCache(max_bytes=0))
    store = stored(root, samples)
    damage(store)
    cache = DecodedVideoCache(max_bytes=0)
    with caplog.at_level(logging.WARNING, logger="data.decoded_store"):
        keep_decoded_set(root, samples, cache)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(store) in warnings[0] and "decoding the set's videos again" in warnings[0]
    assert re.search(reason, warnings[0])
    for sample in samples:
        assert torch.equal(cache.open(sample.path, sample.fps, sample.root).frames, decoded_now(sample).frames)
    assert not (store / FRAMES).is_symlink() and all(p.is_file() for p in store.parent.parent.glob("*.npy"))
    assert sorted(p.name for p in store.parent.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")
                  ) == []  # nothing left aside
    caplog.clear()
    keep_decoded_set(root, samples, DecodedVideoCache(max_bytes=0))  # now whole: read without a word
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_link_in_place_of_the_store_or_its_lock_is_refused_in_one_line(generated, tmp_path):
    root = copied_set(generated, "synth_objects", tmp_path)
    samples = split_samples("synth_objects", root)
    keep_decoded_set(root, samples, DecodedVideoCache(max_bytes=0))
    store = stored(root, samples)
    outside = tmp_path / "outside"
    store.rename(outside)
    store.symlink_to(outside, target_is_directory=True)  # a whole, valid store, but outside the cache folder
    with pytest.raises(DecodedStoreError, match=rf"^{re.escape(str(store))}: the store .* is a symlink, .*; remove it"):
        keep_decoded_set(root, samples, DecodedVideoCache(max_bytes=0))
    store.unlink()
    lock = store.parent / f".{store.name}.lock"
    lock.unlink()
    victim = tmp_path / "victim.txt"
    victim.write_text("kept")
    lock.symlink_to(victim)
    with pytest.raises(DecodedStoreError, match=rf"^{re.escape(str(lock))}: the lock .* is a symlink"):
        keep_decoded_set(root, samples, DecodedVideoCache(max_bytes=0))
    assert victim.read_text() == "kept" and sorted(p.name for p in outside.iterdir()) == [FRAMES, INDEX]


def test_a_writers_leftovers_are_removed_by_the_next_writer(generated, tmp_path):
    root = copied_set(generated, "synth_objects", tmp_path)
    samples = split_samples("synth_objects", root)
    store = stored(root, samples)
    leftover = store.parent / f".{store.name}-killed"  # a writer killed before its rename
    leftover.mkdir()
    (leftover / FRAMES).write_bytes(b"half")
    keep_decoded_set(root, samples, DecodedVideoCache(max_bytes=0))
    assert not leftover.exists() and store.is_dir()


def test_a_full_disk_while_writing_names_the_stores_file_and_leaves_nothing(generated, tmp_path, monkeypatch):
    import errno

    import data.decoded_store as decoded_store

    root = copied_set(generated, "synth_objects", tmp_path)
    samples = split_samples("synth_objects", root)
    store = stored(root, samples)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(decoded_store.os, "fsync", full)
    with pytest.raises(OSError, match=rf"No space left on device: '{re.escape(str(store / FRAMES))}'"):
        keep_decoded_set(root, samples, DecodedVideoCache(max_bytes=0))
    assert not store.exists() and [p.name for p in root.parent.iterdir() if p.name.startswith(f".{store.name}-")] == []


# --- two processes ---------------------------------------------------------------------------------------------

RACER = """
import hashlib, json, logging, sys
from pathlib import Path
import data.decoded_store as store
from data.annotations import read_annotations
from data.synthetic import SYNTHETIC_SETS
from data.video_io import DecodedVideoCache
logging.basicConfig(level=logging.INFO)  # its "waiting" line tells the test that it reached the lock
root = Path(sys.argv[1])
writes = []
write = store._write
store._write = lambda *args: writes.append(1) or write(*args)
samples, _ = read_annotations("kinetics_list", root, "train", SYNTHETIC_SETS["synth_objects"].num_classes)
cache = DecodedVideoCache(max_bytes=0)
store.keep_decoded_set(root, samples, cache)
digest = hashlib.sha256()
for s in samples:
    digest.update(cache.open(s.path, s.fps, s.root).frames.numpy().tobytes())
print(json.dumps({"writes": len(writes), "frames": digest.hexdigest()}))
"""


@pytest.mark.slow  # starts two processes
def test_two_processes_racing_decode_once_and_read_the_same_frames(generated, tmp_path):
    """Both find no store and wait at its lock, which this test holds; let go, one writes the store and the other
    reads what it wrote."""
    from data.decoded_store import _locked

    root = copied_set(generated, "synth_objects", tmp_path)
    samples = split_samples("synth_objects", root)
    store = stored(root, samples)
    with _locked(store):
        racers = [subprocess.Popen([sys.executable, "-c", RACER, str(root)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, cwd=tmp_path) for _ in range(2)]
        for racer in racers:
            said = []
            while not said or "waiting for it" not in said[-1]:
                said.append(racer.stderr.readline())
                assert said[-1], "".join(said)  # a racer that ended before it reached the lock
    ended = [racer.communicate(timeout=120) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), ended
    outputs = [json.loads(out) for out, _ in ended]
    assert sum(out["writes"] for out in outputs) == 1
    expected = np.concatenate([decoded_now(s).frames.numpy().ravel() for s in samples])
    assert outputs[0]["frames"] == outputs[1]["frames"] == hashlib.sha256(expected.tobytes()).hexdigest()
    assert [p.name for p in store.parent.iterdir() if p.name.startswith(f".{store.name}-")] == []
