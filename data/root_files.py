"""The files a dataset reader takes from a data root: every path stays inside the root once links are resolved,
and only regular files are opened.

A dataset is data from elsewhere: a line of its annotations (``../../etc/passwd``, an absolute path), a link planted
among its videos, frames or pose files, or a FIFO in place of a list must not make a reader read a file outside the
root or wait forever. ``DataRoot.inside`` resolves a path as the system will (links followed, ``..`` applied after
them) and refuses one that leaves the root; ``open_regular`` refuses a FIFO, device, socket or folder before it is
opened. The root itself may be a link (a dataset kept on another disk): it is resolved once, and its files are
judged against where it really is. A dataset spread over several disks by links inside its root is refused: make the
root a folder that holds it all, or a link to such a folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

# How a reason that refuses a file for leaving its root begins ("leads outside the data root R: ..."), where the
# reason is kept as text (a frame folder's status in ``python -m data check``, a skipped sample's record).
OUTSIDE_ROOT = "leads outside"


def shown(path: str | os.PathLike) -> str:
    """A path for a one-line message: as it is, or quoted with escapes where it holds a line break or another
    unprintable character (a name read from a dataset's file may hold anything)."""
    text = os.fspath(path) if not isinstance(path, bytes) else os.fsdecode(path)
    return text if text.isprintable() else repr(text)


class OutsideRootError(ValueError):
    """A path read from a data root that leads outside it (``..``, an absolute path, a link out of the root)."""

    def __init__(self, path: str | os.PathLike, root: str | os.PathLike, real: str | None = None) -> None:
        self.path, self.root, self.real = str(path), str(root), real
        resolved = f" (resolves to {shown(real)})" if real is not None and real != self.path else ""
        super().__init__(f"path leaves the data root {shown(root)}: {shown(path)}{resolved}")

    def __reduce__(self):  # picklable across DataLoader workers
        return (type(self), (self.path, self.root, self.real))


class NotRegularFileError(ValueError):
    """A path a reader would open that is a FIFO, a device, a socket or a folder: opening a FIFO waits for a writer
    forever, and a device is no dataset file."""

    def __init__(self, path: str | os.PathLike, kind: str) -> None:
        self.path, self.kind = str(path), kind
        super().__init__(f"{shown(path)}: not a regular file (a {kind}); a dataset's files must be regular files")

    def __reduce__(self):
        return (type(self), (self.path, self.kind))


_KINDS = ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))


def file_kind(mode: int) -> str:
    """What a stat mode is, in words: "regular file", "folder", "FIFO", ..."""
    if stat.S_ISREG(mode):
        return "regular file"
    return next((kind for test, kind in _KINDS if test(mode)), "special file")


def _checked_text(path: str | os.PathLike) -> str:
    """``path`` as text, refusing what no file name can hold (a NUL byte, a lone surrogate) in one line, where the
    system calls would raise a ValueError that names no file."""
    text = os.fspath(path)
    if "\0" in text:
        raise ValueError(f"path {text!r} holds a NUL byte")
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        raise ValueError(f"path {text!r} is not valid text for a file name") from None
    return text


class DataRoot:
    """A dataset's root folder, resolved once, against which the paths of its files are checked.

    Folders already resolved are remembered for the object's life (one reading of a split), so a path costs one
    ``lstat`` when neither it nor its folder changed: a million-line list is read at the rate of its lines.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.path = Path(root)
        self.real = os.path.realpath(_checked_text(root))
        self._prefix = self.real if self.real.endswith(os.sep) else self.real + os.sep
        self._folders: dict[str, str] = {}

    def contains_real(self, real: str) -> bool:
        """Whether the resolved path ``real`` is the root or lies under it."""
        return real == self.real or real.startswith(self._prefix)

    def resolve(self, path: str | os.PathLike) -> str:
        """Where ``path`` really is: links followed, ``..`` applied after them (``os.path.realpath``)."""
        text = _checked_text(path)
        folder, name = os.path.split(text)
        if name in ("", ".", ".."):
            return os.path.realpath(text)
        try:
            is_link = stat.S_ISLNK(os.lstat(text).st_mode)
        except OSError:  # missing, or under something that is no folder: it would be where its name puts it
            is_link = False
        if is_link:
            return os.path.realpath(text)
        real_folder = self._folders.get(folder)
        if real_folder is None:
            real_folder = self._folders[folder] = os.path.realpath(folder)
        return os.path.join(real_folder, name)

    def inside(self, path: str | os.PathLike) -> Path:
        """``path`` if it lies inside the root once resolved (a missing file: where it would be), else an
        ``OutsideRootError`` naming it, the root and where it leads."""
        real = self.resolve(path)
        if not self.contains_real(real):
            raise OutsideRootError(path, self.path, real)
        return path if isinstance(path, Path) else Path(path)

    def open(self, path: str | os.PathLike, mode: str = "r", **kwargs: Any) -> IO:
        """``open_regular`` of ``path`` once ``inside`` the root."""
        return open_regular(self.inside(path), mode, **kwargs)

    def read_text(self, path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> str:
        with self.open(path, encoding=encoding, errors=errors) as handle:
            return handle.read()

    def read_bytes(self, path: str | os.PathLike) -> bytes:
        with self.open(path, "rb") as handle:
            return handle.read()


def inside_root(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``DataRoot(root).inside(path)``, for one path."""
    return DataRoot(root).inside(path)


