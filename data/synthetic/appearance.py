"""synth_appearance (Kinetics-like, ``kinetics_list`` format): the class is the object's look and its drift is
class-independent, so one frame suffices, as on Kinetics (Motionformer, Sec. 4)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from data.synthetic.formats import write_kinetics_list
from data.synthetic.render import (
    add_distractor,
    background,
    composite,
    hsv_to_rgb,
    linear_path,
    render_object,
    to_uint8,
)
from data.synthetic.spec import GenerationParams, Progress, SyntheticSpec

# Colour family x shape. Four well-separated hues (HSV) and two shapes a 2x8x8 tubelet can tell apart; +-0.04 hue
# jitter keeps the families apart. (v1 had 2 hues x 4 similar shapes, which the tiny model could not learn within
# the embedded default's minutes: ~30% top-1 on 8 classes.)
_SHAPES = ("disk", "cross")
_COLOURS = {"red": 0.0, "yellow": 0.15, "green": 0.36, "blue": 0.62}
_CLASSES = tuple((c, s) for s in _SHAPES for c in _COLOURS)
_CLASS_NAMES = tuple(f"{c} {s}" for c, s in _CLASSES)


def _render(rng: np.random.Generator, label: int, size: int, num_frames: int) -> np.ndarray:
    colour_name, shape = _CLASSES[label]
    t = np.arange(num_frames, dtype=np.float32)
    frames = background(rng, size, num_frames)
    frames = add_distractor(rng, frames, size, t)
    # Motion is class-independent: any direction, any moderate speed, a slow random spin.
    heading, speed = rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 2.0)
    cx, cy = linear_path(rng, size, t, speed * math.cos(heading), speed * math.sin(heading))
    angle = rng.uniform(0, 2 * math.pi) + rng.uniform(-0.05, 0.05) * t
    mask = render_object(size, shape, cx, cy, angle, rng.uniform(5.5, 8.5))
    hue = (_COLOURS[colour_name] + rng.uniform(-0.04, 0.04)) % 1
    colour = hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.65, 1.0))
    return to_uint8(composite(frames, mask, colour))


def _write(root: Path, p: GenerationParams, progress: Progress) -> None:
    write_kinetics_list(root, p, progress, _render, _CLASS_NAMES)


SPEC = SyntheticSpec(
    name="synth_appearance",
    annotation_format="kinetics_list",
    num_classes=len(_CLASSES),
    class_names=_CLASS_NAMES,
    hflip_ok=True,
    description="object shape x colour classes; class-independent random drift, textured noisy background, "
    "grey distractor; one frame suffices",
    mimics="Kinetics-400",
    stands_in_for="Kinetics-400 (classes defined by appearance)",
    write=_write,
)
