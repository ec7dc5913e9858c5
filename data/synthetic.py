"""Small synthetic benchmark sets written as real video files in real datasets' annotation formats.

They stand in for the papers' datasets where those are absent, and they separate the two biases the papers
discuss (Motionformer, Sec. 4): Kinetics is solvable from appearance, Something-Something V2 needs motion.

* ``synth_appearance`` (Kinetics-like): the class is the object's look (shape x colour); the object drifts in a
  class-independent random direction over a textured, noisy background next to a grey distractor. One frame
  suffices. Written in the Kinetics "path label" format (``train.csv``, ``val.csv``, mp4/H.264).
* ``synth_motion`` (SSv2-like): the class is the motion only of three objects moving together (left/right/up/down
  translation, clockwise/counter-clockwise rotation). Shapes, colours, sizes, start positions and orientations are
  drawn from one distribution for every class, and positions wrap around the frame (a torus), so every single
  frame has the same distribution in every class: a single-frame model is at chance by construction. Direction carries the label,
  so horizontal flips are off (``hflip_ok=False``). Written in the SSv2 format (``labels.json``, ``train.json``,
  ``validation.json``, ``videos/<id>.webm``/VP9).

* ``synth_verbnoun`` (EPIC-KITCHENS-100-like): untrimmed videos of one static scene, each a sequence of 3-5
  action segments separated by idle gaps; in a segment, three copies of one object (the noun: shape x colour)
  move together (the verb: one of the synth_motion motions). Verb x noun pairs are drawn independently, so the
  noun is decidable from one frame and the verb is not. Written in the EPIC-KITCHENS-100 layout
  (``EPIC_100_{train,validation}.csv``, ``EPIC_100_{verb,noun}_classes.csv``,
  ``<participant>/videos/<video_id>.MP4``). ``num_train``/``num_val`` count action segments (the samples).
* ``synth_pose`` (PennAction-like): an articulated 13-joint stick figure performs one of six PennAction actions
  (periodic, random phase, speed, size, position, proportions and colour); written in the PennAction layout
  (``frames/<video_id>/<frame:06d>.jpg``, ``labels/<video_id>.mat`` with per-frame joint coordinates).

Generation is deterministic: each video is drawn from its own generator seeded by (seed, split, index), and the
encoders run single-threaded with bit-exact muxing, so the same parameters give the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from data.cache import build_once
from data.pose import write_pennaction_labels
from data.video_io import write_video

GENERATOR_VERSION = 3  # bump when the rendering changes: cached sets are keyed by it
SET_VERSIONS = {"synth_pose": 2}  # per-set bumps that leave the other sets' caches (and runs) valid


@dataclass(frozen=True)
class SyntheticSpec:
    """What a synthetic set is and which real dataset it imitates."""

    name: str
    annotation_format: str  # "kinetics_list" | "ssv2" | "epic_kitchens100" | "pennaction" (see data.annotations)
    num_classes: int  # the most classes the set can have; generate_synthetic(num_classes=k) keeps the first k
    class_names: tuple[str, ...]
    hflip_ok: bool  # False where a horizontal flip changes the label
    description: str
    mimics: str
    stands_in_for: str  # what the set replaces, as the reports' headers say it
    verb_names: tuple[str, ...] = ()  # verb-noun sets: class_names are the (verb, noun) actions, verb-major
    noun_names: tuple[str, ...] = ()


# --- rendering ------------------------------------------------------------------------------------------------

_SUPERSAMPLE = 2  # shapes are rasterised at 2x and averaged down: anti-aliased edges, smooth sub-pixel motion


def _shape_mask(shape: str, x: np.ndarray, y: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Inside-test of a shape centred at 0 in its own (rotated) frame; x, y, radius broadcast together."""
    if shape == "disk":
        return x**2 + y**2 <= radius**2
    if shape == "square":
        return np.maximum(np.abs(x), np.abs(y)) <= 0.8 * radius
    if shape == "triangle":  # isosceles, pointing up (-y): asymmetric, so its rotation is visible
        return (y <= 0.6 * radius) & (np.abs(x) <= (y + radius) * 0.55)
    if shape == "cross":
        arm = radius / 3
        return ((np.abs(x) <= arm) & (np.abs(y) <= radius)) | ((np.abs(y) <= arm) & (np.abs(x) <= radius))
    if shape == "ell":  # an "L": no rotational symmetry at all
        return ((x >= -radius) & (x <= -radius / 3) & (np.abs(y) <= radius)) | (
            (y >= radius / 3) & (y <= radius) & (x >= -radius) & (x <= 0.7 * radius))
    raise ValueError(shape)


