"""synth_motion_pairs (Something-Something V2 stand-in at the tiny scale of docs/tiny_regime_design.md,
``ssv2`` format): 12 classes in 6 time-reversed pairs, as many SSv2 templates are another played backwards:
left/right, up/down, clockwise/counterclockwise, towards/away from the camera (growing/shrinking), closer
to/away from another object, and behind/from behind an opaque box.

Every clip of every class shows the same scene: a dark opaque box, an object A beside or behind it, an object B
anywhere, and an object C beside B, over a textured background. Five things can move: the foreground as a whole
(x or y, wrapping around the borders: a torus), B's angle, B's size, C's distance to B and A's distance to the
box. Each is drawn in every clip with a path from its start to its end state, from one distribution for all
classes. The class picks one of them, which runs along its path over the clip, forwards or backwards (the two
classes of a pair); every other one rests at the state of a uniformly random frame of its own path. Hence:

- one frame at a uniformly random time has the same distribution in all 12 classes, as rendered exactly (the
  codec's artefacts aside): each of the five is at its path's state at a uniformly random frame, independently of
  the others, whichever of them moves. So the pairs cannot be told apart from one frame either, not only the two
  classes of a pair: every class shows the box, three objects, and sizes, distances and occlusions from the same
  ranges.
- reversing time maps one class of a pair exactly onto the other's distribution (the frames' noise is i.i.d.);
  so any unordered set of a clip's frames has the same distribution in both classes of a pair. It does tell the
  pairs apart, as it must: it shows which of the five moves. An ordered pair of frames tells the class.
- a frame at a known time is not free of the class: the first frame of "Putting ... behind ..." shows A, that of
  "Pulling ... from behind of ..." hides it, as in SSv2 itself.

Paths are set per clip, not per frame, so a 32-frame clip sampled at 8 frames moves as an 8-frame clip does.
Pixel scales are for the tiny 40-px frames; smaller frames are refused (``MIN_SIZE``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.atomic_write import atomic_write_text
from data.synthetic.formats import write_ssv2
from data.synthetic.render import background, composite, hsv_to_rgb, render_object, to_uint8
from data.synthetic.spec import GenerationParams, Progress, SyntheticSpec

# (SSv2 template, what moves along its path, direction). The two classes of a pair are adjacent, so num_classes=k
# keeps whole pairs for even k. The single placeholder is B (the foreground moves as a whole in left/right, up/down).
# All but four are SSv2's own templates; "Moving ... from left to right" (SSv2: Pushing/Pulling ...) and "Turning
# ... clockwise" (none in SSv2) are synth_motion's names for the same motions, as no hand pushes here.
CLASSES = (
    ("Moving [something] from left to right", "shift_x", 1),
    ("Moving [something] from right to left", "shift_x", -1),
    ("Moving [something] up", "shift_y", -1),  # y grows downwards
    ("Moving [something] down", "shift_y", 1),
    ("Turning [something] clockwise", "turn", 1),  # y down: a growing angle turns clockwise on screen
    ("Turning [something] counterclockwise", "turn", -1),
    ("Moving [something] towards the camera", "scale", 1),  # only B grows: not the camera approaching
    ("Moving [something] away from the camera", "scale", -1),
    ("Moving [something] closer to [something]", "gap", 1),  # C to B
    ("Moving [something] away from [something]", "gap", -1),
    ("Putting [something] behind [something]", "cover", 1),  # A behind the box
    ("Pulling [something] from behind of [something]", "cover", -1),
)
MOVERS = ("shift_x", "shift_y", "turn", "scale", "gap", "cover")
# The thing each mover moves, whose box an attention tracking score follows (docs/attention_tracking.md): B, the
# placeholder, for the foreground's shifts (everything but the background moves with it), its turning and growing;
# C, which comes closer to B or goes away; A, which goes behind the box or comes out.
MOVING_THING = {"shift_x": "B", "shift_y": "B", "turn": "B", "scale": "B", "gap": "C", "cover": "A"}

# Shapes whose turning is visible (no disk). Their farthest point from the centre, in radii, tells how far from the
# box's edge an object is wholly hidden or wholly in view.
SHAPES = ("square", "triangle", "cross")
EXTENT = {"square": 0.8 * math.sqrt(2), "triangle": math.hypot(0.88, 0.6), "cross": math.hypot(1, 1 / 3)}
SHAPE_WORDS = {"square": "a square", "triangle": "a triangle", "cross": "a cross"}
RADIUS = (2.8, 3.8)  # px, every object's radius (B's at mid-clip)
# Over a whole clip, so that 8 frames of a clip step by about a seventh of these: 2.3-4 px, 20-34 degrees, 13% in
# size, 1.1-1.7 px closer, 1.3-2 px behind. Turning stays under 45 degrees a step, where a square's or cross's
# symmetry would make clockwise and counterclockwise look alike.
SHIFT = (16.0, 28.0)  # px
TURN = (math.radians(140), math.radians(240))
GROWTH = math.log(2.4)  # B's radius grows 2.4-fold from the first frame to the last
GAP_TRAVEL = (8.0, 12.0)  # px
BOXES_FILE = "boxes.json"
MIN_SIZE = 40  # below it C's path would be cut short by the torus' half side (``_beside_b``)


@dataclass(frozen=True)
class Thing:
    shape: str
    colour: np.ndarray
    angle: float
    radius: float

    @property
    def extent(self) -> float:
        return EXTENT[self.shape] * self.radius


def _thing(rng: np.random.Generator) -> Thing:
    colour = hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.5, 0.95), rng.uniform(0.6, 1.0))
    return Thing(SHAPES[rng.integers(len(SHAPES))], colour, rng.uniform(0, 2 * math.pi), rng.uniform(*RADIUS))


def _phases(rng: np.random.Generator, label: int, num_frames: int) -> dict[str, np.ndarray]:
    """Where on its path (0: start, 1: end) each mover is in each frame: the class's mover runs the path forwards
    or backwards; the others rest at a uniformly random frame's place. Drawn alike for every class."""
    _, mover, direction = CLASSES[label]
    steps = np.arange(num_frames, dtype=np.float64) / max(num_frames - 1, 1)
    phases = {name: np.full(num_frames, steps[rng.integers(num_frames)]) for name in MOVERS}
    phases[mover] = steps if direction > 0 else steps[::-1].copy()
    return phases


