"""``python -m tools decoding`` under a fake clock that advances only while a (fake) decoder decodes: each rate is the
clips decoded over the decoding time, each decoder gets the clip's own span and frames, the test path decodes each video
once (ours) or once per view (pytorchvideo), and ``main`` reports each decoder under its own name."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

import tools.decoding as bench
from data.clip_sampling import ClipInfo

OURS_COST, PYTORCHVIDEO_COST = 1.0, 2.0  # fake seconds per get_clip call


class _Clock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.fixture
def fake_decoders(monkeypatch):
    """Fake ``Video`` / ``EncodedVideo`` (300 frames at 30 fps) whose ``get_clip`` advances the benchmark's clock and
    logs its arguments; returns the log, a list of (decoder, path, start, end, frame_indices)."""
    from pytorchvideo.data import encoded_video

    clock, calls = _Clock(), []

    class FakeVideo:
        num_frames, fps = 300, 30.0

        def __init__(self, path):
            self.path = path

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def get_clip(self, start, end, frame_indices=None):
            clock.now += OURS_COST
            calls.append(("ours", Path(self.path), start, end, None if frame_indices is None else list(frame_indices)))

    class FakeEncodedVideo:
        @classmethod
        def from_path(cls, path, decoder="pyav"):
            video = cls()
            video.path = path
            return video

        def get_clip(self, start, end):
            clock.now += PYTORCHVIDEO_COST
            calls.append(("pytorchvideo", Path(self.path), start, end, None))
            return {"video": torch.zeros(3, max(1, round((end - start) * 30)), 1, 1)}

        def close(self):
            pass

    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    monkeypatch.setattr(bench, "Video", FakeVideo)
    monkeypatch.setattr(encoded_video, "EncodedVideo", FakeEncodedVideo)
    return calls


CLIP_A = ClipInfo(6.5, 6.9, (195, 198, 201, 204), 0, 1)
CLIP_B = ClipInfo(1.0, 1.4, (30, 33, 36, 39), 0, 1)
FIRST_VIEW = ClipInfo(0.0, 1 / 3, (0, 3, 6, 9), 0, 2)
LAST_VIEW = ClipInfo(29 / 3, 10.0, (290, 293, 296, 299), 1, 2)


def test_training_path_rates_are_clips_over_decoding_time(fake_decoders):
    clips = [(Path("a.mp4"), CLIP_A), (Path("b.mp4"), CLIP_B), (Path("a.mp4"), CLIP_B)]
    assert bench.bench_ours(clips) == pytest.approx(3 / (3 * OURS_COST), rel=1e-12)
    assert bench.bench_pytorchvideo(clips) == pytest.approx(3 / (3 * PYTORCHVIDEO_COST), rel=1e-12)
    expected = [(path, clip.clip_start_sec, clip.clip_end_sec) for path, clip in clips]
    assert [c[1:] for c in fake_decoders[:3]] == [(*e, list(clip.frame_indices)) for e, (_, clip) in
                                                 zip(expected, clips)]
    assert [c[1:4] for c in fake_decoders[3:]] == expected


def test_test_path_decodes_each_video_once_for_ours_and_once_per_view_for_pytorchvideo(fake_decoders):
    views = [(Path("a.mp4"), [FIRST_VIEW, LAST_VIEW]), (Path("b.mp4"), [FIRST_VIEW, LAST_VIEW])]
    assert bench.bench_ours_test(views) == pytest.approx(4 / (2 * OURS_COST), rel=1e-12)  # 4 clips, 2 decodes
    assert bench.bench_pytorchvideo_test(views) == pytest.approx(4 / (4 * PYTORCHVIDEO_COST), rel=1e-12)
    both = [0, 3, 6, 9, 290, 293, 296, 299]
    assert fake_decoders[:2] == [("ours", Path(p), 0.0, 10.0, both) for p in ("a.mp4", "b.mp4")]
    spans = [(FIRST_VIEW.clip_start_sec, FIRST_VIEW.clip_end_sec), (LAST_VIEW.clip_start_sec, LAST_VIEW.clip_end_sec)]
    assert [c[1:4] for c in fake_decoders[2:]] == [(Path(p), *s) for p in ("a.mp4", "b.mp4") for s in spans]


def test_clip_list_is_seeded(fake_decoders):
    paths = [Path(f"{i}.mp4") for i in range(4)]
    first = bench._clips(paths, 6, 4, 3, seed=0)
    assert first == bench._clips(paths, 6, 4, 3, seed=0)
    for _, clip in first:
        start = clip.frame_indices[0]
        assert list(clip.frame_indices) == [start, start + 3, start + 6, start + 9] and start + 9 < 300


def test_main_reports_each_decoder_under_its_own_name(fake_decoders, monkeypatch, tmp_path):
    """3 videos, 7 clips of 4 frames at stride 3 (plus 5 warm-up clips per decoder), 2 test views per video."""
    for i in range(3):
        (tmp_path / f"{i}.mp4").write_bytes(b"")
    monkeypatch.setattr(bench, "ensure_synthetic", lambda *args, **kwargs: tmp_path)
    result = bench.main(["--clips", "7", "--num-frames", "4", "--stride", "3", "--test-clips", "2"])
    expected = {"ours_clips_per_s": 1 / OURS_COST, "pytorchvideo_clips_per_s": 1 / PYTORCHVIDEO_COST,
                "ours_test_clips_per_s": 2 / OURS_COST, "pytorchvideo_test_clips_per_s": 1 / PYTORCHVIDEO_COST}
    assert result == pytest.approx(expected, rel=1e-12)
    ours = [c for c in fake_decoders if c[0] == "ours"]
    assert len(ours) == 5 + 7 + 3  # warm-up, timed training clips, one decode per test video
    assert [c[4] for c in ours[12:]] == [[0, 3, 6, 9, 290, 293, 296, 299]] * 3
