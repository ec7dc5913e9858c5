"""Which frames make a clip: pure time arithmetic, no decoding.

``dense_clip`` (Kinetics: ``num_frames`` frames at a fixed stride, in the "frame_stride", "videomae", "pyslowfast" or
"tokshift" convention) and ``uniform_segments`` (SSv2, EPIC-KITCHENS: one frame from each of ``num_frames``
segments) return a ``ClipInfo``; ``segment_range`` and ``shift_clip`` place a clip inside an annotated segment of an
untrimmed video. The conventions, formula by formula: data/README.md#clip-sampling.
"""

from __future__ import annotations

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


DenseConvention = Literal["frame_stride", "videomae", "pyslowfast", "tokshift"]
DENSE_CONVENTIONS: tuple[str, ...] = ("frame_stride", "videomae", "pyslowfast", "tokshift")
PYSLOWFAST_TARGET_FPS = 30.0  # PySlowFast's DATA.TARGET_FPS, which Motionformer's and X-ViT's configs keep


def dense_clip(
    num_frames_in_video: int,
    fps: float,
    num_frames: int,
    stride: int,
    mode: Mode = "random",
    num_clips: int = 1,
    rng: random.Random | None = None,
    convention: DenseConvention = "frame_stride",
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
        convention: "frame_stride" (frames exactly ``stride`` apart), "videomae", "pyslowfast" or "tokshift"
            (README).
    """
    _check(num_frames_in_video, fps, num_frames, mode, num_clips)
    if convention == "tokshift":
        return _tokshift_clip(num_frames_in_video, fps, num_frames, stride, mode, num_clips, rng)
    if convention == "pyslowfast":
        return _pyslowfast_clip(num_frames_in_video, fps, num_frames, stride, mode, num_clips, rng)
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


def check_dense_convention(convention: str, sampling: str, name: str = "") -> str:
    """``convention`` if it is one of ``DENSE_CONVENTIONS`` and means something for ``sampling`` ("frame_stride",
    the default, goes with either)."""
    if convention not in DENSE_CONVENTIONS:
        raise ValueError(f"{name or 'dataset'}: dense_convention must be one of {DENSE_CONVENTIONS}, "
                         f"got {convention!r}")
    if convention != "frame_stride" and sampling != "dense":
        raise ValueError(f"{name or 'dataset'}: dense_convention {convention!r} needs dense sampling, "
                         f"not {sampling!r}")
    return convention


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
                     num_clips: int, rng: random.Random | None) -> ClipInfo:
    """PySlowFast's dense clip (``decoder.get_start_end_idx``, ``temporal_sampling``): ``stride * num_frames``
    frames at 30 fps, start uniform in [0, delta] at training and ``delta * i / n`` for view i of n, frames by linspace
    and clamped into the video; "center" starts at ``delta / 2``."""
    import torch

    clip_size = stride * num_frames / PYSLOWFAST_TARGET_FPS * fps
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


def uniform_segments(
    num_frames_in_video: int,
    fps: float,
    num_frames: int,
    mode: Mode = "random",
    num_clips: int = 1,
    rng: random.Random | None = None,
    view_offsets: Sequence[float] | None = None,
    span: float = 1.0,
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
    """
    _check(num_frames_in_video, fps, num_frames, mode, num_clips)
    offsets = check_view_offsets(view_offsets, num_clips)
    rng = rng or random
    # a deterministic view's relative place: in each segment, and of the window in the video
    offset = None if mode == "random" else 0.5 if mode == "center" else (
        offsets[mode] if offsets is not None else (mode + 0.5) / num_clips)
    if check_segment_span(span) < 1.0:
        window = max(1, round(span * num_frames_in_video))
        place = rng.random() if offset is None else offset
        clip = uniform_segments(window, fps, num_frames, mode, num_clips, rng, view_offsets)
        return shift_clip(clip, round(place * (num_frames_in_video - window)), fps)
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
) -> list[ClipInfo]:
    """The ``num_clips`` deterministic test views of one video (``stride`` is ignored by segments;
    ``segment_view_offsets`` and ``segment_span`` are ``uniform_segments``' ``view_offsets`` and ``span``, for
    segments only; ``dense_convention`` is ``dense_clip``'s ``convention``)."""
    if sampling == "dense":
        check_view_offsets(segment_view_offsets, num_clips, sampling)
        check_segment_span(segment_span, sampling)
        return [dense_clip(num_frames_in_video, fps, num_frames, stride, i, num_clips, convention=dense_convention)
                for i in range(num_clips)]
    if sampling == "segments":
        return [uniform_segments(num_frames_in_video, fps, num_frames, i, num_clips, view_offsets=segment_view_offsets,
                                 span=segment_span)
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
) -> ClipInfo:
    """One clip by either sampling (``stride`` and ``dense_convention`` are ignored by segments, ``segment_span``,
    ``uniform_segments``' ``span``, by dense clips)."""
    if sampling == "dense":
        check_segment_span(segment_span, sampling)
        return dense_clip(num_frames_in_video, fps, num_frames, stride, mode, rng=rng, convention=dense_convention)
    if sampling == "segments":
        return uniform_segments(num_frames_in_video, fps, num_frames, mode, rng=rng, span=segment_span)
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
