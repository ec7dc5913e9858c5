"""synth_pose (PennAction-like, ``pennaction`` layout: JPEG frames, per-frame joints in .mat labels): a 13-joint
stick figure repeats one of six PennAction actions, so the pose paths run without the real data and the action
must be read from the figure's movement."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from data.atomic_write import atomic_write_bytes, save_image
from data.pose import write_pennaction_labels
from data.synthetic.render import (
    SUPERSAMPLE,
    add_distractor,
    background,
    composite,
    hsv_to_rgb,
    render_object,
    to_uint8,
)
from data.synthetic.seeding import LABELS, balanced_labels, split_rng, video_rng
from data.synthetic.spec import GenerationParams, Progress, SyntheticSpec

# Joints in PennAction's order; the skeleton's limbs; six PennAction actions a front-view stick figure can perform.
# Body coordinates: y up, hip centre at the origin, unit = about the figure's height.
POSE_JOINTS = ("head", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
               "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
POSE_LIMBS = ((1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (7, 8), (1, 7), (2, 8), (7, 9), (9, 11), (8, 10), (10, 12))
_ACTIONS = ("jumping_jacks", "squat", "jump_rope", "clean_and_jerk", "tennis_forehand", "strum_guitar")
_PERIOD = {  # frames per repetition: [low, high)
    "jumping_jacks": (10, 16), "squat": (12, 20), "jump_rope": (6, 10), "clean_and_jerk": (14, 22),
    "tennis_forehand": (10, 16), "strum_guitar": (4, 7)}


def _angles(action: str, phase: np.ndarray) -> dict[str, np.ndarray]:
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


def _joints(rng: np.random.Generator, action: str, num_frames: int, size: int) -> np.ndarray:
    """Joint positions (T, 13, 2) in image pixels (x right, y down; pixel i spans [i, i + 1))."""
    period = rng.uniform(*_PERIOD[action])
    phase = 2 * math.pi * (np.arange(num_frames) / period + rng.uniform(0, 1))
    a = _angles(action, phase)
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
    grid = (np.arange(size * SUPERSAMPLE, dtype=np.float32) + 0.5) / SUPERSAMPLE
    px, py = grid[None, None, None, :], grid[None, None, :, None]
    a = starts.astype(np.float32)[:, :, None, None, :]
    d = (ends - starts).astype(np.float32)[:, :, None, None, :]
    length2 = np.maximum((d ** 2).sum(-1), 1e-6)
    u = np.clip(((px - a[..., 0]) * d[..., 0] + (py - a[..., 1]) * d[..., 1]) / length2, 0, 1)
    dist2 = (px - a[..., 0] - u * d[..., 0]) ** 2 + (py - a[..., 1] - u * d[..., 1]) ** 2
    mask = (dist2 <= np.float32(width / 2) ** 2).any(1).astype(np.float32)
    t = mask.shape[0]
    return mask.reshape(t, size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(2, 4))


def _render(rng: np.random.Generator, label: int, size: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) uint8 of a stick figure performing ``_ACTIONS[label]`` and its joints (T, 13, 2)."""
    joints = _joints(rng, _ACTIONS[label], num_frames, size)
    frames = 0.1 + 0.5 * background(rng, size, num_frames)  # muted: the figure's shape must stand out
    frames = add_distractor(rng, frames, size, np.arange(num_frames, dtype=np.float32))
    limbs = np.array(POSE_LIMBS)
    # Limbs 2.6-3.4 px wide at 40 px (v1: 1.6-2.2), a third of a tiny model's 8-px patch after its crop.
    width = size / 40 * rng.uniform(2.6, 3.4)
    mask = _segment_masks(size, joints[:, limbs[:, 0]], joints[:, limbs[:, 1]], width)
    head = render_object(size, "disk", joints[:, 0, 0], joints[:, 0, 1], np.zeros(num_frames),
                         size / 40 * rng.uniform(2.8, 3.4))
    # Pastel and bright: the figure's mean brightness (>= 0.57) is above the muted background's (<= 0.43 plus
    # noise), so it stands out whatever its hue. (v1: saturated colours of any brightness on the full-contrast
    # background, and thin limbs; the tiny ViT stayed at chance for 960 steps.)
    colour = hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.55), rng.uniform(0.9, 1.0))
    return to_uint8(composite(frames, np.maximum(mask, head), colour)), joints


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
    atomic_write_bytes(path, bytes(data), sync=False)


def subject_margin(size: int) -> float:
    """How far the figure reaches beyond its joints, in pixels of a ``size`` frame: the largest head radius
    (``_render``); half a limb width is at most 1.7 of it. The labels' box is the joints' box widened by it."""
    return size / 40 * 3.4


def _write_split(root: Path, split: str, count: int, p: GenerationParams, first_id: int, progress: Progress
                 ) -> None:
    """``count`` PennAction videos: JPEG frames under frames/<id>/ and labels/<id>.mat (train = 1 or -1).

    Joint coordinates are PennAction's (MATLAB, 1-based): the centre of the top-left pixel is (1, 1). A joint
    outside the frame is invisible (visibility 0); the box spans the figure (joints, head and limb width)."""
    size = p.size
    labels = balanced_labels(split_rng(p.seed, split, LABELS), count, p.num_classes)
    (root / "labels").mkdir(exist_ok=True)
    for index, label in enumerate(labels):
        video_id = f"{first_id + index:04d}"
        frames, joints = _render(video_rng(p.seed, split, index), label, size, p.num_video_frames)
        folder = root / "frames" / video_id
        folder.mkdir(parents=True)
        for number, frame in enumerate(frames, 1):
            save_image(folder / f"{number:06d}.jpg", frame, sync=False, quality=90)
        inside = (joints >= 0).all(-1) & (joints < size).all(-1)
        margin = subject_margin(size)
        bbox = np.concatenate([joints.min(1) - margin, joints.max(1) + margin], 1).clip(0, size) + 0.5
        _write_label_mat(root / "labels" / f"{video_id}.mat", _ACTIONS[label], joints + 0.5,
                         inside.astype(np.float64), bbox, size, split == "train")
        progress(1)


def _write(root: Path, p: GenerationParams, progress: Progress) -> None:  # JPEG frames: p.fps has nowhere to go
    _write_split(root, "train", p.num_train, p, 1, progress)
    _write_split(root, "val", p.num_val, p, p.num_train + 1, progress)


SPEC = SyntheticSpec(
    name="synth_pose",
    annotation_format="pennaction",
    num_classes=len(_ACTIONS),
    class_names=_ACTIONS,
    hflip_ok=True,  # the action survives a flip (the joints' left/right sides must then be swapped)
    description="a 13-joint stick figure repeating one of six PennAction actions with random phase, speed, "
    "size, position, proportions and colour; per-frame joint coordinates in PennAction .mat labels",
    mimics="Penn Action",
    stands_in_for="PennAction / NTU RGB+D (stick figures with per-frame joints)",
    write=_write,
)
