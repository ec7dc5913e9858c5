"""Video decoding with PyAV (torchvision 0.28 has no video decoder), and folders of frames; the writers are in
``data.video_writers`` (imported from here too).

``Video`` knows only time and frames: it opens a file, reads its metadata and decodes the frames of one clip.
``FrameFolderVideo`` is the same interface over a folder of numbered JPEGs (PennAction, EPIC-KITCHENS'
``rgb_frames``); ``open_video`` picks one by path. Which clip to take is the sampler's business
(``data.clip_sampling``); what to do with the frames is the transforms' (``data.transforms``).
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from data.clip_sampling import StreamTiming, frame_span
from data.root_files import OUTSIDE_ROOT, DataRoot, file_kind, shown
from data.video_writers import available_encoder, write_frame_folder, write_video  # noqa: F401  (read from here)

# Frame threading pays off from about this frame size; below it, starting and joining the decoder's threads
# for every opened file costs more than it saves (40x40 synthetic clips decode ~1.5x faster without threads;
# see tools/decoding.py).
THREADED_DECODING_MIN_PIXELS = 96 * 96


_reformatters: dict[int, VideoReformatter] = {}  # by process id: a reformatter must not cross a fork


def _to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB. A shared reformatter keeps FFmpeg's scaling context between frames; building one per
    frame, as ``frame.to_ndarray(format="rgb24")`` does, cost 25x more on 40x40 frames (1.3 vs 0.05 ms), for
    identical pixels. It is per process: one inherited through fork() by a DataLoader worker deadlocks there."""
    pid = os.getpid()
    if pid not in _reformatters:  # the parent's entry is left alone: freeing FFmpeg state after fork() is unsafe
        _reformatters[pid] = VideoReformatter()
    return _reformatters[pid].reformat(frame, format="rgb24").to_ndarray()