def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def _behind_box(rng: np.random.Generator, a: Thing, phase: np.ndarray) -> tuple[float, np.ndarray]:
    """The box's half side and A's offset from its centre (T, 2): in view (wholly outside the box) at phase 0,
    hidden (wholly inside, 1 px clear of its soft edge) at phase 1, along a random direction."""
    half = a.extent + rng.uniform(1.5, 2.5)
    heading = rng.uniform(0, 2 * math.pi)
    axis = max(abs(math.cos(heading)), abs(math.sin(heading)))  # the box is a square: its edge is farther diagonally
    hidden = rng.uniform(0, 1) * (half - a.extent - 1) / axis
    in_view = (half + a.extent + 0.5) / axis + rng.uniform(0, 2)
    return half, (in_view + (hidden - in_view) * phase)[:, None] * _unit(heading)


def _beside_b(rng: np.random.Generator, b: Thing, c: Thing, phase: np.ndarray, size: int) -> np.ndarray:
    """C's offset from B (T, 2): far at phase 0, near (clear of B at its largest) at phase 1, along a random
    direction, never past the torus' half side, where C would come nearer to B's wrapped-around copy."""
    heading = rng.uniform(0, 2 * math.pi)
    axis = max(abs(math.cos(heading)), abs(math.sin(heading)))
    near = EXTENT[b.shape] * b.radius * math.exp(GROWTH / 2) + c.extent + rng.uniform(0.5, 1.5)
    far = min(near + rng.uniform(*GAP_TRAVEL), (size / 2 - 1) / axis)
    return (far + (near - far) * phase)[:, None] * _unit(heading)


def thing_box(mask: np.ndarray, centre: np.ndarray, size: int) -> np.ndarray:
    """A thing's box in each frame from its own (unoccluded) soft mask (T, H, W) and centre (T, 2): (T, 4) rows
    (cx, cy, half width, half height) in pixels on the torus, the centre wrapped into [0, size); the box holds
    every pixel the mask touches (a pixel's centre within the half side less half a pixel). (0, 0) half sides where
    the mask is empty."""
    pixel = np.arange(size) + 0.5
    centre = np.mod(centre, size)
    boxes = np.zeros((mask.shape[0], 4))
    boxes[:, :2] = centre
    for frame, (cx, cy) in enumerate(centre):
        ys, xs = np.nonzero(mask[frame] > 0)
        if len(xs):
            dx = (pixel[xs] - cx + size / 2) % size - size / 2
            dy = (pixel[ys] - cy + size / 2) % size - size / 2
            boxes[frame, 2:] = np.abs(dx).max() + 0.5, np.abs(dy).max() + 0.5
    return boxes