def _render_object(
    size: int, shape: str, cx: np.ndarray, cy: np.ndarray, angle: np.ndarray, radius: float
) -> np.ndarray:
    """Soft masks (T, size, size) of a shape at per-frame centre/angle, wrapping around the borders (torus)."""
    grid = ((np.arange(size * _SUPERSAMPLE, dtype=np.float32) + 0.5) / _SUPERSAMPLE)
    half = np.float32(size / 2)
    # Offsets to the centre on the torus, in [-size/2, size/2): an object leaving one side enters the other.
    # Kept separable, (T, 1, W) and (T, H, 1), and float32: rendering must stay cheap next to encoding.
    dx = ((grid[None, None, :] - cx.astype(np.float32)[:, None, None] + half) % size - half)
    dy = ((grid[None, :, None] - cy.astype(np.float32)[:, None, None] + half) % size - half)
    cos = np.cos(angle).astype(np.float32)[:, None, None]
    sin = np.sin(angle).astype(np.float32)[:, None, None]
    x, y = cos * dx + sin * dy, -sin * dx + cos * dy  # rotate into the shape's frame
    mask = _shape_mask(shape, x, y, np.float32(radius)).astype(np.float32)
    t = mask.shape[0]
    return mask.reshape(t, size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(2, 4))


def upsample_bilinear(coarse: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, C) grid values -> (height, width, C), bilinear, the grid's corners on the output's corners."""
    ys, xs = np.linspace(0, coarse.shape[0] - 1, height), np.linspace(0, coarse.shape[1] - 1, width)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, coarse.shape[0] - 1), np.minimum(x0 + 1, coarse.shape[1] - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    rows = coarse[y0] * (1 - fy) + coarse[y1] * fy
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def _background(rng: np.random.Generator, size: int, num_frames: int) -> np.ndarray:
    """Static low-frequency colour texture (T, H, W, 3) in [0, 1] plus fresh per-frame pixel noise."""
    texture = upsample_bilinear(rng.uniform(0.25, 0.65, size=(5, 5, 3)), size, size)
    noise = rng.standard_normal(size=(num_frames, size, size, 3), dtype=np.float32) * np.float32(0.03)
    return texture.astype(np.float32)[None] + noise


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


def _composite(frames: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    alpha = mask[..., None]
    return frames * (1 - alpha) + alpha * colour.astype(np.float32)


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    return (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)


def _linear_path(rng: np.random.Generator, size: int, t: np.ndarray, vx: float, vy: float) -> tuple[np.ndarray, ...]:
    x0, y0 = rng.uniform(0, size, 2)
    return (x0 + vx * t) % size, (y0 + vy * t) % size


def _add_distractor(rng: np.random.Generator, frames: np.ndarray, size: int, t: np.ndarray) -> np.ndarray:
    """A grey shape drifting slowly in a random direction: clutter that carries no label information.

    Its drift (at most 0.3 px/frame) stays well below the motion classes' speeds, so it is clutter, not a second
    motion competing with the labelled one."""
    heading, speed = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.3)
    cx, cy = _linear_path(rng, size, t, speed * math.cos(heading), speed * math.sin(heading))
    shape = ("disk", "square", "triangle", "cross", "ell")[rng.integers(5)]
    angle = np.full_like(t, rng.uniform(0, 2 * math.pi))
    mask = _render_object(size, shape, cx, cy, angle, rng.uniform(2.5, 4.5))
    return _composite(frames, mask, np.full(3, rng.uniform(0.1, 0.9)))


# Appearance classes: colour family x shape. Four well-separated hues (HSV) and two shapes a 2x8x8 tubelet can
# tell apart; +-0.04 hue jitter keeps the families apart. (v1 had 2 hues x 4 similar shapes, which the tiny
# model could not learn within the embedded default's minutes: ~30% top-1 on 8 classes.)
_APPEARANCE_SHAPES = ("disk", "cross")
_APPEARANCE_COLOURS = {"red": 0.0, "yellow": 0.15, "green": 0.36, "blue": 0.62}
_APPEARANCE_CLASSES = tuple((c, s) for s in _APPEARANCE_SHAPES for c in _APPEARANCE_COLOURS)


def _render_appearance(rng: np.random.Generator, label: int, size: int, num_frames: int) -> np.ndarray:
    colour_name, shape = _APPEARANCE_CLASSES[label]
    t = np.arange(num_frames, dtype=np.float32)
    frames = _background(rng, size, num_frames)
    frames = _add_distractor(rng, frames, size, t)
    # Motion is class-independent: any direction, any moderate speed, a slow random spin.
    heading, speed = rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 2.0)
    cx, cy = _linear_path(rng, size, t, speed * math.cos(heading), speed * math.sin(heading))
    angle = rng.uniform(0, 2 * math.pi) + rng.uniform(-0.05, 0.05) * t
    mask = _render_object(size, shape, cx, cy, angle, rng.uniform(5.5, 8.5))
    hue = (_APPEARANCE_COLOURS[colour_name] + rng.uniform(-0.04, 0.04)) % 1
    colour = _hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.65, 1.0))
    return _to_uint8(_composite(frames, mask, colour))


# Motion classes (SSv2 templates). Each is (vx, vy, spin sign) up to a random speed.
_MOTION_CLASSES = (
    ("Moving [something] from left to right", (1, 0, 0)),
    ("Moving [something] from right to left", (-1, 0, 0)),
    ("Moving [something] up", (0, -1, 0)),
    ("Moving [something] down", (0, 1, 0)),
    ("Turning [something] clockwise", (0, 0, 1)),
    ("Turning [something] counterclockwise", (0, 0, -1)),
)
_MOTION_SHAPES = ("square", "triangle", "cross", "ell")  # no disk: its rotation would be invisible
_MOTION_OBJECTS = 3
_MOTION_SHAPE_WORDS = {"square": "a square", "triangle": "a triangle", "cross": "a cross", "ell": "an L-shape"}


def _render_motion(rng: np.random.Generator, label: int, size: int, num_frames: int) -> tuple[np.ndarray, str]:
    _, (dx, dy, spin) = _MOTION_CLASSES[label]
    t = np.arange(num_frames, dtype=np.float32)
    frames = _background(rng, size, num_frames)
    frames = _add_distractor(rng, frames, size, t)
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
    for _ in range(_MOTION_OBJECTS):
        shape = _MOTION_SHAPES[rng.integers(len(_MOTION_SHAPES))]
        colour = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.5, 0.95), rng.uniform(0.6, 1.0))
        cx, cy = _linear_path(rng, size, t, dx * speed, dy * speed)  # uniform start + wrap: uniform in every frame
        # y grows downwards, so a positive angle turns clockwise on screen.
        angle = rng.uniform(0, 2 * math.pi) + spin * spin_rate * t
        frames = _composite(frames, _render_object(size, shape, cx, cy, angle, rng.uniform(4.0, 6.5)), colour)
        things.append(_MOTION_SHAPE_WORDS[shape])
    return _to_uint8(frames), things[0]


# Verb x noun (EPIC-KITCHENS-100). Verbs are the synth_motion motions, keyed like EPIC verbs; nouns are object
# identities (shape x colour, keyed "noun:modifier" like EPIC's "pan:dust"). Shapes without rotational symmetry
# below 90 degrees, so turning is visible; hues well apart, as in the appearance set.
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
_VERBNOUN_OBJECTS = 3
_GAP_FRAMES = (2, 7)  # idle frames before each segment: [low, high)


def _move_objects(rng: np.random.Generator, frames: np.ndarray, size: int, motion: tuple[int, int, int],
                  looks: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Composite objects (shape, colour) that move together by ``motion`` onto frames (T, H, W, 3).

    The same kinematics as synth_motion (speed, spin, toroidal wrap), so each frame's object positions and
    orientations have the same distribution for every motion."""
    dx, dy, spin = motion
    t = np.arange(len(frames), dtype=np.float32)
    speed, spin_rate = rng.uniform(0.6, 1.2), math.radians(rng.uniform(5, 9))
    for shape, colour in looks:
        cx, cy = _linear_path(rng, size, t, dx * speed, dy * speed)
        angle = rng.uniform(0, 2 * math.pi) + spin * spin_rate * t
        frames = _composite(frames, _render_object(size, shape, cx, cy, angle, rng.uniform(4.0, 6.5)), colour)
    return frames