class VideoDecodeError(RuntimeError):
    """A video file that cannot be read: missing, empty, truncated or not a decodable video."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # picklable, so it can cross DataLoader worker boundaries
        return (type(self), (self.path, self.reason))


class Video:
    """A video file opened for clip decoding.

    Frame ``i`` is the ``i``-th frame in presentation order; its time is ``i / fps``. Frames are located by
    their presentation timestamps, so B-frames and containers that do not store a frame count (WebM) work.

    Args:
        path: the video file.

    Raises:
        VideoDecodeError: the file is missing, empty, or has no decodable video stream.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            info = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            raise VideoDecodeError(self.path, "missing file") from None
        except (OSError, ValueError) as err:  # a name too long, a NUL byte
            raise VideoDecodeError(self.path, f"cannot stat: {getattr(err, 'strerror', None) or err}") from None
        if not stat.S_ISREG(info.st_mode):  # FFmpeg would wait forever on a FIFO
            raise VideoDecodeError(self.path, f"not a regular file (a {file_kind(info.st_mode)})")
        if info.st_size == 0:
            raise VideoDecodeError(self.path, "zero-byte file")
        self._container: av.container.InputContainer | None = None
        self._at_start = True  # demuxer untouched since opening: decoding from frame 0 needs no seek
        try:
            self._read_metadata(self._open())
        except VideoDecodeError:
            self.close()  # never leave decoder threads behind an error (see close())
            raise

    def _read_metadata(self, stream: av.video.stream.VideoStream) -> None:
        self.fps = float(stream.average_rate or stream.guessed_rate or 0)
        # the frame size the stream's header states: what each decoded frame will take, known before any is
        self.width, self.height = int(stream.width or 0), int(stream.height or 0)
        if self.fps <= 0:
            raise VideoDecodeError(self.path, "no frame rate in the video stream")
        self._time_base = float(stream.time_base)
        self._start_pts = stream.start_time or 0
        if stream.duration:
            self.duration = float(stream.duration * stream.time_base)
        elif self._container.duration:
            self.duration = self._container.duration / av.time_base
        else:
            raise VideoDecodeError(self.path, "no duration in the container")
        # WebM stores no frame count; the duration is exact to the container's time base (1 ms).
        self.num_frames = int(stream.frames) or max(1, round(self.duration * self.fps))
        # the stream's own counts, as PySlowFast's selective decoding reads them ("pyslowfast_pyav" clips)
        self.timing = StreamTiming(int(stream.frames), stream.duration, self._start_pts,
                                   1 / (self.fps * self._time_base))

    def _open(self) -> av.video.stream.VideoStream:
        if self._container is None:
            try:
                self._container = av.open(str(self.path))
            except (av.error.FFmpegError, UnicodeDecodeError) as err:
                raise VideoDecodeError(self.path, f"cannot open: {err}") from err
            if not self._container.streams.video:
                self.close()
                raise VideoDecodeError(self.path, "no video stream")
            stream = self._container.streams.video[0]
            if stream.width * stream.height >= THREADED_DECODING_MIN_PIXELS:
                stream.thread_type = "AUTO"  # frame + slice threads inside FFmpeg
            else:  # PyAV's default would still start slice threads
                stream.thread_type, stream.thread_count = "NONE", 1
            self._at_start = True
        return self._container.streams.video[0]

    def close(self) -> None:
        """Release the decoder now. Do not leave it to the garbage collector: a decoder whose threads started in
        one process deadlocks when a fork()ed child (a DataLoader worker) frees it."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Video({str(self.path)!r}, fps={self.fps:g}, num_frames={self.num_frames})"

    def frame_index(self, pts: int) -> int:
        return round((pts - self._start_pts) * self._time_base * self.fps)

    def get_clip(
        self,
        start_sec: float,
        end_sec: float,
        num_frames: int | None = None,
        frame_indices: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Decode the frames shown in ``[start_sec, end_sec)``.

        Args:
            start_sec: clip start in seconds.
            end_sec: clip end in seconds (exclusive).
            num_frames: if given, subsample the decoded frames uniformly to this many.
            frame_indices: if given, return exactly these frames (in this order, repeats allowed); they must lie in
                ``[start_sec, end_sec)``. Takes precedence over ``num_frames``.

        Returns:
            uint8 tensor (C, T, H, W).
        """
        if frame_indices is not None:
            first, last = min(frame_indices), max(frame_indices)
            start_sec, end_sec = min(start_sec, first / self.fps), max(end_sec, (last + 1) / self.fps)
        try:
            decoded = self._decode_range(start_sec, end_sec, None if frame_indices is None else set(frame_indices))
        except VideoDecodeError:
            self.close()
            raise
        if frame_indices is not None:
            picks = self._pick(decoded, frame_indices)
        else:
            picks = sorted(decoded)
            if num_frames is not None:
                picks = [picks[i] for i in np.linspace(0, len(picks) - 1, num_frames).round().astype(int)]
        # Convert to RGB only the frames the clip uses (a strided clip skips half of the decoded ones).
        rgb = {i: _to_rgb(decoded[i]) for i in set(picks)}
        clip = torch.from_numpy(np.stack([rgb[i] for i in picks]))  # (T, H, W, C)
        return clip.permute(3, 0, 1, 2).contiguous()  # (C, T, H, W)

    def _decode_range(self, start_sec: float, end_sec: float,
                      wanted: set[int] | None = None) -> dict[int, av.VideoFrame]:
        """Frames with index in [start, end) as {index: frame}: seek to the keyframe before, decode forward.

        With ``wanted`` (indices in that range), frames outside it may be left out when no other frame needs them."""
        first, stop = frame_span(start_sec, end_sec, self.fps)
        if wanted is None:
            wanted = set(range(first, stop))
        wanted = {i for i in wanted if first <= i < min(stop, self.num_frames)}
        decoded = self._decode_from(first, stop, seek=first > 0, wanted=wanted)
        if decoded and wanted <= decoded.keys():
            return decoded
        # A wanted frame is missing: the seek landed after the start (sparse or broken indexes), timestamps are
        # irregular (``_pick`` then takes the nearest frame) or the file is damaged. Decode every frame from the
        # beginning instead.
        decoded = self._decode_from(first, stop, seek=False, wanted=None)
        if not decoded:
            raise VideoDecodeError(self.path, f"no frames decoded in [{start_sec:.3f}s, {end_sec:.3f}s)")
        # Decoding ended well before the frames the container promises: the file was cut short.
        expected_last = min(stop, self.num_frames) - 1
        if max(decoded) < expected_last - 2:
            raise VideoDecodeError(
                self.path, f"truncated: decoding stopped at frame {max(decoded)}, expected up to {expected_last}")
        return decoded

    def _decode_from(self, first: int, stop: int, seek: bool, wanted: set[int] | None) -> dict[int, av.VideoFrame]:
        """Decode from the keyframe before ``first`` (or the start) up to ``stop``.

        With ``wanted``, each packet is sent to the decoder with ``skip_frame="NONREF"`` unless its frame is wanted:
        a frame that no other frame references (a non-reference B-frame) is then not decoded at all. Such a frame
        cannot change any other frame, so every decoded frame is bit-identical to a full decode. In long-GOP files
        (Kinetics: often one keyframe per clip) the pre-roll from the keyframe is most of the work, and a strided
        clip needs only every other frame of its span. The caller checks that every wanted frame came out.
        """
        stream = self._open()
        container = self._container
        context = stream.codec_context
        decoded: dict[int, av.VideoFrame] = {}
        try:
            if seek or not self._at_start:
                # backward=True, any_frame=False: land on the last keyframe at or before the target time.
                target = self._start_pts + (int(first / self.fps / self._time_base) if seek else 0)
                container.seek(target, stream=stream, backward=True, any_frame=False)
            self._at_start = False
            for packet in container.demux(stream):
                if wanted is not None:  # decided per packet (frame threads take the setting with the packet)
                    skip = packet.pts is not None and self.frame_index(packet.pts) not in wanted
                    context.skip_frame = "NONREF" if skip else "DEFAULT"
                # An empty packet at the end of the stream flushes the decoder's delayed frames.
                for frame in context.decode(packet):
                    if frame.pts is None:
                        continue
                    index = self.frame_index(frame.pts)
                    if index >= stop:  # frames come out in presentation order: the range is complete
                        return decoded
                    # A frame outside ``wanted`` is decoded only as a reference and not kept, so a clip holds
                    # its own frames, not the span between them; past the count the container states, every
                    # frame is kept (``_pick``'s nearest neighbours of a count that is short).
                    if index >= first and (wanted is None or index in wanted or index >= self.num_frames):
                        decoded[index] = frame
        except av.error.FFmpegError as err:
            raise VideoDecodeError(self.path, f"decoding failed: {err}") from err
        finally:
            context.skip_frame = "DEFAULT"
        return decoded

    def _pick(self, decoded: dict[int, av.VideoFrame], frame_indices: Sequence[int]) -> list[int]:
        """Decoded indices for the requested frames; a missing index takes its nearest decoded neighbour (rounding
        of odd timestamps)."""
        available = np.array(sorted(decoded))
        out = []
        for i in frame_indices:
            if i in decoded:
                out.append(i)
                continue
            nearest = int(available[np.abs(available - i).argmin()])
            if abs(nearest - i) > 2:
                raise VideoDecodeError(self.path, f"frame {i} not decodable (nearest decoded: {nearest})")
            out.append(nearest)
        return out


