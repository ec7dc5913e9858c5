"""Clips per second: ``data.video_io.Video`` against pytorchvideo's PyAV ``EncodedVideo`` on the same files.

    python -m data.benchmark_decoding                     # synthetic 40x40 videos (the embedded default sets)
    python -m data.benchmark_decoding --size 224 --frames 96 --videos 8   # larger videos, written to a temp dir

Training path: each clip is ``num_frames`` frames at ``stride`` from a random start, taken the way the training
loader takes it; both decoders get the same (path, start, end) list. Test path: every video is opened once and
``--test-clips`` evenly spaced clips are taken from it (the multi-view test). pytorchvideo decodes each clip's
whole time span and we then pick the strided frames, as its samplers do.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import data  # noqa: F401  (repairs torchvision before pytorchvideo imports it)
import numpy as np

from data.clip_sampling import dense_clip, temporal_views
from data.synthetic import _background, ensure_synthetic  # noqa: PLC2701  (texture for realistic test videos)
from data.video_io import Video, write_video


def _write_test_videos(directory: Path, count: int, size: int, frames: int, fps: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        video = _background(rng, size, frames)  # textured, noisy: a realistic amount of bits per frame
        video = np.clip(video + np.linspace(0, 0.3, frames)[:, None, None, None], 0, 1)
        paths.append(write_video(directory / f"{i}.mp4", (video * 255).astype(np.uint8), fps))
    return paths


def _clips(paths: list[Path], num_clips: int, num_frames: int, stride: int, seed: int):
    rng = random.Random(seed)
    out = []
    for _ in range(num_clips):
        path = rng.choice(paths)
        with Video(path) as video:
            out.append((path, dense_clip(video.num_frames, video.fps, num_frames, stride, "random", rng=rng)))
    return out


def bench_ours(clips) -> float:
    start = time.perf_counter()
    for path, clip in clips:
        with Video(path) as video:
            video.get_clip(clip.clip_start_sec, clip.clip_end_sec, frame_indices=clip.frame_indices)
    return len(clips) / (time.perf_counter() - start)


def _test_views(paths: list[Path], num_frames: int, stride: int, num_clips: int):
    out = []
    for path in paths:
        with Video(path) as video:
            out.append((path, temporal_views(video.num_frames, video.fps, num_frames, stride, num_clips, "dense")))
    return out


def bench_ours_test(views) -> float:
    start = time.perf_counter()
    for path, clips in views:
        with Video(path) as video:
            for clip in clips:
                video.get_clip(clip.clip_start_sec, clip.clip_end_sec, frame_indices=clip.frame_indices)
    return sum(len(c) for _, c in views) / (time.perf_counter() - start)


def bench_pytorchvideo_test(views) -> float:
    from pytorchvideo.data.encoded_video import EncodedVideo

    start = time.perf_counter()
    for path, clips in views:
        video = EncodedVideo.from_path(str(path), decoder="pyav")
        for clip in clips:
            frames = video.get_clip(clip.clip_start_sec, clip.clip_end_sec)["video"]
            first = clip.frame_indices[0]
            frames[:, [min(i - first, frames.shape[1] - 1) for i in clip.frame_indices]]
        video.close()
    return sum(len(c) for _, c in views) / (time.perf_counter() - start)


def bench_pytorchvideo(clips) -> float:
    from pytorchvideo.data.encoded_video import EncodedVideo

    start = time.perf_counter()
    for path, clip in clips:
        video = EncodedVideo.from_path(str(path), decoder="pyav")
        frames = video.get_clip(clip.clip_start_sec, clip.clip_end_sec)["video"]  # (C, T, H, W) float
        first = clip.frame_indices[0]
        frames[:, [min(i - first, frames.shape[1] - 1) for i in clip.frame_indices]]
        video.close()
    return len(clips) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None,
                        help="write test videos of this size (default: use the synthetic set)")
    parser.add_argument("--frames", type=int, default=96, help="frames per written test video")
    parser.add_argument("--videos", type=int, default=8, help="number of written test videos")
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--test-clips", type=int, default=4, help="temporal views per video on the test path")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.size:
            paths = _write_test_videos(Path(tmp), args.videos, args.size, args.frames, fps=30)
        else:
            root = ensure_synthetic("synth_appearance", num_train=64, num_val=16)
            paths = sorted(root.rglob("*.mp4"))
        clips = _clips(paths, args.clips, args.num_frames, args.stride, seed=0)
        bench_ours(clips[:5]), bench_pytorchvideo(clips[:5])  # warm-up: codec and import initialisation
        result = {"ours_clips_per_s": bench_ours(clips), "pytorchvideo_clips_per_s": bench_pytorchvideo(clips)}
        views = _test_views(paths, args.num_frames, args.stride, args.test_clips)
        result |= {"ours_test_clips_per_s": bench_ours_test(views),
                   "pytorchvideo_test_clips_per_s": bench_pytorchvideo_test(views)}
    print(f"training path: {len(clips)} clips of {args.num_frames} frames at stride {args.stride} from "
          f"{len(paths)} videos: ours {result['ours_clips_per_s']:.1f} clips/s, pytorchvideo "
          f"{result['pytorchvideo_clips_per_s']:.1f} clips/s "
          f"({result['ours_clips_per_s'] / result['pytorchvideo_clips_per_s']:.1f}x)")
    print(f"test path: {args.test_clips} views of each of {len(paths)} videos: ours "
          f"{result['ours_test_clips_per_s']:.1f} clips/s, pytorchvideo {result['pytorchvideo_test_clips_per_s']:.1f} "
          f"clips/s ({result['ours_test_clips_per_s'] / result['pytorchvideo_test_clips_per_s']:.1f}x)")
    return result


if __name__ == "__main__":
    main()
