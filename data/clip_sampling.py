"""Which frames make a clip: pure time arithmetic, no decoding.

``dense_clip`` (Kinetics: ``num_frames`` frames at a fixed stride, in the "frame_stride", "videomae", "pyslowfast",
"pyslowfast_frames", "pyslowfast_pyav" or "tokshift" convention) and ``uniform_segments`` (SSv2, EPIC-KITCHENS: one
frame from each of ``num_frames`` segments, in the "uniform" or "pyslowfast" convention) return a ``ClipInfo``;
``segment_range`` and ``shift_clip`` place a clip inside an annotated segment of an untrimmed video. The conventions,
formula by formula: data/README.md#clip-sampling.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from typing import Literal, NamedTuple

Mode = Literal["random", "center"] | int  # an int is the index of a test view among ``num_clips``


class ClipInfo(NamedTuple):
    """One clip: its frames (indices into the video) and the time span that contains them."""

    clip_start_sec: float
    clip_end_sec: float  # exclusive: the end of the last frame
    frame_indices: tuple[int, ...]
    clip_index: int  # which of ``num_clips`` test views; 0 for a training clip
    num_clips: int


def _clip_info(indices: list[int], fps: float, clip_index: int, num_clips: int) -> ClipInfo:
    return ClipInfo(min(indices) / fps, (max(indices) + 1) / fps, tuple(indices), clip_index, num_clips)


def _check(num_frames_in_video: int, fps: float, num_frames: int, mode: Mode, num_clips: int) -> None:
    if num_frames_in_video < 1 or fps <= 0 or num_frames < 1 or num_clips < 1:
        raise ValueError(f"need positive sizes, got video frames={num_frames_in_video} fps={fps} "
                         f"num_frames={num_frames} num_clips={num_clips}")
    if isinstance(mode, int) and not 0 <= mode < num_clips:
        raise ValueError(f"view index {mode} outside [0, {num_clips})")
    if not isinstance(mode, int) and mode not in ("random", "center"):
        raise ValueError(f"mode must be 'random', 'center' or a view index, got {mode!r}")


DenseConvention = Literal["frame_stride", "videomae", "pyslowfast", "pyslowfast_frames", "pyslowfast_pyav", "tokshift"]
DENSE_CONVENTIONS: tuple[str, ...] = ("frame_stride", "videomae", "pyslowfast", "pyslowfast_frames", "pyslowfast_pyav",
                                      "tokshift")
SegmentConvention = Literal["uniform", "pyslowfast"]
SEGMENT_CONVENTIONS: tuple[str, ...] = ("uniform", "pyslowfast")
PYSLOWFAST_TARGET_FPS = 30.0  # PySlowFast's DATA.TARGET_FPS, which Motionformer's and X-ViT's configs keep


class StreamTiming(NamedTuple):
    """A video file's timestamps as PyAV reports them (``data.video_io.Video.timing``), which PySlowFast's selective
    PyAV decoding turns frame numbers into ("pyslowfast_pyav"). Frame ``i`` (presentation order) has the pts
    ``start_pts + round(i * pts_step)``: the grid ``Video`` indexes frames on, exact for a constant-rate stream."""

    frames: int  # stream.frames: the count the container stores (0: none)
    duration: int | None  # stream.duration, in time-base units (None: not stored)
    start_pts: int  # the first frame's pts
    pts_step: float  # pts from one frame to the next: 1 / (fps * time_base)

    def pts(self, index: int) -> int:
        return self.start_pts + round(index * self.pts_step)


def dense_clip(
    num_frames_in_video: int,
    fps: float,
    num_frames: int,
    stride: int,
    mode: Mode = "random",
    num_clips: int = 1,
    rng: random.Random | None = None,
    convention: DenseConvention = "frame_stride",
    timing: StreamTiming | None = None,
) -> ClipInfo:
    """``num_frames`` frames ``stride`` apart.

    Args:
        num_frames_in_video: frames in the video.
        fps: the video's frame rate (for the clip's time span).
        num_frames: frames in the clip.
        stride: distance between consecutive clip frames, in video frames ("pyslowfast": in frames at 30 fps).
        mode: "random" (uniform start), "center", or the index of one of ``num_clips`` evenly spaced views.
        num_clips: number of test views (only with an int ``mode``).
        rng: random source; None = the ``random`` module (seeded per DataLoader worker by PyTorch).
        convention: "frame_stride" (frames exactly ``stride`` apart), "videomae", "pyslowfast",
            "pyslowfast_frames", "pyslowfast_pyav" or "tokshift" (README).
        timing: the video file's timestamps, for "pyslowfast_pyav" (None: a frame folder, or a stream without
            them: "pyslowfast", as their decode-all fallback).
    """
    _check(num_frames_in_video, fps, num_frames, mode, num_clips)
    if convention == "pyslowfast_pyav":
        return _pyslowfast_pyav_clip(num_frames_in_video, fps, num_frames, stride, mode, num_clips, rng, timing)
    if convention == "tokshift":
        return _tokshift_clip(num_frames_in_video, fps, num_frames, stride, mode, num_clips, rng)
    if convention in ("pyslowfast", "pyslowfast_frames"):
        return _pyslowfast_clip(num_frames_in_video, fps, num_frames, stride, mode, num_clips, rng,
                                rate_scaled=convention == "pyslowfast")
    if convention == "videomae":
        return _videomae_clip(num_frames_in_video, fps, num_frames, stride, mode, num_clips, rng)
    if convention != "frame_stride":
        raise ValueError(f"dense convention must be one of {DENSE_CONVENTIONS}, got {convention!r}")
    span = (num_frames - 1) * stride + 1
    max_start = max(num_frames_in_video - span, 0)
    if mode == "random":
        start, clip_index = (rng or random).randint(0, max_start), 0
    elif mode == "center":
        start, clip_index = max_start // 2, 0
    else:  # view i of n starts at i * max_start / (n - 1); a single view is centred
        start = round(max_start * mode / (num_clips - 1)) if num_clips > 1 else max_start // 2
        clip_index = mode
    indices = [min(start + i * stride, num_frames_in_video - 1) for i in range(num_frames)]
    return _clip_info(indices, fps, clip_index, num_clips)


def _check_convention(field: str, convention: str, choices: tuple[str, ...], needs: str, sampling: str,
                      name: str) -> str:
    """``convention`` if it is one of ``choices`` and, unless it is the first (the default, which goes with either
    sampling), ``sampling`` is ``needs``."""
    if convention not in choices:
        raise ValueError(f"{name or 'dataset'}: {field} must be one of {choices}, got {convention!r}")
    if convention != choices[0] and sampling != needs:
        raise ValueError(f"{name or 'dataset'}: {field} {convention!r} needs {needs.rstrip('s')} sampling, "
                         f"not {sampling!r}")
    return convention


def check_dense_convention(convention: str, sampling: str, name: str = "") -> str:
    """``convention`` if it is one of ``DENSE_CONVENTIONS`` and means something for ``sampling`` ("frame_stride",
    the default, goes with either)."""
    return _check_convention("dense_convention", convention, DENSE_CONVENTIONS, "dense", sampling, name)


def _videomae_clip(num_frames_in_video: int, fps: float, num_frames: int, stride: int, mode: Mode,
                   num_clips: int, rng: random.Random | None) -> ClipInfo:
    """VideoMAE's ``dataset/kinetics.py`` ``loadvideo_decord`` and test ``__getitem__`` (CAST's is the same file):
    training frames by linspace over ``num_frames * stride`` frames ending at a random frame, test views of
    consecutive entries of every ``stride``-th frame (data/README.md#clip-sampling)."""
    import numpy as np

    span = num_frames * stride
    if mode == "random" or mode == "center" or num_clips == 1:
        if num_frames_in_video <= span:
            index = np.linspace(0, num_frames_in_video, num=num_frames_in_video // stride)
            index = np.concatenate((index, np.full(num_frames - num_frames_in_video // stride, num_frames_in_video)))
            indices = np.clip(index, 0, num_frames_in_video - 1).astype(np.int64).tolist()
        else:
            end = ((rng or random).randint(span, num_frames_in_video - 1) if mode == "random"
                   else (span + num_frames_in_video - 1) // 2)
            index = np.clip(np.linspace(end - span, end, num=num_frames), end - span, end - 1)
            indices = index.astype(np.int64).tolist()
        return _clip_info(indices, fps, mode if isinstance(mode, int) else 0, num_clips)
    entries = list(range(0, num_frames_in_video, stride))
    entries += entries[-1:] * (num_frames - len(entries))
    first = int(mode * max((len(entries) - num_frames) / (num_clips - 1), 0))
    return _clip_info(entries[first:first + num_frames], fps, mode, num_clips)


def _pyslowfast_clip(num_frames_in_video: int, fps: float, num_frames: int, stride: int, mode: Mode,
                     num_clips: int, rng: random.Random | None, rate_scaled: bool = True) -> ClipInfo:
    """PySlowFast's dense clip (``decoder.get_start_end_idx``, ``temporal_sampling``): ``stride * num_frames``
    frames at 30 fps, start uniform in [0, delta] at training and ``delta * i / n`` for view i of n, frames by linspace
    and clamped into the video; "center" starts at ``delta / 2``. ``rate_scaled`` False ("pyslowfast_frames"): the
    span is ``stride * num_frames`` of the video's own frames whatever its rate, as PySlowFast's decoders make it
    when they are given no rate (X-ViT's HDF5 Kinetics loader without its ``annotation/<split>_fps.txt``, which its
    repository does not ship: ``image_decoder.decode``)."""
    import torch

    clip_size = stride * num_frames / PYSLOWFAST_TARGET_FPS * fps if rate_scaled else float(stride * num_frames)
    delta = max(num_frames_in_video - clip_size, 0.0)
    if mode == "random":
        start, clip_index = (rng or random).uniform(0, delta), 0
    elif mode == "center":
        start, clip_index = delta / 2, 0
    else:
        start, clip_index = delta * mode / num_clips, mode
    index = torch.linspace(start, start + clip_size - 1, num_frames)
    indices = torch.clamp(index, 0, num_frames_in_video - 1).long().tolist()
    return _clip_info(indices, fps, clip_index, num_clips)


def _pyslowfast_pyav_clip(num_frames_in_video: int, fps: float, num_frames: int, stride: int, mode: Mode,
                          num_clips: int, rng: random.Random | None, timing: StreamTiming | None) -> ClipInfo:
    """PySlowFast's dense clip as its selective PyAV decoding makes it from a video file (``decoder.pyav_decode``,
    ``pyav_decode_stream``, ``decode``), which Motionformer's Kinetics loader runs: the "pyslowfast" start and end
    (over ``stream.frames``) become pts through ``duration / frames`` pts a frame, truncated; the frames decoded are
    those with pts in [start pts, end pts] and the first one after (the decode loop keeps it before it stops); the
    clip is then "pyslowfast"'s view 0 of 1 over the decoded frames, linspace from the first. A fractional start
    thus begins at the next frame, where decoding every frame would begin at the one before. Without timestamps
    (``timing`` None, no duration or no stored frame count) it is "pyslowfast": their decode-all fallback (a stream
    without a frame count fails their decoding instead; we decode it all)."""
    import torch

    if timing is None or not timing.duration or not timing.frames:
        return _pyslowfast_clip(num_frames_in_video, fps, num_frames, stride, mode, num_clips, rng)
    clip_size = stride * num_frames / PYSLOWFAST_TARGET_FPS * fps
    delta = max(timing.frames - clip_size, 0.0)
    if mode == "random":
        start, clip_index = (rng or random).uniform(0, delta), 0
    elif mode == "center":
        start, clip_index = delta / 2, 0
    else:
        start, clip_index = delta * mode / num_clips, mode
    pts_per_frame = timing.duration / timing.frames
    start_pts, end_pts = int(start * pts_per_frame), int((start + clip_size - 1) * pts_per_frame)
    frames = range(num_frames_in_video)
    first = min(bisect.bisect_left(frames, start_pts, key=timing.pts), num_frames_in_video - 1)
    last = min(bisect.bisect_right(frames, end_pts, key=timing.pts), num_frames_in_video - 1)
    index = torch.linspace(0, clip_size - 1, num_frames)
    indices = (torch.clamp(index, 0, max(last - first, 0)).long() + first).tolist()
    return _clip_info(indices, fps, clip_index, num_clips)


def _tokshift_clip(num_frames_in_video: int, fps: float, num_frames: int, stride: int, mode: Mode,
                   num_clips: int, rng: random.Random | None) -> ClipInfo:
    """TokShift-Transformer's dense clips (``data/dataset.py``: ``read_random_clip``, ``read_clip``), which MSCA's
    code runs: frames ``(start + k * stride) mod frames`` (a clip longer than the video wraps round to its start);
    at training ``start`` uniform in [0, last - 1], last = frames - num_frames * stride + 1 (0 when that is at most
    1: ``np.random.randint(0, last - 1)``); test view i of n starts at ``int(i * frames / n)``, clipped to ``last``,
    so that the views of a short video pile up at its end. "center" (per-epoch validation) is view 0 of 1, the
    video's start, as the official validation with ``VAL_SAMPLE_TIMES`` 1."""
    last = max(num_frames_in_video - num_frames * stride + 1, 1)
    if mode == "random":
        start, clip_index = (0 if last <= 2 else (rng or random).randint(0, last - 2)), 0
    else:
        index, views = (0, 1) if mode == "center" else (mode, num_clips)
        start, clip_index = (0 if last == 1 else min(int(index * num_frames_in_video / views), last)), index
    indices = [(start + k * stride) % num_frames_in_video for k in range(num_frames)]
    return _clip_info(indices, fps, clip_index, num_clips)


def check_view_offsets(view_offsets: Sequence[float] | None, num_clips: int, sampling: str = "segments",
                       name: str = "") -> tuple[float, ...] | None:
    """``view_offsets`` as a tuple, one relative offset in [0, 1) per test view, or None (the default offsets);
    offsets for any ``sampling`` but segments are refused."""
    if view_offsets is None:
        return None
    if sampling != "segments":
        raise ValueError(f"{name or 'dataset'}: segment_view_offsets needs segment sampling, not {sampling!r}")
    offsets = tuple(float(o) for o in view_offsets)
    if len(offsets) != num_clips or not all(0.0 <= o < 1.0 for o in offsets):
        raise ValueError(f"segment view offsets must be {num_clips} numbers in [0, 1), one per test view; "
                         f"got {list(view_offsets)}")
    return offsets


def check_segment_span(span: float, sampling: str = "segments", name: str = "") -> float:
    """``span`` if it is a fraction in (0, 1] and means something for ``sampling`` (1, the default, goes with
    either)."""
    if not 0.0 < span <= 1.0:
        raise ValueError(f"{name or 'dataset'}: segment_span must be in (0, 1], got {span!r}")
    if span != 1.0 and sampling != "segments":
        raise ValueError(f"{name or 'dataset'}: segment_span {span!r} needs segment sampling, not {sampling!r}")
    return float(span)


def check_segment_convention(convention: str, sampling: str = "segments", name: str = "") -> str:
    """``convention`` if it is one of ``SEGMENT_CONVENTIONS`` and means something for ``sampling`` ("uniform", the
    default, goes with either)."""
    return _check_convention("segment_convention", convention, SEGMENT_CONVENTIONS, "segments", sampling, name)


def uniform_segments(
    num_frames_in_video: int,
    fps: float,
    num_frames: int,
    mode: Mode = "random",
    num_clips: int = 1,
    rng: random.Random | None = None,
    view_offsets: Sequence[float] | None = None,
    span: float = 1.0,
    convention: SegmentConvention = "uniform",
) -> ClipInfo:
    """One frame from each of ``num_frames`` equal segments covering the whole video, or a window of it.

    Args:
        num_frames_in_video: frames in the video.
        fps: the video's frame rate (for the clip's time span).
        num_frames: frames in the clip (= segments).
        mode: "random" (a random frame per segment), "center" (each segment's middle), or the index i of one of
            ``num_clips`` views, taking in each segment the frame at relative offset ``view_offsets[i]``.
        num_clips: number of test views (only with an int ``mode``).
        rng: random source; None = the ``random`` module.
        view_offsets: one offset in [0, 1) per test view (0 = a segment's first frame, 0.5 its middle); None = evenly
            spaced, ``(i + 0.5) / num_clips``.
        span: the fraction of the video the segments cover, in (0, 1]; the window sits where the clip's frames sit in
            their segments (1 = the whole video).
        convention: "uniform" (``num_frames`` disjoint segments of L / ``num_frames`` frames) or "pyslowfast"
            (PySlowFast's ``Ssv2.get_seq_frames``, which Motionformer's and X-ViT's SSv2 loaders run: segment i spans
            [round(s i), round(s (i + 1))], s = (L - 1) / ``num_frames``, both ends in; training takes
            ``rng.randint`` over it, a test view the frame ``floor(offset * (end - start))`` past its start, so
            0.5 is their ``(start + end) // 2`` and 0 their start).
    """
    _check(num_frames_in_video, fps, num_frames, mode, num_clips)
    offsets = check_view_offsets(view_offsets, num_clips)
    check_segment_convention(convention)
    rng = rng or random
    # a deterministic view's relative place: in each segment, and of the window in the video
    offset = None if mode == "random" else 0.5 if mode == "center" else (
        offsets[mode] if offsets is not None else (mode + 0.5) / num_clips)
    if check_segment_span(span) < 1.0:
        window = max(1, round(span * num_frames_in_video))
        place = rng.random() if offset is None else offset
        clip = uniform_segments(window, fps, num_frames, mode, num_clips, rng, view_offsets, convention=convention)
        return shift_clip(clip, round(place * (num_frames_in_video - window)), fps)
    if convention == "pyslowfast":
        size = (num_frames_in_video - 1) / num_frames  # round() halves to even, as their np.round
        ends = [(round(size * i), round(size * (i + 1))) for i in range(num_frames)]
        indices = [rng.randint(lo, hi) if offset is None else lo + math.floor(offset * (hi - lo)) for lo, hi in ends]
        return _clip_info(indices, fps, mode if isinstance(mode, int) else 0, num_clips)
    segment = num_frames_in_video / num_frames  # may be < 1 for short videos: frames then repeat
    indices = []
    for i in range(num_frames):
        lo = math.floor(segment * i)
        hi = max(lo, math.ceil(segment * (i + 1)) - 1)  # last frame inside the segment
        index = rng.randint(lo, hi) if offset is None else math.floor(segment * (i + offset))
        indices.append(min(max(index, lo), hi, num_frames_in_video - 1))
    clip_index = mode if isinstance(mode, int) else 0
    return _clip_info(indices, fps, clip_index, num_clips)


def temporal_views(
    num_frames_in_video: int,
    fps: float,
    num_frames: int,
    stride: int,
    num_clips: int,
    sampling: Literal["dense", "segments"] = "dense",
    segment_view_offsets: Sequence[float] | None = None,
    dense_convention: DenseConvention = "frame_stride",
    segment_span: float = 1.0,
    segment_convention: SegmentConvention = "uniform",
    timing: StreamTiming | None = None,
) -> list[ClipInfo]:
    """The ``num_clips`` deterministic test views of one video (``stride`` is ignored by segments;
    ``segment_view_offsets``, ``segment_span`` and ``segment_convention`` are ``uniform_segments``' ``view_offsets``,
    ``span`` and ``convention``, for segments only; ``dense_convention`` and ``timing`` are ``dense_clip``'s
    ``convention`` and ``timing``)."""
    if sampling == "dense":
        check_view_offsets(segment_view_offsets, num_clips, sampling)
        check_segment_span(segment_span, sampling)
        check_segment_convention(segment_convention, sampling)
        return [dense_clip(num_frames_in_video, fps, num_frames, stride, i, num_clips, convention=dense_convention,
                           timing=timing)
                for i in range(num_clips)]
    if sampling == "segments":
        return [uniform_segments(num_frames_in_video, fps, num_frames, i, num_clips, view_offsets=segment_view_offsets,
                                 span=segment_span, convention=segment_convention)
                for i in range(num_clips)]
    raise ValueError(f"sampling must be 'dense' or 'segments', got {sampling!r}")


def sample_clip(
    num_frames_in_video: int,
    fps: float,
    num_frames: int,
    stride: int,
    sampling: Literal["dense", "segments"],
    mode: Mode = "random",
    rng: random.Random | None = None,
    dense_convention: DenseConvention = "frame_stride",
    segment_span: float = 1.0,
    segment_convention: SegmentConvention = "uniform",
    timing: StreamTiming | None = None,
) -> ClipInfo:
    """One clip by either sampling (``stride``, ``dense_convention`` and ``timing`` are ignored by segments;
    ``segment_span`` and ``segment_convention``, ``uniform_segments``' ``span`` and ``convention``, by dense clips)."""
    if sampling == "dense":
        check_segment_span(segment_span, sampling)
        check_segment_convention(segment_convention, sampling)
        return dense_clip(num_frames_in_video, fps, num_frames, stride, mode, rng=rng, convention=dense_convention,
                          timing=timing)
    if sampling == "segments":
        return uniform_segments(num_frames_in_video, fps, num_frames, mode, rng=rng, span=segment_span,
                                convention=segment_convention)
    raise ValueError(f"sampling must be 'dense' or 'segments', got {sampling!r}")


def frame_span(start_sec: float, end_sec: float, fps: float) -> tuple[int, int]:
    """[first, stop) indices of the frames whose start time lies in [start_sec, end_sec); at least one frame.
    The 1e-6 guards keep timestamps written from exact frame times on their frame."""
    first = max(0, math.floor(start_sec * fps + 1e-6))
    return first, max(first + 1, math.ceil(end_sec * fps - 1e-6))


def segment_range(start_sec: float, stop_sec: float, fps: float, num_frames_in_video: int) -> tuple[int, int]:
    """(first frame, frame count) of the segment [start_sec, stop_sec), clipped to the video's end.

    A frame belongs to the segment when its start time lies in it; a segment shorter than a frame still has one.

    Raises:
        ValueError: the segment starts after the video's last frame (annotations and video disagree).
    """
    first, stop = frame_span(start_sec, stop_sec, fps)
    if first >= num_frames_in_video:
        raise ValueError(f"segment [{start_sec:.3f}s, {stop_sec:.3f}s) starts after the video's "
                         f"{num_frames_in_video} frames ({num_frames_in_video / fps:.3f}s)")
    return first, min(num_frames_in_video, stop) - first


def shift_clip(clip: ClipInfo, first_frame: int, fps: float) -> ClipInfo:
    """The same clip ``first_frame`` frames later (a clip sampled inside a segment, placed in its video)."""
    return _clip_info([i + first_frame for i in clip.frame_indices], fps, clip.clip_index, clip.num_clips)


# How an annotated segment of an untrimmed video becomes frames: "timestamps" (``segment_range``: the frames whose
# start time lies in [start, stop) at the video's rate; any sampling), or "epic_slowfast", EPIC-KITCHENS' SlowFast
# loader, which Motionformer's code runs (``epic_slowfast_clip``; PySlowFast's dense clips only).
SegmentPlacement = Literal["timestamps", "epic_slowfast"]
SEGMENT_PLACEMENTS: tuple[str, ...] = ("timestamps", "epic_slowfast")


def check_segment_placement(placement: str, sampling: str, convention: str, name: str = "") -> str:
    """``placement`` if it is one of ``SEGMENT_PLACEMENTS`` and fits the sampling ("epic_slowfast": PySlowFast's
    dense clips)."""
    if placement not in SEGMENT_PLACEMENTS:
        raise ValueError(f"{name or 'dataset'}: segment_placement must be one of {SEGMENT_PLACEMENTS}, "
                         f"got {placement!r}")
    if placement == "epic_slowfast" and (sampling, convention) != ("dense", "pyslowfast"):
        raise ValueError(f"{name or 'dataset'}: segment_placement 'epic_slowfast' places PySlowFast's dense clips "
                         f"(dense_convention 'pyslowfast'), not {sampling} {convention!r}")
    return placement


def epic_frames_fps(video_name: str) -> int:
    """The rate of EPIC-KITCHENS' extracted ``rgb_frames`` from the video's name: 50 for the EPIC-100 extension's
    videos (a 3-digit number, ``P01_101``), 60 for EPIC-55's (``P01_01``). The dataset's authors re-encoded every
    video to one of the two before extracting its frames (EPIC_100_video_info.csv gives the recording's own rate:
    59.94, or 90, 48, 29.97 for a few), and their SlowFast loader hard-codes them (``epickitchens_record.py`` fps).
    A name whose number after the participant is not 2 or 3 digits is a ValueError (one line): its rate is unknown."""
    participant, _, number = video_name.partition("_")
    if not participant or "_" in number or not number.isascii() or not number.isdigit() or len(number) not in (2, 3):
        raise ValueError(f"video_id {video_name[:80]!r} is not an EPIC-KITCHENS video name (<participant>_<2 or 3 "
                         f"digits>: P01_01 of EPIC-55, its frames at 60 fps; P01_101 of EPIC-100, at 50 fps)")
    return 50 if len(number) == 3 else 60


def epic_slowfast_seconds(seconds: float) -> float:
    """A timestamp's seconds as their ``timestamp_to_sec`` computes them: the whole seconds, then the hundredths
    / 100 added (EPIC's timestamps have two decimals; a start on a half frame rounds by these bits)."""
    hundredths = round(seconds * 100)
    return float(hundredths // 100) + (hundredths % 100) / 100


def epic_slowfast_clip(
    start_sec: float,
    stop_sec: float,
    fps: float,
    num_frames_in_video: int,
    num_frames: int,
    stride: int,
    mode: Mode,
    num_clips: int = 1,
    rng: random.Random | None = None,
    video_fps: float | None = None,
) -> ClipInfo:
    """A PySlowFast dense clip inside the segment [start_sec, stop_sec) as EPIC-KITCHENS' SlowFast loader places
    it (Motionformer's ``epickitchens_record.py``, ``frame_loader.pack_frames_to_video_clip``): the segment is
    frames round(start * fps) to round(stop * fps) (Python's round, half to even), N of them; the clip of ``stride
    * num_frames`` frames at 30 fps starts uniformly in [0, N - clip] (view i of n: at i / n of it), its frames by
    linspace after a +1 shift for the 1-based frame files, clamped to N - 1: the segment's last frame is never read,
    and a clip that outruns the segment repeats the one before it. Frame indices are 0-based video frames, clamped
    into the video; ``video_fps`` (default ``fps``) times them.

    Raises:
        ValueError: the segment starts after the video's last frame.
    """
    import torch

    _check(max(num_frames_in_video, 1), fps, num_frames, mode, num_clips)
    start_frame = int(round(epic_slowfast_seconds(start_sec) * fps))
    count = int(round(epic_slowfast_seconds(stop_sec) * fps)) - start_frame
    if start_frame >= num_frames_in_video:
        raise ValueError(f"segment [{start_sec:.3f}s, {stop_sec:.3f}s) starts at frame {start_frame}, after the "
                         f"video's {num_frames_in_video} frames")
    clip_size = num_frames * stride * fps / PYSLOWFAST_TARGET_FPS
    delta = max(count - clip_size, 0)
    if mode == "random":
        start, clip_index = (rng or random).uniform(0, delta), 0
    elif mode == "center":
        start, clip_index = delta / 2, 0
    else:
        start, clip_index = delta * mode / num_clips, mode
    start, end = start + 1, start + clip_size - 1 + 1  # frame files are numbered from 1
    files = start_frame + torch.clamp(torch.linspace(start, end, num_frames), 0, count - 1).long()
    indices = [min(max(f - 1, 0), num_frames_in_video - 1) for f in files.tolist()]
    return _clip_info(indices, video_fps or fps, clip_index, num_clips)
