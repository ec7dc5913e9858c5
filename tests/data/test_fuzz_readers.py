"""Property-based tests (hypothesis) of the dataset readers: generated damaged annotation rows, and generated trees of
files, links and FIFOs under a data root.

Every reader accepts or refuses in one line: a bad row is a ``BadAnnotation`` naming its file and row, a file that
cannot be read at all a ValueError (or FileNotFoundError) naming it; never a traceback of another type, never a
sample outside the root, never a file opened outside the root (``watching`` sees every file opened while a test
reads, and refuses to let a FIFO be opened, which would hang the test rather than fail it). The last tests
weaken a check on purpose (the root check, the regular-file check, the row schema) and show that the same
properties then fail. Bounded and derandomized: the same few examples run every time, in a few seconds.
"""

from __future__ import annotations

import builtins
import contextlib
import csv
import io
import json
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.__main__ import main
from data.annotations import EPIC_COLUMNS, read_annotations
from data.datasets import VideoClipDataset, check_files
from data.pose import write_gym_pose
from data.root_files import DataRoot

FUZZ = settings(max_examples=30, deadline=10_000, derandomize=True, database=None, report_multiple_bugs=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# A weakened check only has to be found: no shrinking of the example that finds it.
FIND = settings(FUZZ, phases=[Phase.explicit, Phase.generate])

# --- watching what is opened -------------------------------------------------------------------------------------


@contextlib.contextmanager
def watching(outside: Path):
    """Every file opened through Python while it lasts (``open``, ``io.open``, ``os.open``: what the readers, PIL,
    numpy and scipy open by) is recorded when it lies in ``outside``; a FIFO is refused before it is opened, which
    would hang the test rather than fail it. (Not an audit hook: that would stay for the whole test session, and
    costs every ``id()`` call a Python function call.)"""
    bound, opened = os.path.realpath(outside), []
    plain_open, plain_os_open = builtins.open, os.open

    def check(path) -> None:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return
        real = os.path.realpath(os.fsdecode(path))
        if real == bound or real.startswith(bound + os.sep):
            opened.append(real)
        with contextlib.suppress(OSError):
            if stat.S_ISFIFO(os.stat(real).st_mode):
                raise AssertionError(f"a reader opened the FIFO {os.fsdecode(path)}")

    def watched_open(file, *args, **kwargs):
        check(file)
        return plain_open(file, *args, **kwargs)

    def watched_os_open(path, *args, **kwargs):
        check(path)
        return plain_os_open(path, *args, **kwargs)

    builtins.open = io.open = watched_open
    os.open = watched_os_open
    try:
        yield opened
    finally:
        builtins.open = io.open = plain_open
        os.open = plain_os_open


# --- the contract ------------------------------------------------------------------------------------------------

ANNOTATIONS = {"kinetics_list": "kinetics400", "kinetics": "kinetics400", "ssv2": "ssv2",
               "epic_kitchens100": "epic_kitchens100", "finegym99": "finegym"}


def read_in_one_line(fmt: str, root: Path, outside: Path) -> list:
    """Read ``fmt``'s train split and check its files as ``python -m data check`` does, asserting the contract;
    returns the samples."""
    with watching(outside) as opened:
        try:
            samples, bad = read_annotations(fmt, root, "train", num_classes=5 if fmt == "kinetics_list" else None)
        except (ValueError, FileNotFoundError) as err:  # a file that cannot be read at all, named
            message = str(err)
            assert "\n" not in message and str(root) in message, message
            samples, bad = [], []
        status = check_files(samples)
        for sample in samples:
            VideoClipDataset([sample], "train", None, sampling="segments", num_frames=2,
                             with_pose=sample.pose is not None)[0]
    assert not opened, f"read outside the root: {opened}"
    real_root = DataRoot(root)
    for sample in samples:
        for path in (sample.path, sample.pose):
            assert path is None or real_root.contains_real(os.path.realpath(path)), f"sample outside: {path}"
    for line in bad:
        assert "\n" not in line.reason and line.file.startswith(str(root)), line
    for path, reason in status.items():
        assert reason is None or "\n" not in reason, (path, reason)
    return samples


def check_command_in_one_line(fmt: str, root: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", ANNOTATIONS[fmt], "--root", str(root), "--split", "train", "--quick",
                     "--format", fmt, "--manifest", str(root.parent / "manifest.json")])
    assert code in (0, 1, 2)
    assert code != 2 or err.getvalue().count("\n") == 1, err.getvalue()


# --- damaged rows ------------------------------------------------------------------------------------------------

