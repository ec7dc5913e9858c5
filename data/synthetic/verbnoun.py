"""synth_verbnoun (EPIC-KITCHENS-100-like, ``epic_kitchens100`` layout): untrimmed videos of 3-5 action segments
(the last of a split holds what is left, 1 or more), so the segment and verb/noun paths run without the real data.
The noun (an object's look) is decidable from one frame, the verb (its motion, as in synth_motion) is not.
``num_train``/``num_val`` count segments."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from data.atomic_write import open_replacing
from data.synthetic.render import (
    add_distractor,
    background,
    composite,
    hsv_to_rgb,
    linear_path,
    render_object,
    to_uint8,
)
from data.synthetic.seeding import LABELS, SEGMENT_COUNTS, balanced_labels, split_rng, video_rng
from data.synthetic.spec import GenerationParams, Progress, SyntheticSpec
from data.video_io import write_video

# Verbs are the synth_motion motions, keyed like EPIC verbs; nouns are object identities (shape x colour, keyed
# "noun:modifier" like EPIC's "pan:dust"). Shapes without rotational symmetry below 90 degrees, so turning is
# visible; hues well apart, as in the appearance set.
_VERBS = (
    ("move-right", "translate", (1, 0, 0)),
    ("move-left", "translate", (-1, 0, 0)),
    ("lift", "translate", (0, -1, 0)),
    ("lower", "translate", (0, 1, 0)),
    ("turn-clockwise", "rotate", (0, 0, 1)),
    ("turn-anticlockwise", "rotate", (0, 0, -1)),
)
_NOUNS = (  # (EPIC-style key, shape, hue)
    ("triangle:red", "triangle", 0.0),
    ("triangle:blue", "triangle", 0.62),
    ("cross:red", "cross", 0.0),
    ("cross:blue", "cross", 0.62),
    ("ell:green", "ell", 0.36),
)
_OBJECTS = 3
_GAP_FRAMES = (2, 7)  # idle frames before each segment: [low, high)

EPIC_CSV_HEADER = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                   "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                   "noun_class", "all_nouns", "all_noun_classes")
EPIC_CLASSES_HEADER = ("id", "key", "instances", "category")
_PARTICIPANTS = 4  # videos go round-robin to P01..P04


def _move_objects(rng: np.random.Generator, frames: np.ndarray, size: int, motion: tuple[int, int, int],
                  looks: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Composite objects (shape, colour) that move together by ``motion`` onto frames (T, H, W, 3).

    The same kinematics as synth_motion (speed, spin, toroidal wrap), so each frame's object positions and
    orientations have the same distribution for every motion."""
    dx, dy, spin = motion
    t = np.arange(len(frames), dtype=np.float32)
    speed, spin_rate = rng.uniform(0.6, 1.2), math.radians(rng.uniform(5, 9))
    for shape, colour in looks:
        cx, cy = linear_path(rng, size, t, dx * speed, dy * speed)
        angle = rng.uniform(0, 2 * math.pi) + spin * spin_rate * t
        frames = composite(frames, render_object(size, shape, cx, cy, angle, rng.uniform(4.0, 6.5)), colour)
    return frames


