"""Decoding, frame folders, the decoded-video cache and the dataset's file checks, on tiny files written here.

Checked against literal frame indices (frames show their index as binary stripes), literal colours read back with
PyAV and PIL directly (not through ``data.video_io``), literal frame counts: single-frame requests at any position,
frames past the end, uniform subsampling rounded to the nearest frame, WebM frame counts at 30 fps, RGB (not BGR)
order through ``write_video``/``Video``/``write_frame_folder``/``FrameFolderVideo``, a frame folder's rate, end and
1-based numbering, ``DecodedVideo`` at the last frame and past the end, the cache's (path, size, mtime) key, test-
mode pose views against their own frames, PennAction pose/frame count mismatches both ways, and the stat-only
``check_files``.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.annotations import Sample
from data.datasets import VideoClipDataset, check_files, check_segments, collate_skip_none, pose_frame_mismatch
from data.pose import write_pennaction_labels
from data.video_io import (
    DecodedVideo,
    DecodedVideoCache,
    FrameFolderVideo,
    Video,
    VideoDecodeError,
    open_video,
    write_frame_folder,
    write_video,
)
from tests.data.test_formats import frame_ids, index_frames, pennaction_joints  # 7-bit stripes, 56 px wide

# Pure colours as (R, G, B); a channel-order swap turns red into blue.
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "orange": (255, 128, 0)}
COLOUR_TOLERANCE = 40  # yuv420p / JPEG round trips of flat colours stay well inside this


def colour_frames(height: int = 32, width: int = 32) -> np.ndarray:
    """(T, H, W, 3) uint8: one flat frame per entry of COLOURS, in that order."""
    return np.stack([np.full((height, width, 3), rgb, np.uint8) for rgb in COLOURS.values()])


def mean_rgb(frames_thwc: np.ndarray) -> np.ndarray:
    """(T, 3) float64 mean colour of each frame."""
    return frames_thwc.astype(np.float64).mean(axis=(1, 2))


# --- Video --------------------------------------------------------------------------------------------------------


def test_a_single_requested_frame_is_that_frame_wherever_it_lies(tmp_path):
    """``frame_indices`` alone (start = end = 0, as ``data check`` and callers asking for one frame pass) must widen
    the decoded range to include the last requested frame, not stop one short and take its neighbour."""
    path = write_video(tmp_path / "index.mp4", index_frames(40), fps=10)
    with Video(path) as video:
        for k in (0, 7, 19, 33, 39):
            assert frame_ids(video.get_clip(0, 0, frame_indices=[k])) == [k]
        assert frame_ids(video.get_clip(0, 0, frame_indices=[12, 30])) == [12, 30]


def test_a_frame_far_past_the_end_is_refused_not_replaced_by_the_last_one(tmp_path):
    """Only decoder rounding (2 frames) may stand in for a missing frame: frame 20 of a 12-frame video is an
    error, from the file and from its decoded copy alike."""
    path = write_video(tmp_path / "index.mp4", index_frames(12), fps=10)
    with Video(path) as video:
        with pytest.raises(VideoDecodeError, match="not decodable"):
            video.get_clip(0, 0, frame_indices=[3, 20])
        decoded = DecodedVideo(video)
    with pytest.raises(VideoDecodeError, match="not decodable"):
        decoded.get_clip(0, 0, frame_indices=[3, 20])


def test_uniform_subsampling_rounds_to_the_nearest_frame(tmp_path):
    """12 frames to 4: linspace(0, 11, 4) = 0, 3.67, 7.33, 11 -> frames 0, 4, 7, 11 (truncation would give 3)."""
    path = write_video(tmp_path / "index.mp4", index_frames(12), fps=10)
    with Video(path) as video:
        assert frame_ids(video.get_clip(0, 1.2, num_frames=4)) == [0, 4, 7, 11]
        assert frame_ids(video.get_clip(0.2, 1.2, num_frames=4)) == [2, 5, 8, 11]  # linspace(0, 9, 4) = 0, 3, 6, 9


@pytest.mark.parametrize("num_frames", [7, 10])
def test_webm_frame_count_and_frames_at_30_fps(tmp_path, num_frames):
    """WebM stores no frame count and a duration in whole milliseconds: 7 frames at 30 fps last 0.233 s, so
    duration x fps = 6.99 must round to 7; timestamps (33, 67, 100 ms ...) must map to frames 1, 2, 3 ..."""
    path = write_video(tmp_path / "index.webm", index_frames(num_frames), fps=30)
    with Video(path) as video:
        assert video.num_frames == num_frames
        assert frame_ids(video.get_clip(0, num_frames / 30)) == list(range(num_frames))


def test_write_video_and_video_keep_rgb_order(tmp_path):
    """Flat red/green/blue/orange frames: PyAV's own rgb24 conversion of the written file, and ``Video.get_clip``
    (C, T, H, W), both give the written colours."""
    expected = np.array(list(COLOURS.values()), np.float64)
    path = write_video(tmp_path / "colours.mp4", colour_frames(), fps=10)
    with av.open(str(path)) as container:  # independent of data.video_io's decoder
        decoded_by_pyav = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    np.testing.assert_allclose(mean_rgb(decoded_by_pyav), expected, atol=COLOUR_TOLERANCE)
    with Video(path) as video:
        clip = video.get_clip(0, len(COLOURS) / 10).permute(1, 2, 3, 0).numpy()  # (T, H, W, C)
    np.testing.assert_allclose(mean_rgb(clip), expected, atol=COLOUR_TOLERANCE)


def test_write_video_takes_frames_one_at_a_time_as_well_as_an_array(tmp_path):
    """An iterable of frames (a long 1080p video need not sit in memory) writes the bytes the array writes; a frame
    of another size or dtype is refused, naming it."""
    frames = colour_frames()
    array = write_video(tmp_path / "array.mp4", frames, fps=10).read_bytes()
    assert write_video(tmp_path / "iter.mp4", iter(list(frames)), fps=10).read_bytes() == array
    with pytest.raises(ValueError, match="of one size"):
        write_video(tmp_path / "bad.mp4", [frames[0], frames[1][:-2]], fps=10)
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "none.mp4", [], fps=10)


def test_write_frame_folder_and_frame_folder_video_keep_rgb_order(tmp_path):
    expected = np.array(list(COLOURS.values()), np.float64)
    folder = write_frame_folder(tmp_path / "colours", colour_frames())
    read_by_pil = np.stack([np.asarray(Image.open(folder / f"{n:06d}.jpg").convert("RGB"))
                            for n in range(1, len(COLOURS) + 1)])  # 1-based names, as PennAction
    np.testing.assert_allclose(mean_rgb(read_by_pil), expected, atol=COLOUR_TOLERANCE)
    clip = FrameFolderVideo(folder).get_clip(0, 1).permute(1, 2, 3, 0).numpy()
    np.testing.assert_allclose(mean_rgb(clip), expected, atol=COLOUR_TOLERANCE)


# --- frame folders and DecodedVideo -------------------------------------------------------------------------------


def test_frame_folder_rate_range_end_and_numbering(tmp_path):
    folder = write_frame_folder(tmp_path / "0001", index_frames(12))
    at_25 = open_video(folder, fps=25)  # a rate given to open_video reaches the folder
    assert at_25.fps == 25.0 and at_25.duration == pytest.approx(12 / 25)
    assert frame_ids(at_25.get_clip(0.2, 0.4)) == [5, 6, 7, 8, 9]  # [5/25 s, 10/25 s)
    at_30 = open_video(folder)
    assert at_30.fps == 30.0
    assert frame_ids(at_30.get_clip(0.3, 10.0)) == [9, 10, 11]  # a range past the end stops at the last frame
    zero_based = tmp_path / "zero_based"  # 000000.jpg, 000001.jpg, 000002.jpg: not PennAction's numbering
    zero_based.mkdir()
    for number, frame in enumerate(index_frames(3)):
        Image.fromarray(frame).save(zero_based / f"{number:06d}.jpg")
    with pytest.raises(VideoDecodeError, match="gaps"):
        open_video(zero_based)


def test_frame_folders_in_tokshifts_layout_read_in_order_and_refuse_mixed_names(tmp_path):
    """TokShift's Kinetics frames are ``img_00001.jpg``...: 1-based, frame i the file numbered i + 1; a folder that
    mixes them with EPIC's ``frame_<n>.jpg`` is refused by name."""
    folder = tmp_path / "tokshift"
    folder.mkdir()
    for number, frame in enumerate(index_frames(4), start=1):
        Image.fromarray(frame).save(folder / f"img_{number:05d}.jpg")
    video = open_video(folder)
    assert video.num_frames == 4 and frame_ids(video.get_clip(0.0, 1.0)) == [0, 1, 2, 3]
    Image.fromarray(index_frames(5)[4]).save(folder / "frame_0000000005.jpg")
    with pytest.raises(VideoDecodeError, match=r"mixes names of 2 kinds: frame_<n>.jpg, img_<n>.jpg"):
        FrameFolderVideo(folder)


