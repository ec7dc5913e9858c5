"""Generated data at the real datasets' shape (``data.synthetic.paper_shape``): each dataset's files are read by its
real reader with the real class counts, and its videos decode at the written size, rate and length."""

from __future__ import annotations

import dataclasses
import json

import av
import numpy as np
import pytest
from PIL import Image

import data  # noqa: F401  (repairs torchvision before anything imports it)
from data.annotations import class_counts, read_annotations
from data.davis import find_sequence, list_sequences, read_sequence
from data.lra import read_lra
from data.synthetic.paper_shape import (
    _GRAIN,
    LRA_DATASETS,
    PAPER_SHAPES,
    describe,
    ensure_paper_shape,
    footage,
    writable,
    write_paper_shape,
)
from data.video_io import FrameFolderVideo

SHRINK = 8
FORMATS = {"kinetics400": ("kinetics_list", 400), "kinetics600": ("kinetics_list", 600), "ssv2": ("ssv2", 174),
           "epic_kitchens100": ("epic_kitchens100", {"verb": 97, "noun": 300}), "pennaction": ("pennaction", 15),
           "ntu60": ("ntu60_xsub", 60), "ntu120": ("ntu120_xsub", 120), "finegym": ("finegym99", 99)}


@pytest.mark.parametrize("dataset", sorted(FORMATS))
def test_the_real_reader_reads_every_sample_with_the_real_classes(tmp_path, dataset):
    fmt, classes = FORMATS[dataset]
    root = write_paper_shape(dataset, tmp_path / dataset, num_train=3, num_val=2, shrink=SHRINK)
    count = class_counts(fmt, root) or classes  # the `path label` lists and NTU take theirs from the dataset
    assert count == classes
    for split, expected in (("train", 3), ("val", 2)):
        samples, bad = read_annotations(fmt, root, split, num_classes=count if fmt == "kinetics_list" else None)
        assert len(samples) == expected and not bad
        assert all(s.path.exists() and (s.pose is None or s.pose.exists()) for s in samples)


