"""The annotation layouts the trimmed sets are written in, shared by every set of that layout: Kinetics' path-label
lists (``synth_appearance``, ``synth_objects``) and Something-Something V2's JSON (``synth_motion``,
``synth_motion_pairs``). A set supplies its renderer and class names; the files, their names and the labels' order
are the layout's."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from data.atomic_write import atomic_write_text
from data.synthetic.seeding import LABELS, balanced_labels, split_rng, video_rng
from data.synthetic.spec import GenerationParams, Progress
from data.video_io import write_video

# (rng, label, size, frames) -> (T, H, W, 3) uint8 frames; an SSv2 renderer also returns its placeholders' words
Render = Callable[[np.random.Generator, int, int, int], np.ndarray]
RenderWithWords = Callable[[np.random.Generator, int, int, int], tuple[np.ndarray, list[str]]]


def write_kinetics_list(root: Path, p: GenerationParams, progress: Progress, render: Render,
                        class_names: Sequence[str]) -> None:
    """``{split}/<class name>/{split}_NNNNN.mp4`` and ``{split}.csv`` lines ``path label`` for train and val."""
    for split, count in (("train", p.num_train), ("val", p.num_val)):
        labels = balanced_labels(split_rng(p.seed, split, LABELS), count, p.num_classes)
        lines = []
        for index, label in enumerate(labels):
            rel = Path(split) / class_names[label].replace(" ", "_") / f"{split}_{index:05d}.mp4"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            write_video(root / rel, render(video_rng(p.seed, split, index), label, p.size, p.num_video_frames),
                        p.fps)
            lines.append(f"{rel.as_posix()} {label}\n")
            progress(1)
        atomic_write_text(root / f"{split}.csv", "".join(lines), sync=False)


def fill(template: str, things: Sequence[str]) -> str:
    """SSv2's label: the template with its placeholders replaced in order."""
    for thing in things:
        template = template.replace("[something]", thing, 1)
    return template


def write_ssv2(root: Path, p: GenerationParams, progress: Progress, render: RenderWithWords,
               templates: Sequence[str], class_names: Sequence[str]) -> None:
    """``labels.json``, ``videos/<id>.webm`` (ids from 1, training videos first) and ``train.json`` /
    ``validation.json`` entries with each video's template and placeholders, as SSv2 releases them."""
    labels_json = {name: str(i) for i, name in enumerate(class_names[:p.num_classes])}
    atomic_write_text(root / "labels.json", json.dumps(labels_json, indent=1), sync=False)
    (root / "videos").mkdir(exist_ok=True)
    first_id = 1
    for split, count in (("train", p.num_train), ("val", p.num_val)):
        labels = balanced_labels(split_rng(p.seed, split, LABELS), count, p.num_classes)
        entries = []
        for index, label in enumerate(labels):
            video_id = str(first_id + index)
            frames, things = render(video_rng(p.seed, split, index), label, p.size, p.num_video_frames)
            write_video(root / "videos" / f"{video_id}.webm", frames, p.fps)
            entries.append({"id": video_id, "label": fill(templates[label], things), "template": templates[label],
                            "placeholders": list(things)})
            progress(1)
        name = "train.json" if split == "train" else "validation.json"
        atomic_write_text(root / name, json.dumps(entries, indent=1), sync=False)
        first_id += count
