"""Readers for the published annotation formats of the datasets the papers use.

Every reader returns ``(samples, bad_lines)``: a malformed line never stops a reader, it is recorded as a
``BadAnnotation`` naming the file and line so that a run's data report can list it.

Formats (``read_annotations(format, root, split)``):

* ``"kinetics_list"``: the "path label" lists of PySlowFast/Motionformer: ``<root>/<split>.csv``, one
  ``relative/path.mp4 label_index`` per line (a comma also separates). Paths are relative to ``root``.
* ``"kinetics"``: the official Kinetics release: ``<root>/annotations/<split>.csv`` with header
  ``label,youtube_id,time_start,time_end,split``; videos at
  ``<root>/<split>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4``; label indices follow the sorted class names
  of the training annotations (so train and val agree).
* ``"ssv2"``: Something-Something V2: ``<root>/labels.json`` ({"class name": "index"}), ``<root>/train.json`` and
  ``<root>/validation.json`` (lists of {"id", "label", "template", "placeholders"}), videos ``<root>/videos/<id>.webm``.
  The class is the ``template`` with "[" and "]" removed. JSON entries are numbered from 1 in place of lines.

Splits are "train" and "val" (Kinetics "val", SSv2 "validation").
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import NamedTuple

ANNOTATION_FORMATS = ("kinetics_list", "kinetics", "ssv2")
SPLITS = ("train", "val")


class Sample(NamedTuple):
    """One annotated video."""

    path: Path
    label: int
    video_id: str
    line: int | None  # line (or JSON entry) in the annotation file, for error messages


class BadAnnotation(NamedTuple):
    """An annotation line that could not be turned into a Sample."""

    file: str
    line_number: int
    text: str
    reason: str

    def as_dict(self) -> dict[str, str | int]:
        return {"file": self.file, "line": self.line_number, "reason": self.reason, "text": self.text}


Result = tuple[list[Sample], list[BadAnnotation]]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


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


def read_kinetics_list(root: str | Path, split: str) -> Result:
    """``<root>/<split>.csv`` of '<relative path> <label index>' lines."""
    _check_split(split)
    root = Path(root)
    file = root / f"{split}.csv"
    samples, bad = [], []
    for number, raw in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            rel, label = _parse_path_label(text)
        except ValueError as err:
            bad.append(BadAnnotation(str(file), number, text, str(err)))
            continue
        path = root / rel
        samples.append(Sample(path, label, Path(rel).stem, number))
    return samples, bad


# --- official Kinetics layout ---------------------------------------------------------------------------------

_KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def kinetics_class_names(root: str | Path) -> list[str]:
    """Sorted class names of the official layout, from the training annotations (else all annotation files)."""
    annotations = Path(root) / "annotations"
    files = [annotations / "train.csv"] if (annotations / "train.csv").exists() else sorted(annotations.glob("*.csv"))
    names = set()
    for file in files:
        with open(file, newline="", encoding="utf-8", errors="replace") as handle:
            for row in csv.DictReader(handle):
                if row.get("label"):
                    names.add(row["label"].strip())
    return sorted(names)


def read_kinetics_official(root: str | Path, split: str) -> Result:
    """``<root>/annotations/<split>.csv`` (label,youtube_id,time_start,time_end,split) -> ``<root>/<split>/...mp4``."""
    _check_split(split)
    root = Path(root)
    file = root / "annotations" / f"{split}.csv"
    class_index = {name: i for i, name in enumerate(kinetics_class_names(root))}
    samples, bad = [], []
    with open(file, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _KINETICS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            return [], [BadAnnotation(str(file), 1, ",".join(reader.fieldnames or []), f"header lacks {missing}")]
        for row in reader:
            number = reader.line_num
            text = ",".join(str(v) for v in row.values())
            try:
                label = (row["label"] or "").strip()
                if label not in class_index:
                    raise ValueError(f"unknown class {label!r}")
                youtube_id = (row["youtube_id"] or "").strip()
                if not youtube_id:
                    raise ValueError("empty youtube_id")
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except (ValueError, TypeError, AttributeError) as err:
                bad.append(BadAnnotation(str(file), number, text, str(err)))
                continue
            video_id = f"{youtube_id}_{start:06d}_{end:06d}"
            samples.append(Sample(root / split / f"{video_id}.mp4", class_index[label], video_id, number))
    return samples, bad


# --- Something-Something V2 -----------------------------------------------------------------------------------

_SSV2_SPLIT_FILES = {"train": "train.json", "val": "validation.json"}


def ssv2_label_index(root: str | Path) -> dict[str, int]:
    """labels.json: {"Moving something up": "93", ...} -> {"Moving something up": 93}."""
    return {name: int(index) for name, index in json.loads((Path(root) / "labels.json").read_text()).items()}


def read_ssv2(root: str | Path, split: str) -> Result:
    """``<root>/{train,validation}.json`` entries -> ``<root>/videos/<id>.webm``."""
    _check_split(split)
    root = Path(root)
    file = root / _SSV2_SPLIT_FILES[split]
    label_index = ssv2_label_index(root)
    try:
        entries = json.loads(file.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as err:  # a broken file is one bad "line": the place the parser stopped
        excerpt = err.doc[max(0, err.pos - 40):err.pos + 40]
        return [], [BadAnnotation(str(file), err.lineno, excerpt, f"invalid JSON: {err.msg}")]
    if not isinstance(entries, list):
        return [], [BadAnnotation(str(file), 1, str(type(entries)), "expected a JSON list of entries")]
    samples, bad = [], []
    for number, entry in enumerate(entries, start=1):
        try:
            video_id = str(entry["id"]).strip()
            if not video_id:
                raise ValueError("empty id")
            name = entry["template"].replace("[", "").replace("]", "")
            if name not in label_index:
                raise ValueError(f"template {entry['template']!r} not in labels.json")
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            reason = f"missing key {err}" if isinstance(err, KeyError) else str(err)
            bad.append(BadAnnotation(str(file), number, json.dumps(entry)[:200], reason))
            continue
        samples.append(Sample(root / "videos" / f"{video_id}.webm", label_index[name], video_id, number))
    return samples, bad


_READERS = {"kinetics_list": read_kinetics_list, "kinetics": read_kinetics_official, "ssv2": read_ssv2}


def detect_format(root: str | Path) -> str:
    """Guess the annotation format from the files under ``root``."""
    root = Path(root)
    if (root / "labels.json").exists():
        return "ssv2"
    if (root / "annotations").is_dir():
        return "kinetics"
    if (root / "train.csv").exists() or (root / "val.csv").exists():
        return "kinetics_list"
    raise FileNotFoundError(f"{root}: no labels.json, annotations/ or train.csv/val.csv")


def read_annotations(format: str, root: str | Path, split: str) -> Result:
    """Read one split of a dataset in one of ``ANNOTATION_FORMATS``; returns (samples, bad_lines)."""
    if format not in _READERS:
        raise ValueError(f"unknown annotation format {format!r}; known: {ANNOTATION_FORMATS}")
    return _READERS[format](root, split)


def class_names(format: str, root: str | Path) -> list[str] | None:
    """Class names in label-index order where the format records them (the "path label" lists do not)."""
    if format == "ssv2":
        index = ssv2_label_index(root)
        return sorted(index, key=index.__getitem__)
    if format == "kinetics":
        return kinetics_class_names(root)
    return None