def _render_video(rng: np.random.Generator, actions: list[tuple[int, int]], size: int,
                  segment_frames: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One untrimmed video: idle gap, segment, idle gap, segment, ..., idle gap.

    Returns the frames (T, H, W, 3) uint8 and each segment's frame range [first, stop). The scene (background
    texture, grey distractor) is the same for the whole video, as in a kitchen; only during a segment do the
    labelled objects appear and move."""
    gaps = rng.integers(*_GAP_FRAMES, size=len(actions) + 1)
    total = int(gaps.sum()) + len(actions) * segment_frames
    frames = add_distractor(rng, background(rng, size, total), size, np.arange(total, dtype=np.float32))
    ranges, first = [], 0
    for (verb, noun), gap in zip(actions, gaps):
        first += int(gap)
        _, shape, hue = _NOUNS[noun]
        looks = []
        for _ in range(_OBJECTS):  # copies of one object: same shape and colour family
            colour = hsv_to_rgb((hue + rng.uniform(-0.04, 0.04)) % 1, rng.uniform(0.7, 1.0), rng.uniform(0.65, 1.0))
            looks.append((shape, colour))
        stop = first + segment_frames
        frames[first:stop] = _move_objects(rng, frames[first:stop], size, _VERBS[verb][2], looks)
        ranges.append((first, stop))
        first = stop
    return to_uint8(frames), ranges


def _epic_timestamp(milliseconds: int) -> str:
    """EPIC-KITCHENS ``HH:MM:SS.fff``."""
    seconds, ms = divmod(milliseconds, 1000)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{ms:03d}"


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list]) -> None:
    with open_replacing(path, "w", sync=False, newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_split(root: Path, split: str, count: int, p: GenerationParams, video_counters: dict[str, int],
                 progress: Progress) -> None:
    """``count`` action segments in untrimmed videos of 3-5 segments (the last: what is left, 1 or more), and their
    EPIC_100_<split>.csv.

    A segment spanning frames [first, stop) (0-based) gets start_timestamp = first / fps rounded up and
    stop_timestamp = stop / fps rounded down to the millisecond, so decoding [start, stop) yields exactly its
    frames; start_frame/stop_frame are its first and last frame, 1-based (inclusive), as EPIC's frame files."""
    label_rng = split_rng(p.seed, split, LABELS)
    verbs = balanced_labels(label_rng, count, len(_VERBS))
    nouns = balanced_labels(label_rng, count, len(_NOUNS))
    lengths_rng = split_rng(p.seed, split, SEGMENT_COUNTS)
    rows, index, video_index = [], 0, 0
    while index < count:
        segments = min(int(lengths_rng.integers(3, 6)), count - index)
        participant = f"P{video_index % _PARTICIPANTS + 1:02d}"
        video_counters[participant] = video_counters.get(participant, 0) + 1
        video_id = f"{participant}_{video_counters[participant]:02d}"
        actions = list(zip(verbs[index:index + segments], nouns[index:index + segments]))
        frames, ranges = _render_video(video_rng(p.seed, split, video_index), actions, p.size, p.num_video_frames)
        path = root / participant / "videos" / f"{video_id}.MP4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, frames, p.fps)
        for k, ((verb, noun), (first, stop)) in enumerate(zip(actions, ranges)):
            start_ms, stop_ms = -(-first * 1000 // p.fps), stop * 1000 // p.fps
            verb_key, noun_key = _VERBS[verb][0], _NOUNS[noun][0]
            rows.append([f"{video_id}_{k}", participant, video_id, _epic_timestamp(start_ms),
                         _epic_timestamp(start_ms), _epic_timestamp(stop_ms), first + 1, stop,
                         f"{verb_key} {noun_key}", verb_key, verb, noun_key, noun, f"['{noun_key}']", f"[{noun}]"])
        index += segments
        video_index += 1
        progress(segments)
    _write_csv(root / f"EPIC_100_{'train' if split == 'train' else 'validation'}.csv", EPIC_CSV_HEADER, rows)


def _write_classes(root: Path) -> None:
    """EPIC_100_verb_classes.csv / EPIC_100_noun_classes.csv: id, key, instances (the key's synonyms), category."""
    _write_csv(root / "EPIC_100_verb_classes.csv", EPIC_CLASSES_HEADER,
               [[i, key, f"['{key}']", category] for i, (key, category, _) in enumerate(_VERBS)])
    _write_csv(root / "EPIC_100_noun_classes.csv", EPIC_CLASSES_HEADER,
               [[i, key, f"['{key}']", "shape"] for i, (key, _, _) in enumerate(_NOUNS)])


def _write(root: Path, p: GenerationParams, progress: Progress) -> None:
    video_counters: dict[str, int] = {}  # per participant, across splits: video ids are unique in the set
    _write_split(root, "train", p.num_train, p, video_counters, progress)
    _write_split(root, "val", p.num_val, p, video_counters, progress)
    _write_classes(root)


SPEC = SyntheticSpec(
    name="synth_verbnoun",
    annotation_format="epic_kitchens100",
    num_classes=len(_VERBS) * len(_NOUNS),
    class_names=tuple(f"{verb} {noun}" for verb, _, _ in _VERBS for noun, _, _ in _NOUNS),
    hflip_ok=False,
    description="untrimmed videos of 3-5 action segments; verb = the motion of three copies of one object "
    "(as synth_motion: single frames are at chance for the verb), noun = that object's shape x colour "
    "(decidable from one frame); verb and noun drawn independently",
    mimics="EPIC-KITCHENS-100",
    stands_in_for="EPIC-KITCHENS-100 (verb = motion, noun = object, on untrimmed videos)",
    write=_write,
    verb_names=tuple(verb for verb, _, _ in _VERBS),
    noun_names=tuple(noun for noun, _, _ in _NOUNS),
)