NASTY = ["", " ", "0", "1", "-1", "1e308", "-1e308", "inf", "nan", "1e-320", "9" * 25, "9" * 400, "1_0", "٣",
         "00:00:00.00", "00:00:01.50", "99999:00:00.00", "9" * 400 + ":00:00.00", "00:99:00.00", "\x00",
         "../../../outside/x", "/etc/passwd", "P01", "P01_01", "[", "[1,", "[1, 2]", "☃", "a\nb", '"', "\ud800",
         "0LtLS9wROrk_E_002407_002435_A_0003_0005"]
VALUES = st.one_of(st.sampled_from(NASTY), st.text(max_size=12))
GOOD_EPIC = ("P01_01_0", "P01", "P01_01", "00:00:00.00", "00:00:00.00", "00:00:01.00", "0", "50", "take tap",
             "take", "0", "tap", "1", "['tap']", "[1]")


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _damaged(draw, good: tuple[str, ...]) -> list[str]:
    """``good`` with some fields replaced by nasty values, sometimes cut short or made longer."""
    row = list(good)
    for index in draw(st.lists(st.integers(0, len(row) - 1), max_size=3)):
        row[index] = draw(VALUES)
    if draw(st.integers(0, 3)) == 0:  # a row cut short, or one field too many
        return row[:draw(st.integers(1, len(row)))] if draw(st.booleans()) else row + [draw(VALUES)]
    return row


@st.composite
def damaged_files(draw) -> tuple[str, dict[str, str]]:
    fmt = draw(st.sampled_from(sorted(ANNOTATIONS)))
    count = draw(st.integers(1, 4))
    if fmt == "kinetics_list":
        lines = [f"{draw(VALUES)}{draw(st.sampled_from([' ', ',', '']))}{draw(VALUES)}" for _ in range(count)]
        return fmt, {"train.csv": "\n".join(lines)}
    if fmt == "finegym99":
        return fmt, {"gym99_train_element_v1.1.txt": "\n".join(f"{draw(VALUES)} {draw(VALUES)}" for _ in range(count))}
    if fmt == "kinetics":
        rows = [["label", "youtube_id", "time_start", "time_end", "split"]]
        rows += [_damaged(draw, ("bowling", "aaa", "0", "10", "train")) for _ in range(count)]
        return fmt, {"annotations/train.csv": _csv(rows)}
    if fmt == "ssv2":
        entry = st.fixed_dictionaries({"id": VALUES, "template": st.sampled_from(["Moving [something] up"]) | VALUES})
        entries = draw(st.lists(entry | st.recursive(st.none() | VALUES, lambda inner: st.lists(inner, max_size=2)),
                                max_size=count))
        labels = draw(st.sampled_from([{"Moving something up": "0"}, {"Moving something up": draw(VALUES)}]))
        return fmt, {"labels.json": json.dumps(labels), "train.json": json.dumps(entries)}
    classes = "id,key,instances,category\n0,take,1,0\n1,tap,1,0\n"
    rows = [list(EPIC_COLUMNS)] + [_damaged(draw, GOOD_EPIC) for _ in range(count)]
    return fmt, {"EPIC_100_train.csv": _csv(rows), "EPIC_100_verb_classes.csv": classes,
                 "EPIC_100_noun_classes.csv": classes}


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # a lone surrogate becomes bytes that are not UTF-8


def damaged_rows_are_read_or_refused_in_one_line(files):
    fmt, texts = files
    with tempfile.TemporaryDirectory() as base:
        root, outside = Path(base) / "root", Path(base) / "outside"
        outside.mkdir()
        for name, text in texts.items():
            _write_text(root / name, text)
        if fmt == "epic_kitchens100":  # a frames layout, so that a rate is taken from the video id
            (root / "P01" / "rgb_frames" / "P01_01").mkdir(parents=True)
            Image.new("RGB", (4, 4)).save(root / "P01" / "rgb_frames" / "P01_01" / "frame_0000000001.jpg")
        read_in_one_line(fmt, root, outside)
        check_command_in_one_line(fmt, root)


test_damaged_rows_are_read_or_refused_in_one_line = FUZZ(given(damaged_files())(
    damaged_rows_are_read_or_refused_in_one_line))

# the number after "P01_" of an EPIC video id whose rgb_frames folder exists: any name a folder can have
VIDEO_NUMBERS = st.one_of(st.sampled_from(["01", "101", "1", "1234", "", "01_a", "٠١", "0a", " 01", "012 "]),
                          st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"]),
                                  max_size=6).filter(lambda t: t not in {".", ".."}))


