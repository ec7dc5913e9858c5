"""Readers for the published annotation formats of the datasets the papers use.

Every reader returns ``(samples, bad_lines)``: a malformed line never stops a reader, it is recorded as a
``BadAnnotation`` naming the file and line so that a run's data report can list it. A row is checked against its
declared schema (``data.schemas``), and every path a line names, and every file read, must stay inside the root
once links are resolved and be a regular file (``data.root_files``): a line that fails is a bad line, a list that
fails stops the read in one line naming it.

A video annotated twice in one split (Kinetics, SSv2; an EPIC narration) is read once when the lines agree (the
repeats are bad lines) and not at all when they differ (every one of its lines is a bad line naming the others:
which label is right is unknown). A "val" video that the training split holds too is kept (the splits are the
dataset's to define) with a warning naming both lines, as its scores then count videos trained on. The official
files have neither.

Formats (``read_annotations(format, root, split)``):

* ``"kinetics_list"``: the "path label" lists of PySlowFast/Motionformer: ``<root>/<split>.csv``, one
  ``relative/path.mp4 label_index`` per line (a comma also separates). Paths are relative to ``root``. The lists
  do not record the class count: ``read_annotations(..., num_classes=)`` checks the labels against the dataset's.
* ``"kinetics"``: the official Kinetics release: ``<root>/annotations/<split>.csv`` with header
  ``label,youtube_id,time_start,time_end,split``; videos at
  ``<root>/<split>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4``; label indices follow the sorted class names
  of the training annotations (so train and val agree).
* ``"ssv2"``: Something-Something V2: ``<root>/labels.json`` ({"class name": "index"}, indices 0..n-1 once each),
  ``<root>/train.json`` and ``<root>/validation.json`` (lists of {"id", "label", "template", "placeholders"}),
  videos ``<root>/videos/<id>.webm``. The class is the ``template`` with "[" and "]" removed. JSON entries are
  numbered from 1 in place of lines. The
  20BN archives as shipped are read too: ``<root>/labels/{labels,train,validation}.json`` and
  ``<root>/20bn-something-something-v2/<id>.webm`` (``ssv2_layout``; the layout above is looked for first).
* ``"epic_kitchens100"``: EPIC-KITCHENS-100: ``EPIC_100_train.csv`` / ``EPIC_100_validation.csv`` (in ``<root>`` or
  ``<root>/annotations/``) with header ``narration_id,participant_id,video_id,narration_timestamp,start_timestamp,
  stop_timestamp,start_frame,stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes``;
  class lists ``EPIC_100_verb_classes.csv`` / ``EPIC_100_noun_classes.csv`` (``id,key,instances,category``;
  required, as they fix the class counts);
  untrimmed videos ``<root>/<participant_id>/videos/<video_id>.MP4``, or where one is absent its extracted frames
  ``<root>/<participant_id>/rgb_frames/<video_id>/frame_<n>.jpg`` at the rate of the frames, by the video id: 60 fps
  for EPIC-55's (``P01_01``), 50 for the EPIC-100 extension's (``P01_101``). A sample is the segment
  [start_timestamp, stop_timestamp] of its video, labelled ``(verb_class, noun_class)``; its ``video_id`` is the
  narration id. Segments are located by timestamp, not by ``start_frame``, so re-encoded videos at another frame
  rate still line up.
* ``"pennaction"``: PennAction: ``<root>/labels/<video_id>.mat`` (``data.pose.read_pennaction_labels``) and frame
  folders ``<root>/frames/<video_id>/<frame:06d>.jpg``. The split is each file's ``train`` field (1 = train,
  -1 = test, read here as "val"); a malformed label file is a bad annotation of both splits (its split is unknown),
  with line 0 (the whole file).
* ``"ntu60_xsub"``, ``"ntu60_xview"``, ``"ntu120_xsub"``, ``"ntu120_xset"``: NTU RGB+D 60/120 and their
  evaluation protocols. No annotation file: the file names ``SsssCcccPpppRrrrAaaa`` (setup, camera, performer,
  replication, action) are the annotations. Samples are the union of ``<root>/nturgb+d_rgb/<name>_rgb.avi`` and
  ``<root>/nturgb+d_skeletons/<name>.skeleton`` (so a sample with only one of the two is reported with the other
  missing); a file whose name does not parse is a bad annotation (line 0). NTU60 is setups 1-17.
* ``"finegym99"``: FineGYM's Gym99 elements: the release's lists ``gym99_train_element_v1.1.txt`` and
  ``gym99_val_element.txt`` (in ``<root>`` or ``<root>/annotations/``) of ``<element id> <label>`` lines, the id
  ``<YouTube id>_E_<event start>_<event end>_A_<start>_<end>``, labels 0-98; the elements cut into
  ``<root>/subactions/<element id>.mp4`` (mmaction2's ``tools/data/gym`` scripts write that folder) and their 2-D
  keypoints ``<root>/poses/<element id>.npz`` (``data.pose.read_gym_pose``).

Splits are "train" and "val" ("val" is Kinetics "val", SSv2 "validation", EPIC "validation", and the test split of
PennAction and of the NTU protocols).
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from data.epic_annotations import EPIC_COLUMNS, EPIC_SPLIT_FILES, epic_class_names, epic_file, read_epic_kitchens100  # noqa: F401
from data.pose import PENNACTION_ACTIONS
from data.pose_annotations import NTU_LIMITS, gym99_split_file, read_finegym, read_ntu, read_pennaction
from data.root_files import DataRoot
from data.samples import BadAnnotation, Result, Rows, Sample, check_split, one_per_video, train_rows
from data.schemas import (
    GYM99_CLASSES,
    SSV2_LABELS,
    KineticsListLine,
    KineticsRow,
    SSv2Entry,
    csv_fields,
    describe,
    epic_timestamp,  # noqa: F401  (epic_timestamp: read from here too)
    validate_row,
)

ANNOTATION_FORMATS = ("kinetics_list", "kinetics", "ssv2", "epic_kitchens100", "pennaction", "ntu60_xsub",
                      "ntu60_xview", "ntu120_xsub", "ntu120_xset", "finegym99")


# --- Kinetics "path label" lists ------------------------------------------------------------------------------


def _parse_path_label(text: str) -> tuple[str, int]:
    """'some/path.mp4 12' or 'some/path.mp4,12' -> (path, 12); the path may itself contain spaces."""
    for separator in (None, ","):  # None: any whitespace
        parts = text.rsplit(separator, 1)
        if len(parts) == 2 and parts[0].strip() and parts[1].strip():
            path, label = parts[0].strip().rstrip(","), parts[1].strip()
            if label.lstrip("-").isdigit():
                if int(label) < 0:
                    raise ValueError(f"negative label {label}")
                return path, int(label)
    raise ValueError("expected '<path> <label index>'")


def read_kinetics_list(root: str | Path, split: str, num_classes: int | None = None) -> Result:
    """``<root>/<split>.csv`` of '<relative path> <label index>' lines. The lists do not record the class count:
    with ``num_classes``, a label at or above it is a bad line (None: labels are checked for sign only). A video
    is its path (``one_per_video``)."""
    check_split(split)
    file, rows, bad = _kinetics_list_rows(Path(root), split, num_classes)
    train = train_rows(split, lambda: _kinetics_list_rows(Path(root), "train", num_classes))
    return one_per_video(file, rows, bad, lambda s: str(s.path), split, train)  # str: hashing Paths is slow


def _kinetics_list_rows(root: Path, split: str, num_classes: int | None) -> Rows:
    file = annotation_source("kinetics_list", root, split)
    data_root = DataRoot(root)
    rows, bad = [], []
    for number, raw in enumerate(data_root.read_text(file, errors="replace").splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            rel, label = _parse_path_label(text)
            line = validate_row(KineticsListLine, {"path": rel, "label": label})
            if num_classes is not None and label >= num_classes:
                raise ValueError(f"label {label} outside the {num_classes} classes (0..{num_classes - 1})")
            path = data_root.inside(root / line.path)
        except ValueError as err:
            bad.append(BadAnnotation(str(file), number, text, str(err)))
            continue
        rows.append((Sample(path, label, path.stem, number, root=root), text))
    return file, rows, bad


# --- official Kinetics layout ---------------------------------------------------------------------------------

_KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def kinetics_class_names(root: str | Path) -> list[str]:
    """Sorted class names of the official layout, from the training annotations (else all annotation files); a
    file they are read from without a ``label`` column raises a ValueError naming it (every split's labels would
    otherwise be unknown classes)."""
    annotations = Path(root) / "annotations"
    files = [annotations / "train.csv"] if (annotations / "train.csv").exists() else sorted(annotations.glob("*.csv"))
    data_root = DataRoot(root)
    names = set()
    for file in files:
        with data_root.open(file, newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is not None and "label" not in reader.fieldnames:
                raise ValueError(f"{file}: header {','.join(reader.fieldnames)} has no 'label' column; the class "
                                 f"names of every split are read from it (header: label,youtube_id,time_start,"
                                 f"time_end,split)")
            for row in reader:
                if row.get("label"):
                    names.add(row["label"].strip())
    return sorted(names)


def read_kinetics_official(root: str | Path, split: str) -> Result:
    """``<root>/annotations/<split>.csv`` (label,youtube_id,time_start,time_end,split) -> ``<root>/<split>/...mp4``."""
    check_split(split)
    root = Path(root)
    class_index = {name: i for i, name in enumerate(kinetics_class_names(root))}
    file, rows, bad = _kinetics_official_rows(root, split, class_index)
    # A video is its clip, <youtube_id>_<start>_<end>: the same clip in train/ and val/ is one video.
    train = train_rows(split, lambda: _kinetics_official_rows(root, "train", class_index))
    return one_per_video(file, rows, bad, lambda s: s.video_id, split, train)


def _kinetics_official_rows(root: Path, split: str, class_index: dict[str, int]) -> Rows:
    file = annotation_source("kinetics", root, split)
    data_root = DataRoot(root)
    rows, bad = [], []
    with data_root.open(file, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _KINETICS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            return file, [], [BadAnnotation(str(file), 1, ",".join(reader.fieldnames or []),
                                            f"header lacks {missing}")]
        for row in reader:
            number = reader.line_num
            text = ",".join(str(v) for v in row.values())[:200]
            try:
                clip = validate_row(KineticsRow, csv_fields(row))
                if clip.label not in class_index:
                    raise ValueError(f"unknown class {clip.label!r}")
                # '%06d' of the seconds, as the Kinetics download tool names the clips
                video_id = f"{clip.youtube_id}_{int(clip.time_start):06d}_{int(clip.time_end):06d}"
                path = data_root.inside(root / split / f"{video_id}.mp4")
            except ValueError as err:
                bad.append(BadAnnotation(str(file), number, text, str(err)))
                continue
            rows.append((Sample(path, class_index[clip.label], video_id, number, root=root), text))
    return file, rows, bad


# --- Something-Something V2 -----------------------------------------------------------------------------------

_SSV2_SPLIT_FILES = {"train": "train.json", "val": "validation.json"}


class SSV2Layout(NamedTuple):
    """Where a copy of Something-Something V2 keeps its files."""

    name: str  # "root" or "as shipped"
    annotations: Path  # the folder of labels.json, train.json and validation.json
    videos: Path  # the folder of <id>.webm


def ssv2_layout(root: str | Path) -> SSV2Layout:
    """The layout of an SSv2 root: "root" (labels.json, train.json, validation.json and videos/ in it) where it
    holds labels.json, else "as shipped" (the 20BN archives unpacked: labels/{labels,train,validation}.json and
    20bn-something-something-v2/) where it holds labels/labels.json, else "root", whose files are then reported
    missing. No other layout is guessed."""
    root = Path(root)
    if not (root / "labels.json").exists() and (root / "labels" / "labels.json").exists():
        return SSV2Layout("as shipped", root / "labels", root / "20bn-something-something-v2")
    return SSV2Layout("root", root, root / "videos")


def ssv2_label_index(root: str | Path) -> dict[str, int]:
    """labels.json: {"Moving something up": "93", ...} -> {"Moving something up": 93}; a file that is not such an
    object raises a ValueError naming it (every split needs it: there is nothing to skip)."""
    path = ssv2_layout(root).annotations / "labels.json"
    labels = read_json(DataRoot(root), path)
    if not isinstance(labels, dict):
        raise ValueError(f"{path}: expected one JSON object of template name -> class index, e.g. "
                         f'{{"Moving something up": "93"}}')
    try:
        index = SSV2_LABELS.validate_python(labels)
    except ValidationError as err:
        raise ValueError(f"{path}: {describe(err)}") from None
    _check_class_table(path, index)
    return index


def read_json(data_root: DataRoot, path: Path) -> Any:
    """The JSON document of ``path`` under ``data_root``; a ValueError naming the file (and line) if it is not one:
    broken, not UTF-8, nested too deeply for the parser or holding a number too long to read."""
    try:
        text = data_root.read_text(path)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte offset {err.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to read") from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise ValueError(f"{path}: not readable JSON ({err})") from None


def _check_class_table(path: Path, index: dict[str, int]) -> None:
    """A class table must give the indices 0..n-1 once each (a model has n outputs): a ValueError naming the file
    and the offending entries otherwise, as a gap makes a label out of range and a duplicate merges two classes."""
    names_of: dict[int, list[str]] = {}
    for name, value in index.items():
        names_of.setdefault(value, []).append(name)
    count = len(index)
    problems = [f"{name!r} has index {value}, outside 0..{count - 1}" for value, names in sorted(names_of.items())
                if not 0 <= value < count for name in names]
    problems += [f"index {value} is given to {' and '.join(map(repr, names))}"
                 for value, names in sorted(names_of.items()) if len(names) > 1]
    problems += [f"no class has index {value}" for value in range(count) if value not in names_of]
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise ValueError(f"{path}: the {count} classes must have the indices 0..{count - 1}, each once: {shown}")


def read_ssv2(root: str | Path, split: str) -> Result:
    """``{train,validation}.json`` entries -> ``<id>.webm`` videos, in either layout (``ssv2_layout``)."""
    check_split(split)
    label_index = ssv2_label_index(root)
    file, rows, bad = _ssv2_rows(root, split, label_index)
    train = train_rows(split, lambda: _ssv2_rows(root, "train", label_index))
    return one_per_video(file, rows, bad, lambda s: s.video_id, split, train)


def _ssv2_rows(root: str | Path, split: str, label_index: dict[str, int]) -> Rows:
    layout = ssv2_layout(root)
    file = layout.annotations / _SSV2_SPLIT_FILES[split]
    data_root = DataRoot(root)
    text = data_root.read_text(file, errors="replace")
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as err:  # a broken file is one bad "line": the place the parser stopped
        excerpt = err.doc[max(0, err.pos - 40):err.pos + 40]
        return file, [], [BadAnnotation(str(file), err.lineno, excerpt, f"invalid JSON: {err.msg}")]
    except (RecursionError, ValueError) as err:  # nested past the parser's depth, a number of too many digits
        reason = "JSON nested too deeply to read" if isinstance(err, RecursionError) else f"not readable JSON ({err})"
        return file, [], [BadAnnotation(str(file), 1, text[:80], reason)]
    if not isinstance(entries, list):
        return file, [], [BadAnnotation(str(file), 1, str(type(entries)), "expected a JSON list of entries")]
    rows, bad = [], []
    for number, item in enumerate(entries, start=1):
        shown = _json_excerpt(item)
        try:
            entry = validate_row(SSv2Entry, item)
            name = entry.template.replace("[", "").replace("]", "")
            if name not in label_index:
                raise ValueError(f"template {entry.template!r} not in labels.json")
            path = data_root.inside(layout.videos / f"{entry.id}.webm")
        except ValueError as err:
            bad.append(BadAnnotation(str(file), number, shown, str(err)))
            continue
        rows.append((Sample(path, label_index[name], entry.id, number, root=Path(root)), shown))
    return file, rows, bad


def _json_excerpt(item: Any) -> str:
    """An entry as text for a report, cut to 200 characters."""
    try:
        return json.dumps(item)[:200]
    except (RecursionError, ValueError):
        return repr(type(item))


# --- dispatch -------------------------------------------------------------------------------------------------

_READERS = {
    "kinetics_list": read_kinetics_list,
    "kinetics": read_kinetics_official,
    "ssv2": read_ssv2,
    "epic_kitchens100": read_epic_kitchens100,
    "pennaction": read_pennaction,
    "ntu60_xsub": functools.partial(read_ntu, version=60, protocol="xsub"),
    "ntu60_xview": functools.partial(read_ntu, version=60, protocol="xview"),
    "ntu120_xsub": functools.partial(read_ntu, version=120, protocol="xsub"),
    "ntu120_xset": functools.partial(read_ntu, version=120, protocol="xset"),
    "finegym99": read_finegym,
}


def detect_format(root: str | Path) -> str:
    """Guess the annotation format from the files under ``root`` (NTU roots need an explicit format: the
    protocol cannot be guessed)."""
    root = Path(root)
    if (root / "labels.json").exists() or (root / "labels" / "labels.json").exists():  # SSv2, either layout
        return "ssv2"
    if any((d / "EPIC_100_train.csv").exists() or (d / "EPIC_100_validation.csv").exists()
           for d in (root, root / "annotations")):
        return "epic_kitchens100"
    if (root / "labels").is_dir() and (root / "frames").is_dir():
        return "pennaction"
    if any(gym99_split_file(root, split).exists() for split in ("train", "val")):
        return "finegym99"
    if (root / "annotations").is_dir():
        return "kinetics"
    if (root / "train.csv").exists() or (root / "val.csv").exists():
        return "kinetics_list"
    raise FileNotFoundError(f"{root}: no labels.json, EPIC_100_*.csv, labels/+frames/, gym99_*_element*.txt, "
                            "annotations/ or train.csv/val.csv")


def read_annotations(format: str, root: str | Path, split: str,
                     num_classes: int | dict[str, int] | None = None) -> Result:
    """Read one split of a dataset in one of ``ANNOTATION_FORMATS``; returns (samples, bad_lines).

    ``num_classes``: the dataset's class count. The "path label" lists do not record theirs, so their labels are
    checked against it (a label at or above it is a bad line); the other formats check their labels against the
    class lists their own files define."""
    if format not in _READERS:
        raise ValueError(f"unknown annotation format {format!r}; known: {ANNOTATION_FORMATS}")
    if format == "kinetics_list":
        return read_kinetics_list(root, split, num_classes)
    return _READERS[format](root, split)


def annotation_source(format: str, root: str | Path, split: str) -> Path:
    """Where a split's samples are read from, for messages: its annotation file, or the folder whose files are
    the annotations (PennAction's labels/, an NTU root)."""
    check_split(split)
    root = Path(root)
    if format == "kinetics_list":
        return root / f"{split}.csv"
    if format == "kinetics":
        return root / "annotations" / f"{split}.csv"
    if format == "ssv2":
        return ssv2_layout(root).annotations / _SSV2_SPLIT_FILES[split]
    if format == "epic_kitchens100":
        return epic_file(root, EPIC_SPLIT_FILES[split])
    if format == "pennaction":
        return root / "labels"
    if format == "finegym99":
        return gym99_split_file(root, split)
    if format in _READERS:
        return root
    raise ValueError(f"unknown annotation format {format!r}; known: {ANNOTATION_FORMATS}")


def annotation_layout(format: str, root: str | Path) -> str | None:
    """Which of its layouts a dataset's root was found in, for formats read in more than one (SSv2: "root" or
    "as shipped"); None for the others."""
    return ssv2_layout(root).name if format == "ssv2" else None


def class_names(format: str, root: str | Path) -> list[str] | None:
    """Class names in label-index order where the format records them (the "path label" lists and NTU do not;
    EPIC has two lists: see ``class_counts``)."""
    if format == "ssv2":
        index = ssv2_label_index(root)
        return sorted(index, key=index.__getitem__)
    if format == "kinetics":
        return kinetics_class_names(root)
    if format == "pennaction":
        return list(PENNACTION_ACTIONS)
    return None


def class_counts(format: str, root: str | Path) -> int | dict[str, int] | None:
    """The class count the annotations define: an int, {"verb": V, "noun": N} for EPIC, None if not recorded."""
    if format == "epic_kitchens100":
        return {kind: len(names) for kind, names in epic_class_names(root).items()}
    if format.startswith("ntu"):
        return NTU_LIMITS[60 if format.startswith("ntu60") else 120][1]
    if format == "finegym99":
        return GYM99_CLASSES
    names = class_names(format, root)
    return len(names) if names else None
