"""The spec and the writer's parameters live apart from the registry, so that each set's module can declare its
own spec and writer without importing the package that collects them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Progress = Callable[[int], None]  # called with the samples just written (videos, or action segments)


@dataclass(frozen=True)
class GenerationParams:
    """What ``generate_synthetic`` hands a set's writer; the field order is that of ``synthetic.json``."""

    num_train: int  # samples: videos, or action segments for sets of untrimmed videos
    num_val: int
    seed: int
    num_classes: int
    size: int  # frame height and width in pixels
    num_video_frames: int  # per video, or per action segment for sets of untrimmed videos
    fps: int


@dataclass(frozen=True)
class SyntheticSpec:
    """What a synthetic set is, which real dataset it imitates, and how it is written."""

    name: str
    annotation_format: str  # "kinetics_list" | "ssv2" | "epic_kitchens100" | "pennaction" (see data.annotations)
    num_classes: int  # the most classes the set can have; generate_synthetic(num_classes=k) keeps the first k
    class_names: tuple[str, ...]
    hflip_ok: bool  # False where a horizontal flip changes the label
    description: str
    mimics: str
    stands_in_for: str  # what the set replaces, as the reports' headers say it
    write: Callable[[Path, GenerationParams, Progress], None] = field(repr=False, compare=False)  # the files
    verb_names: tuple[str, ...] = ()  # verb-noun sets: class_names are the (verb, noun) actions, verb-major
    noun_names: tuple[str, ...] = ()