@FUZZ
@given(VIDEO_NUMBERS)
def test_a_frames_folder_is_read_at_its_names_rate_or_its_rows_are_one_bad_line(number):
    """A frames folder of ``P01_<number>``: its row is a sample at 60 fps (2 digits, EPIC-55) or 50 fps (3 digits,
    EPIC-100), or one bad line naming the file and line; never a traceback, never another rate."""
    video_id = f"P01_{number}"
    with tempfile.TemporaryDirectory() as base:
        root, outside = Path(base) / "root", Path(base) / "outside"
        outside.mkdir()
        classes = "id,key,instances,category\n0,take,1,0\n1,tap,1,0\n"
        row = list(GOOD_EPIC)
        row[0], row[2] = f"{video_id}_0", video_id
        files = {"EPIC_100_train.csv": _csv([list(EPIC_COLUMNS), row]), "EPIC_100_verb_classes.csv": classes,
                 "EPIC_100_noun_classes.csv": classes}
        for name, text in files.items():
            _write_text(root / name, text)
        folder = root / "P01" / "rgb_frames" / video_id
        folder.mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(folder / "frame_0000000001.jpg")
        samples, bad = read_annotations("epic_kitchens100", root, "train")
        digits = number.isascii() and number.isdigit()
        if samples:
            (sample,) = samples
            rate = {2: 60.0, 3: 50.0}.get(len(number)) if digits else None
            assert sample.fps == rate or (sample.fps is None and sample.path.name != video_id), (number, sample)
        else:
            (line,) = bad
            assert line.file == str(root / "EPIC_100_train.csv") and line.line_number == 2, line
            assert "\n" not in line.reason and not (digits and len(number) in (2, 3)), line


# --- paths and links under a root --------------------------------------------------------------------------------

KINDS = ("file", "link_out", "link_out_folder", "link_in", "chain_out", "dotdot", "absolute", "dangling", "fifo")
ELEMENTS = [f"{c * 11}_E_000001_000002_A_0001_0002" for c in "abcdefg"]


def _outside(outside: Path) -> None:
    """Valid data beside the root: a reader that followed a link there would accept it."""
    Image.new("RGB", (4, 4)).save(outside / "frame.jpg")
    write_gym_pose(outside / "pose.npz", np.ones((1, 2, 17, 2)), np.ones((1, 2, 17)))
    (outside / "clip.mp4").write_bytes(b"\x00" * 64)
    (outside / "list.txt").write_text("clip.mp4 0\n")