def regular_file(path: str | os.PathLike) -> os.stat_result:
    """The stat of ``path`` (links followed) if it is a regular file; a ``NotRegularFileError`` naming it if it is a
    FIFO, device, socket or folder; FileNotFoundError if it does not exist."""
    info = os.stat(_checked_text(path))
    if not stat.S_ISREG(info.st_mode):
        raise NotRegularFileError(path, file_kind(info.st_mode))
    return info


MAX_FILE_BYTES = 64 << 20  # a record, catalogue or YAML file of this repository is kilobytes; this bounds a mistake


def unreadable_value(err: ValueError) -> str:
    """Why a JSON or YAML parser refused a value of a document (``err``), on one line: a number of more digits than
    Python converts (``sys.get_int_max_str_digits``, 4,300 by default) said as such, without its advice to raise
    the limit; any other error (an impossible YAML date) by its first line."""
    import sys

    if "integer string conversion" in str(err):
        return f"a number of more than {sys.get_int_max_str_digits():,} digits"
    return " ".join((str(err).splitlines() or [""])[0].split()) or type(err).__name__


def read_regular_bytes(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``: the one reader of the files a user may edit or replace
    (records, job files, the YAML files under experiments/, catalogues). A FIFO, device, socket or folder is refused
    before it is read (reading a FIFO waits for a writer forever), a larger file before it is read whole; each a
    ``ValueError`` of one line naming the file (``FileNotFoundError`` for a missing one, as ``open`` raises)."""
    try:
        handle = open_regular(path, "rb")
    except NotRegularFileError as err:
        raise ValueError(f"{shown(path)}: not a regular file (a {err.kind})") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(max_bytes + 1)
    if max(size, len(data)) > max_bytes:
        raise ValueError(f"{shown(path)}: {max(size, len(data)):,} bytes, more than the {max_bytes:,} a file of its "
                         f"kind may hold")
    return data


MAX_DEPTH = 64  # objects and lists within each other: no record, claims file or catalogue nests past 12


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed JSON or YAML value nests objects and lists more than ``limit`` deep (walked without
    recursion, so any depth is measured)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def read_yaml(path: str | os.PathLike, loader: Any = None) -> Any:
    """The parsed YAML of a regular file (``read_regular_bytes``): the one reader of the YAML files a user may edit
    (claims, catalogues, the table inventory, each paper's ``paper.yaml``). ``loader``: a ``yaml.SafeLoader``
    subclass (default ``SafeLoader``). Each failure is a ``ValueError`` of one line naming the file: a special or
    oversized file, bytes that are not UTF-8, broken YAML, a value the parser refuses (a number of 5,000 digits, an
    impossible date), a document nested past ``MAX_DEPTH`` (``FileNotFoundError`` for a missing file)."""
    import yaml

    raw = read_regular_bytes(path)
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=loader or yaml.SafeLoader)  # SafeLoader or a subclass
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"{shown(path)}: not readable YAML ({str(err).splitlines()[0]})") from None
    except ValueError as err:  # the parser's own ValueError, which names no file
        raise ValueError(f"{shown(path)}: not readable YAML ({unreadable_value(err)})") from None
    except RecursionError:  # nested past Python's recursion limit: deeper still than the bound
        raise ValueError(f"{shown(path)}: nested more than {MAX_DEPTH} deep") from None
    if too_deep(data):
        raise ValueError(f"{shown(path)}: nested more than {MAX_DEPTH} deep")
    return data


def open_regular(path: str | os.PathLike, mode: str = "r", **kwargs: Any) -> IO:
    """``open(path, mode, **kwargs)`` for reading a regular file only: anything else is refused before it is
    opened (``regular_file``). The file is opened without blocking and checked again, so that a FIFO put in its
    place in between is refused too rather than waited on."""
    if any(flag in mode for flag in "wax+"):
        raise ValueError(f"open_regular reads only, got mode {mode!r}")
    regular_file(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(path, file_kind(info.st_mode))
        os.set_blocking(fd, True)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise
