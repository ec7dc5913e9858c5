"""EPIC-KITCHENS-100's annotations (``data.annotations`` dispatches to them; the layout is described there): the
narration CSVs and the verb and noun class lists, every row checked against its schema (``data.schemas``: ``EpicRow``,
``EpicClassRow``); a video's extracted frames are read at the rate of their video's name (``epic_frames_fps``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from data.clip_sampling import epic_frames_fps
from data.root_files import DataRoot
from data.samples import BadAnnotation, Result, Sample, check_split, one_per_video
from data.schemas import EpicClassRow, EpicRow, csv_fields, validate_row

EPIC_SPLIT_FILES = {"train": "EPIC_100_train.csv", "val": "EPIC_100_validation.csv"}
EPIC_COLUMNS = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                "noun_class", "all_nouns", "all_noun_classes")
_EPIC_REQUIRED = ("narration_id", "participant_id", "video_id", "start_timestamp", "stop_timestamp", "verb_class",
                  "noun_class")


def epic_file(root: str | Path, name: str) -> Path:
    """An EPIC annotation file: ``<root>/<name>`` or ``<root>/annotations/<name>``."""
    root = Path(root)
    for candidate in (root / name, root / "annotations" / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{root}: neither {name} nor annotations/{name}")


def epic_class_names(root: str | Path) -> dict[str, list[str]]:
    """{"verb": [...], "noun": [...]} class keys in id order, from EPIC_100_{verb,noun}_classes.csv; a ValueError
    names the file (and line) of a list that is not UTF-8 or has a row that breaks ``EpicClassRow`` (each fixes a
    class count: there is nothing to skip)."""
    data_root = DataRoot(root)
    out = {}
    for kind in ("verb", "noun"):
        file = epic_file(root, f"EPIC_100_{kind}_classes.csv")
        raw = data_root.read_bytes(file)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:  # decoded whole, so that the line of the offending byte can be named
            line = raw[:err.start].count(b"\n") + 1
            raise ValueError(f"{file}:{line}: not UTF-8 text (byte {raw[err.start]:#04x} at offset {err.start}); "
                             f"the EPIC class lists are UTF-8") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not {"id", "key"} <= set(reader.fieldnames or []):
            raise ValueError(f"{file}: header must start with id,key,instances,category, got {reader.fieldnames}")
        rows: dict[int, str] = {}
        for row in reader:
            try:
                entry = validate_row(EpicClassRow, csv_fields(row))
            except ValueError as err:
                raise ValueError(f"{file}:{reader.line_num}: {err} (a row is id,key,instances,category)") from None
            if entry.id in rows:  # two keys for one id would merge two classes
                raise ValueError(f"{file}:{reader.line_num}: class id {entry.id} is given to {rows[entry.id]!r} "
                                 f"already")
            rows[entry.id] = entry.key
        if sorted(rows) != list(range(len(rows))):
            raise ValueError(f"{file}: class ids must be 0..{len(rows) - 1}")
        out[kind] = [rows[i] for i in range(len(rows))]
    return out


def _epic_video_path(root: Path, participant: str, video_id: str) -> Path:
    path = root / participant / "videos" / f"{video_id}.MP4"
    lower = path.with_suffix(".mp4")  # some mirrors lower-case the extension
    return lower if not path.exists() and lower.exists() else path


def _epic_source(root: Path, participant: str, video_id: str) -> tuple[Path, float | None]:
    """A video's file (read at its own rate), or where there is none its ``<participant>/rgb_frames/<video_id>/``
    folder (the layout of EPIC-KITCHENS' extracted frames, which Motionformer's code reads) with the rate of its
    frames: 60 fps for an EPIC-55 video (``P01_01``), 50 for the EPIC-100 extension's (``P01_101``), to which the
    dataset's authors re-encoded every recording before extracting frames (``EPIC_100_video_info.csv`` gives the
    recording's own rate, 59.94 or 50, a few 90, 48, 29.97: not its frames'); the file's path if neither exists, to
    be reported missing."""
    video = _epic_video_path(root, participant, video_id)
    frames = root / participant / "rgb_frames" / video_id
    if video.exists() or not frames.is_dir():
        return video, None
    return frames, float(epic_frames_fps(video_id))


def read_epic_kitchens100(root: str | Path, split: str) -> Result:
    """``EPIC_100_{train,validation}.csv`` -> one segment sample per narration, label (verb_class, noun_class).
    A video is read from ``<participant>/videos/<video_id>.MP4``, or where that is absent from its extracted
    frames, ``<participant>/rgb_frames/<video_id>/frame_<n>.jpg``, at 60 fps for an EPIC-55 video id (``P01_01``), 50
    for an EPIC-100 one (``P01_101``); a frames folder of another id is a bad line."""
    check_split(split)
    root = Path(root)
    file = epic_file(root, EPIC_SPLIT_FILES[split])
    # The class lists are required: they fix the class counts, so that an index past them is a bad line here
    # rather than an index error in training.
    counts = {kind: len(names) for kind, names in epic_class_names(root).items()}
    data_root = DataRoot(root)
    rows, bad = [], []
    sources: dict[tuple[str, str], tuple[Path, float | None]] = {}
    with data_root.open(file, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _EPIC_REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            return [], [BadAnnotation(str(file), 1, ",".join(reader.fieldnames or []), f"header lacks {missing}")]
        for row in reader:
            number = reader.line_num
            text = ",".join("" if v is None else str(v) for v in row.values())[:200]
            try:
                if None in row:
                    raise ValueError(f"{len(row) - 1 + len(row[None])} fields, header has {len(reader.fieldnames)}")
                if any(row[c] is None for c in _EPIC_REQUIRED):
                    raise ValueError(f"fewer fields than the header's {len(reader.fieldnames)}")
                narration = validate_row(EpicRow, csv_fields(row))
                label = (narration.verb_class, narration.noun_class)
                for kind, value in zip(("verb", "noun"), label, strict=True):
                    if value >= counts[kind]:
                        raise ValueError(f"{kind}_class {value} outside the class list")
                key = (narration.participant_id, narration.video_id)
                if key not in sources:
                    path, fps = _epic_source(root, *key)
                    sources[key] = data_root.inside(path), fps
            except ValueError as err:
                bad.append(BadAnnotation(str(file), number, text, str(err)))
                continue
            path, fps = sources[key]
            segment = (narration.start_timestamp, narration.stop_timestamp)
            rows.append((Sample(path, label, narration.narration_id, number, segment=segment, fps=fps, root=root),
                         text))
    # A narration is its id (a video holds many); EPIC's train and validation videos are disjoint by design.
    return one_per_video(file, rows, bad, lambda s: s.video_id, split, what="narration")