def _place(path: Path, kind: str, own: Path, target: Path, root: Path, outside: Path) -> str | None:
    """Make ``path`` (a file a reader takes) of ``kind``; returns the name a list should give instead, if any."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        own.parent.mkdir(parents=True, exist_ok=True)
        os.link(own, path) if own.exists() else None
    elif kind in ("link_out", "link_out_folder"):
        os.symlink(target, path)
    elif kind == "link_in":
        os.symlink(own, path)
    elif kind == "chain_out":
        os.symlink(target, path.with_name(path.name + ".hop"))
        os.symlink(path.with_name(path.name + ".hop"), path)
    elif kind == "dotdot":
        os.symlink(os.path.relpath(target, path.parent), path)  # a relative link climbing out with ..
        return os.path.relpath(target, root)
    elif kind == "absolute":
        os.symlink(target, path)
        return str(target)
    elif kind == "dangling":
        os.symlink(root / "nothing", path)
    elif kind == "fifo":
        os.mkfifo(path)
    return None


def _kinetics_list(root: Path, outside: Path, kinds: list[str], list_kind: str) -> None:
    own = root / "own.mp4"
    own.write_bytes(b"\x00" * 64)
    lines = []
    for i, kind in enumerate(kinds):
        path = root / "v" / f"{i}.mp4"
        if kind == "link_out_folder":
            os.symlink(outside, root / f"d{i}")
            lines.append(f"d{i}/clip.mp4 0")
            continue
        named = _place(path, kind, own, outside / "clip.mp4", root, outside)
        lines.append(f"{named or path.relative_to(root)} 0")
    if list_kind == "file":
        (root / "train.csv").write_text("\n".join(lines) + "\n")
    else:
        _place(root / "train.csv", list_kind, own, outside / "list.txt", root, outside)


def _epic_frames(root: Path, outside: Path, kinds: list[str], list_kind: str) -> None:
    classes = "id,key,instances,category\n0,take,1,0\n1,tap,1,0\n"
    for kind in ("verb", "noun"):
        (root / f"EPIC_100_{kind}_classes.csv").parent.mkdir(parents=True, exist_ok=True)
        (root / f"EPIC_100_{kind}_classes.csv").write_text(classes)
    text = _csv([list(EPIC_COLUMNS), list(GOOD_EPIC)])
    if list_kind == "file":
        (root / "EPIC_100_train.csv").write_text(text)
    else:
        (outside / "list.txt").write_text(text)
        _place(root / "EPIC_100_train.csv", list_kind, root / "own.jpg", outside / "list.txt", root, outside)
    folder = root / "P01" / "rgb_frames" / "P01_01"
    if "link_out_folder" in kinds:
        folder.parent.mkdir(parents=True)
        os.symlink(outside, folder)
        return
    folder.mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(root / "own.jpg")
    for i, kind in enumerate(kinds, start=1):
        _place(folder / f"frame_{i:010d}.jpg", kind, root / "own.jpg", outside / "frame.jpg", root, outside)


def _finegym(root: Path, outside: Path, kinds: list[str], list_kind: str) -> None:
    write_gym_pose(root / "own.npz", np.ones((1, 2, 17, 2)), np.ones((1, 2, 17)))
    (root / "subactions").mkdir()
    for i, kind in enumerate(kinds):
        (root / "subactions" / f"{ELEMENTS[i]}.mp4").write_bytes(b"\x00" * 64)
        if kind == "link_out_folder" and not (root / "poses").exists():
            os.symlink(outside, root / "poses")
        elif kind != "link_out_folder" and not (root / "poses").is_symlink():
            _place(root / "poses" / f"{ELEMENTS[i]}.npz", kind, root / "own.npz", outside / "pose.npz", root, outside)
    text = "".join(f"{element} 1\n" for element in ELEMENTS[:len(kinds)])
    if list_kind == "file":
        (root / "gym99_train_element_v1.1.txt").write_text(text)
    else:
        (outside / "list.txt").write_text(text)
        _place(root / "gym99_train_element_v1.1.txt", list_kind, root / "own.npz", outside / "list.txt", root,
               outside)


LAYOUTS = {"kinetics_list": _kinetics_list, "epic_kitchens100": _epic_frames, "finegym99": _finegym}


TREES = (st.sampled_from(sorted(LAYOUTS)), st.lists(st.sampled_from(KINDS), min_size=1, max_size=5),
         st.sampled_from(["file", "file", "link_out", "fifo"]))


def paths_and_links_never_lead_a_reader_outside_its_root(fmt, kinds, list_kind):
    with tempfile.TemporaryDirectory() as base:
        root, outside = Path(base) / "root", Path(base) / "outside"
        root.mkdir()
        outside.mkdir()
        _outside(outside)
        LAYOUTS[fmt](root, outside, kinds, list_kind)
        read_in_one_line(fmt, root, outside)


test_paths_and_links_never_lead_a_reader_outside_its_root = FUZZ(given(*TREES)(
    paths_and_links_never_lead_a_reader_outside_its_root))


# --- the same properties fail when a check is weakened -----------------------------------------------------------


def test_a_weakened_root_check_is_found_by_the_link_property(monkeypatch):
    monkeypatch.setattr(DataRoot, "contains_real", lambda self, real: True)
    with pytest.raises(AssertionError, match="outside"):
        FIND(given(*TREES)(paths_and_links_never_lead_a_reader_outside_its_root))()


def test_a_weakened_regular_file_check_is_found_by_the_link_property(monkeypatch):
    def plain_open(path, mode="r", **kwargs):
        return open(path, mode, **kwargs)  # no stat before, no check after

    monkeypatch.setattr("data.root_files.open_regular", plain_open)
    with pytest.raises(AssertionError, match="opened the FIFO"):
        FIND(given(*TREES)(paths_and_links_never_lead_a_reader_outside_its_root))()


def test_a_weakened_row_schema_is_found_by_the_row_property(monkeypatch):
    def unchecked(model, row):
        return model.model_construct(**row)  # the fields as the file spells them: no types, no bounds

    for reader in ("data.annotations", "data.epic_annotations", "data.pose_annotations"):
        monkeypatch.setattr(f"{reader}.validate_row", unchecked)
    with pytest.raises(Exception) as caught:
        FIND(given(damaged_files())(damaged_rows_are_read_or_refused_in_one_line))()
    assert not isinstance(caught.value, ValueError)  # a traceback of another type, as before the schemas
