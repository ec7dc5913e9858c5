"""synth_motion (SSv2-like, ``ssv2`` format): the class is the motion alone. Looks, sizes, start positions and
orientations share one distribution across classes and positions wrap around (a torus), so every single frame has
the same distribution in every class: one frame is at chance by construction, as appearance fails on
Something-Something V2 (Motionformer, Sec. 4)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from data.synthetic.formats import write_ssv2
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

# SSv2 templates. Each is (vx, vy, spin sign) up to a random speed.
_CLASSES = (
    ("Moving [something] from left to right", (1, 0, 0)),
    ("Moving [something] from right to left", (-1, 0, 0)),
    ("Moving [something] up", (0, -1, 0)),
    ("Moving [something] down", (0, 1, 0)),
    ("Turning [something] clockwise", (0, 0, 1)),
    ("Turning [something] counterclockwise", (0, 0, -1)),
)
_SHAPES = ("square", "triangle", "cross", "ell")  # no disk: its rotation would be invisible
_OBJECTS = 3
_SHAPE_WORDS = {"square": "a square", "triangle": "a triangle", "cross": "a cross", "ell": "an L-shape"}


def _render(rng: np.random.Generator, label: int, size: int, num_frames: int) -> tuple[np.ndarray, str]:
    """Frames (T, H, W, 3) uint8 and the words for the first object, SSv2's placeholder."""
    _, (dx, dy, spin) = _CLASSES[label]
    t = np.arange(num_frames, dtype=np.float32)
    frames = background(rng, size, num_frames)
    frames = add_distractor(rng, frames, size, t)
    # Several objects move coherently (one direction, one speed, like a camera-independent flock), so the motion
    # cue is spread over many tokens; their looks are drawn identically for every class: only the motion below
    # depends on the label. (v1 had one object: the tiny model learned its direction only by luck of the init.)
    # px/frame: 2.4-4.8 px between sampled frames (segment sampling of 8 from 32 frames steps ~4), so a 2-frame
    # tubelet sees an object shift within its 8x8 patch.
    speed = rng.uniform(0.6, 1.2)
    # Per frame. Segment sampling of 8 from 32 frames steps ~4 frames: 20-36 deg, under the 45 deg at which a
    # square's or cross's 90-degree symmetry would make clockwise and counter-clockwise look alike.
    spin_rate = math.radians(rng.uniform(5, 9))
    things = []
    for _ in range(_OBJECTS):
        shape = _SHAPES[rng.integers(len(_SHAPES))]
        colour = hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.5, 0.95), rng.uniform(0.6, 1.0))
        cx, cy = linear_path(rng, size, t, dx * speed, dy * speed)  # uniform start + wrap: uniform in every frame
        # y grows downwards, so a positive angle turns clockwise on screen.
        angle = rng.uniform(0, 2 * math.pi) + spin * spin_rate * t
        frames = composite(frames, render_object(size, shape, cx, cy, angle, rng.uniform(4.0, 6.5)), colour)
        things.append(_SHAPE_WORDS[shape])
    return to_uint8(frames), things[:1]  # SSv2's one placeholder: the first object


def _write(root: Path, p: GenerationParams, progress: Progress) -> None:
    write_ssv2(root, p, progress, _render, [template for template, _ in _CLASSES], SPEC.class_names)


SPEC = SyntheticSpec(
    name="synth_motion",
    annotation_format="ssv2",
    num_classes=len(_CLASSES),
    class_names=tuple(template.replace("[", "").replace("]", "") for template, _ in _CLASSES),
    hflip_ok=False,
    description="motion-only classes (three objects translate left/right/up/down or turn cw/ccw together) with "
    "class-independent appearance and toroidal wrap-around: single frames are at chance by construction",
    mimics="Something-Something V2",
    stands_in_for="Something-Something V2 (classes defined by motion only)",
    write=_write,
)