FRAME_FOLDER_FPS = 30.0  # PennAction ships frames without a rate; its YouTube sources are 30 fps
# the frame names' prefixes before their 1-based number: EPIC-KITCHENS' rgb_frames, TokShift's Kinetics frames
# (``img_00001.jpg``), none (PennAction's ``000001.jpg``)
FRAME_PREFIXES = ("frame_", "img_")


class FrameFolderVideo:
    """A folder of numbered JPEG frames with ``Video``'s interface: ``<n>.jpg`` numbered from 1 (PennAction's
    ``000001.jpg``), ``frame_<n>.jpg`` (EPIC-KITCHENS' ``rgb_frames``, ``frame_0000000001.jpg``) or ``img_<n>.jpg``
    (TokShift's Kinetics frames, ``img_00001.jpg``).

    Frame ``i`` (0-based) is the file numbered ``i + 1``; its time is ``i / fps``. The numbering must be complete
    (1..n): a gap is reported as a corrupt video when the folder is opened, not when a clip happens to need it.

    A frame that is a FIFO, a device or a folder, or a link that leads outside ``root`` (without a root: outside
    the folder), refuses the whole folder when it is opened, unread.

    Args:
        path: the frame folder.
        fps: the frame rate to assume (a folder records none).
        root: the data root the folder was read from, which its frames may not leave.

    Raises:
        VideoDecodeError: the folder is missing ("missing file", as for a video file), empty, has gaps, mixes
            the two namings, or holds a frame that is no regular file or leads outside the root.
    """

    def __init__(self, path: str | Path, fps: float = FRAME_FOLDER_FPS, root: str | Path | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise VideoDecodeError(self.path, "missing file")
        if not self.path.is_dir():
            raise VideoDecodeError(self.path, "not a frame folder")
        if not 0 < fps < float("inf"):
            raise ValueError(f"fps must be positive and finite, got {fps}")
        self.fps = float(fps)
        # names only: a path is made for the frames a clip reads (90,000 Path objects cost 0.45 s an open here)
        listing = _list_frames(str(self.path), os.stat(self.path).st_mtime_ns)
        if listing.irregular:
            name, kind = listing.irregular[0]
            raise VideoDecodeError(self.path, f"frame {name} is not a regular file (a {kind})")
        if listing.links:  # a clip reads frames by name: every link is judged now, not when a clip needs it
            bound = DataRoot(root if root is not None else self.path)
            for name, real in listing.links:
                if not bound.contains_real(real):
                    where = f"the data root {shown(root)}" if root is not None else "the frame folder"
                    raise VideoDecodeError(self.path, f"{OUTSIDE_ROOT} {where}: frame {name} resolves to "
                                                      f"{shown(real)}")
        self.names = listing.names
        self.num_frames = len(self.names)
        self.duration = self.num_frames / self.fps

    def close(self) -> None:
        """Nothing is held open between clips (interface parity with ``Video``)."""

    def __enter__(self) -> FrameFolderVideo:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FrameFolderVideo({str(self.path)!r}, fps={self.fps:g}, num_frames={self.num_frames})"

    def get_clip(
        self,
        start_sec: float,
        end_sec: float,
        num_frames: int | None = None,
        frame_indices: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """The frames shown in ``[start_sec, end_sec)`` as uint8 (C, T, H, W); arguments as ``Video.get_clip``."""
        if frame_indices is not None:
            picks = list(frame_indices)
            bad = [i for i in picks if not 0 <= i < self.num_frames]
            if bad:
                raise VideoDecodeError(self.path, f"frames {bad[:5]} outside 0..{self.num_frames - 1}")
        else:
            first, stop = frame_span(start_sec, end_sec, self.fps)
            stop = min(self.num_frames, stop)
            if first >= self.num_frames:
                raise VideoDecodeError(self.path, f"no frames in [{start_sec:.3f}s, {end_sec:.3f}s)")
            picks = list(range(first, stop))
            if num_frames is not None:
                picks = [picks[i] for i in np.linspace(0, len(picks) - 1, num_frames).round().astype(int)]
        decoded = {i: self._read(i) for i in set(picks)}
        shapes = {a.shape for a in decoded.values()}
        if len(shapes) > 1:
            raise VideoDecodeError(self.path, f"frames differ in size: {sorted(shapes)}")
        clip = torch.from_numpy(np.stack([decoded[i] for i in picks]))  # (T, H, W, C)
        return clip.permute(3, 0, 1, 2).contiguous()  # (C, T, H, W)

    def _read(self, index: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        file = self.path / self.names[index]
        try:
            if file.stat().st_size == 0:
                raise VideoDecodeError(self.path, f"zero-byte frame {file.name}")
            with Image.open(file) as image:
                return np.asarray(image.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError) as err:  # truncated or not an image
            raise VideoDecodeError(self.path, f"cannot decode frame {file.name}: {err}") from err


class FrameListing(NamedTuple):
    """A frame folder as listed once per version of it (``_list_frames``)."""

    names: Sequence[str]  # the frames' file names in frame order
    links: tuple[tuple[str, str], ...]  # (name, where it resolves) of each frame that is a link
    irregular: tuple[tuple[str, str], ...]  # (name, what it is) of each frame that is no regular file


class _PaddedNames(Sequence):
    """Frame names ``<prefix><n, zero-padded to width><suffix>`` for n = 1..count, made when read: a process keeps
    the names of every folder it opened, and EPIC-KITCHENS' hundreds of folders of tens of thousands of frames
    would hold millions of strings in each loader process."""

    def __init__(self, prefix: str, width: int, suffix: str, count: int) -> None:
        self.prefix, self.width, self.suffix, self.count = prefix, width, suffix, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return f"{self.prefix}{index + 1:0{self.width}d}{self.suffix}"


@functools.lru_cache(maxsize=4096)
def _list_frames(path: str, mtime_ns: int) -> FrameListing:
    """A frame folder's file names in frame order, checked for gaps, with its frames that are links (resolved) or
    no regular files; listed once per process and folder version (an EPIC-KITCHENS video's folder holds tens of
    thousands of frames: listing 90,000 took 0.07 s here, which every clip of the video would pay again). The kind
    of each entry comes with the listing, at no cost per frame; a link, or a frame made a link since, changes the
    folder's version. Names of one zero-padded width (PennAction's, EPIC's) are kept as their pattern
    (``_PaddedNames``)."""
    numbered: dict[int, str] = {}
    styles = set()
    links, irregular = [], []
    with os.scandir(path) as entries:
        for entry in entries:
            stem, dot, suffix = entry.name.rpartition(".")
            if not dot or suffix.lower() not in ("jpg", "jpeg"):
                continue
            style = next((prefix for prefix in FRAME_PREFIXES if stem.startswith(prefix)), "")
            digits = stem[len(style):]
            if not (digits.isascii() and digits.isdigit()):
                continue
            numbered[int(digits)] = entry.name
            styles.add(style)
            if entry.is_symlink():
                links.append((entry.name, os.path.realpath(entry.path)))
                kind = _target_kind(entry.path)
            else:
                kind = "regular file" if entry.is_file(follow_symlinks=False) else file_kind(
                    entry.stat(follow_symlinks=False).st_mode)
            if kind != "regular file":
                irregular.append((entry.name, kind))
    if not numbered:
        raise VideoDecodeError(path, "no frames (empty frame folder)")
    if len(styles) > 1:
        raise VideoDecodeError(path, f"frame folder mixes names of {len(styles)} kinds: "
                                     f"{', '.join(sorted(f'{s}<n>.jpg' for s in styles))}")
    gaps = sorted(set(range(1, max(numbered) + 1)) - set(numbered))
    if gaps or min(numbered) != 1:
        raise VideoDecodeError(path, f"frame numbering has gaps: missing {gaps[:5]} of 1..{max(numbered)}")
    names = [numbered[i] for i in range(1, len(numbered) + 1)]
    (prefix,) = styles
    stem, suffix = names[0].rsplit(".", 1)
    pattern = _PaddedNames(prefix, len(stem) - len(prefix), f".{suffix}", len(names))
    kept = pattern if all(a == b for a, b in zip(names, pattern, strict=True)) else tuple(names)
    return FrameListing(kept, tuple(sorted(links)), tuple(sorted(irregular)))


def _target_kind(path: str) -> str:
    """What a link leads to, in words ("regular file", "FIFO", ...), or "link to nothing"."""
    try:
        return file_kind(os.stat(path).st_mode)
    except OSError:
        return "link to nothing"


def open_video(path: str | Path, fps: float | None = None, root: str | Path | None = None
               ) -> Video | FrameFolderVideo:
    """A ``FrameFolderVideo`` for a directory (or a missing path without a suffix, as PennAction's frame folders
    are named), else a ``Video``.

    Args:
        path: a video file or a frame folder.
        fps: frame rate of a frame folder; None = ``FRAME_FOLDER_FPS``. Ignored for video files (they record it).
        root: the data root a frame folder's frames may not leave (``FrameFolderVideo``). A video file's own path
            is checked where it is read from the annotations (``data.root_files``), not per clip.
    """
    path = Path(path)
    if path.is_dir() or (not path.exists() and not path.suffix):
        return FrameFolderVideo(path, fps or FRAME_FOLDER_FPS, root)
    return Video(path)


class DecodedVideo:
    """Every frame of a short video, decoded once and kept in memory as uint8; ``get_clip`` with ``frame_indices``
    returns exactly what ``Video.get_clip`` returns for them (the same frames, picked the same way).

    For small generated sets (a few hundred kB per video), decoding is most of a data loader's work at tiny scale;
    keeping the decoded frames lets every epoch take new random clips and crops without decoding again.
    """

    def __init__(self, video: Video | FrameFolderVideo) -> None:
        self.path, self.fps, self.num_frames = video.path, video.fps, video.num_frames
        self.timing = getattr(video, "timing", None)  # a video file's, for "pyslowfast_pyav" clips
        self._tolerance = 2 if isinstance(video, Video) else 0  # frames a decoder's rounding may shift
        self._frames = video.get_clip(0.0, video.num_frames / video.fps,
                                      frame_indices=range(video.num_frames))  # (C, T, H, W)
        self.nbytes = self._frames.numel() * self._frames.element_size()

    @classmethod
    def from_frames(cls, path: str | Path, fps: float, frames: torch.Tensor, timing: StreamTiming | None,
                    tolerance: int) -> DecodedVideo:
        """A video decoded before: its uint8 (C, T, H, W) ``frames``, rate, timestamps and ``tolerance`` as the
        decoded video had them (``data.decoded_store`` keeps them on disk)."""
        video = cls.__new__(cls)
        video.path, video.fps, video.num_frames, video.timing = Path(path), fps, frames.shape[1], timing
        video._tolerance, video._frames = tolerance, frames
        video.nbytes = frames.numel() * frames.element_size()
        return video

    @property
    def frames(self) -> torch.Tensor:
        """Every frame, uint8 (C, T, H, W)."""
        return self._frames

    @property
    def tolerance(self) -> int:
        """How far outside its frames a clip may ask (a decoder's rounding), and get the nearest one."""
        return self._tolerance

    def __enter__(self) -> DecodedVideo:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def get_clip(self, start_sec: float, end_sec: float, num_frames: int | None = None,
                 frame_indices: Sequence[int] | None = None) -> torch.Tensor:
        if frame_indices is None:
            raise ValueError(f"{self.path}: a decoded video serves clips by frame_indices only")
        wanted = torch.as_tensor(list(frame_indices), dtype=torch.long)
        index = wanted.clamp(0, self.num_frames - 1)  # the nearest frame, as ``Video._pick`` takes it
        if len(wanted) and (index - wanted).abs().max() > self._tolerance:
            raise VideoDecodeError(self.path, f"frames {wanted.tolist()} not decodable (the video has "
                                              f"{self.num_frames})")
        return self._frames.index_select(1, index)


class DecodedVideoCache:
    """This process's decoded generated videos, shared by every dataset and run it builds, within a byte budget.

    A tiny table trains many runs on the same generated set in one process (``run``, or each ``--jobs`` worker);
    decoding it again for every run and split was a fifth of a tiny run's time. Entries are keyed by path, size and
    modification time, so a regenerated file is decoded anew, as is a frame folder written anew (generated sets are
    written elsewhere and renamed into place); a frame folder is keyed by the rate it is read at too, since it
    records none; JPEGs rewritten inside an existing folder leave the folder's own size and time as they were, and
    are not seen (a stat of every frame per item would cost more than the cache saves). Past the budget, videos are
    decoded on each use (nothing is evicted: an order-dependent cache would make timing, not results, depend on
    history).
    Workers that a DataLoader forks inherit what the process holds.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.bytes = max_bytes, 0
        self._videos: dict[tuple[str, int, int, float | None], DecodedVideo] = {}

    def open(self, path: str | Path, fps: float | None = None, root: str | Path | None = None
             ) -> Video | FrameFolderVideo | DecodedVideo:
        """The decoded video, decoding it on first use; an opened (undecoded) one once the budget is spent.
        ``fps``, ``root``: a frame folder's rate and data root, as ``open_video`` takes them."""
        key = (*self._key(path), fps, None if root is None else str(root))
        if key in self._videos:
            return self._videos[key]
        if self.bytes >= self.max_bytes:
            return open_video(path, fps, root)
        with open_video(path, fps, root) as video:
            decoded = DecodedVideo(video)
        self._videos[key] = decoded
        self.bytes += decoded.nbytes
        return decoded

    def holds(self, path: str | Path, fps: float | None = None, root: str | Path | None = None) -> bool:
        """Whether ``open`` would answer from what this process holds (arguments as ``open``'s)."""
        try:
            return (*self._key(path), fps, None if root is None else str(root)) in self._videos
        except VideoDecodeError:
            return False

    def adopt(self, path: str | Path, fps: float | None, root: str | Path | None, video: DecodedVideo) -> None:
        """Hold ``video``, decoded elsewhere, as ``open(path, fps, root)``'s answer. Its frames are mapped from a
        file (``data.decoded_store``): the system's page cache holds them, shared by every process, so they do not
        count against this process's byte budget."""
        self._videos.setdefault((*self._key(path), fps, None if root is None else str(root)), video)

    def __contains__(self, path: str | Path) -> bool:
        """Whether ``path`` is held decoded, at any rate."""
        found = self._key(path)
        return any(key[:3] == found for key in self._videos)

    def clear(self) -> None:
        self._videos.clear()
        self.bytes = 0

    @staticmethod
    def _key(path: str | Path) -> tuple[str, int, int]:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise VideoDecodeError(path, "missing file") from None
        # abspath, not resolve(): no system call per path component (resolve cost 50-60 us an item, ~2% of a tiny
        # step); a file reached through two links is only decoded twice
        return os.path.abspath(path), stat.st_size, stat.st_mtime_ns


# 2 GiB: the tiny stand-ins take 185 MB a set (1200 videos of 32 40x40 frames)
DECODED_VIDEOS = DecodedVideoCache(max_bytes=2 * 2**30)
