"""The one writer: every file a command of this repository writes (records, job files, checkpoints, figures,
reports, pages, generated data sets, logs) is written here, beside the one reader (``data.root_files``).

What every write holds to:

- **Atomic.** The content goes to a temporary file in the same directory (same filesystem, so the rename is atomic
  on POSIX), is flushed to disk (``sync``), and then renamed over the target. A reader, or a run killed half-way,
  only ever sees the previous complete file or the new one; a write that fails or is killed leaves the old file as
  it was, plus at most a stray ``.<name>.*.tmp`` beside it; the error (a full disk) names the file it was for.
- **A link is replaced, never followed.** The rename replaces a link at the target by the file itself: a link
  planted where a figure or a record goes (to a file outside the folder) is never written through.
- **What is no file is refused, in one line.** A folder, FIFO, device or socket where a file goes is a
  ``WriteRefusedError`` (a ``ValueError``) naming it: writing there would fail deep in a library, block on a FIFO,
  or replace a device node. A folder to write into that is no folder is refused the same way (``make_folder``).
- **Echoed escaped.** A command that says which file it wrote says it with ``shown``: a newline or an ESC in the
  name is written as its escape.

Libraries that write by name (PyAV, numpy, PIL, torch) write into ``replacing``'s temporary path, or into memory
(``save_image``, ``save_torch``, ``save_arrays``). A log that grows (``open_log``) and a lock (``open_lock``)
cannot be replaced: they are opened without following a link, and refused unless they are regular files. It lives
in the lowest floor so that every floor uses it; ``tests/test_one_writer.py`` checks that nothing else writes.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from data.root_files import file_kind, shown

_UMASK = os.umask(0)  # read once (it can only be read by setting it): new files get the usual 0o666 & ~umask
os.umask(_UMASK)

__all__ = ["WriteRefusedError", "atomic_write_bytes", "atomic_write_text", "check_folder", "check_target",
           "copy_file", "encode_image", "make_folder", "open_lock", "open_log", "open_replacing", "replacing",
           "save_arrays", "save_figure", "save_image", "save_safetensors", "save_torch", "shown", "write_proc"]


class WriteRefusedError(ValueError):
    """A path a command would write that takes no file (a folder, FIFO, device or socket where a file goes, a file
    where a folder goes): one line naming it."""


def _refuse_non_file(path: Path) -> None:
    """``WriteRefusedError`` when ``path`` exists and is neither a regular file nor a link (which the rename
    replaces)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as err:  # under a file, or a name too long: said with the file
        raise WriteRefusedError(f"{shown(path)}: cannot be written ({err.strerror or err})") from None
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise WriteRefusedError(f"{shown(path)}: a {file_kind(mode)}, not a file, so it is not written; remove it "
                                f"or choose another path")


def check_folder(path: str | os.PathLike) -> Path:
    """``path`` if it is a folder, or could be made one (``make_folder``): checked before a command does its work,
    so that a file in its place is said at once, not once the work is done."""
    path = Path(path)
    blocking = next((part for part in (path, *path.parents) if part.exists() and not part.is_dir()), None)
    if blocking is not None:
        raise WriteRefusedError(f"{shown(blocking)}: a {file_kind(os.stat(blocking).st_mode)}, not a folder, so "
                                f"nothing is written in {shown(path)}; remove it or choose another path")
    return path


def check_target(path: str | os.PathLike) -> Path:
    """``path`` if a file can be written there (``check_folder`` of its folder; no folder, FIFO or device in its
    place): checked before a command does its work."""
    path = Path(path)
    check_folder(path.parent)
    _refuse_non_file(path)
    return path


