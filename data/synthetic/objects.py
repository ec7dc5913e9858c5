"""synth_objects (Kinetics stand-in at the tiny scale of docs/tiny_regime_design.md, ``kinetics_list``
format): 40 classes = 5 shapes x 8 hues. Neighbouring hues are 0.125 apart on the hue circle under a +-0.04 jitter
(the image stand-in's ``HUES`` and ``HUE_JITTER``), so neighbours are close but apart, and many classes are near
neighbours of others, as Kinetics' 400 are. Drift (any direction and speed), scale, rotation, saturation,
brightness and background are drawn alike for every class, and each video carries a smaller drifting distractor of
another class: the class is what the main object looks like, so one frame suffices, as on Kinetics.

Object scales are the image stand-in's (``synth_images``: radius 0.15-0.35 of the frame, distractor 0.08-0.14),
so the image-pretrained backbones see objects of the size they were pretrained on.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from data.synthetic.formats import write_kinetics_list
from data.synthetic.images import HUE_JITTER, HUES
from data.synthetic.render import background, composite, hsv_to_rgb, linear_path, render_object, to_uint8
from data.synthetic.spec import GenerationParams, Progress, SyntheticSpec

# Five shapes that stay apart at 32 px under any rotation: the disk has no corners, the square four, the triangle
# three, the cross is concave and the ring has a hole. (synth_images' ell, bar and tee are left out: like the cross
# they are made of bars, and at the smallest scale, about 10 px across, their arms blur into the cross's.)
SHAPES = ("disk", "square", "triangle", "cross", "ring")
HUE_NAMES = ("red", "orange", "chartreuse", "green", "cyan", "azure", "violet", "rose")  # HUES[k] = k / 8
CLASSES = tuple((shape, hue) for shape in SHAPES for hue in range(len(HUES)))  # shape-major, as synth_images
CLASS_NAMES = tuple(f"{HUE_NAMES[hue]} {shape}" for shape, hue in CLASSES)
MAIN_RADIUS = (0.15, 0.35)  # fractions of the frame side, as synth_images
DISTRACTOR_RADIUS = (0.08, 0.14)


def _colour(rng: np.random.Generator, hue_index: int) -> np.ndarray:
    hue = (HUES[hue_index] + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 1.0
    return hsv_to_rgb(hue, rng.uniform(0.6, 0.95), rng.uniform(0.6, 0.95))  # saturation, brightness


def _drifting(rng: np.random.Generator, size: int, t: np.ndarray, shape: str, radius: float, speed: tuple
              ) -> np.ndarray:
    """Soft masks of a shape drifting in a random direction at a random speed (px/frame), spinning slowly."""
    heading, pace = rng.uniform(0, 2 * math.pi), rng.uniform(*speed)
    cx, cy = linear_path(rng, size, t, pace * math.cos(heading), pace * math.sin(heading))
    angle = rng.uniform(0, 2 * math.pi) + rng.uniform(-0.05, 0.05) * t
    return render_object(size, shape, cx, cy, angle, radius)


def _render(rng: np.random.Generator, label: int, size: int, num_frames: int) -> np.ndarray:
    t = np.arange(num_frames, dtype=np.float32)
    frames = background(rng, size, num_frames)
    other = (label + int(rng.integers(1, len(CLASSES)))) % len(CLASSES)  # any class but the label
    # The distractor drifts slowly and is drawn first, so the labelled object passes over it.
    for drawn, radius, speed in ((other, DISTRACTOR_RADIUS, (0.0, 0.5)), (label, MAIN_RADIUS, (0.5, 2.0))):
        shape, hue = CLASSES[drawn]
        mask = _drifting(rng, size, t, shape, rng.uniform(*radius) * size, speed)
        frames = composite(frames, mask, _colour(rng, hue))
    return to_uint8(frames)


def _write(root: Path, p: GenerationParams, progress: Progress) -> None:
    write_kinetics_list(root, p, progress, _render, CLASS_NAMES)


SPEC = SyntheticSpec(
    name="synth_objects",
    annotation_format="kinetics_list",
    num_classes=len(CLASSES),
    class_names=CLASS_NAMES,
    hflip_ok=True,
    description="40 object classes (5 shapes x 8 hues 0.125 apart, hue jitter +-0.04); class-independent drift, "
    "scale, brightness and background; a smaller distractor of another class; one frame suffices",
    mimics="Kinetics-400",
    stands_in_for="Kinetics-400 (many near-neighbour classes defined by appearance)",
    write=_write,
)
