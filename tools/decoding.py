"""Clips per second: ``data.video_io.Video`` against pytorchvideo's PyAV ``EncodedVideo`` on the same files.

    python -m tools decoding              # synthetic 40x40 videos (the embedded default sets)
    python -m tools decoding --size 224   # 10-s 224x224 videos encoded like Kinetics', in a temp dir
    python -m tools decoding --size 224 --num-frames 16 --stride 4   # Motionformer's K-400 sampling
    python -m tools decoding --size 224 --frames 96 --content static  # P-frames only: the worst case

Training path: each clip is ``num_frames`` frames at ``stride`` from a random start, taken the way the training
loader takes it; both decoders get the same (path, start, end) list. Test path: every video is opened once and
``--test-clips`` evenly spaced clips are taken from it (the multi-view test): ours in one decoding pass over all
views, as ``data.datasets.VideoClipDataset`` does; pytorchvideo with one ``get_clip`` per view, as its clip samplers
do. pytorchvideo decodes each clip's whole time span and we then pick the strided frames.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import numpy as np

from data.clip_sampling import dense_clip, temporal_views
from data.command_line import OneLineParser, count
from data.synthetic import ensure_synthetic, upsample_bilinear
from data.synthetic.render import background  # the synthetic sets' texture, for the test videos
from data.video_io import Video, write_video

# libx264's defaults (preset medium, CRF 23, up to 3 B-frames, a keyframe every 250 frames) are what Kinetics'
# download script (ffmpeg -c:v libx264, no options) writes: one or two keyframes per 10-second clip.
KINETICS_LIKE_X264 = {"preset": "medium", "crf": "23", "threads": "1"}


def _panning_scene(rng: np.random.Generator, size: int, frames: int, noise: float = 0.05) -> np.ndarray:
    """(T, size, size, 3) uint8: a camera panning 1.5 px/frame over a multi-scale texture, with sensor noise.

    Moving content with detail at every scale, as in real footage: x264 then uses B-frames (half of them not
    referenced), and the bitrate is about 1 Mbit/s at 224x224, 30 fps."""
    width = 3 * size
    image = np.zeros((size, width, 3), np.float32)
    for cells, amplitude in ((4, 0.5), (16, 0.25), (64, 0.15), (112, 0.1)):  # coarse to fine detail
        coarse = rng.uniform(0, 1, size=(cells, 3 * cells, 3)).astype(np.float32)
        image += amplitude * upsample_bilinear(coarse, size, width)
    offsets = np.round(np.arange(frames) * 1.5).astype(int) % (width - size)
    video = np.stack([image[:, x:x + size] for x in offsets])
    video += rng.standard_normal(video.shape, dtype=np.float32) * np.float32(noise)
    return (np.clip(video, 0, 1) * 255).astype(np.uint8)


def _static_noisy_scene(rng: np.random.Generator, size: int, frames: int) -> np.ndarray:
    """(T, size, size, 3) uint8: a still texture under fresh per-frame noise, brightening over time. x264 codes it
    with P-frames only, so every frame before a clip is a reference and must be decoded: the worst case."""
    video = background(rng, size, frames)
    video = np.clip(video + np.linspace(0, 0.3, frames)[:, None, None, None], 0, 1)
    return (video * 255).astype(np.uint8)


def _write_test_videos(directory: Path, count: int, size: int, frames: int, fps: int, content: str) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        if content == "pan":
            video, options = _panning_scene(rng, size, frames), KINETICS_LIKE_X264
        else:  # the repository's own encoder settings (x264 veryfast, CRF 18)
            video, options = _static_noisy_scene(rng, size, frames), None
        paths.append(write_video(directory / f"{i}.mp4", video, fps, codec_options=options))
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
        with Video(path) as video:  # as the test loader does: every view's frames from one decoding pass
            video.get_clip(min(c.clip_start_sec for c in clips), max(c.clip_end_sec for c in clips),
                           frame_indices=[i for c in clips for i in c.frame_indices])
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
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=count(16, 4096, "a frame size"), default=None,
                        help="write test videos of this size (default: use the synthetic set)")
    parser.add_argument("--frames", type=count(1, 10_000, "a frame count"), default=300,
                        help="frames per written test video (300: 10 s)")
    parser.add_argument("--content", choices=("pan", "static"), default="pan",
                        help="written test videos: a panning scene encoded as Kinetics' download script does "
                             "(B-frames; default) or a still noisy texture coded with P-frames only (worst case)")
    parser.add_argument("--videos", type=count(1, 1000, "a video count"), default=8,
                        help="number of written test videos")
    parser.add_argument("--clips", type=count(1, 100_000, "a clip count"), default=100)
    parser.add_argument("--num-frames", type=count(1, 320, "a frame count"), default=8)
    parser.add_argument("--stride", type=count(1, 320, "a stride"),
                        default=2)
    parser.add_argument("--test-clips", type=count(1, 100, "a view count"), default=4,
                        help="temporal views per video on the test path")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.size:
            paths = _write_test_videos(Path(tmp), args.videos, args.size, args.frames, fps=30, content=args.content)
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