def scene(rng: np.random.Generator, label: int, size: int, num_frames: int
          ) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    """Frames (T, H, W, 3) uint8, the placeholders' words, and each thing's box per frame (``thing_box``) under the
    names "A", "B", "C" and "box". Every draw is made in every class, in one order."""
    phase = _phases(rng, label, num_frames)
    frames = background(rng, size, num_frames)
    a, b, c = _thing(rng), _thing(rng), _thing(rng)
    shift = np.stack([rng.uniform(*SHIFT) * (phase["shift_x"] - 0.5),
                      rng.uniform(*SHIFT) * (phase["shift_y"] - 0.5)], axis=1)
    box = rng.uniform(0, size, 2) + shift  # (T, 2): the box's centre; the foreground moves with it
    half, a_offset = _behind_box(rng, a, phase["cover"])
    b_xy = box + rng.uniform(0, size, 2)  # anywhere relative to the box: uniform on the torus
    c_offset = _beside_b(rng, b, c, phase["gap"], size)
    b_radius = b.radius * np.exp(GROWTH * (phase["scale"] - 0.5))
    b_angle = b.angle + rng.uniform(*TURN) * phase["turn"]
    box_colour = hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0, 0.3), rng.uniform(0.08, 0.2))  # darker than all else
    # Drawn back to front: B, C, A, then the box over all of them.
    layers = (("B", b, b_xy, b_angle, b_radius[:, None, None]),
              ("C", c, b_xy + c_offset, np.full(num_frames, c.angle), c.radius),
              ("A", a, box + a_offset, np.full(num_frames, a.angle), a.radius))
    boxes = {}
    for name, thing, xy, angle, radius in layers:  # a (T, 1, 1) radius is per frame (render_object broadcasts it)
        mask = render_object(size, thing.shape, xy[:, 0], xy[:, 1], angle, radius)
        frames = composite(frames, mask, thing.colour)
        boxes[name] = thing_box(mask, xy, size)
    square = render_object(size, "square", box[:, 0], box[:, 1], np.zeros(num_frames), half / 0.8)  # half side 0.8 r
    frames = composite(frames, square, box_colour)
    boxes["box"] = thing_box(square, box, size)
    mover = CLASSES[label][1]
    words = {"gap": [c, b], "cover": [a]}.get(mover, [b])
    return (to_uint8(frames), [SHAPE_WORDS[t.shape] for t in words] + (["a box"] if mover == "cover" else []),
            boxes)


def _render(rng: np.random.Generator, label: int, size: int, num_frames: int) -> tuple[np.ndarray, list[str]]:
    """Frames (T, H, W, 3) uint8 and the placeholders' words (``scene`` without the boxes)."""
    frames, words, _ = scene(rng, label, size, num_frames)
    return frames, words


def _write(root: Path, p: GenerationParams, progress: Progress) -> None:
    if p.size < MIN_SIZE:
        raise ValueError(f"synth_motion_pairs: frames of at least {MIN_SIZE} px (its scene's scale), got {p.size}")
    rendered: list[dict] = []

    def render(rng: np.random.Generator, label: int, size: int, num_frames: int) -> tuple[np.ndarray, list[str]]:
        frames, words, boxes = scene(rng, label, size, num_frames)
        rendered.append({"moving_thing": MOVING_THING[CLASSES[label][1]],
                         "boxes": {name: np.round(box, 3).tolist() for name, box in boxes.items()}})
        return frames, words

    write_ssv2(root, p, progress, render, [template for template, _, _ in CLASSES], SPEC.class_names)
    # Beside the SSv2 files, as synthetic.json: each video's things' boxes per frame (``scene``), by video id
    # (write_ssv2 numbers the videos from 1 in the order it renders them).
    atomic_write_text(root / BOXES_FILE, json.dumps({str(i): entry for i, entry in enumerate(rendered, 1)}), sync=False)


SPEC = SyntheticSpec(
    name="synth_motion_pairs",
    annotation_format="ssv2",
    num_classes=len(CLASSES),
    class_names=tuple(template.replace("[", "").replace("]", "") for template, _, _ in CLASSES),
    hflip_ok=False,
    description="12 motion classes in 6 time-reversed pairs (left/right, up/down, turning, towards/away from the "
    "camera, closer/away, behind/from behind a box) over one scene drawn alike for every class: one frame is at "
    "chance for all 12, and unordered frames cannot tell a class from its reverse",
    mimics="Something-Something V2",
    stands_in_for="Something-Something V2 (classes defined by motion, many in time-reversed pairs)",
    write=_write,
)
