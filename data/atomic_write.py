"""Write a file so that a reader, or a run killed half-way, only ever sees the previous complete file or the new one.

The content goes to a temporary file in the same directory (same filesystem, so the rename is atomic on POSIX), is
flushed to disk, and then renamed over the target. A write that fails or is killed leaves the old file as it was,
plus at most a stray ``.<name>.*.tmp`` beside it; the error (a full disk) names the file it was for. It lives in the
lowest floor so that every floor (data caches, run records, static columns, reports) uses the one helper.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)  # read once (it can only be read by setting it): new files get the usual 0o666 & ~umask
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, content: bytes) -> Path:
    """Replace ``path`` with ``content`` atomically (creating its directory); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0o600; a record is as readable as any other file
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename, so a crash cannot expose an empty file
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:  # a write or fsync names no file: name the target
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Replace ``path`` with ``text`` atomically (see ``atomic_write_bytes``)."""
    return atomic_write_bytes(path, text.encode(encoding))
