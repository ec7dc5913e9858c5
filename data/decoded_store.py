"""The decoded frames of a generated set, written once beside the set and memory-mapped by every process that reads
it: a table's runs, and the worker processes that train them side by side, no longer decode what another process on
the machine has decoded already.

A store is the folder ``<cache>/<set>.decoded-<key>`` beside the set's folder ``<cache>/<set>``. ``key`` hashes the
set's folder name (itself the hash of the set's parameters and generator version), the split's videos with the
rate and root each is read with, and what decodes them (this format's version, PyAV's, its FFmpeg's and Pillow's).
It holds ``frames.npy``, every video's uint8 frames as ``DecodedVideo`` keeps them ((C, T, H, W), end to end, one
flat array), and ``index.json``: where each video's frames lie, their shape, the video's rate and timestamps, its
file's size and modification time, the frames' byte count and their SHA-256.

The first process that needs a store takes its lock (``.<store>.lock`` beside it, ``fcntl.flock``, which the kernel
frees when the holder dies, however it dies), decodes, writes into a temporary sibling folder and renames that into
place; a process that finds the lock taken waits, then reads what the holder wrote. A reader checks everything
before it uses a byte: both files are regular files opened inside the store folder (no link is followed: a link in
place of the store, or of its lock, is refused in one line), the array's header and size agree with the index, the
index's offsets with the videos' shapes, the frames' hash with the recorded one, and each video file's size and time
with those it had when it was decoded. A store that fails a check is moved aside and written again, with a warning
that says why. One that passes serves the frames decoding gives, byte for byte, so every clip is the same.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import numpy as np
import PIL
import torch

from data.atomic_write import WriteRefusedError, atomic_write_text, open_lock, open_replacing
from data.clip_sampling import StreamTiming
from data.samples import Sample
from data.video_io import DECODED_VIDEOS, DecodedVideo, DecodedVideoCache, VideoDecodeError, open_video

log = logging.getLogger(__name__)

STORE_FORMAT = 1  # bump when the files' layout or what is decoded changes: stores are keyed by it
FRAMES, INDEX = "frames.npy", "index.json"
_HEADER_LIMIT = 10_000  # bytes of an .npy header that ``read_array_header_1_0`` reads; ours take 128

# (path, rate, root) as ``DecodedVideoCache.open`` takes them, the path and root relative to the set's folder
VideoKey = tuple[str, float | None, str | None]


class DecodedStoreError(ValueError):
    """A store's path, or its lock's, holds something no command wrote there (a link, a special file), or a store
    just written does not read back: the one-line message names it."""


class _Damaged(Exception):
    """A store that fails a check: written again (the reason is the warning's)."""


def keep_decoded_set(set_root: Path, samples: Sequence[Sample], cache: DecodedVideoCache = DECODED_VIDEOS) -> None:
    """Put the decoded frames of ``samples`` (one split of the generated set in ``set_root``) into ``cache``, from
    the store beside the set, writing the store first if no process on the machine has yet. Nothing is read when
    ``cache`` already holds them all (a process's later runs); a video that cannot be decoded is left out, for the
    dataset to record when it asks for it."""
    videos = split_videos(set_root, samples)
    if all(cache.holds(path, fps, root) for path, fps, root in videos.values()):
        return
    for key, video in open_store(set_root, {key: path for key, (path, _, _) in videos.items()}).items():
        cache.adopt(*videos[key], video)


def split_videos(set_root: Path, samples: Sequence[Sample]) -> dict[VideoKey, tuple[Path, float | None, Path | None]]:
    """The split's videos, each once, in the order of its samples: their key (path, rate, root, the path and root
    relative to ``set_root``) -> (path, rate, root) as the samples give them. A ValueError names a sample's file or
    root that lies outside the set."""
    out = {}
    for sample in samples:
        root = None if sample.root is None else _relative(set_root, sample.root)
        out.setdefault((_relative(set_root, sample.path), sample.fps, root), (sample.path, sample.fps, sample.root))
    return out


def store_path(set_root: Path, videos: Iterable[VideoKey]) -> Path:
    """Where the store of ``videos`` (``split_videos``' keys) lies: beside the set, named by its key."""
    digest = _digest(_options(set_root, videos))
    return set_root.parent / f"{set_root.name}.decoded-{digest[:16]}"


def open_store(set_root: Path, videos: Mapping[VideoKey, Path]) -> dict[VideoKey, DecodedVideo]:
    """The decoded videos of the store of ``videos`` (key -> the path to name each by), their frames mapped from
    its file; written first (under its lock) if it is absent or fails a check. Videos that could not be decoded are
    absent from the answer."""
    options = _options(set_root, videos)
    store = store_path(set_root, videos)
    try:
        found = _read(store, set_root, options)
    except _Damaged:
        found = None  # looked at again under the lock: another process may be writing it anew
    if found is None:
        with _locked(store):
            try:
                found = _read(store, set_root, options)
            except _Damaged as damage:
                log.warning("%s: %s; decoding the set's videos again", store, damage)
                _move_aside_and_remove(store)
            if found is None:
                _remove_leftovers(store)
                _write(store, set_root, options)
                try:
                    found = _read(store, set_root, options)
                except _Damaged as damage:
                    raise DecodedStoreError(f"{store}: just written, it does not read back ({damage})") from None
    index, frames = found
    out = {}
    for key, entry in zip(videos, index["videos"], strict=True):
        if "unreadable" in entry:
            continue
        shape = entry["shape"]
        tensor = torch.from_numpy(frames[entry["offset"]:entry["offset"] + math.prod(shape)]).view(*shape)
        timing = StreamTiming(*entry["timing"]) if entry["timing"] is not None else None
        out[key] = DecodedVideo.from_frames(videos[key], entry["fps"], tensor, timing, entry["tolerance"])
    return out


# --- keys ------------------------------------------------------------------------------------------------------------


def _relative(set_root: Path, path: Path) -> str:
    relative = os.path.relpath(path, set_root)
    if relative == ".." or relative.startswith(".." + os.sep) or os.path.isabs(relative):
        raise ValueError(f"{path} lies outside the generated set {set_root}: its decoded frames are not kept")
    return relative


def _root(set_root: Path, root: str | None) -> Path | None:
    return None if root is None else set_root / root


def _options(set_root: Path, videos: Iterable[VideoKey]) -> dict[str, Any]:
    """What a store's frames depend on: the set, its videos and how they are read, and the decoders."""
    return {"format": STORE_FORMAT, "av": av.__version__, "ffmpeg": av.ffmpeg_version_info,
            "pillow": PIL.__version__, "set": set_root.name, "videos": [list(v) for v in videos]}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _stamp(path: Path) -> list[int] | None:
    """A video file's (or frame folder's) size and modification time; None if it is missing."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [info.st_size, info.st_mtime_ns]


# --- reading ---------------------------------------------------------------------------------------------------------


def _read(store: Path, set_root: Path, options: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray] | None:
    """(index, frames) of a store that passes every check; None if there is none; ``_Damaged`` if one fails."""
    try:
        folder = os.open(store, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:  # none yet, or moved aside by a process writing it anew
        return None
    except OSError as err:
        if err.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        kind = "a symlink" if os.path.islink(store) else "not a folder"
        raise DecodedStoreError(f"{store}: the store of a generated set's decoded frames is {kind}, not what this "
                                f"command writes; remove it (it is written again from the set)") from None
    try:
        index = _read_index(folder, options)
        frames = _map_frames(folder, index)
    finally:
        os.close(folder)
    for (rel, _, _), entry in zip(options["videos"], index["videos"], strict=True):
        if _stamp(set_root / rel) != entry["stamp"]:
            raise _Damaged(f"the set's {rel} has changed since it was decoded")
    return index, frames


def _open_member(folder: int, name: str) -> int:
    """A descriptor of the regular file ``name`` in the store (never through a link); ``_Damaged`` otherwise."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=folder)
    except FileNotFoundError:
        raise _Damaged(f"{name} is missing") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise _Damaged(f"{name} is a symlink") from None
        raise _Damaged(f"{name} cannot be opened ({err.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _Damaged(f"{name} is not a regular file")
    return fd


def _read_index(folder: int, options: dict[str, Any]) -> dict[str, Any]:
    with os.fdopen(_open_member(folder, INDEX), "rb") as handle:
        try:
            index = json.loads(handle.read())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _Damaged(f"{INDEX} is not the JSON this command writes") from None
    if not isinstance(index, dict) or index.get("check") != _digest({k: v for k, v in index.items() if k != "check"}):
        raise _Damaged(f"{INDEX} does not hash to the SHA-256 it records")
    if index.get("options") != options:
        raise _Damaged(f"{INDEX} was written for other videos or decoders")
    try:
        _check_layout(index)
    except (KeyError, TypeError, ValueError) as err:
        raise _Damaged(f"{INDEX} does not describe the frames it should ({err})") from None
    return index


def _check_layout(index: dict[str, Any]) -> None:
    """Every readable video's frames follow the previous one's, (3, T, H, W) with T its frame count, and together
    they fill the recorded byte count."""
    offset = 0
    videos = index["videos"]
    if len(videos) != len(index["options"]["videos"]):
        raise ValueError(f"{len(videos)} entries for {len(index['options']['videos'])} videos")
    for entry in videos:
        if entry["stamp"] is not None and [type(v) for v in entry["stamp"]] != [int, int]:
            raise ValueError(f"stamp {entry['stamp']!r}")
        if "unreadable" in entry:
            continue
        if type(entry["fps"]) not in (int, float) or type(entry["tolerance"]) is not int or not (
                entry["timing"] is None or len(entry["timing"]) == len(StreamTiming._fields)):
            raise ValueError(f"fps {entry['fps']!r}, tolerance {entry['tolerance']!r}, timing {entry['timing']!r}")
        shape = entry["shape"]
        if (len(shape) != 4 or shape[0] != 3 or shape[1] != entry["num_frames"]
                or not all(type(n) is int and n > 0 for n in shape)):
            raise ValueError(f"shape {shape!r}")
        if entry["offset"] != offset:
            raise ValueError(f"offset {entry['offset']!r} where {offset} was due")
        offset += math.prod(shape)
    if offset != index["bytes"]:
        raise ValueError(f"{offset} bytes of frames, {index['bytes']!r} recorded")


def _map_frames(folder: int, index: dict[str, Any]) -> np.ndarray:
    """The frames, mapped copy-on-write (tensors on them are writable, as ``torch.from_numpy`` wants, and nothing
    they do reaches the file), after their header, size and hash are checked."""
    with os.fdopen(_open_member(folder, FRAMES), "rb") as handle:
        try:
            if np.lib.format.read_magic(handle) != (1, 0):
                raise ValueError("not a version 1.0 header")
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle, max_header_size=_HEADER_LIMIT)
        except (ValueError, OSError) as err:
            raise _Damaged(f"{FRAMES} has no array header of ours ({err})") from None
        total = index["bytes"]
        if dtype != np.uint8 or fortran or shape != (total,):
            raise _Damaged(f"{FRAMES} holds {dtype} {shape}, not the {total} bytes of frames its index records")
        start = handle.tell()
        size = os.fstat(handle.fileno()).st_size
        if size != start + total:
            raise _Damaged(f"{FRAMES} is {size} bytes long, not {start + total} (cut short, or written over)")
        if total == 0:
            return np.zeros(0, dtype=np.uint8)
        frames = np.memmap(handle, dtype=np.uint8, mode="c", offset=start, shape=(total,))
    if hashlib.sha256(memoryview(frames)).hexdigest() != index["sha256"]:
        raise _Damaged(f"{FRAMES} does not hash to the SHA-256 its index records")
    return frames


# --- writing ---------------------------------------------------------------------------------------------------------


@contextmanager
def _locked(store: Path) -> Iterator[None]:
    """The store's lock, held for the block; waits (saying so) while another process holds it."""
    lock = store.parent / f".{store.name}.lock"
    try:
        fd = open_lock(lock)
    except WriteRefusedError:
        kind = "a symlink" if lock.is_symlink() else "not a regular file"
        raise DecodedStoreError(f"{lock}: the lock of a decoded-frames store is {kind}, not a file this command "
                                f"wrote; remove it") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: another process is writing it; waiting for it", store)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # which lets the lock go


def _write(store: Path, set_root: Path, options: dict[str, Any]) -> None:
    """Decode every video and write the store into a temporary sibling folder, renamed into place when complete."""
    entries, decoded = [], []
    offset = 0
    for rel, fps, root in options["videos"]:
        entry = {"stamp": _stamp(set_root / rel)}  # before decoding: a change while it decodes is seen later
        try:
            with open_video(set_root / rel, fps, _root(set_root, root)) as video:
                frames = DecodedVideo(video)
        except VideoDecodeError as err:
            entries.append({**entry, "unreadable": err.reason})
            continue
        shape = list(frames.frames.shape)
        entries.append({**entry, "offset": offset, "shape": shape, "num_frames": frames.num_frames,
                        "fps": frames.fps, "timing": None if frames.timing is None else list(frames.timing),
                        "tolerance": frames.tolerance})
        decoded.append(frames.frames.numpy())
        offset += math.prod(shape)
    tmp = Path(tempfile.mkdtemp(prefix=f".{store.name}-", dir=store.parent))
    try:
        digest = hashlib.sha256()
        # each file on disk before the folder's rename, so a crash cannot expose a short one
        with _naming(store / FRAMES, tmp / FRAMES), open_replacing(tmp / FRAMES, "wb") as handle:
            np.lib.format.write_array_header_1_0(handle, {"descr": "|u1", "fortran_order": False,
                                                          "shape": (offset,)})
            for frames in decoded:
                handle.write(frames.data)
                digest.update(frames.data)
        index = {"options": options, "bytes": offset, "sha256": digest.hexdigest(), "videos": entries}
        index["check"] = _digest(index)
        with _naming(store / INDEX, tmp / INDEX):
            atomic_write_text(tmp / INDEX, json.dumps(index))
        os.rename(tmp, store)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def _naming(path: Path, written: Path) -> Iterator[None]:
    """A write or fsync that fails (a full disk) names the store's file it was for, not the temporary one
    (``written``) it went to."""
    try:
        yield
    except OSError as err:
        if err.filename in (None, str(written)):
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise


def _move_aside_and_remove(store: Path) -> None:
    """Out of the way at once (a rename), then removed; a process that mapped its frames keeps its mapping."""
    aside = Path(tempfile.mkdtemp(prefix=f".{store.name}-damaged-", dir=store.parent))
    os.rename(store, aside / "store")
    shutil.rmtree(aside, ignore_errors=True)


def _remove_leftovers(store: Path) -> None:
    """Temporary folders of this store that a writer killed mid-way left behind (called with the lock held: no
    live process is writing one)."""
    for entry in store.parent.iterdir():
        if entry.name.startswith(f".{store.name}-") and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
