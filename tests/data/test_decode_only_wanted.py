"""A clip holds its own frames: ``Video.get_clip`` with ``frame_indices`` keeps the frames asked for, never the span
between them, and the stream's header states the frame size before anything is decoded."""

from __future__ import annotations

import av
import numpy as np

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.video_io import Video, write_video
from tests.data.test_formats import frame_ids, index_frames


def test_far_apart_frames_keep_only_themselves_and_are_the_frames_asked_for(tmp_path):
    path = write_video(tmp_path / "index.mp4", index_frames(120), fps=10)
    wanted = [3, 60, 117]
    with Video(path) as video:
        kept = video._decode_range(3 / 10, 118 / 10, set(wanted))
        clip = video.get_clip(0.0, 0.0, frame_indices=wanted)
    assert sorted(kept) == wanted  # not the 115 frames of the span between them
    assert frame_ids(clip) == wanted


def test_the_header_states_the_frame_size(tmp_path):
    path = write_video(tmp_path / "wide.mp4", np.zeros((3, 48, 80, 3), np.uint8), fps=10)
    with Video(path) as video:
        assert (video.width, video.height) == (80, 48)
    with av.open(str(path)) as container:  # the same as PyAV reads it
        assert (container.streams.video[0].width, container.streams.video[0].height) == (80, 48)