def _render_verbnoun_video(rng: np.random.Generator, actions: list[tuple[int, int]], size: int,
                           segment_frames: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One untrimmed video: idle gap, segment, idle gap, segment, ..., idle gap.

    Returns the frames (T, H, W, 3) uint8 and each segment's frame range [first, stop). The scene (background
    texture, grey distractor) is the same for the whole video, as in a kitchen; only during a segment do the
    labelled objects appear and move."""
    gaps = rng.integers(*_GAP_FRAMES, size=len(actions) + 1)
    total = int(gaps.sum()) + len(actions) * segment_frames
    frames = _add_distractor(rng, _background(rng, size, total), size, np.arange(total, dtype=np.float32))
    ranges, first = [], 0
    for (verb, noun), gap in zip(actions, gaps):
        first += int(gap)
        _, shape, hue = _NOUNS[noun]
        looks = []
        for _ in range(_VERBNOUN_OBJECTS):  # copies of one object: same shape and colour family
            colour = _hsv_to_rgb((hue + rng.uniform(-0.04, 0.04)) % 1, rng.uniform(0.7, 1.0), rng.uniform(0.65, 1.0))
            looks.append((shape, colour))
        stop = first + segment_frames
        frames[first:stop] = _move_objects(rng, frames[first:stop], size, _VERBS[verb][2], looks)
        ranges.append((first, stop))
        first = stop
    return _to_uint8(frames), ranges


# Pose (PennAction). Joints in PennAction's order; the skeleton's limbs; six PennAction actions a front-view stick
# figure can perform. Body coordinates: y up, hip centre at the origin, unit = about the figure's height.
POSE_JOINTS = ("head", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
               "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
POSE_LIMBS = ((1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (7, 8), (1, 7), (2, 8), (7, 9), (9, 11), (8, 10), (10, 12))
_POSE_ACTIONS = ("jumping_jacks", "squat", "jump_rope", "clean_and_jerk", "tennis_forehand", "strum_guitar")
_POSE_PERIOD = {  # frames per repetition: [low, high)
    "jumping_jacks": (10, 16), "squat": (12, 20), "jump_rope": (6, 10), "clean_and_jerk": (14, 22),
    "tennis_forehand": (10, 16), "strum_guitar": (4, 7)}


def _pose_angles(action: str, phase: np.ndarray) -> dict[str, np.ndarray]:
    """Joint angles (radians) per frame for a phase (T,) in radians.

    Limb angles are from straight down, positive = away from the body's midline (for either side); elbow and
    knee bends are added to the upper limb's angle. ``lift`` raises the whole body (a hop)."""
    s = (1 - np.cos(phase)) / 2  # 0 -> 1 -> 0 over a repetition
    zero = np.zeros_like(phase)
    deg = np.radians
    a = dict(l_arm=deg(12) + zero, r_arm=deg(12) + zero, l_elbow=zero.copy(), r_elbow=zero.copy(),
             l_leg=deg(4) + zero, r_leg=deg(4) + zero, l_knee=zero.copy(), r_knee=zero.copy(), lift=zero.copy())
    if action == "jumping_jacks":  # arms from the sides to overhead while the legs spread
        a.update(l_arm=deg(12 + 150 * s), r_arm=deg(12 + 150 * s), l_leg=deg(4 + 18 * s), r_leg=deg(4 + 18 * s))
    elif action == "squat":  # knees out and hips down; forearms up in front of the chest
        a.update(l_leg=deg(4 + 40 * s), r_leg=deg(4 + 40 * s), l_knee=-deg(75 * s), r_knee=-deg(75 * s),
                 l_arm=deg(12 + 20 * s), r_arm=deg(12 + 20 * s), l_elbow=-deg(120 * s), r_elbow=-deg(120 * s))
    elif action == "jump_rope":  # hops; hands circle beside the hips
        a.update(lift=0.07 * np.abs(np.sin(phase)), l_arm=deg(30) + zero, r_arm=deg(30) + zero,
                 l_elbow=deg(35) * np.cos(phase), r_elbow=deg(35) * np.cos(phase),
                 l_knee=-deg(15) * np.abs(np.sin(phase)), r_knee=-deg(15) * np.abs(np.sin(phase)))
    elif action == "clean_and_jerk":  # bar from the hips to the shoulders (elbows bent), then pressed overhead
        rack, press = np.clip(2 * s, 0, 1), np.clip(2 * s - 1, 0, 1)
        arm = deg(12 + 60 * rack + 100 * press)
        elbow = -deg(150 * rack * (1 - press))
        a.update(l_arm=arm, r_arm=arm, l_elbow=elbow, r_elbow=elbow, l_leg=deg(10) + zero, r_leg=deg(10) + zero,
                 l_knee=-deg(30) * np.sin(math.pi * rack), r_knee=-deg(30) * np.sin(math.pi * rack))
    elif action == "tennis_forehand":  # right arm sweeps from out wide across the body; feet apart
        a.update(r_arm=deg(100 - 170 * s), r_elbow=-deg(20) + zero, l_arm=deg(35) + zero, l_elbow=-deg(40) + zero,
                 l_leg=deg(14) + zero, r_leg=deg(14) + zero)
    elif action == "strum_guitar":  # left hand holds the neck at chest height; right hand strums at the hip
        a.update(l_arm=deg(55) + zero, l_elbow=-deg(110) + zero, r_arm=deg(15) + zero,
                 r_elbow=-deg(60 + 40 * s))
    else:
        raise ValueError(action)
    return a


