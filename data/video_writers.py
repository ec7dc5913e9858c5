"""Writing videos and frame folders: the synthetic sets' and the tests' files, in the published layouts.

Same input, same bytes: the encoders run single-threaded with bit-exact muxing (``write_video``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path

import av
import numpy as np

from data.atomic_write import replacing, save_image

# Encoders to try per container, best first. libx264 is missing from some FFmpeg builds; mpeg4 never is.
_DEFAULT_CODECS = {
    ".mp4": ("libx264", "mpeg4"), ".mkv": ("libx264", "mpeg4"), ".webm": ("libvpx-vp9",), ".avi": ("mpeg4",)}
# Quality-oriented settings for tiny synthetic frames. Reproducible bytes need one encoder thread and, for x264,
# no assembly: its SIMD row copies read past the end of rows whose width is not a multiple of 16 (40 px), and
# those uninitialised bytes change the output from run to run. At 40x40 that about doubles encoding time
# (~14 ms per 32-frame video).
_CODEC_OPTIONS = {
    "libx264": {"crf": "18", "preset": "veryfast", "threads": "1", "x264-params": "asm=0"},
    "mpeg4": {"qscale": "3"},
    "libvpx-vp9": {"crf": "20", "b": "0", "deadline": "realtime", "cpu-used": "8", "threads": "1"},
}


def write_frame_folder(path: str | Path, frames: np.ndarray, quality: int = 90) -> Path:
    """Write uint8 RGB frames (T, H, W, 3) as ``<path>/000001.jpg``, ... (the PennAction layout)."""

    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for number, array in enumerate(frames, start=1):
        save_image(path / f"{number:06d}.jpg", array, sync=False, quality=quality)
    return path


def available_encoder(candidates: Sequence[str]) -> str:
    """The first encoder in ``candidates`` that this PyAV build has."""
    for name in candidates:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # av raises UnknownCodecError (a ValueError) or FFmpegError by version
            continue
        return name
    raise RuntimeError(f"none of the encoders {list(candidates)} is available in PyAV {av.__version__}")


def write_video(path: str | Path, frames: np.ndarray | Iterable[np.ndarray], fps: int, codec: str | None = None,
                codec_options: dict[str, str] | None = None) -> Path:
    """Encode uint8 RGB frames (T, H, W, 3) to ``path``; same input, same bytes.

    Args:
        path: output file; its suffix picks the container (.mp4, .webm, ...).
        frames: uint8 array (T, H, W, 3), or an iterable of (H, W, 3) frames of one size (encoded as they come,
            so a long high-resolution video need not be held in memory); H and W must be even (yuv420p).
        fps: frame rate.
        codec: encoder name; None = libx264 if available else mpeg4 for .mp4, libvpx-vp9 for .webm.
        codec_options: FFmpeg encoder options; None = the quality-oriented reproducible ones of ``_CODEC_OPTIONS``.
    """
    path = Path(path)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("no frames to write")
    codec = codec or available_encoder(_DEFAULT_CODECS.get(path.suffix.lower(), ("libx264", "mpeg4")))
    # +bitexact drops the random segment UID (WebM) and encoder version tags, so output is reproducible.
    with replacing(path, sync=False) as tmp, av.open(str(tmp), "w", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = _checked_frame(first, first.shape).shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = dict(_CODEC_OPTIONS.get(codec, {}) if codec_options is None else codec_options)
        # One encoder thread: with PyAV's automatic thread count the bytes would depend on scheduling.
        stream.codec_context.thread_count = 1
        stream.codec_context.thread_type = "NONE"
        for array in itertools.chain([first], frames):
            frame = av.VideoFrame.from_ndarray(_checked_frame(array, first.shape), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())  # flush delayed frames
    return path


def _checked_frame(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3 or array.shape != shape:
        raise ValueError(f"frames must be uint8 (T, H, W, 3) of one size, got a frame {array.dtype} {array.shape}")
    return array
