"""The one writer's guards (``data/atomic_write.py``): a link where a file goes is replaced, never written through; a
folder, FIFO or device there is refused in one line naming it; a folder to write into that is a file is refused the
same way; a log or a lock is never opened through a link; a name is echoed with its newline and ESC escaped."""

from __future__ import annotations

import io
import os
import signal

import numpy as np
import pytest
from PIL import Image

from data.atomic_write import (
    WriteRefusedError,
    atomic_write_text,
    copy_file,
    make_folder,
    open_lock,
    open_log,
    open_replacing,
    replacing,
    save_arrays,
    save_image,
    save_torch,
    shown,
)


@pytest.fixture(autouse=True)
def no_hang():
    """A writer that opens a FIFO would wait for a reader forever: fail after 10 s instead."""
    def hung(signum, frame):
        raise AssertionError("the writer waited on a FIFO")

    before = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, before)


WRITERS = {
    "text": lambda path: atomic_write_text(path, "new"),
    "image": lambda path: save_image(path.with_suffix(".png") if path.suffix != ".png" else path,
                                     np.zeros((4, 4, 3), np.uint8)),
    "torch": lambda path: save_torch(path, {"a": 1}),
    "arrays": lambda path: save_arrays(path, a=np.zeros(3)),
    "stream": lambda path: _stream(path),
    "by name": lambda path: _by_name(path),
}


def _stream(path):
    with open_replacing(path) as handle:
        handle.write("new")


def _by_name(path):
    with replacing(path) as tmp:
        tmp.write_bytes(b"new")


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_link_where_a_file_goes_is_replaced_and_its_target_untouched(tmp_path, writer):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    target = tmp_path / "out" / "figure.png"
    target.parent.mkdir()
    target.symlink_to(outside)
    WRITERS[writer](target)
    assert outside.read_text() == "keep"
    assert target.is_file() and not target.is_symlink()


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_folder_or_fifo_where_a_file_goes_is_one_line_naming_it(tmp_path, writer, kind):
    target = tmp_path / "figure.png"
    target.mkdir() if kind == "folder" else os.mkfifo(target)
    with pytest.raises(WriteRefusedError, match=f"^{target}: a {'folder' if kind == 'folder' else 'FIFO'}, not a "
                                                 f"file, so it is not written; remove it or choose another path$"):
        WRITERS[writer](target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]  # no temporary left


def test_a_device_is_never_replaced(tmp_path):
    with pytest.raises(WriteRefusedError, match="^/dev/null: a character device, not a file"):
        atomic_write_text("/dev/null", "x")


def test_a_folder_that_is_a_file_is_one_line_naming_it(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(WriteRefusedError, match=f"^{tmp_path / 'out'}: a regular file, not a folder, so nothing is "
                                                 f"written in {tmp_path / 'out' / 'sub'}"):
        make_folder(tmp_path / "out" / "sub")
    with pytest.raises(WriteRefusedError, match="not a folder"):
        atomic_write_text(tmp_path / "out" / "record.json", "{}")


@pytest.mark.parametrize("opener", [open_log, open_lock])
def test_a_log_or_lock_is_never_opened_through_a_link_or_as_a_fifo(tmp_path, opener):
    outside = tmp_path / "outside"
    outside.write_text("keep")
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(WriteRefusedError, match="a link, so it is not written through"):
        opener(tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(WriteRefusedError, match="a FIFO, not a file"):
        opener(tmp_path / "fifo")
    assert outside.read_text() == "keep"


def test_a_log_grows(tmp_path):
    for line in ("one\n", "two\n"):
        with open_log(tmp_path / "a.log") as log:
            log.write(line)
    assert (tmp_path / "a.log").read_text() == "one\ntwo\n"
    with open_log(tmp_path / "a.log", append=False) as log:
        log.write("three\n")
    assert (tmp_path / "a.log").read_text() == "three\n"


def test_what_is_written_reads_back(tmp_path):
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert np.array_equal(np.asarray(Image.open(save_image(tmp_path / "a.png", image))), image)
    assert np.load(save_arrays(tmp_path / "a", a=image))["a"].tolist() == image.tolist()  # no ".npz" added
    source = tmp_path / "source.bin"
    source.write_bytes(b"x" * 100_000)
    assert copy_file(source, tmp_path / "copy.bin").read_bytes() == b"x" * 100_000


def test_a_name_is_echoed_escaped():
    assert shown("runs/a\nb\x1b[31m") == repr("runs/a\nb\x1b[31m")
    assert shown("runs/plain") == "runs/plain"
    out = io.StringIO()
    print(shown("x\ny"), file=out)
    assert out.getvalue().count("\n") == 1
