"""Clip sampling and spatial transforms against literal references: frame indices written out by plain loops from the
documented formulas (data/README.md, Clip sampling), pixels read back from small tensors whose values name their own
row, column, frame and channel. Complements tests/data/test_loading.py, tests/data/test_transforms.py and
tests/data/test_pose_transforms.py, which check these mostly through the same code or through shapes."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

import data  # noqa: F401  (repairs torchvision before anything imports it)
import data.transforms as transforms
from data.clip_sampling import StreamTiming, dense_clip, sample_clip, segment_range, temporal_views, uniform_segments
from data.transforms import TestTransform, TrainTransform, normalize, random_crop_offsets, resize_short_side, to_float


def coordinates(channels: int, frames: int, height: int, width: int) -> torch.Tensor:
    """(C, T, H, W) float video whose pixel (c, t, y, x) holds 1000 c + 100 t + 10 y + x (for x, y < 10)."""
    video = torch.empty(channels, frames, height, width)
    for c in range(channels):
        for t in range(frames):
            for y in range(height):
                for x in range(width):
                    video[c, t, y, x] = 1000 * c + 100 * t + 10 * y + x
    return video


# ---- dense sampling -------------------------------------------------------------------------------------------------

def test_dense_training_starts_reach_every_start_of_the_free_span_and_keep_the_stride():
    """A 20-frame video, 4 frames at stride 3: the clip spans 10 frames, so a training start is uniform over 0..10, both
    ends included, and the frames are start, start + 3, start + 6, start + 9."""
    rng = random.Random(0)
    starts = set()
    for _ in range(400):
        clip = dense_clip(20, 10.0, num_frames=4, stride=3, mode="random", rng=rng)
        start = clip.frame_indices[0]
        assert clip.frame_indices == (start, start + 3, start + 6, start + 9)
        starts.add(start)
    assert starts == set(range(11))


def test_a_single_dense_test_view_is_the_centred_clip():
    """One test view (the X-ViT and Swin-style 1 x 3 testing) is the clip in the middle of the free span, as "center":
    100 frames, 8 at stride 4 span 29, so it starts at (100 - 29) // 2 = 35."""
    (view,) = temporal_views(100, 25.0, 8, 4, num_clips=1)
    assert view.frame_indices == tuple(35 + 4 * k for k in range(8))
    assert (view.clip_index, view.num_clips) == (0, 1)


def test_dense_test_views_start_at_the_video_start_and_end_at_its_end_for_any_count():
    """The default ("frame_stride") placement: view i of n starts at round(i * free / (n - 1)); the first view
    starts on frame 0 and the last one ends on the last frame, whatever the video's length and the number of views."""
    for length, frames, stride, clips in [(300, 16, 4, 5), (97, 8, 2, 4), (64, 8, 8, 2), (250, 16, 4, 7)]:
        free = length - ((frames - 1) * stride + 1)
        expected = []
        for i in range(clips):
            start = round(free * i / (clips - 1))
            expected.append(tuple(start + k * stride for k in range(frames)))
        views = temporal_views(length, 25.0, frames, stride, clips)
        assert [v.frame_indices for v in views] == expected, (length, clips)
        assert views[0].frame_indices[0] == 0 and views[-1].frame_indices[-1] == length - 1
        assert [v.clip_index for v in views] == list(range(clips))


def _official_kinetics_test_views(length: int, clip_len: int, rate: int, views: int) -> list[tuple[int, ...]]:
    """CAST's (and VideoMAE's) dataset/kinetics.py in test mode, written out: every ``rate``-th frame, the last one
    repeated up to ``clip_len``; view i starts at entry int(i * (entries - clip_len) / (views - 1))."""
    buffer = list(range(0, length, rate))
    while len(buffer) < clip_len:
        buffer.append(buffer[-1])
    step = max((len(buffer) - clip_len) / (views - 1), 0)
    return [tuple(buffer[int(i * step):int(i * step) + clip_len]) for i in range(views)]


