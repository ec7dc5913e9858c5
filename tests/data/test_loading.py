"""Annotation formats, clip samplers, decoding, transforms, datasets and the DataModule, on tiny videos written here."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.annotations import class_names, detect_format, read_annotations
from data.clip_sampling import ClipInfo, dense_clip, temporal_views, uniform_segments
from data.datamodule import VideoDataModule
from data.datasets import VideoClipDataset, collate_skip_none
from data.transforms import TestTransform, TrainTransform
from data.video_io import DECODED_VIDEOS, DecodedVideoCache, Video, VideoDecodeError, write_video

BITS = 6  # frame i shows its index in binary as 6 black/white vertical stripes: it survives lossy compression


def index_video(path: Path, num_frames: int = 20, height: int = 24, width: int = 32, codec: str | None = None) -> Path:
    bits = (np.arange(num_frames)[:, None] >> np.arange(BITS)[None]) & 1  # (T, BITS)
    stripe = np.minimum(np.arange(width) * BITS // width, BITS - 1)  # the bit each column shows
    frames = np.repeat((bits[:, None, stripe, None] * 255).astype(np.uint8), height, axis=1).repeat(3, axis=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames, fps=10, codec=codec)


def frame_ids(clip: torch.Tensor) -> list[int]:
    """(C, T, H, W) index video (uint8, or float in [0, 1]) -> frame indices."""
    clip = clip.float() * (255 if clip.is_floating_point() else 1)
    width = clip.shape[-1]
    columns = clip.mean(dim=(0, 2))  # (T, W)
    centres = [int((b + 0.5) * width / BITS) for b in range(BITS)]
    return [sum(int(row[c] > 127) << b for b, c in enumerate(centres)) for row in columns]


# --- annotation formats ---------------------------------------------------------------------------------------


def test_kinetics_path_label_list(tmp_path):
    (tmp_path / "train.csv").write_text("a/x.mp4 3\nb/y.mp4,1\n\nc/with space.mp4 0\n")
    samples, bad = read_annotations("kinetics_list", tmp_path, "train")
    assert not bad
    assert [(s.path, s.label, s.video_id, s.line) for s in samples] == [
        (tmp_path / "a/x.mp4", 3, "x", 1), (tmp_path / "b/y.mp4", 1, "y", 2),
        (tmp_path / "c/with space.mp4", 0, "with space", 4)]
    assert detect_format(tmp_path) == "kinetics_list"


def test_kinetics_official_layout(tmp_path):
    (tmp_path / "annotations").mkdir()
    header = "label,youtube_id,time_start,time_end,split\n"
    (tmp_path / "annotations" / "train.csv").write_text(
        header + "zumba,abc,10,20,train\n\"archery, indoor\",def,0,10,train\nbowling,ghi,5,15,train\n")
    (tmp_path / "annotations" / "val.csv").write_text(header + "bowling,jkl,1,11,val\n")
    assert class_names("kinetics", tmp_path) == ["archery, indoor", "bowling", "zumba"]  # sorted class names
    train, bad = read_annotations("kinetics", tmp_path, "train")
    assert not bad
    assert train[0].path == tmp_path / "train" / "abc_000010_000020.mp4" and train[0].label == 2
    assert train[1].label == 0 and train[1].video_id == "def_000000_000010"
    val, _ = read_annotations("kinetics", tmp_path, "val")
    assert val[0].path == tmp_path / "val" / "jkl_000001_000011.mp4" and val[0].label == 1
    assert detect_format(tmp_path) == "kinetics"


def test_ssv2_format(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"Moving something up": "1", "Pushing something": "0"}))
    entry = {"id": "77", "label": "Moving a cup up", "template": "Moving [something] up", "placeholders": ["a cup"]}
    (tmp_path / "train.json").write_text(json.dumps([entry]))
    (tmp_path / "validation.json").write_text(json.dumps([{**entry, "id": "78", "template": "Pushing [something]"}]))
    (train, bad_train), (val, bad_val) = (read_annotations("ssv2", tmp_path, s) for s in ("train", "val"))
    assert not bad_train and not bad_val
    assert train[0][:4] == (tmp_path / "videos" / "77.webm", 1, "77", 1)
    assert val[0].label == 0 and val[0].path.name == "78.webm"
    assert class_names("ssv2", tmp_path) == ["Pushing something", "Moving something up"]
    assert detect_format(tmp_path) == "ssv2"


def test_unknown_format_and_split_raise(tmp_path):
    with pytest.raises(ValueError):
        read_annotations("ucf101", tmp_path, "train")
    with pytest.raises(ValueError):
        read_annotations("kinetics_list", tmp_path, "test")


# --- clip samplers --------------------------------------------------------------------------------------------


def test_dense_clip_arithmetic():
    rng = random.Random(0)
    for _ in range(50):
        clip = dense_clip(100, 25.0, num_frames=8, stride=4, mode="random", rng=rng)
        assert isinstance(clip, ClipInfo) and len(clip.frame_indices) == 8
        assert np.all(np.diff(clip.frame_indices) == 4) and 0 <= clip.frame_indices[0] <= 100 - 29
        assert clip.clip_start_sec == clip.frame_indices[0] / 25
        assert clip.clip_end_sec == (clip.frame_indices[-1] + 1) / 25
    assert dense_clip(100, 25.0, 8, 4, "center").frame_indices[0] == (100 - 29) // 2
    views = temporal_views(100, 25.0, 8, 4, num_clips=3)
    assert [v.frame_indices[0] for v in views] == [0, 36, 71] and [v.clip_index for v in views] == [0, 1, 2]
    assert all(v.num_clips == 3 for v in views) and views[-1].frame_indices[-1] == 99
    short = dense_clip(10, 25.0, 8, 4, "center")  # shorter than the clip: the last frame repeats
    assert short.frame_indices == (0, 4, 8, 9, 9, 9, 9, 9)


def test_uniform_segments_arithmetic():
    rng = random.Random(0)
    for _ in range(50):
        clip = uniform_segments(40, 10.0, num_frames=8, mode="random", rng=rng)
        assert all(5 * i <= f < 5 * (i + 1) for i, f in enumerate(clip.frame_indices))  # one frame per segment
    assert uniform_segments(40, 10.0, 8, "center").frame_indices == (2, 7, 12, 17, 22, 27, 32, 37)
    views = temporal_views(40, 10.0, 8, stride=99, num_clips=2, sampling="segments")
    assert [v.frame_indices[:2] for v in views] == [(1, 6), (3, 8)]
    assert uniform_segments(4, 10.0, 8, "center").frame_indices == (0, 0, 1, 1, 2, 2, 3, 3)
    with pytest.raises(ValueError):
        uniform_segments(40, 10.0, 8, mode=2, num_clips=2)


def _pyslowfast_indices(video_size: int, fps: float, num_frames: int, sampling_rate: int, clip_idx: int,
                        num_clips: int, start: float | None = None) -> list[int]:
    """PySlowFast's dense clip (Motionformer's and X-ViT's slowfast/datasets/decoder.py: ``get_start_end_idx``, then
    ``temporal_sampling`` on the whole decoded video, at DATA.TARGET_FPS 30); ``start`` replaces the random draw of
    ``clip_idx == -1``."""
    clip_size = sampling_rate * num_frames / 30 * fps
    delta = max(video_size - clip_size, 0)
    start_idx = start if clip_idx == -1 else delta * clip_idx / num_clips
    end_idx = start_idx + clip_size - 1
    index = torch.linspace(start_idx, end_idx, num_frames)
    return torch.clamp(index, 0, video_size - 1).long().tolist()


def test_pyslowfast_dense_clips_are_its_decoders_frames():
    """The stride counts frames at 30 fps (a 60 fps video's clip spans twice the frames), test view i of n starts at
    i / n of the free span, and a training start is uniform over it: frame for frame as PySlowFast's decoder."""
    for length, fps in [(300, 30.0), (250, 25.0), (600, 59.94), (40, 30.0), (10, 30.0), (1, 24.0)]:
        for frames, stride, clips in [(16, 4, 10), (8, 8, 1), (32, 3, 3), (16, 2, 5)]:
            views = temporal_views(length, fps, frames, stride, clips, "dense", dense_convention="pyslowfast")
            assert [list(v.frame_indices) for v in views] == [
                _pyslowfast_indices(length, fps, frames, stride, i, clips) for i in range(clips)], (length, fps)
            ours, theirs = random.Random(length), random.Random(length)
            for _ in range(5):
                delta = max(length - stride * frames / 30 * fps, 0)
                clip = dense_clip(length, fps, frames, stride, "random", rng=ours, convention="pyslowfast")
                assert list(clip.frame_indices) == _pyslowfast_indices(length, fps, frames, stride, -1, 1,
                                                                       theirs.uniform(0, delta))
    view = temporal_views(300, 30.0, 16, 4, 10, "dense", dense_convention="pyslowfast")[9]
    assert view.frame_indices[0] == 212 and view.frame_indices[-1] == 275  # 0.9 of the free span; 64-frame clip
    assert temporal_views(300, 30.0, 16, 4, 10, "dense")[9].frame_indices[-1] == 299  # VideoMAE's: to the end
    assert dense_clip(600, 60.0, 16, 4, 0, 10, convention="pyslowfast").frame_indices[-1] == 127  # 2 s at 60 fps


def test_a_dense_convention_is_one_of_two_and_only_for_dense_clips(tmp_path):
    with pytest.raises(ValueError, match="dense_convention must be one of"):
        VideoDataModule("synth_appearance", cache_dir=tmp_path, dense_convention="slowfast")
    with pytest.raises(ValueError, match="synth_motion: dense_convention 'pyslowfast' needs dense sampling"):
        VideoDataModule("synth_motion", cache_dir=tmp_path, dense_convention="pyslowfast")
    with pytest.raises(ValueError, match="convention must be one of"):
        dense_clip(100, 30.0, 8, 2, convention="slowfast")


def _official_cast_views(num_video_frames: int, num_segments: int) -> list[list[int]]:
    """The official CAST test frames (dataset/ssv2.py and epic.py, ``loadvideo_decord`` in test mode, two views):
    every segment's middle and first frame, sorted, and view k takes every other index from k."""
    tick = num_video_frames / float(num_segments)
    indices = sorted([int(tick / 2.0 + tick * x) for x in range(num_segments)]
                     + [int(tick * x) for x in range(num_segments)])
    return [indices[k::2] for k in range(2)]


def _official_xvit_views(num_video_frames: int, num_segments: int) -> list[list[int]]:
    """The official X-ViT test frames (slowfast/datasets/ssv2.py, ``get_seq_frames``): view 0 each segment's
    middle, view 1 its start, on segments of (L - 1) / n frames with rounded ends."""
    seg_size = float(num_video_frames - 1) / num_segments
    bounds = [(int(np.round(seg_size * i)), int(np.round(seg_size * (i + 1)))) for i in range(num_segments)]
    return [[(start + end) // 2 for start, end in bounds], [start for start, _ in bounds]]


def test_segment_views_at_the_official_codes_offsets():
    """CAST's two test views (offsets 0 and 1/2 of each segment) are its code's frames exactly; X-ViT's (1/2, then
    0) too on its code's segments, (L - 1) / n long with rounded ends (segment convention "pyslowfast"), and within
    one frame of them on L / n ones ("uniform")."""
    for length in range(16, 400):
        ours = [v.frame_indices for v in temporal_views(length, 30.0, 16, 1, 2, "segments", (0.0, 0.5))]
        assert [list(v) for v in ours] == _official_cast_views(length, 16), length
        ours = [v.frame_indices for v in temporal_views(length, 30.0, 16, 1, 2, "segments", (0.5, 0.0))]
        for view, official in zip(ours, _official_xvit_views(length, 16)):
            assert max(abs(a - b) for a, b in zip(view, official)) <= 1, length
        ours = [list(v.frame_indices) for v in temporal_views(length, 30.0, 16, 1, 2, "segments", (0.5, 0.0),
                                                              segment_convention="pyslowfast")]
        assert ours == _official_xvit_views(length, 16), length
    assert temporal_views(40, 10.0, 8, 1, 2, "segments", (0.0, 0.5))[0].frame_indices == (0, 5, 10, 15, 20, 25, 30, 35)
    default = temporal_views(40, 10.0, 8, 1, 2, "segments")
    assert default == temporal_views(40, 10.0, 8, 1, 2, "segments", (0.25, 0.75))


@pytest.mark.parametrize("offsets", [(0.5,), (0.0, 0.5, 0.9), (0.0, 1.0), (-0.1, 0.5)])
def test_segment_view_offsets_are_one_per_view_inside_a_segment(offsets):
    with pytest.raises(ValueError, match="one per test view"):
        temporal_views(40, 10.0, 8, 1, 2, "segments", offsets)


def test_segment_view_offsets_refuse_dense_clips(tmp_path):
    with pytest.raises(ValueError, match="segment sampling"):
        temporal_views(40, 10.0, 8, 1, 2, "dense", (0.0, 0.5))
    with pytest.raises(ValueError, match="synth_appearance: segment_view_offsets needs segment sampling"):
        VideoDataModule("synth_appearance", cache_dir=tmp_path, test_clips=2, segment_view_offsets=(0.0, 0.5))


# --- decoding -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix,codec", [(".mp4", None), (".webm", None), (".avi", "mpeg4")])
def test_video_decodes_exact_frames(tmp_path, suffix, codec):
    # mpeg4 puts a keyframe every 12 frames, so clips in the middle go through a real seek.
    path = index_video(tmp_path / f"v{suffix}", num_frames=40, codec=codec)
    with Video(path) as video:
        assert (video.num_frames, video.fps) == (40, 10.0) and video.duration == pytest.approx(4.0, abs=0.01)
        assert frame_ids(video.get_clip(1.5, 2.0)) == [15, 16, 17, 18, 19]
        assert frame_ids(video.get_clip(0, 4.0, frame_indices=[30, 2, 2, 39])) == [30, 2, 2, 39]
        assert frame_ids(video.get_clip(2.0, 3.0, num_frames=3)) == [20, 24, 29]
        clip = video.get_clip(0.0, 0.3)
        assert clip.shape == (3, 3, 24, 32) and clip.dtype == torch.uint8


@pytest.mark.parametrize("name,size", [
    ("long_gop.mp4", 64), ("long_gop.mp4", 128),  # H.264, one keyframe for all 96 frames; 128 px: frame threads
    ("vp9.webm", 64), ("mpeg4.avi", 64)])  # the decoders of SSv2 and NTU files must be safe too
def test_skipping_unwanted_frames_returns_the_same_pixels(tmp_path, monkeypatch, name, size):
    """Strided clips far from the keyframe skip decoding frames nobody references and nobody wants: same pixels as
    a full decode, in one decoding pass, with frames actually skipped (H.264 B-frames)."""
    from data.synthetic.render import background

    frames = (background(np.random.default_rng(0), size, 96) * 255).astype(np.uint8)  # textured: real B-frames
    path = write_video(tmp_path / name, frames, fps=30)
    with Video(path) as video:
        full = video.get_clip(0, 96 / 30)  # every frame wanted: nothing skipped
    passes = []
    decode_from = Video._decode_from

    def spy(self, first, stop, seek, wanted):
        decoded = decode_from(self, first, stop, seek, wanted)
        passes.append((wanted, set(decoded)))
        return decoded

    monkeypatch.setattr(Video, "_decode_from", spy)
    clips = [list(range(20, 36, 2)), list(range(50, 66, 2)), list(range(80, 96, 2)), [3, 40, 41, 90]]
    with Video(path) as video:
        for indices in clips:
            assert torch.equal(video.get_clip(0, 0, frame_indices=indices), full[:, indices])
    assert len(passes) == len(clips)  # no fallback to a full decode
    for (wanted, decoded), indices in zip(passes, clips):
        assert wanted <= decoded
        if name.endswith(".mp4"):
            assert len(decoded) < max(indices) + 1  # frames 0..max would be decoded without skipping


# --- transforms -----------------------------------------------------------------------------------------------


def test_train_transform_shapes_and_range():
    video = torch.randint(0, 256, (3, 8, 40, 60), dtype=torch.uint8)
    out = TrainTransform(32, (32, 40), hflip=True, rng=random.Random(0))({"video": video, "label": 3})
    assert out["video"].shape == (3, 8, 32, 32) and out["video"].dtype == torch.float32 and out["label"] == 3
    assert -1.0 <= out["video"].min() and out["video"].max() <= 1.0  # mean = std = 0.5


def test_train_transform_without_hflip_never_flips():
    ramp = torch.arange(32, dtype=torch.uint8).repeat(3, 2, 32, 1) * 8  # brightness grows to the right
    transform = TrainTransform(32, (32, 32), hflip=False, mean=(0, 0, 0), std=(1, 1, 1))
    for _ in range(20):
        row = transform({"video": ramp})["video"][0, 0, 0]
        assert torch.all(row[1:] >= row[:-1])
    flipped = [TrainTransform(32, (32, 32), hflip=True)({"video": ramp})["video"][0, 0, 0] for _ in range(20)]
    assert any(torch.all(r[1:] <= r[:-1]) for r in flipped)


def test_test_transform_crops():
    video = torch.randint(0, 256, (3, 4, 40, 80), dtype=torch.uint8)
    assert TestTransform(32, 1)({"video": video})["video"].shape == (1, 3, 4, 32, 32)
    three = TestTransform(32, 3)({"video": video})["video"]
    assert three.shape == (3, 3, 4, 32, 32)
    assert not torch.equal(three[0], three[2])  # left and right differ
    assert TestTransform(32, 1, short_side=36)({"video": video})["video"].shape == (1, 3, 4, 32, 32)


# --- dataset and DataModule -----------------------------------------------------------------------------------


def test_dataset_train_and_test_views(tmp_path):
    paths = [index_video(tmp_path / f"{i}.mp4", num_frames=30, height=36, width=48) for i in range(3)]
    samples = read_annotations_from(paths)
    train = VideoClipDataset(samples, "train", TrainTransform(32, (32, 40), True), "dense", num_frames=4, stride=2)
    item = train[0]
    assert item["video"].shape == (3, 4, 32, 32) and item["label"] == 0 and item["index"] == 0
    test = VideoClipDataset(samples, "test", TestTransform(32, 3), "dense", num_frames=4, stride=2, num_clips=2)
    item = test[1]
    assert item["video"].shape == (6, 3, 4, 32, 32) and item["label"] == 1  # V = 2 clips x 3 crops
    raw = VideoClipDataset(samples, "test", None, "segments", num_frames=5, num_clips=2)[2]["video"]
    assert raw.shape == (2, 3, 5, 36, 48)
    assert frame_ids(raw[0]) + frame_ids(raw[1]) == [1, 7, 13, 19, 25, 4, 10, 16, 22, 28]  # offsets 1/4 and 3/4
    raw = VideoClipDataset(samples, "test", None, "segments", num_frames=5, num_clips=2,
                           segment_view_offsets=[0.0, 0.5])[2]["video"]  # a list, as a configuration read from JSON
    assert frame_ids(raw[0]) + frame_ids(raw[1]) == [0, 6, 12, 18, 24, 3, 9, 15, 21, 27]  # segment starts, middles
    raw = VideoClipDataset(samples, "test", None, "dense", num_frames=4, stride=6, num_clips=2,
                           dense_convention="pyslowfast")[0]["video"]  # 10 fps: 6 x 4 frames at 30 fps = 8 frames
    assert frame_ids(raw[0]) + frame_ids(raw[1]) == [0, 2, 4, 7, 11, 13, 15, 18]
    assert frame_ids(raw[0]) + frame_ids(raw[1]) == (_pyslowfast_indices(30, 10.0, 4, 6, 0, 2)
                                                     + _pyslowfast_indices(30, 10.0, 4, 6, 1, 2))
    batch = collate_skip_none([test[0], test[1]])
    assert batch["video"].shape == (2, 6, 3, 4, 32, 32) and batch["label"].tolist() == [0, 1]


@pytest.mark.parametrize("mode", ["train", "test"])
def test_kept_decoded_frames_give_identical_items(tmp_path, mode):
    """Generated sets keep each video's decoded frames (``keep_decoded``): the same random clips and crops must come
    out as from decoding every time, over several epochs."""
    paths = [index_video(tmp_path / f"{i}.mp4", num_frames=30, height=36, width=48) for i in range(3)]
    samples = read_annotations_from(paths)
    transform = TrainTransform(32, (32, 40), True) if mode == "train" else TestTransform(32, 3)
    kwargs = dict(num_frames=4, stride=3, num_clips=2)
    decoding = VideoClipDataset(samples, mode, transform, "dense", **kwargs)
    kept = VideoClipDataset(samples, mode, transform, "dense", keep_decoded=True, **kwargs)
    for epoch in range(3):
        for index in range(len(samples)):
            torch.manual_seed(epoch * 10 + index), random.seed(index)
            expected = decoding[index]
            torch.manual_seed(epoch * 10 + index), random.seed(index)
            got = kept[index]
            assert torch.equal(got["video"], expected["video"]) and got["label"] == expected["label"]
    assert all(sample.path in DECODED_VIDEOS for sample in samples)  # kept for the process, not per dataset


def test_decoded_video_cache_shares_frames_and_decodes_a_rewritten_file_anew(tmp_path):
    """One decode per file per process, whichever dataset asks; a file written again (another size or time) is
    decoded again; past the byte budget videos are opened for decoding on each use, not kept."""
    path = index_video(tmp_path / "a.mp4", num_frames=10, height=36, width=48)
    cache = DecodedVideoCache(max_bytes=10 ** 9)
    first = cache.open(path)
    assert cache.open(path) is first and cache.bytes == first.nbytes == 3 * 10 * 36 * 48
    index_video(path, num_frames=12, height=36, width=48)  # regenerated in place
    second = cache.open(path)
    assert second is not first and second.num_frames == 12
    full = DecodedVideoCache(max_bytes=0)
    with full.open(path) as video:
        assert isinstance(video, Video) and path not in full
    with pytest.raises(VideoDecodeError, match="missing file"):
        cache.open(tmp_path / "gone.mp4")


def read_annotations_from(paths: list[Path]):
    from data.annotations import Sample

    return [Sample(p, i, p.stem, i + 1) for i, p in enumerate(paths)]


@pytest.fixture(scope="module")
def synthetic_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


TINY_SET = dict(num_train=16, num_val=6, num_video_frames=16)


# Two loader worker processes (fresh processes, so `slow`: the fast part keeps the in-process case).
@pytest.mark.parametrize("name,num_workers", [("synth_appearance", 0),
                                              pytest.param("synth_motion", 2, marks=pytest.mark.slow)])
def test_datamodule_end_to_end(name, num_workers, synthetic_cache, tmp_path):
    dm = VideoDataModule(name, cache_dir=synthetic_cache, synthetic_params=TINY_SET, num_frames=4, frame_stride=2,
                         batch_size=4, num_workers=num_workers, test_clips=2, test_crops=3, failures_dir=tmp_path)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_classes == {"synth_appearance": 8, "synth_motion": 6}[name]
    assert dm.hflip is (name == "synth_appearance")
    assert dm.sampling == ("dense" if name == "synth_appearance" else "segments")
    batches = list(dm.train_dataloader())
    assert len(batches) == 4  # 16 videos, drop_last
    assert batches[0]["video"].shape == (4, 3, 4, 32, 32) and batches[0]["label"].shape == (4,)
    assert batches[0]["index"].dtype == torch.int64
    val = list(dm.val_dataloader())
    assert sum(len(b["label"]) for b in val) == 6 and val[0]["video"].shape == (4, 3, 4, 32, 32)
    dm.setup("test")
    test = next(iter(dm.test_dataloader()))
    assert test["video"].shape == (4, 6, 3, 4, 32, 32)  # (B, V = 2 clips x 3 crops, C, T, H, W)
    described = dm.describe()
    assert described["num_train_videos"] == 16 and described["num_val_videos"] == 6
    assert described["mimics"] in ("Kinetics-400", "Something-Something V2")
    report = dm.data_report()
    assert report["train"]["expected"] == report["train"]["found"] == 16 and report["val"]["found"] == 6
    assert not report["train"]["corrupt"] and report["val"]["skipped_at_test"] == 0


def test_datamodule_tests_on_the_segment_views_it_is_given(synthetic_cache, tmp_path):
    """``segment_view_offsets`` reaches the test split's clips (and only the test split's)."""
    videos = {}
    for offsets in (None, (0.0, 0.5)):
        dm = VideoDataModule("synth_motion", cache_dir=synthetic_cache, synthetic_params=TINY_SET, num_frames=4,
                             num_workers=0, test_clips=2, segment_view_offsets=offsets, failures_dir=tmp_path)
        dm.prepare_data()
        dm.setup("fit")
        videos[offsets] = dm.test_dataloader().dataset[0]["video"]
        assert dm._datasets["val"].segment_view_offsets is None  # validation: one centred clip
    literal = VideoClipDataset(dm._splits["val"][0], "test", dm.test_dataloader().dataset.transform, "segments",
                               num_frames=4, num_clips=2, segment_view_offsets=(0.0, 0.5))[0]["video"]
    assert torch.equal(videos[(0.0, 0.5)], literal) and not torch.equal(videos[None], literal)


def test_datamodule_never_flips_direction_labels(synthetic_cache):
    assert VideoDataModule("synth_motion", hflip=True, cache_dir=synthetic_cache).hflip is False
    assert VideoDataModule("ssv2", root="/nonexistent").hflip is False
    assert VideoDataModule("kinetics400", root="/nonexistent").hflip is True
    assert VideoDataModule("synth_appearance", hflip=False, cache_dir=synthetic_cache).hflip is False
    with pytest.raises(ValueError):
        VideoDataModule("kinetics400")  # a real dataset needs its root


def test_datamodule_reads_kinetics_official_layout(tmp_path):
    (tmp_path / "annotations").mkdir()
    header = "label,youtube_id,time_start,time_end,split\n"
    rows = {"train": ["a", "b", "a", "b"], "val": ["a", "b"]}
    for split, labels in rows.items():
        lines = [f"{label},{split}{i},0,10,{split}" for i, label in enumerate(labels)]
        (tmp_path / "annotations" / f"{split}.csv").write_text(header + "\n".join(lines) + "\n")
        for i in range(len(labels)):
            index_video(tmp_path / split / f"{split}{i}_000000_000010.mp4", num_frames=20, height=32, width=40)
    dm = VideoDataModule("kinetics400", root=tmp_path, num_frames=4, batch_size=2, num_workers=0, test_clips=1)
    dm.setup("fit")
    assert dm.annotation_format == "kinetics" and dm.num_classes == 2
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (2, 3, 4, 32, 32)
    dm.setup("test")
    assert next(iter(dm.test_dataloader()))["video"].shape == (2, 1, 3, 4, 32, 32)


def test_lightning_fit_and_test_consume_the_datamodule(synthetic_cache, tmp_path):
    import lightning as L

    class MeanColour(L.LightningModule):  # the smallest model that sees every batch layout
        def __init__(self, num_classes: int) -> None:
            super().__init__()
            self.head = torch.nn.Linear(3, num_classes)

        def forward(self, video: torch.Tensor) -> torch.Tensor:
            return self.head(video.mean(dim=(-3, -2, -1)))  # (B, C, T, H, W) or (B, V, C, T, H, W)

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.cross_entropy(self(batch["video"]), batch["label"])

        def validation_step(self, batch, batch_idx):
            assert batch["video"].ndim == 5

        def test_step(self, batch, batch_idx):
            assert batch["video"].ndim == 6
            self.log("test/loss", torch.nn.functional.cross_entropy(self(batch["video"]).mean(1), batch["label"]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = VideoDataModule("synth_motion", cache_dir=synthetic_cache, synthetic_params=TINY_SET, num_frames=4,
                         batch_size=4, num_workers=2, failures_dir=tmp_path)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    model = MeanColour(dm.num_classes)
    trainer.fit(model, datamodule=dm)
    assert trainer.test(model, datamodule=dm, verbose=False)[0]["test/loss"] > 0