@pytest.mark.parametrize("dataset", ["kinetics400", "ssv2", "epic_kitchens100", "ntu60", "finegym"])
def test_videos_decode_at_the_written_size_rate_and_length(tmp_path, dataset):
    shape = PAPER_SHAPES[dataset].shrunk(SHRINK)
    root = write_paper_shape(dataset, tmp_path, num_train=1, num_val=1, shrink=SHRINK)
    fmt, _ = FORMATS[dataset]
    sample = read_annotations(fmt, root, "train", num_classes=400 if fmt == "kinetics_list" else None)[0][0]
    with av.open(str(sample.path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        assert (stream.width, stream.height, round(float(stream.average_rate))) == (shape.width, shape.height,
                                                                                    shape.fps)
    # an EPIC video holds two actions of shape.seconds, a second apart and from its ends
    assert frames == (shape.fps * (shape.seconds + 1) + shape.fps if dataset == "epic_kitchens100" else shape.frames)
    assert describe(root)["kbit_s"] > 0


def test_epic_written_as_extracted_frames_reads_as_its_videos_do(tmp_path):
    shape = PAPER_SHAPES["epic_kitchens100"].shrunk(SHRINK)
    videos = read_annotations("epic_kitchens100", write_paper_shape("epic_kitchens100", tmp_path / "v", 3, 1,
                                                                     shrink=SHRINK), "train")[0]
    root = write_paper_shape("epic_kitchens100", tmp_path / "f", 3, 1, shrink=SHRINK, layout="rgb_frames")
    frames = read_annotations("epic_kitchens100", root, "train")[0]
    assert [(s.label, s.segment) for s in frames] == [(s.label, s.segment) for s in videos]
    first = frames[0]
    assert first.path == root / "P01" / "rgb_frames" / "P01_001" and first.fps == shape.fps
    video = FrameFolderVideo(first.path, first.fps)
    assert video.num_frames == shape.fps * (2 * (shape.seconds + 1) + 1)  # two actions, as the video holds
    assert video.get_clip(0, 0, frame_indices=[0]).shape == (3, 1, shape.height, shape.width)
    assert json.loads((root / "paper_shape.json").read_text())["layout"] == "rgb_frames"
    assert not (root / "P01" / "videos").exists()


def test_only_epic_has_another_layout_and_each_layout_is_its_own_root(tmp_path):
    with pytest.raises(ValueError, match="kinetics400 is written as videos"):
        ensure_paper_shape("kinetics400", tmp_path, 1, 1, shrink=SHRINK, layout="rgb_frames")
    with pytest.raises(ValueError, match="got 'frames'"):
        ensure_paper_shape("epic_kitchens100", tmp_path, 1, 1, shrink=SHRINK, layout="frames")
    videos = ensure_paper_shape("epic_kitchens100", tmp_path, 1, 1, shrink=SHRINK)
    assert ensure_paper_shape("epic_kitchens100", tmp_path, 1, 1, shrink=SHRINK, layout="rgb_frames") != videos


def test_davis_sequences_are_480p_frames_with_masks(tmp_path):
    root = write_paper_shape("davis2017", tmp_path, num_train=0, num_val=1)
    (name,) = list_sequences(root, "val")
    frames, masks = read_sequence(find_sequence(root, name))
    assert frames.shape[0] == masks.shape[0] == PAPER_SHAPES["davis2017"].frames
    assert frames.shape[1:3] == (480, 854)


@pytest.mark.parametrize("dataset", LRA_DATASETS)
def test_lra_files_are_read_by_the_release_readers(tmp_path, dataset):
    task = dataset.removeprefix("lra_")
    root = write_paper_shape(dataset, tmp_path, num_train=4, num_val=2)
    train, val = read_lra(task, root, "train"), read_lra(task, root, "val")
    assert len(train) >= 4 and len(val) >= 2
    tokens, _ = train[0]
    if task == "listops":
        assert 500 < len(tokens) < 2000  # the benchmark's lengths (digits, operators and closing brackets)
    if task in ("text", "retrieval"):
        assert min(map(len, tokens if isinstance(tokens, tuple) else [tokens])) > 4000  # past every max_length


def test_shrunk_shapes_keep_rate_and_length_and_even_sides():
    shape = PAPER_SHAPES["epic_kitchens100"]
    small = shape.shrunk(7)
    assert (small.width, small.height) == (64, 36) and (small.fps, small.frames) == (shape.fps, shape.frames)
    assert shape.shrunk(1) is shape and PAPER_SHAPES["ssv2"].shrunk(100).height == 16


def test_a_root_written_at_an_earlier_shape_is_not_reused(tmp_path, monkeypatch):
    first = ensure_paper_shape("kinetics400", tmp_path, num_train=1, num_val=1, shrink=SHRINK)
    wider = dataclasses.replace(PAPER_SHAPES["kinetics400"], width=PAPER_SHAPES["kinetics400"].width + 2 * SHRINK)
    monkeypatch.setitem(PAPER_SHAPES, "kinetics400", wider)
    second = ensure_paper_shape("kinetics400", tmp_path, num_train=1, num_val=1, shrink=SHRINK)
    assert second != first and json.loads((second / "paper_shape.json").read_text())["shape"]["width"] == \
        wider.shrunk(SHRINK).width


def test_a_root_is_written_once_and_a_dataset_without_a_writer_is_refused(tmp_path):
    first = ensure_paper_shape("kinetics400", tmp_path, num_train=1, num_val=1, shrink=SHRINK)
    stamp = (first / "train.csv").stat().st_mtime_ns
    assert ensure_paper_shape("kinetics400", tmp_path, num_train=1, num_val=1, shrink=SHRINK) == first
    assert (first / "train.csv").stat().st_mtime_ns == stamp
    assert ensure_paper_shape("kinetics400", tmp_path, num_train=2, num_val=1, shrink=SHRINK) != first
    assert not writable("ntu60_xview")
    with pytest.raises(ValueError, match="no paper-shape writer for 'ntu60_xview'"):
        ensure_paper_shape("ntu60_xview", tmp_path, num_train=1, num_val=1)


def _footage_reference(rng, shape, frames):
    """``footage`` as it was first written: the disk tested at every pixel of every frame."""
    count = frames
    height, width = shape.height, shape.width
    small = rng.integers(0, 256, (height // _GRAIN + 2, (width + 2 * count) // _GRAIN + 2, 3), dtype=np.uint8)
    canvas = np.asarray(Image.fromarray(small).resize((small.shape[1] * _GRAIN, small.shape[0] * _GRAIN),
                                                      Image.BILINEAR))[:height]
    yy, xx = np.mgrid[0:height, 0:width]
    radius = max(2, min(height, width) // 8)
    for t in range(count):
        frame = np.ascontiguousarray(canvas[:, 2 * t:2 * t + width])
        cx, cy = width * (0.2 + 0.6 * t / max(count - 1, 1)), height / 2
        frame[(xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2] = (240, 220, 60)
        yield frame


@pytest.mark.parametrize("dataset", sorted(PAPER_SHAPES))
def test_the_footage_equals_the_pixel_by_pixel_disk(dataset):
    """The disk drawn in its bounding box only: the same frames, bit for bit, as the whole-frame test (the cache's
    key, which names the writer's version, stays valid)."""
    for shrink, frames in ((SHRINK, 7), (SHRINK * 4, 3), (1, 2)):
        shape = PAPER_SHAPES[dataset].shrunk(shrink)
        ours = footage(np.random.default_rng(1), shape, frames)
        reference = _footage_reference(np.random.default_rng(1), shape, frames)
        assert all(np.array_equal(a, b) for a, b in zip(ours, reference, strict=True))