def test_decoded_video_serves_the_last_frame_and_refuses_frames_past_a_folders_end(tmp_path):
    path = write_video(tmp_path / "index.mp4", index_frames(12), fps=10)
    with Video(path) as video:
        decoded = DecodedVideo(video)
    assert frame_ids(decoded.get_clip(0, 0, frame_indices=[11, 0, 10, 11])) == [11, 0, 10, 11]
    with FrameFolderVideo(write_frame_folder(tmp_path / "folder", index_frames(12))) as folder:
        decoded_folder = DecodedVideo(folder)
    assert frame_ids(decoded_folder.get_clip(0, 0, frame_indices=[11, 3])) == [11, 3]
    with pytest.raises(VideoDecodeError):  # JPEG frames have no decoder rounding: no frame 12 to stand in for
        decoded_folder.get_clip(0, 0, frame_indices=[12])


# --- DecodedVideoCache --------------------------------------------------------------------------------------------


def test_cache_key_takes_modification_time_and_size_separately(tmp_path):
    path = write_video(tmp_path / "a.mp4", index_frames(10), fps=10)
    cache = DecodedVideoCache(max_bytes=10 ** 9)
    first = cache.open(path)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))  # same bytes and size, a later mtime
    second = cache.open(path)
    assert second is not first
    mtime_ns = os.stat(path).st_mtime_ns
    write_video(path, index_frames(14), fps=10)  # another size ...
    os.utime(path, ns=(mtime_ns, mtime_ns))  # ... within the same mtime (coarse filesystem clocks)
    assert os.stat(path).st_size != stat.st_size
    third = cache.open(path)
    assert third is not second and third.num_frames == 14