def _pose_joints(rng: np.random.Generator, action: str, num_frames: int, size: int) -> np.ndarray:
    """Joint positions (T, 13, 2) in image pixels (x right, y down; pixel i spans [i, i + 1))."""
    period = rng.uniform(*_POSE_PERIOD[action])
    phase = 2 * math.pi * (np.arange(num_frames) / period + rng.uniform(0, 1))
    a = _pose_angles(action, phase)
    j = rng.uniform(0.92, 1.08, size=5)  # body proportions: torso, upper arm, forearm, thigh, shin
    torso, upper_arm, forearm, thigh, shin = 0.30 * j[0], 0.15 * j[1], 0.14 * j[2], 0.23 * j[3], 0.23 * j[4]
    shoulder_w, hip_w = rng.uniform(0.10, 0.13), rng.uniform(0.06, 0.08)
    t = num_frames
    pts = np.zeros((t, 13, 2))
    pts[:, 0] = (0, torso + 0.13)
    for side, sign in (("l", 1), ("r", -1)):  # the figure faces the camera: its left is on the image's right
        i = 0 if side == "l" else 1
        shoulder = np.stack([np.full(t, sign * shoulder_w), np.full(t, torso)], 1)
        hip = np.stack([np.full(t, sign * hip_w), np.zeros(t)], 1)
        arm, leg = a[f"{side}_arm"], a[f"{side}_leg"]
        fore_angle, shin_angle = arm + a[f"{side}_elbow"], leg + a[f"{side}_knee"]
        elbow = shoulder + upper_arm * np.stack([sign * np.sin(arm), -np.cos(arm)], 1)
        wrist = elbow + forearm * np.stack([sign * np.sin(fore_angle), -np.cos(fore_angle)], 1)
        knee = hip + thigh * np.stack([sign * np.sin(leg), -np.cos(leg)], 1)
        ankle = knee + shin * np.stack([sign * np.sin(shin_angle), -np.cos(shin_angle)], 1)
        pts[:, 1 + i], pts[:, 3 + i], pts[:, 5 + i] = shoulder, elbow, wrist
        pts[:, 7 + i], pts[:, 9 + i], pts[:, 11 + i] = hip, knee, ankle
    pts[..., 1] -= pts[:, 11:13, 1].min(1, keepdims=True)  # feet on the ground (bent knees lower the hips)
    pts[..., 1] += a["lift"][:, None]
    # Into the image: a figure 70-85% of the frame tall, anywhere its feet fit, a slow sway.
    scale = size * rng.uniform(0.70, 0.85)
    ground = size * rng.uniform(0.86, 0.94)
    centre = size * rng.uniform(0.35, 0.65) + rng.uniform(-0.15, 0.15) * np.arange(t)
    return np.stack([centre[:, None] + scale * pts[..., 0], ground - scale * pts[..., 1]], -1)


