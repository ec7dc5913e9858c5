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

Generation is deterministic: each video is drawn from its own generator seeded by (seed, split, index), and the
encoders run single-threaded with bit-exact muxing, so the same parameters give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.video_io import write_video

GENERATOR_VERSION = 3  # bump when the rendering changes: cached sets are keyed by it


@dataclass(frozen=True)
class SyntheticSpec:
    """What a synthetic set is and which real dataset it imitates."""

    name: str
    annotation_format: str  # "kinetics_list" | "ssv2" (see data.annotations)
    num_classes: int  # the most classes the set can have; generate_synthetic(num_classes=k) keeps the first k
    class_names: tuple[str, ...]
    hflip_ok: bool  # False where a horizontal flip changes the label
    description: str
    mimics: str


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


def _background(rng: np.random.Generator, size: int, num_frames: int) -> np.ndarray:
    """Static low-frequency colour texture (T, H, W, 3) in [0, 1] plus fresh per-frame pixel noise."""
    coarse = rng.uniform(0.25, 0.65, size=(5, 5, 3))
    idx = np.linspace(0, 4, size)
    lo, frac = np.floor(idx).astype(int), idx - np.floor(idx)
    hi = np.minimum(lo + 1, 4)
    rows = coarse[lo] * (1 - frac)[:, None, None] + coarse[hi] * frac[:, None, None]  # bilinear upsampling
    texture = rows[:, lo] * (1 - frac)[None, :, None] + rows[:, hi] * frac[None, :, None]
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
        num_train: training videos.
        num_val: validation videos.
        seed: everything is a function of it.
        num_video_frames: frames per video.
        size: frame height and width in pixels (even).
        fps: frame rate written to the files.
        num_classes: use the first k classes of the set; None = all.
    """
    if name not in SYNTHETIC_SETS:
        raise ValueError(f"unknown synthetic set {name!r}; known: {sorted(SYNTHETIC_SETS)}")
    spec = SYNTHETIC_SETS[name]
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
    else:
        labels = {name: str(i) for i, name in enumerate(spec.class_names[:num_classes])}
        (root / "labels.json").write_text(json.dumps(labels, indent=1))
        _write_motion(root, "train", num_train, first_id=1, **common)
        _write_motion(root, "val", num_val, first_id=num_train + 1, **common)
    # Provenance, beside (not part of) the imitated format.
    meta = {"name": name, "generator_version": GENERATOR_VERSION, "num_train": num_train, "num_val": num_val,
            **common, "class_names": list(spec.class_names[:num_classes]), "mimics": spec.mimics}
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
    key = json.dumps({"generator_version": GENERATOR_VERSION, **synthetic_params(**params)}, sort_keys=True)
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
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        generate_synthetic(name, tmp, **synthetic_params(**params))
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first: use its copy
            if not target.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target

