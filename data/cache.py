"""Build a cached directory once, atomically: generated data sets (synthetic videos, LRA ListOps) live here."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def build_once(target: Path, write: Callable[[Path], None]) -> Path:
    """``target``, written by ``write(tmp_dir)`` into a sibling temporary folder and renamed into place, unless it
    exists. A half-written set is never seen under ``target``; when two processes race, the first rename wins and
    the other uses its copy."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first: use its copy
            if not target.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