def _segment_masks(size: int, starts: np.ndarray, ends: np.ndarray, width: float) -> np.ndarray:
    """Soft masks (T, size, size) of thick segments (T, K, 2) -> (T, K, 2), supersampled and averaged."""
    grid = (np.arange(size * _SUPERSAMPLE, dtype=np.float32) + 0.5) / _SUPERSAMPLE
    px, py = grid[None, None, None, :], grid[None, None, :, None]
    a = starts.astype(np.float32)[:, :, None, None, :]
    d = (ends - starts).astype(np.float32)[:, :, None, None, :]
    length2 = np.maximum((d ** 2).sum(-1), 1e-6)
    u = np.clip(((px - a[..., 0]) * d[..., 0] + (py - a[..., 1]) * d[..., 1]) / length2, 0, 1)
    dist2 = (px - a[..., 0] - u * d[..., 0]) ** 2 + (py - a[..., 1] - u * d[..., 1]) ** 2
    mask = (dist2 <= np.float32(width / 2) ** 2).any(1).astype(np.float32)
    t = mask.shape[0]
    return mask.reshape(t, size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(2, 4))


def _render_pose(rng: np.random.Generator, label: int, size: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) uint8 of a stick figure performing ``_POSE_ACTIONS[label]`` and its joints (T, 13, 2)."""
    joints = _pose_joints(rng, _POSE_ACTIONS[label], num_frames, size)
    frames = 0.1 + 0.5 * _background(rng, size, num_frames)  # muted: the figure's shape must stand out
    frames = _add_distractor(rng, frames, size, np.arange(num_frames, dtype=np.float32))
    limbs = np.array(POSE_LIMBS)
    # Limbs 2.6-3.4 px wide at 40 px (v1: 1.6-2.2), a third of a tiny model's 8-px patch after its crop.
    width = size / 40 * rng.uniform(2.6, 3.4)
    mask = _segment_masks(size, joints[:, limbs[:, 0]], joints[:, limbs[:, 1]], width)
    head = _render_object(size, "disk", joints[:, 0, 0], joints[:, 0, 1], np.zeros(num_frames),
                          size / 40 * rng.uniform(2.8, 3.4))
    # Pastel and bright: the figure's mean brightness (>= 0.57) is above the muted background's (<= 0.43 plus
    # noise), so it stands out whatever its hue. (v1: saturated colours of any brightness on the full-contrast
    # background, and thin limbs; the tiny ViT stayed at chance for 960 steps.)
    colour = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.55), rng.uniform(0.9, 1.0))
    return _to_uint8(_composite(frames, np.maximum(mask, head), colour)), joints


SYNTHETIC_SETS: dict[str, SyntheticSpec] = {
    "synth_appearance": SyntheticSpec(
        name="synth_appearance",
        annotation_format="kinetics_list",
        num_classes=len(_APPEARANCE_CLASSES),
        class_names=tuple(f"{c} {s}" for c, s in _APPEARANCE_CLASSES),
        hflip_ok=True,
        description="object shape x colour classes; class-independent random drift, textured noisy background, "
        "grey distractor; one frame suffices",
        mimics="Kinetics-400",
        stands_in_for="Kinetics-400 (classes defined by appearance)",
    ),
    "synth_motion": SyntheticSpec(
        name="synth_motion",
        annotation_format="ssv2",
        num_classes=len(_MOTION_CLASSES),
        class_names=tuple(template.replace("[", "").replace("]", "") for template, _ in _MOTION_CLASSES),
        hflip_ok=False,
        description="motion-only classes (three objects translate left/right/up/down or turn cw/ccw together) with "
        "class-independent appearance and toroidal wrap-around: single frames are at chance by construction",
        mimics="Something-Something V2",
        stands_in_for="Something-Something V2 (classes defined by motion only)",
    ),
    "synth_verbnoun": SyntheticSpec(
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
        verb_names=tuple(verb for verb, _, _ in _VERBS),
        noun_names=tuple(noun for noun, _, _ in _NOUNS),
    ),
    "synth_pose": SyntheticSpec(
        name="synth_pose",
        annotation_format="pennaction",
        num_classes=len(_POSE_ACTIONS),
        class_names=_POSE_ACTIONS,
        hflip_ok=True,  # the action survives a flip (the joints' left/right sides must then be swapped)
        description="a 13-joint stick figure repeating one of six PennAction actions with random phase, speed, "
        "size, position, proportions and colour; per-frame joint coordinates in PennAction .mat labels",
        mimics="Penn Action",
        stands_in_for="PennAction / NTU RGB+D (stick figures with per-frame joints)",
    ),
}


# --- writing the datasets -------------------------------------------------------------------------------------


def _balanced_labels(rng: np.random.Generator, count: int, num_classes: int) -> list[int]:
    """Every class equally often (up to one), in random order."""
    return [int(v) for v in rng.permutation(np.arange(count) % num_classes)]


def _video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0 if split == "train" else 1, index])


def _write_appearance(root: Path, split: str, count: int, seed: int, num_classes: int, size: int,
                      num_video_frames: int, fps: int) -> None:
    spec = SYNTHETIC_SETS["synth_appearance"]
    labels = _balanced_labels(np.random.default_rng([seed, 2, 0 if split == "train" else 1]), count, num_classes)
    lines = []
    for index, label in enumerate(labels):
        rel = Path(split) / spec.class_names[label].replace(" ", "_") / f"{split}_{index:05d}.mp4"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        frames = _render_appearance(_video_rng(seed, split, index), label, size, num_video_frames)
        write_video(root / rel, frames, fps)
        lines.append(f"{rel.as_posix()} {label}\n")
    (root / f"{split}.csv").write_text("".join(lines))


def _write_motion(root: Path, split: str, count: int, seed: int, num_classes: int, size: int,
                  num_video_frames: int, fps: int, first_id: int) -> None:
    labels = _balanced_labels(np.random.default_rng([seed, 2, 0 if split == "train" else 1]), count, num_classes)
    (root / "videos").mkdir(exist_ok=True)
    entries = []
    for index, label in enumerate(labels):
        video_id = str(first_id + index)
        frames, thing = _render_motion(_video_rng(seed, split, index), label, size, num_video_frames)
        write_video(root / "videos" / f"{video_id}.webm", frames, fps)
        template = _MOTION_CLASSES[label][0]
        entries.append({"id": video_id, "label": template.replace("[something]", thing), "template": template,
                        "placeholders": [thing]})
    (root / ("train.json" if split == "train" else "validation.json")).write_text(json.dumps(entries, indent=1))


EPIC_CSV_HEADER = ("narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
                   "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
                   "noun_class", "all_nouns", "all_noun_classes")
EPIC_CLASSES_HEADER = ("id", "key", "instances", "category")
_EPIC_PARTICIPANTS = 4  # videos go round-robin to P01..P04


def _epic_timestamp(milliseconds: int) -> str:
    """EPIC-KITCHENS ``HH:MM:SS.fff``."""
    seconds, ms = divmod(milliseconds, 1000)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{ms:03d}"


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_verbnoun(root: Path, split: str, count: int, seed: int, size: int, num_video_frames: int, fps: int,
                    video_counters: dict[str, int]) -> None:
    """``count`` action segments in untrimmed videos of 3-5 segments, and their EPIC_100_<split>.csv.

    A segment spanning frames [first, stop) (0-based) gets start_timestamp = first / fps rounded up and
    stop_timestamp = stop / fps rounded down to the millisecond, so decoding [start, stop) yields exactly its
    frames; start_frame/stop_frame are its first and last frame, 1-based (inclusive), as EPIC's frame files."""
    split_id = 0 if split == "train" else 1
    label_rng = np.random.default_rng([seed, 2, split_id])
    verbs = _balanced_labels(label_rng, count, len(_VERBS))
    nouns = _balanced_labels(label_rng, count, len(_NOUNS))
    lengths_rng = np.random.default_rng([seed, 3, split_id])
    rows, index, video_index = [], 0, 0
    while index < count:
        segments = min(int(lengths_rng.integers(3, 6)), count - index)
        participant = f"P{video_index % _EPIC_PARTICIPANTS + 1:02d}"
        video_counters[participant] = video_counters.get(participant, 0) + 1
        video_id = f"{participant}_{video_counters[participant]:02d}"
        actions = list(zip(verbs[index:index + segments], nouns[index:index + segments]))
        frames, ranges = _render_verbnoun_video(_video_rng(seed, split, video_index), actions, size, num_video_frames)
        path = root / participant / "videos" / f"{video_id}.MP4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, frames, fps)
        for k, ((verb, noun), (first, stop)) in enumerate(zip(actions, ranges)):
            start_ms, stop_ms = -(-first * 1000 // fps), stop * 1000 // fps
            verb_key, noun_key = _VERBS[verb][0], _NOUNS[noun][0]
            rows.append([f"{video_id}_{k}", participant, video_id, _epic_timestamp(start_ms),
                         _epic_timestamp(start_ms), _epic_timestamp(stop_ms), first + 1, stop,
                         f"{verb_key} {noun_key}", verb_key, verb, noun_key, noun, f"['{noun_key}']", f"[{noun}]"])
        index += segments
        video_index += 1
    _write_csv(root / f"EPIC_100_{'train' if split == 'train' else 'validation'}.csv", EPIC_CSV_HEADER, rows)


def _write_verbnoun_classes(root: Path) -> None:
    """EPIC_100_verb_classes.csv / EPIC_100_noun_classes.csv: id, key, instances (the key's synonyms), category."""
    _write_csv(root / "EPIC_100_verb_classes.csv", EPIC_CLASSES_HEADER,
               [[i, key, f"['{key}']", category] for i, (key, category, _) in enumerate(_VERBS)])
    _write_csv(root / "EPIC_100_noun_classes.csv", EPIC_CLASSES_HEADER,
               [[i, key, f"['{key}']", "shape"] for i, (key, _, _) in enumerate(_NOUNS)])


def _write_label_mat(path: Path, action: str, joints: np.ndarray, visibility: np.ndarray, bbox: np.ndarray,
                     size: int, train: bool) -> None:
    """One PennAction ``labels/<video_id>.mat`` (``data.pose.write_pennaction_labels``), with reproducible bytes.

    Args:
        path: the .mat file.
        action: one of PennAction's 15 action names.
        joints: (nframes, 13, 2) x, y in PennAction's 1-based pixel coordinates.
        visibility: (nframes, 13) 1 = visible, 0 = not.
        bbox: (nframes, 4) x_min, y_min, x_max, y_max.
        size: frame height and width.
        train: True = training split (1), False = test split (-1).
    """
    write_pennaction_labels(path, action, joints[..., 0], joints[..., 1], (size, size), train, visibility, bbox,
                            view="front")
    # The 116-byte text header carries the writing time; a fixed one keeps the bytes a function of the seed.
    data = bytearray(path.read_bytes())
    data[:116] = b"MATLAB 5.0 MAT-file, written by vidrepro data.synthetic".ljust(116)
    path.write_bytes(bytes(data))


def _write_pose(root: Path, split: str, count: int, seed: int, num_classes: int, size: int, num_video_frames: int,
                first_id: int) -> None:
    """``count`` PennAction videos: JPEG frames under frames/<id>/ and labels/<id>.mat (train = 1 or -1).

    Joint coordinates are PennAction's (MATLAB, 1-based): the centre of the top-left pixel is (1, 1). A joint
    outside the frame is invisible (visibility 0); the box spans the figure (joints, head and limb width)."""
    labels = _balanced_labels(np.random.default_rng([seed, 2, 0 if split == "train" else 1]), count, num_classes)
    (root / "labels").mkdir(exist_ok=True)
    for index, label in enumerate(labels):
        video_id = f"{first_id + index:04d}"
        frames, joints = _render_pose(_video_rng(seed, split, index), label, size, num_video_frames)
        folder = root / "frames" / video_id
        folder.mkdir(parents=True)
        for number, frame in enumerate(frames, 1):
            Image.fromarray(frame).save(folder / f"{number:06d}.jpg", quality=90)
        inside = (joints >= 0).all(-1) & (joints < size).all(-1)
        margin = size / 40 * 3.0  # head radius and half a limb width, at most
        bbox = np.concatenate([joints.min(1) - margin, joints.max(1) + margin], 1).clip(0, size) + 0.5
        _write_label_mat(root / "labels" / f"{video_id}.mat", _POSE_ACTIONS[label], joints + 0.5,
                         inside.astype(np.float64), bbox, size, split == "train")


def generate_synthetic(
    name: str,
    root: Path,
    num_train: int,
    num_val: int,
    seed: int = 0,
    num_video_frames: int = 32,
    size: int = 40,
    fps: int = 15,
    num_classes: int | None = None,
) -> Path:
    """Write a synthetic set (videos + annotations in its real dataset's format) into ``root``.

    Args:
        name: a key of ``SYNTHETIC_SETS``.
        root: output directory (created).
        num_train: training videos (synth_verbnoun: training action segments, in videos of 3-5).
        num_val: validation videos (synth_verbnoun: validation action segments).
        seed: everything is a function of it.
        num_video_frames: frames per video (synth_verbnoun: per action segment; idle gaps come on top).
        size: frame height and width in pixels (even).
        fps: frame rate written to the files (synth_pose writes JPEG frames, which have none).
        num_classes: use the first k classes of the set; None = all (synth_verbnoun: must be None).
    """
    if name not in SYNTHETIC_SETS:
        raise ValueError(f"unknown synthetic set {name!r}; known: {sorted(SYNTHETIC_SETS)}")
    spec = SYNTHETIC_SETS[name]
    if spec.verb_names and num_classes is not None:
        raise ValueError(f"{name}: the verb and noun classes are fixed; num_classes must be None")
    num_classes = num_classes or spec.num_classes
    if not 2 <= num_classes <= spec.num_classes:
        raise ValueError(f"{name}: num_classes must be in [2, {spec.num_classes}], got {num_classes}")
    if size % 2:
        raise ValueError(f"size must be even (yuv420p), got {size}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    common = dict(seed=seed, num_classes=num_classes, size=size, num_video_frames=num_video_frames, fps=fps)
    if spec.annotation_format == "kinetics_list":
        _write_appearance(root, "train", num_train, **common)
        _write_appearance(root, "val", num_val, **common)
    elif spec.annotation_format == "epic_kitchens100":
        vn = dict(seed=seed, size=size, num_video_frames=num_video_frames, fps=fps, video_counters={})
        _write_verbnoun(root, "train", num_train, **vn)
        _write_verbnoun(root, "val", num_val, **vn)
        _write_verbnoun_classes(root)
    elif spec.annotation_format == "pennaction":
        pose = dict(seed=seed, num_classes=num_classes, size=size, num_video_frames=num_video_frames)
        _write_pose(root, "train", num_train, first_id=1, **pose)
        _write_pose(root, "val", num_val, first_id=num_train + 1, **pose)
    else:
        labels = {name: str(i) for i, name in enumerate(spec.class_names[:num_classes])}
        (root / "labels.json").write_text(json.dumps(labels, indent=1))
        _write_motion(root, "train", num_train, first_id=1, **common)
        _write_motion(root, "val", num_val, first_id=num_train + 1, **common)
    # Provenance, beside (not part of) the imitated format.
    meta = {"name": name, "generator_version": GENERATOR_VERSION, "set_version": SET_VERSIONS.get(name, 1),
            "num_train": num_train, "num_val": num_val,
            **common, "class_names": list(spec.class_names[:num_classes]), "mimics": spec.mimics}
    if spec.verb_names:
        meta.update(verb_names=list(spec.verb_names), noun_names=list(spec.noun_names))
    (root / "synthetic.json").write_text(json.dumps(meta, indent=1))
    return root


_PARAM_DEFAULTS = dict(num_train=400, num_val=200, seed=0, num_video_frames=32, size=40, fps=15, num_classes=None)


def synthetic_params(**params) -> dict:
    """``params`` completed with the defaults of ``ensure_synthetic``; unknown names raise."""
    unknown = set(params) - set(_PARAM_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown synthetic parameters {sorted(unknown)}; known: {sorted(_PARAM_DEFAULTS)}")
    return {**_PARAM_DEFAULTS, **params}


def synthetic_dir(name: str, cache_dir: Path = Path(".cache/synthetic"), **params) -> Path:
    """Where ``ensure_synthetic`` keeps a set: ``cache_dir/<name>-<hash of the parameters and generator>``."""
    version = {"generator_version": GENERATOR_VERSION}
    if name in SET_VERSIONS:  # absent for a set at version 1, so its key (and cache) is unchanged
        version["set_version"] = SET_VERSIONS[name]
    key = json.dumps({**version, **synthetic_params(**params)}, sort_keys=True)
    return Path(cache_dir) / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def ensure_synthetic(name: str, cache_dir: Path = Path(".cache/synthetic"), **params) -> Path:
    """The root of a synthetic set, generated on first use and reused afterwards.

    Generation writes into a temporary sibling directory and renames it into place, so a directory at the final
    path is always complete; when several processes race, the first rename wins and the others discard theirs.

    Args:
        name: a key of ``SYNTHETIC_SETS``.
        cache_dir: parent directory of cached sets.
        **params: ``generate_synthetic`` parameters (defaults: 400 train, 200 val videos, seed 0, 32 frames,
            40x40 px, 15 fps, all classes).
    """
    target = synthetic_dir(name, cache_dir, **params)
    return build_once(target, lambda tmp: generate_synthetic(name, tmp, **synthetic_params(**params)))