@pytest.mark.parametrize("length", [250, 300, 301, 64, 40, 3])
def test_videomae_test_views_are_the_official_cast_kinetics_frames(length):
    """CAST's K400 protocol (16 frames at rate 4, 5 views): views start on multiples of the rate and the last one
    stops up to a rate short of the end (300 frames: starts 0, 56, 116, 176, 236, where the default places 0, 60,
    120, 179, 239); a video shorter than the clip repeats its last sampled frame."""
    views = temporal_views(length, 25.0, 16, 4, 5, dense_convention="videomae")
    assert [v.frame_indices for v in views] == _official_kinetics_test_views(length, 16, 4, 5)
    if length == 300:
        assert [v.frame_indices[0] for v in views] == [0, 56, 116, 176, 236]


def _official_kinetics_training_clip(length: int, clip_len: int, rate: int, end: int) -> tuple[int, ...]:
    """dataset/kinetics.py's loadvideo_decord at training, for the end frame its np.random.randint drew."""
    converted = clip_len * rate
    if length <= converted:
        index = [length * k / (length // rate - 1) if length // rate > 1 else 0.0 for k in range(length // rate)]
        index += [float(length)] * (clip_len - length // rate)
        return tuple(min(max(int(v), 0), length - 1) for v in index)
    start = end - converted
    index = [start + (end - start) * k / (clip_len - 1) for k in range(clip_len)]
    return tuple(int(min(max(v, start), end - 1)) for v in index)


def test_videomae_training_clips_are_the_official_linspace_over_every_reachable_end():
    """A 100-frame video, 8 frames at rate 4: the clip covers 32 frames ending at a frame uniform in [32, 99]
    (np.random.randint's range), its frames linspace(end - 32, end, 8) clipped below the end and truncated, so
    they are 4 or 5 apart, not exactly 4."""
    rng = random.Random(0)
    ends = set()
    for _ in range(1500):
        clip = dense_clip(100, 25.0, 8, 4, "random", rng=rng, convention="videomae")
        end = clip.frame_indices[0] + 32
        assert clip.frame_indices == _official_kinetics_training_clip(100, 8, 4, end)
        ends.add(end)
    assert ends == set(range(32, 100))
    assert _official_kinetics_training_clip(100, 8, 4, 32) == (0, 4, 9, 13, 18, 22, 27, 31)


def test_videomae_training_clip_of_a_short_video_spreads_what_it_has_and_repeats_the_end():
    """A 20-frame video is shorter than 8 x 4: linspace(0, 20, 20 // 4 = 5) clipped into the video, then frame 19
    three more times."""
    clip = dense_clip(20, 25.0, 8, 4, "random", rng=random.Random(0), convention="videomae")
    assert clip.frame_indices == (0, 5, 10, 15, 19, 19, 19, 19)
    assert clip.frame_indices == _official_kinetics_training_clip(20, 8, 4, end=0)


def test_the_pyslowfast_centre_clip_starts_half_way_through_the_free_span():
    """PySlowFast's arithmetic at 30 fps: 8 frames at stride 8 span 64 frames; 300 - 64 = 236 free, so the centre clip
    (per-epoch validation) is linspace(118, 181, 8), frames 9 apart."""
    clip = dense_clip(300, 30.0, 8, 8, "center", convention="pyslowfast")
    assert clip.frame_indices == (118, 127, 136, 145, 154, 163, 172, 181)
    assert clip.clip_start_sec == pytest.approx(118 / 30) and clip.clip_end_sec == pytest.approx(182 / 30)


def _selective_pyav_clip(pts: list[int], stored_frames: int, duration: int, fps: float, clip_len: int, rate: int,
                         start: float) -> tuple[int, ...]:
    """PySlowFast's selective PyAV decoding written out (decoder.pyav_decode, pyav_decode_stream, decode): the start
    and end frame become pts through duration / frames, truncated; the frames with pts in between are kept, and the
    first one after; the clip is linspace(0, clip_size - 1) over them, truncated and clamped."""
    clip_size = rate * clip_len / 30 * fps
    per_frame = duration / stored_frames
    start_pts, end_pts = int(start * per_frame), int((start + clip_size - 1) * per_frame)
    kept = []
    for index, p in enumerate(pts):
        if p >= start_pts:
            kept.append(index)
            if p > end_pts:
                break
    return tuple(kept[min(int(k * (clip_size - 1) / (clip_len - 1)), len(kept) - 1)] for k in range(clip_len))


@pytest.mark.parametrize("frames,fps,step,first_pts,duration", [
    (100, 30.0, 512, 0, 51200), (97, 30000 / 1001, 1001, 0, 97097), (20, 30.0, 512, 0, 10230),
    (121, 60.0, 256, 1024, 30976)])
def test_pyslowfast_pyav_views_are_the_selective_decoding_written_out(frames, fps, step, first_pts, duration):
    """Every one of 10 views, 16 frames at rate 4: the frames of the written-out selective decoding over the stream's
    pts (a start offset, a stored duration that is no whole number of frames, 29.97 fps, a video shorter than a
    clip). A fractional start begins at the next frame: the 100-frame video's view 1 (start 3.6) at frame 4, where
    decoding every frame ("pyslowfast") begins at 3."""
    pts = [first_pts + step * i for i in range(frames)]
    timing = StreamTiming(frames, duration, first_pts, float(step))
    clip_size = 4 * 16 / 30 * fps
    for view in range(10):
        start = max(frames - clip_size, 0) * view / 10
        ours = dense_clip(frames, fps, 16, 4, view, 10, convention="pyslowfast_pyav", timing=timing)
        assert ours.frame_indices == _selective_pyav_clip(pts, frames, duration, fps, 16, 4, start), view
    assert dense_clip(100, 30.0, 16, 4, 1, 10, convention="pyslowfast_pyav",
                      timing=StreamTiming(100, 51200, 0, 512.0)).frame_indices[0] == 4
    assert dense_clip(100, 30.0, 16, 4, 1, 10, convention="pyslowfast").frame_indices[0] == 3
    # no timestamps (a frame folder) or no stored duration: their decode-all fallback, "pyslowfast"
    for timing in (None, StreamTiming(100, None, 0, 512.0)):
        assert dense_clip(100, 30.0, 16, 4, 1, 10, convention="pyslowfast_pyav", timing=timing) == dense_clip(
            100, 30.0, 16, 4, 1, 10, convention="pyslowfast")


def test_sample_clip_uses_the_sampling_and_dense_convention_it_is_given():
    """The training/validation entry point: segments take each segment's middle, dense clips their stride, and the
    PySlowFast convention its 30 fps span; a swapped dispatch or a dropped convention changes the frames."""
    assert sample_clip(40, 10.0, 8, 4, "segments", "center").frame_indices == (2, 7, 12, 17, 22, 27, 32, 37)
    assert sample_clip(100, 25.0, 8, 4, "dense", "center").frame_indices == tuple(35 + 4 * k for k in range(8))
    assert sample_clip(300, 30.0, 8, 8, "dense", "center", dense_convention="pyslowfast").frame_indices == (
        118, 127, 136, 145, 154, 163, 172, 181)
    rng = random.Random(3)
    for _ in range(20):  # random segment clips stay one frame per segment, never a strided run
        frames = sample_clip(40, 10.0, 8, 4, "segments", "random", rng=rng).frame_indices
        assert all(5 * i <= f < 5 * (i + 1) for i, f in enumerate(frames))


# ---- segment sampling -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [40, 37, 13])
def test_random_segment_draws_reach_every_frame_overlapping_their_segment_and_no_other(length):
    """Segment i of n covers [i L / n, (i + 1) L / n); frame f covers [f, f + 1). Training draws one frame per segment,
    uniformly among the frames overlapping it: over many draws every such frame comes up, both ends included."""
    seg = length / 8
    allowed = [{f for f in range(length) if f + 1 > seg * i and f < seg * (i + 1)} for i in range(8)]
    seen = [set() for _ in range(8)]
    rng = random.Random(1)
    for _ in range(600):
        for i, f in enumerate(uniform_segments(length, 10.0, 8, "random", rng=rng).frame_indices):
            seen[i].add(f)
    assert seen == allowed


@pytest.mark.parametrize("length", [41, 16, 9, 3])
def test_pyslowfast_segments_are_get_seq_frames_written_out(length):
    """PySlowFast's Ssv2.get_seq_frames: segment i of 8 spans [round(s i), round(s (i + 1))], s = (L - 1) / 8, both
    ends in (np.round: halves to even); training draws reach exactly those frames; test views at offsets 0.5 and 0
    are (start + end) // 2 and start."""
    size = (length - 1) / 8
    ends = [(int(np.round(size * i)), int(np.round(size * (i + 1)))) for i in range(8)]
    views = temporal_views(length, 10.0, 8, 1, 2, "segments", (0.5, 0.0), segment_convention="pyslowfast")
    assert views[0].frame_indices == tuple((lo + hi) // 2 for lo, hi in ends)
    assert views[1].frame_indices == tuple(lo for lo, _ in ends)
    seen = [set() for _ in range(8)]
    rng = random.Random(1)
    for _ in range(400):
        for i, f in enumerate(sample_clip(length, 10.0, 8, 1, "segments", rng=rng,
                                          segment_convention="pyslowfast").frame_indices):
            seen[i].add(f)
    assert seen == [set(range(lo, hi + 1)) for lo, hi in ends]


def test_segment_views_on_segments_of_fractional_length():
    """37 frames in 8 segments of 4.625 frames: view i of n takes floor(4.625 (k + (i + 0.5) / n)) in segment k, and
    "center" the offset 1/2; written out for 1 and 3 views."""
    seg = 37 / 8
    centre = tuple(math.floor(seg * (k + 0.5)) for k in range(8))
    assert centre == (2, 6, 11, 16, 20, 25, 30, 34)
    assert uniform_segments(37, 10.0, 8, "center").frame_indices == centre
    views = temporal_views(37, 10.0, 8, stride=1, num_clips=3, sampling="segments")
    for i, view in enumerate(views):
        assert view.frame_indices == tuple(math.floor(seg * (k + (i + 0.5) / 3)) for k in range(8)), i
    assert views[0].frame_indices == (0, 5, 10, 14, 19, 23, 28, 33)


def test_segments_over_a_window_of_the_video_sit_where_their_frames_sit_in_their_segments():
    """span s: the segments cover round(s L) frames starting at round(place (L - window)), place being the frames'
    relative offset in their segments. 32 frames, 8 segments: s = 1/4 is 8 consecutive frames, s = 1/2 every other
    frame of 16 (Motionformer Figure 3's SSv2 strides S/4 and S/2 at tiny scale); 37 frames at s = 1/2: 18 frames
    from 10 (round(0.5 x 19) = 10, Python's round-half-even)."""
    assert uniform_segments(32, 10.0, 8, "center", span=0.25).frame_indices == tuple(range(12, 20))
    assert uniform_segments(32, 10.0, 8, "center", span=0.5).frame_indices == tuple(range(9, 24, 2))
    seg = 18 / 8
    assert uniform_segments(37, 10.0, 8, "center", span=0.5).frame_indices == tuple(
        10 + math.floor(seg * (k + 0.5)) for k in range(8))
    # test views: view i of n sits at (i + 0.5) / n of the free span and of each segment
    views = temporal_views(32, 10.0, 8, stride=1, num_clips=2, sampling="segments", segment_span=0.5)
    assert [v.frame_indices for v in views] == [tuple(range(4, 20, 2)), tuple(range(13, 29, 2))]
    assert uniform_segments(32, 10.0, 8, "center", span=1.0).frame_indices == tuple(range(2, 32, 4))


def test_random_segments_over_a_window_reach_every_window_place_and_keep_inside_it():
    """Training: the window of 8 frames in a 32-frame video starts anywhere in [0, 24], and with 8 segments of one
    frame its frames are consecutive."""
    rng, starts = random.Random(3), set()
    for _ in range(800):
        frames = sample_clip(32, 10.0, 8, stride=1, sampling="segments", rng=rng, segment_span=0.25).frame_indices
        assert frames == tuple(range(frames[0], frames[0] + 8))
        starts.add(frames[0])
    assert starts == set(range(25))


def test_a_segment_span_is_a_fraction_for_segment_sampling_only():
    with pytest.raises(ValueError, match="segment_span must be in"):
        uniform_segments(32, 10.0, 8, "center", span=1.5)
    with pytest.raises(ValueError, match="segment_span 0.5 needs segment sampling, not 'dense'"):
        sample_clip(32, 10.0, 8, stride=2, sampling="dense", segment_span=0.5)


def test_annotated_segment_timestamps_at_exact_frame_times_stay_on_their_frame():
    """0.29 s x 100 fps is 28.999999999999996 and 0.56 s x 100 is 56.00000000000001 in floating point: the segment
    [0.29 s, 0.56 s) holds frames 29 to 55, 27 frames (a frame belongs when its start time lies in the segment)."""
    assert segment_range(0.29, 0.56, 100.0, 100) == (29, 27)


# ---- transforms -----------------------------------------------------------------------------------------------------

def test_to_float_maps_uint8_onto_zero_to_one_and_leaves_floats():
    out = to_float(torch.tensor([0, 51, 255], dtype=torch.uint8))
    assert out.dtype == torch.float32 and torch.equal(out, torch.tensor([0.0, 0.2, 1.0]))
    floats = torch.tensor([0.25, 2.0, -1.0], dtype=torch.float64)
    assert torch.equal(to_float(floats), torch.tensor([0.25, 2.0, -1.0]))


def test_normalize_subtracts_each_channels_mean_and_divides_by_its_std_on_the_channel_axis():
    """Four frames of three channels (T != C, so time cannot stand in for the channels)."""
    video = coordinates(3, 4, 2, 2) / 1000
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    expected = torch.empty_like(video)
    for c in range(3):
        for t in range(4):
            for y in range(2):
                for x in range(2):
                    expected[c, t, y, x] = (video[c, t, y, x] - mean[c]) / std[c]
    torch.testing.assert_close(normalize(video, mean, std), expected)


def test_resize_short_side_scales_the_short_side_and_keeps_the_aspect_ratio():
    landscape, portrait = torch.full((3, 2, 36, 48), 0.25), torch.full((3, 2, 48, 36), 0.25)
    assert resize_short_side(landscape, 30).shape == (3, 2, 30, 40)
    assert resize_short_side(portrait, 30).shape == (3, 2, 40, 30)
    assert resize_short_side(landscape, 48).shape == (3, 2, 48, 64)  # the long side at the target stays too short
    torch.testing.assert_close(resize_short_side(landscape, 30), torch.full((3, 2, 30, 40), 0.25))
    video = coordinates(3, 2, 6, 9)
    assert torch.equal(resize_short_side(video, 6), video)  # already at size: untouched


def test_random_crop_offsets_reach_every_window_position_on_each_axis():
    """An 8 x 8 window in a 10 x 14 frame: top uniform over 0..2 and left over 0..6, ends included, never swapped."""
    frame = torch.zeros(3, 1, 10, 14)
    rng = random.Random(0)
    offsets = [random_crop_offsets(frame, 8, rng) for _ in range(300)]
    assert {top for top, _ in offsets} == {0, 1, 2}
    assert {left for _, left in offsets} == set(range(7))


@pytest.mark.parametrize("inverse", [False, True])
def test_the_scale_jitter_draws_every_short_side_of_its_inclusive_range(monkeypatch, inverse):
    """``scale`` (8, 12) is inclusive: every short side 8..12 is drawn (uniformly, or PySlowFast's inverse-uniform
    draw, rounded), and no other."""
    sides = []
    resize = transforms.resize_short_side
    monkeypatch.setattr(transforms, "resize_short_side", lambda video, size: sides.append(size) or resize(video, size))
    transform = TrainTransform(8, (8, 12), hflip=False, rng=random.Random(0), inverse_uniform_scale=inverse)
    clip = torch.rand(3, 1, 12, 16)
    for _ in range(300):
        assert transform({"video": clip})["video"].shape == (3, 1, 8, 8)
    assert set(sides) == {8, 9, 10, 11, 12}


def test_the_training_flip_mirrors_the_width_alone_about_half_the_time():
    """A 4 x 4 clip at crop 4 and scale (4, 4) is neither resized nor cropped: each output is the clip or its mirror
    image (columns reversed; rows, frames and channels in place), about half of each; hflip=False never flips."""
    clip = coordinates(3, 3, 4, 4)
    mirrored = torch.empty_like(clip)
    for x in range(4):
        mirrored[..., x] = clip[..., 3 - x]
    flipped = 0
    for seed in range(60):
        out = TrainTransform(4, (4, 4), hflip=True, mean=(0, 0, 0), std=(1, 1, 1), rng=random.Random(seed))(
            {"video": clip, "label": 7})
        assert out["label"] == 7
        assert torch.equal(out["video"], clip) or torch.equal(out["video"], mirrored), seed
        flipped += torch.equal(out["video"], mirrored)
        kept = TrainTransform(4, (4, 4), hflip=False, mean=(0, 0, 0), std=(1, 1, 1), rng=random.Random(seed))(
            {"video": clip})
        assert torch.equal(kept["video"], clip), seed
    assert 18 <= flipped <= 42, flipped


@pytest.mark.parametrize("height, width, expected", [
    (4, 10, [(0, 0), (0, 3), (0, 6)]),  # landscape: left, centre, right
    (4, 11, [(0, 0), (0, 4), (0, 7)]),  # 7 free columns: the centre rounds up (pytorchvideo's math.ceil)
    (10, 4, [(0, 0), (3, 0), (6, 0)]),  # portrait: top, centre, bottom
    (7, 7, [(1, 0), (1, 1), (1, 2)])])  # a 5 x 5 crop of a square frame: along the width, centred in height
def test_three_test_crops_are_the_start_centre_and_end_of_the_long_side(height, width, expected):
    """(top, left) of the three PySlowFast test crops; each output crop is that window of every frame, normalised
    with the transform's per-channel mean and std; one crop is the centre one."""
    size = min(height, width) if height != width else 5
    video = coordinates(3, 2, height, width)
    mean, std = (1.0, 2.0, 3.0), (2.0, 4.0, 8.0)
    out = TestTransform(size, 3, short_side=min(height, width), mean=mean, std=std)({"video": video})["video"]
    windows = []
    for top, left in expected:
        crop = video[:, :, top:top + size, left:left + size].clone()
        for c in range(3):
            crop[c] = (crop[c] - mean[c]) / std[c]
        windows.append(crop)
    assert out.shape == (3, 3, 2, size, size)
    for k in range(3):
        torch.testing.assert_close(out[k], windows[k], msg=f"crop {k}")
    one = TestTransform(size, 1, short_side=min(height, width), mean=mean, std=std)({"video": video})["video"]
    torch.testing.assert_close(one[0], windows[1])


def test_the_test_transform_resizes_to_its_short_side_not_to_the_crop():
    """short_side 6 with crop 4 on a 6 x 8 frame: no resize, the centre 4 x 4 window at (1, 2); resizing to the crop
    size instead would give other pixels."""
    video = coordinates(3, 1, 6, 8)
    out = TestTransform(4, 1, short_side=6, mean=(0, 0, 0), std=(1, 1, 1))({"video": video})["video"]
    assert torch.equal(out[0], video[:, :, 1:5, 2:6])


def test_training_pose_joints_scale_by_each_axis_own_factor(monkeypatch):
    """A 36 x 50 frame whose short side goes to 40 becomes 40 x floor(50 * 40 / 36) = 40 x 55 (pytorchvideo's
    short_side_scale), so y scales by 40 / 36 but x by 55 / 50: a pixel joint (x, y), 1-based, lands at
    ((x - 0.5) 55 / 50 + 0.5 - left, (y - 0.5) 40 / 36 + 0.5 - top) in the 40 x 40 crop at (top, left)."""
    drawn = []
    crop_offsets = transforms.random_crop_offsets
    monkeypatch.setattr(transforms, "random_crop_offsets",
                        lambda *args: drawn.append(crop_offsets(*args)) or drawn[-1])
    joints = torch.tensor([[[0.5 + 3.8 * j, 0.5 + 2.7 * j] for j in range(13)]], dtype=torch.float64)
    for seed in range(4):
        transform = TrainTransform(40, (40, 40), hflip=False, mean=(0, 0, 0), std=(1, 1, 1), rng=random.Random(seed))
        out = transform({"video": torch.rand(3, 1, 36, 50), "pose": joints, "pose_space": "pixel"})
        top, left = drawn[-1]
        assert out["video"].shape == (3, 1, 40, 40) and top == 0 and 0 <= left <= 15
        expected = torch.empty_like(joints)
        for j in range(13):
            expected[0, j, 0] = (joints[0, j, 0] - 0.5) * 55 / 50 + 0.5 - left
            expected[0, j, 1] = (joints[0, j, 1] - 0.5) * 40 / 36 + 0.5 - top
        torch.testing.assert_close(out["pose"], expected)
    assert len({left for _, left in drawn}) > 1


def _official_tokshift_test_views(length: int, clip_len: int, rate: int, views: int) -> list[tuple[int, ...]]:
    """TokShift-Transformer's data/dataset.py ``read_clip``, written out (its 1-based file numbers less one)."""
    max_bound = max(length - clip_len * rate + 1, 1)
    tick = 1.0 * length / views
    starts = [min(max(int(x * tick), 0), max_bound) for x in range(views)]
    return [tuple((k * rate + (0 if max_bound == 1 else start)) % length for k in range(clip_len)) for start in starts]


@pytest.mark.parametrize("length", [300, 250, 257, 256, 100, 7])
def test_tokshift_test_views_are_the_official_clipped_starts(length):
    """MSCA's K400 protocol as TokShift's code tests it (8 frames at stride 32, 10 views): view i starts at i/10 of
    the video, clipped to the last whole clip, so that on a 300-frame video views 1 to 9 all start at frame 45; a
    video shorter than the clip wraps round to its start."""
    views = temporal_views(length, 30.0, 8, 32, 10, dense_convention="tokshift")
    assert [v.frame_indices for v in views] == _official_tokshift_test_views(length, 8, 32, 10)
    assert [v.clip_index for v in views] == list(range(10))
    if length == 300:
        assert [v.frame_indices[0] for v in views] == [0, 30] + [45] * 8


def test_tokshift_training_starts_reach_every_official_start_and_the_centre_clip_is_the_start():
    """``np.random.randint(0, max_bound - 1)``: starts 0 to frames - 8 * 32 - 1 on a 300-frame video, and frames that
    wrap round once the clip passes the video's end."""
    rng = random.Random(0)
    starts = {dense_clip(300, 30.0, 8, 32, "random", rng=rng, convention="tokshift").frame_indices[0]
              for _ in range(2000)}
    assert starts == set(range(0, 300 - 8 * 32))
    assert dense_clip(300, 30.0, 8, 32, "center", convention="tokshift").frame_indices == tuple(range(0, 256, 32))
    assert dense_clip(100, 30.0, 4, 32, "random", rng=rng, convention="tokshift").frame_indices == (0, 32, 64, 96)
    assert dense_clip(100, 30.0, 8, 32, 0, 1, convention="tokshift").frame_indices == (0, 32, 64, 96, 28, 60, 92, 24)