def make_folder(path: str | os.PathLike) -> Path:
    """``path`` as a folder (created with its parents), or ``WriteRefusedError`` naming the first part of it that
    is a file, FIFO or device."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        check_folder(path)
        raise
    return path


@contextmanager
def replacing(path: str | os.PathLike, sync: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` for the block to write (a library that writes by name; the path ends with
    ``path``'s suffix, which such a library reads the format from); once the block ends well it is flushed to disk
    (``sync``) and renamed over ``path`` (module doc); else removed."""
    path = Path(path)
    make_folder(path.parent)
    _refuse_non_file(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0o600; a record is as readable as any other file
        if sync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _refuse_non_file(path)  # what took its place meanwhile
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:  # a write or fsync names no file: name the target
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise


def atomic_write_bytes(path: str | os.PathLike, content: bytes, sync: bool = True) -> Path:
    """Replace ``path`` with ``content`` atomically (creating its directory); returns the path. ``sync``: on disk
    before the rename (a record, a checkpoint); a file of a folder that is itself renamed into place once whole
    (a generated set) needs no flush of its own."""
    path = Path(path)
    make_folder(path.parent)
    _refuse_non_file(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0o600; a record is as readable as any other file
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())  # on disk before the rename, so a crash cannot expose an empty file
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:  # a write or fsync names no file: name the target
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8", sync: bool = True) -> Path:
    """Replace ``path`` with ``text`` atomically (see ``atomic_write_bytes``)."""
    return atomic_write_bytes(path, text.encode(encoding), sync)


@contextmanager
def open_replacing(path: str | os.PathLike, mode: str = "w", sync: bool = True, **kwargs: Any) -> Iterator[IO]:
    """A file opened for writing (``mode`` "w" or "wb", ``open``'s ``kwargs``: ``newline``, ``encoding``) whose
    content replaces ``path`` atomically once the block ends well (``replacing``): a CSV or a stream of frames
    written piece by piece."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_replacing writes a new file, mode 'w' or 'wb', got {mode!r}")
    with replacing(path, sync) as tmp, open(tmp, mode, **kwargs) as handle:  # the file closes before the rename
        yield handle


def encode_image(image: Any, format: str, **options: Any) -> bytes:
    """``image`` (a PIL image or a uint8 array) encoded as ``format`` (PNG, JPEG; PIL's ``options``: quality)."""
    from PIL import Image

    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.save(buffer, format=format, **options)
    return buffer.getvalue()


_IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def save_image(path: str | os.PathLike, image: Any, sync: bool = True, **options: Any) -> Path:
    """``image`` (a PIL image or a uint8 array) as ``path``, its format by its suffix (.png, .jpg)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _IMAGE_FORMATS:
        raise ValueError(f"{shown(path)}: an image is written as .png or .jpg, not {suffix or 'no suffix'}")
    return atomic_write_bytes(path, encode_image(image, _IMAGE_FORMATS[suffix], **options), sync)


def save_figure(path: str | os.PathLike, figure: Any, **options: Any) -> Path:
    """A matplotlib ``figure`` as ``path`` (PNG; ``savefig``'s ``options``: dpi)."""
    image = io.BytesIO()
    figure.savefig(image, format="png", **options)
    return atomic_write_bytes(path, image.getvalue())


def save_torch(path: str | os.PathLike, value: Any, sync: bool = True) -> Path:
    """``torch.save(value)`` as ``path``."""
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return atomic_write_bytes(path, buffer.getvalue(), sync)


def save_safetensors(path: str | os.PathLike, tensors: dict[str, Any], metadata: dict[str, str] | None = None,
                     sync: bool = True) -> Path:
    """``tensors`` (contiguous) as a safetensors file ``path``, with its ``metadata``."""
    from safetensors.torch import save

    return atomic_write_bytes(path, save(tensors, metadata=metadata), sync)


def save_arrays(path: str | os.PathLike, compressed: bool = False, sync: bool = True, **arrays: Any) -> Path:
    """numpy's ``savez`` (``compressed``: ``savez_compressed``) of ``arrays`` as ``path`` (its name kept as it is:
    numpy would add ".npz" to a name without it)."""
    import numpy as np

    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue(), sync)


def copy_file(source: str | os.PathLike, target: str | os.PathLike, sync: bool = True) -> Path:
    """A copy of the regular file ``source`` (its bytes and modification time) as ``target``."""
    from data.root_files import open_regular

    with open_regular(source, "rb") as reading, replacing(target, sync) as tmp:
        with open(tmp, "wb") as writing:
            shutil.copyfileobj(reading, writing)
        shutil.copystat(source, tmp)
    return Path(target)


def _open_in_place(path: Path, flags: int) -> int:
    """A descriptor of ``path`` opened with ``flags``, a link not followed, checked to be a regular file (before it
    is opened, and again once open: what was put in its place meanwhile is refused too)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISLNK(mode):
        raise WriteRefusedError(f"{shown(path)}: a link, so it is not written through; remove it")
    _refuse_non_file(path)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):  # a link, a FIFO or a folder put there meanwhile
            raise WriteRefusedError(f"{shown(path)}: not a file any more, so it is not written; remove it") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise WriteRefusedError(f"{shown(path)}: a {file_kind(mode)}, not a file, so it is not written; remove it "
                                f"or choose another path")
    os.set_blocking(fd, True)
    return fd


def open_log(path: str | os.PathLike, append: bool = True, binary: bool = False) -> IO:
    """A log file opened to grow (``append``; else emptied first): created where absent; a link, folder or FIFO in
    its place refused (``WriteRefusedError``). Text, line-buffered, unless ``binary``."""
    path = Path(path)
    make_folder(path.parent)
    fd = _open_in_place(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC))
    return os.fdopen(fd, "ab" if binary else "a", **({} if binary else {"buffering": 1, "encoding": "utf-8"}))


def open_lock(path: str | os.PathLike) -> int:
    """A descriptor of a lock file, read and written in place (its holder's id): created where absent; a link,
    folder or FIFO in its place refused (``WriteRefusedError``)."""
    path = Path(path)
    make_folder(path.parent)
    return _open_in_place(path, os.O_RDWR | os.O_CREAT)


def write_proc(path: str | os.PathLike, text: str) -> None:
    """``text`` written into a setting of the kernel (a file under /proc, which is written in place, never
    replaced)."""
    if not os.fspath(path).startswith("/proc/"):
        raise ValueError(f"{shown(path)}: write_proc writes the kernel's settings under /proc only")
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