def test_cache_keeps_a_frame_folder_apart_per_rate_it_is_read_at(tmp_path):
    folder = write_frame_folder(tmp_path / "P01_01", index_frames(6))  # a folder records no rate
    cache = DecodedVideoCache(max_bytes=10 ** 9)
    slow, fast = cache.open(folder, 30.0), cache.open(folder, 60.0)
    assert (slow.fps, fast.fps) == (30.0, 60.0) and cache.open(folder, 30.0) is slow and folder in cache


# --- dataset checks -----------------------------------------------------------------------------------------------


def test_pennaction_pose_frame_count_mismatch_is_reported_both_ways():
    """One PennAction pose row per frame: longer as well as shorter files are wrong; NTU files are clamped."""
    folder = Path("frames/0001")
    assert pose_frame_mismatch(Path("labels/0001.mat"), 8, folder, 8) is None
    assert "7 pose frames for the 8 frames" in pose_frame_mismatch(Path("labels/0001.mat"), 7, folder, 8)
    assert "9 pose frames for the 8 frames" in pose_frame_mismatch(Path("labels/0001.mat"), 9, folder, 8)
    assert pose_frame_mismatch(Path("S001C001P001R001A001.skeleton"), 9, Path("v.avi"), 8) is None


def test_test_mode_pose_views_follow_their_own_frames(tmp_path):
    """Two segment views of a 12-frame PennAction folder (offsets 1/4, 3/4 of 4-frame segments: frames 1, 5, 9 and
    3, 7, 11); each view's joints are its own frames' rows (x = 100 t + joint, as ``pennaction_joints`` writes)."""
    folder = write_frame_folder(tmp_path / "frames" / "0001", index_frames(12))
    x, y = pennaction_joints(12, seed=0)
    pose = write_pennaction_labels(tmp_path / "labels" / "0001.mat", "bowl", x, y, (24, 56), True)
    dataset = VideoClipDataset([Sample(folder, 0, "0001", 1, pose=pose)], "test", None, "segments", num_frames=3,
                               num_clips=2, with_pose=True)
    item = dataset[0]  # video (2, C, T, H, W) float in [0, 1]; pose (2, T, 13, 2)
    view_frames = [frame_ids((view * 255).round().to(torch.uint8)) for view in item["video"]]
    assert view_frames == [[1, 5, 9], [3, 7, 11]]
    for view, frames in enumerate(view_frames):
        assert item["pose"][view][:, 0, 0].tolist() == [100.0 * t for t in frames]


def test_stat_only_check_flags_an_empty_frame_folder_and_unchecked_videos_are_not_opened(tmp_path):
    empty = tmp_path / "frames" / "0001"
    empty.mkdir(parents=True)
    full = write_frame_folder(tmp_path / "frames" / "0002", index_frames(3))
    samples = [Sample(empty, 0, "0001", 1), Sample(full, 1, "0002", 2)]
    assert check_files(samples, decode=False) == {str(empty): "no frames (empty frame folder)", str(full): None}
    missing = Sample(tmp_path / "gone.mp4", 0, "gone", 3, segment=(0.0, 1.0))
    assert check_segments([missing], {}) == []  # not in the status: never checked, so not opened


def test_an_all_unreadable_batch_collates_to_none():
    assert collate_skip_none([None, None]) is None
