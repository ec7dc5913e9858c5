"""EPIC-KITCHENS-100 read from its extracted frames (``<participant>/rgb_frames/<video_id>/frame_<n>.jpg``, the
layout Motionformer's code reads) at the rate ``EPIC_100_video_info.csv`` gives: the same segments, frames and
labels as from the video files, and clear errors where the rate is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
import numpy as np
import pytest
import torch
from PIL import Image

from data.annotations import read_annotations
from data.datamodule import VideoDataModule
from data.datasets import VideoClipDataset, check_files
from data.video_io import FrameFolderVideo, VideoDecodeError
from tests.data.test_formats import EPIC_FPS, epic_root, frame_ids, index_frames  # noqa: F401  (a fixture)


def write_epic_frames(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True)
    for number, array in enumerate(frames, start=1):
        Image.fromarray(array).save(folder / f"frame_{number:010d}.jpg", quality=95)


@pytest.fixture
def frames_root(epic_root) -> Path:  # noqa: F811  (the fixture imported above)
    """``epic_root`` with P01_01 as extracted frames instead of a video (P01_02's zero-byte video stays)."""
    (epic_root / "P01" / "videos" / "P01_01.MP4").unlink()
    write_epic_frames(epic_root / "P01" / "rgb_frames" / "P01_01", index_frames(60))
    (epic_root / "annotations" / "EPIC_100_video_info.csv").write_text(
        f"video_id,duration,fps,resolution\nP01_01,1.2,{EPIC_FPS},56x24\nP01_02,1.0,59.94,1920x1080\n")
    return epic_root


def test_frames_are_read_where_the_video_is_absent_at_the_listed_rate(frames_root, tmp_path):
    samples, bad = read_annotations("epic_kitchens100", frames_root, "train")
    assert len(samples) == 5 and len(bad) == 5  # as from the videos
    first = samples[0]
    assert first.path == frames_root / "P01" / "rgb_frames" / "P01_01" and first.fps == EPIC_FPS
    assert samples[3].path == frames_root / "P01" / "videos" / "P01_02.MP4" and samples[3].fps is None  # a file wins
    train = VideoClipDataset(samples, "train", None, sampling="segments", num_frames=4)
    for _ in range(5):
        for index, (lo, hi) in enumerate([(10, 30), (0, 20), (40, 60)]):
            ids = frame_ids((train[index]["video"] * 255).round().to(torch.uint8))
            assert all(lo <= i < hi for i in ids) and ids == sorted(ids), (index, ids)
    test = VideoClipDataset(samples, "test", None, sampling="segments", num_frames=4, num_clips=1)
    assert frame_ids((test[0]["video"][0] * 255).round().to(torch.uint8)) == [12, 17, 22, 27]  # as the video's


def test_the_datamodule_batches_frames_as_it_batches_videos(frames_root, tmp_path):
    dm = VideoDataModule("epic_kitchens100", root=frames_root, num_frames=4, batch_size=5, num_workers=0,
                         test_clips=2, crop_size=24, train_scale=(24, 28), failures_dir=tmp_path)
    dm.setup("fit")
    (batch,) = list(dm.train_dataloader())
    assert sorted(tuple(pair) for pair in batch["label"].tolist()) == [(0, 1), (1, 0), (2, 3)]
    assert batch["video"].shape == (3, 3, 4, 24, 24)


def test_a_frames_layout_without_its_rate_is_named(frames_root):
    info = frames_root / "annotations" / "EPIC_100_video_info.csv"
    info.write_text("video_id,duration,fps,resolution\nP01_01,1.2,abc,56x24\n")
    samples, bad = read_annotations("epic_kitchens100", frames_root, "train")
    assert [s.video_id for s in samples] == ["P01_02_0", "P02_01_0"]  # every P01_01 row is reported, not guessed
    reasons = {b.line_number: b.reason for b in bad}
    assert all(f"{info}:2: fps 'abc' is not a rate" == reasons[n] for n in (2, 3, 4))

    info.write_text("video_id,duration,fps,resolution\nP01_01,1.2,inf,56x24\n")
    _, bad = read_annotations("epic_kitchens100", frames_root, "train")
    assert f"{info}:2: fps 'inf' is not a rate" in {b.reason for b in bad}

    info.write_text("video_id,duration,fps,resolution\nP01_02,1.0,50,56x24\n")
    _, bad = read_annotations("epic_kitchens100", frames_root, "train")
    assert "P01_01 has rgb_frames but no line in EPIC_100_video_info.csv" in {b.reason for b in bad}

    info.unlink()
    with pytest.raises(FileNotFoundError, match="EPIC_100_video_info.csv"):
        read_annotations("epic_kitchens100", frames_root, "train")


def test_a_frame_folder_takes_one_naming_and_the_check_reads_a_large_one_at_its_ends(frames_root, monkeypatch):
    folder = frames_root / "P01" / "rgb_frames" / "P01_01"
    assert FrameFolderVideo(folder, EPIC_FPS).num_frames == 60
    mixed = frames_root / "mixed"
    shutil.copytree(folder, mixed)
    Image.fromarray(index_frames(1)[0]).save(mixed / "000061.jpg")
    with pytest.raises(VideoDecodeError, match="mixes"):
        FrameFolderVideo(mixed, EPIC_FPS)

    (folder / "frame_0000000030.jpg").write_bytes(b"not a jpeg")  # a middle frame
    samples, _ = read_annotations("epic_kitchens100", frames_root, "train")
    assert "cannot decode frame frame_0000000030.jpg" in check_files(samples[:1])[str(folder)]
    monkeypatch.setattr("data.datasets.FULLY_CHECKED_FRAMES", 59)  # a folder past the bound: ends only
    assert check_files(samples[:1])[str(folder)] is None
    (folder / "frame_0000000060.jpg").write_bytes(b"not a jpeg")
    assert "cannot decode frame frame_0000000060.jpg" in check_files(samples[:1])[str(folder)]
