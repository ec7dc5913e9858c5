"""What an annotation reader returns: a ``Sample`` per annotated video (or segment) and a ``BadAnnotation`` per line
that could not become one; and the rule every reader applies to a video annotated on several lines
(``one_per_video``: read once when the lines agree, left out when they differ)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

SPLITS = ("train", "val")


class Sample(NamedTuple):
    """One annotated video, or one annotated segment of a longer video."""

    path: Path  # a video file, or a folder of frames (PennAction)
    label: int | tuple[int, int]  # a class index, or (verb, noun) for verb/noun datasets (EPIC-KITCHENS)
    video_id: str
    line: int | None  # line (or JSON entry) in the annotation file, for error messages; 0 = the whole file
    segment: tuple[float, float] | None = None  # (start, stop) seconds of an untrimmed video; None = all of it
    pose: Path | None = None  # the pose file of this video (PennAction .mat, NTU .skeleton, FineGYM .npz)
    fps: float | None = None  # the rate of a frame folder that the dataset records beside it (EPIC's rgb_frames)
    root: Path | None = None  # the data root it was read from: its files (a folder's frames too) may not leave it


class BadAnnotation(NamedTuple):
    """An annotation line that could not be turned into a Sample."""

    file: str
    line_number: int
    text: str
    reason: str

    def as_dict(self) -> dict[str, str | int]:
        return {"file": self.file, "line": self.line_number, "reason": self.reason, "text": self.text}


Result = tuple[list[Sample], list[BadAnnotation]]
Rows = tuple[Path, list[tuple[Sample, str]], list[BadAnnotation]]  # (file, parsed lines with their text, bad lines)


def check_split(split: str) -> None:
    """Refuse a split that is not one of ``SPLITS``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def train_rows(split: str, read_train) -> Rows | None:
    """The training split's parsed lines, to check a held-out split against; None for "train" itself or when
    there is no training file (evaluating alone)."""
    if split == "train":
        return None
    try:
        return read_train()
    except FileNotFoundError:
        return None


def one_per_video(file: Path, rows: list[tuple[Sample, str]], bad: list[BadAnnotation], video_of, split: str,
                   train: Rows | None = None, what: str = "video") -> Result:
    """The samples of ``rows`` with at most one per video (``video_of(sample)``), the others as bad lines.

    Lines that say the same about a video (label, segment, file) are read once, the repeats reported. Lines that
    differ leave the video out, each reported naming the others: keeping the first would train half of such
    conflicts on the wrong label, silently. Videos of ``split`` that ``train``'s lines hold too are kept, and named
    in one warning. ``what`` names a sample in the reasons ("video", "narration")."""
    lines_of: dict[object, list[Sample]] = {}
    for sample, _ in rows:
        lines_of.setdefault(video_of(sample), []).append(sample)
    in_train: dict[object, int] = {}
    if train is not None:
        for sample, _ in train[1]:
            in_train.setdefault(video_of(sample), sample.line)
    samples, out, trained_on = [], list(bad), []
    for sample, text in rows:
        video = video_of(sample)
        group = lines_of[video]
        first = group[0]
        differing = [d for d in (_difference(sample, other) for other in group if other is not sample) if d]
        if differing:
            shown = "; ".join(differing[:5]) + (f"; and {len(differing) - 5} more" if len(differing) > 5 else "")
            out.append(BadAnnotation(str(file), sample.line, text, f"{what} {sample.video_id} is annotated "
                                     f"differently on another line ({shown}): left out, which is right is unknown"))
        elif sample is not first:
            out.append(BadAnnotation(str(file), sample.line, text, f"{what} {sample.video_id} repeats line "
                                     f"{first.line}: read once"))
        else:
            samples.append(sample)
            if video in in_train:
                trained_on.append(f"line {sample.line} ({sample.video_id}, {train[0].name}:{in_train[video]})")
    if trained_on:
        shown = ", ".join(trained_on[:5]) + (f" and {len(trained_on) - 5} more" if len(trained_on) > 5 else "")
        log.warning("%s: %d %s(s) of the %s split are in the training split %s too, so its scores count %ss trained "
                    "on: %s", file, len(trained_on), what, split, train[0], what, shown)
    return samples, sorted(out, key=lambda b: b.line_number)


def _difference(sample: Sample, other: Sample) -> str:
    """How two lines of one video disagree, e.g. "label 3 here, 5 on line 2"; "" if they agree."""
    fields = [(name, getattr(sample, name), getattr(other, name)) for name in ("label", "segment", "path")]
    return ", ".join(f"{name} {mine} here, {theirs} on line {other.line}"
                     for name, mine, theirs in fields if mine != theirs)
