"""Synthetic sets, what tests/data/synthetic/test_sets.py leaves open: the cache key against every generation parameter
and an independently computed hash; the per-video and per-split random streams against each other (no train clip
repeated in val); num_classes in every set; PennAction visibility and bbox against a formula from the pixel
convention; the stick figure's joints against anatomy (rigid bones, the figure's left on the image's right) and the
JPEG pixels (sub-pixel joint centres); labels against pixels (appearance hue, motion
direction)."""

from __future__ import annotations

import colorsys
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data  # noqa: F401  (repairs torchvision before anything imports it)
from data.annotations import read_annotations
from data.synthetic import generate_synthetic, synthetic_dir
from data.synthetic.seeding import LABELS, SEGMENT_COUNTS, split_rng, video_rng
from data.video_io import Video
from tests.data.synthetic.test_sets import read_label_mat

DEFAULTS = dict(num_train=400, num_val=200, seed=0, num_video_frames=32, size=40, fps=15, num_classes=None)
# PennAction joint indices (0-based) and its 12 bones: head, shoulders, elbows, wrists, hips, knees, ankles (l, r).
HEAD, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP = 0, 1, 2, 7, 8
PENN_BONES = ((1, 2), (1, 3), (3, 5), (2, 4), (4, 6), (7, 8), (1, 7), (2, 8), (7, 9), (9, 11), (8, 10), (10, 12))


def frame_image(root: Path, video_id: str, t: int) -> np.ndarray:
    with Image.open(root / "frames" / video_id / f"{t + 1:06d}.jpg") as image:
        return np.asarray(image, dtype=np.float64) / 255


def decoded_clip(path: Path) -> np.ndarray:
    """A decoded video as float64 (T, H, W, C) in [0, 1]."""
    with Video(path) as video:
        return video.get_clip(0.0, video.duration).permute(1, 2, 3, 0).numpy().astype(np.float64) / 255


# --- cache key --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("param,other", [("num_train", 401), ("num_val", 201), ("seed", 1), ("num_video_frames", 16),
                                         ("size", 48), ("fps", 30), ("num_classes", 4)])
def test_cache_dir_is_keyed_by_every_parameter(param, other, tmp_path):
    # A parameter missing from the key would hand back a stale set generated with another value.
    for name in ("synth_appearance", "synth_pose"):
        assert synthetic_dir(name, tmp_path, **{param: other}) != synthetic_dir(name, tmp_path)
    same = synthetic_dir("synth_motion", tmp_path, **{param: DEFAULTS[param]})
    assert same == synthetic_dir("synth_motion", tmp_path)  # an explicit default is the default


def test_cache_dir_hash_matches_an_independent_computation(tmp_path):
    # sha1 of the sorted-key JSON of the completed parameters and the versions: generator 3 for all, and a set
    # version only where bumped (synth_pose: 2), so the version-1 sets' caches and runs stay valid.
    for name, versions in (("synth_appearance", {"generator_version": 3}), ("synth_motion", {"generator_version": 3}),
                           ("synth_verbnoun", {"generator_version": 3}),
                           ("synth_pose", {"generator_version": 3, "set_version": 2})):
        key = json.dumps({**versions, **DEFAULTS, "seed": 7}, sort_keys=True)
        expected = tmp_path / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
        assert synthetic_dir(name, tmp_path, seed=7) == expected


# --- random streams ---------------------------------------------------------------------------------------------


def test_random_streams_are_distinct():
    # Each key must start its own stream: a split, index, seed or stream missing from a key repeats draws.
    first_draws = {}
    for seed in (0, 1):
        for split in ("train", "val"):
            for index in range(4):
                first_draws[("video", seed, split, index)] = video_rng(seed, split, index).random()
            for stream in (LABELS, SEGMENT_COUNTS):
                first_draws[("split", seed, split, stream)] = split_rng(seed, split, stream).random()
    assert len(set(first_draws.values())) == len(first_draws) == 24
    assert video_rng(3, "val", 2).random() == video_rng(3, "val", 2).random()  # reproducible


def test_val_videos_are_not_copies_of_train_videos(tmp_path):
    # Identical clips in both splits would leak the validation set into training.
    root = generate_synthetic("synth_pose", tmp_path, num_train=3, num_val=3, num_video_frames=2, seed=0)
    train = [(root / "frames" / f"{i:04d}" / "000001.jpg").read_bytes() for i in (1, 2, 3)]
    val = [(root / "frames" / f"{i:04d}" / "000001.jpg").read_bytes() for i in (4, 5, 6)]
    assert not set(train) & set(val)


# --- num_classes ------------------------------------------------------------------------------------------------


def test_num_classes_keeps_the_first_classes_in_appearance_and_pose(tmp_path):
    appearance = generate_synthetic("synth_appearance", tmp_path / "a", num_train=6, num_val=3, num_video_frames=2,
                                    num_classes=3)
    for split in ("train", "val"):
        samples, _ = read_annotations("kinetics_list", appearance, split)
        assert sorted(s.label for s in samples) == sorted([0, 1, 2] * (2 if split == "train" else 1))
        assert {s.path.parent.name for s in samples} == {"red_disk", "yellow_disk", "green_disk"}
    pose = generate_synthetic("synth_pose", tmp_path / "p", num_train=6, num_val=3, num_video_frames=2, num_classes=3)
    actions = sorted(str(read_label_mat(pose, f"{i:04d}")["action"].item()) for i in range(1, 10))
    assert actions == sorted(["jumping_jacks", "squat", "jump_rope"] * 3)


# --- synth_pose: visibility, bbox, anatomy, pixels -------------------------------------------------------------


@pytest.fixture(scope="module")
def drifting_poses(tmp_path_factory) -> Path:
    """Long videos: the figure's sway takes joints out of the frame, so both visibility values occur."""
    return generate_synthetic("synth_pose", tmp_path_factory.mktemp("pose"), num_train=8, num_val=0,
                              num_video_frames=40, seed=4)


def test_pose_visibility_and_bbox_follow_the_pixel_convention(drifting_poses):
    size = 40
    margin = size / 40 * 3.4  # the largest head radius: the box spans the head drawn around joint 0
    seen = set()
    for video_id in (f"{i:04d}" for i in range(1, 9)):
        label = read_label_mat(drifting_poses, video_id)
        x, y, visibility, box = label["x"], label["y"], label["visibility"], label["bbox"]
        # 1-based coordinates: pixel i (0-based) spans [i + 0.5, i + 1.5), so the frame is [0.5, size + 0.5).
        inside = (x >= 0.5) & (x < size + 0.5) & (y >= 0.5) & (y < size + 0.5)
        np.testing.assert_array_equal(visibility, inside.astype(np.float64), err_msg=video_id)
        seen |= set(np.unique(visibility))
        expected = np.stack([x.min(1) - margin, y.min(1) - margin, x.max(1) + margin, y.max(1) + margin], 1)
        np.testing.assert_allclose(box, expected.clip(0.5, size + 0.5), rtol=0, atol=1e-9, err_msg=video_id)
    assert seen == {0.0, 1.0}, "the videos must hold both visible and invisible joints for the test to bite"


def test_pose_joints_are_anatomical(drifting_poses):
    for video_id in (f"{i:04d}" for i in range(1, 9)):
        label = read_label_mat(drifting_poses, video_id)
        joints = np.stack([label["x"], label["y"]], -1)  # (T, 13, 2)
        # Front view: the figure's left shoulder and hip are on the image's right.
        assert (joints[:, L_SHOULDER, 0] > joints[:, R_SHOULDER, 0]).all(), video_id
        assert (joints[:, L_HIP, 0] > joints[:, R_HIP, 0]).all(), video_id
        # y grows downwards: head above shoulders above hips above knees above ankles.
        for upper, lower in ((HEAD, L_SHOULDER), (L_SHOULDER, L_HIP), (7, 9), (9, 11), (8, 10), (10, 12)):
            assert (joints[:, upper, 1] < joints[:, lower, 1]).all(), (video_id, upper, lower)
        # Bones are rigid: a bone between the wrong joints changes length as the figure moves.
        for a, b in PENN_BONES:
            length = np.linalg.norm(joints[:, a] - joints[:, b], axis=-1)
            assert length.std() < 1e-6 * length.mean(), (video_id, a, b)


def test_pose_joint_coordinates_are_pixel_centred(tmp_path):
    """Sub-pixel: the head is a disk centred on the head joint, so the colour-weighted column centroid of its upper
    half is the joint's x - 1 (1-based label, 0-based pixel index). Off by half a pixel or more fails."""
    root = generate_synthetic("synth_pose", tmp_path, num_train=6, num_val=0, num_video_frames=4, size=80, seed=2)
    errors = []
    for video_id in (f"{i:04d}" for i in range(1, 7)):
        label = read_label_mat(root, video_id)
        if str(label["action"].item()) in ("jumping_jacks", "clean_and_jerk"):
            continue  # hands overhead would enter the window above the head
        for t in range(4):
            frame = frame_image(root, video_id, t)
            col, row = label["x"][t][HEAD] - 1, label["y"][t][HEAD] - 1
            figure = frame[int(round(row)), int(round(col))]
            radius = 80 / 40 * 3.4  # the largest head
            rows = np.arange(int(np.floor(row - radius - 2)), int(np.floor(row)))
            cols = np.arange(int(np.floor(col - radius - 2)), int(np.ceil(col + radius + 2)) + 1)
            weight = np.clip(1 - np.abs(frame[rows[:, None], cols[None, :]] - figure).sum(-1) / 0.5, 0, 1)
            errors.append((weight * cols[None, :]).sum() / weight.sum() - col)
    assert len(errors) >= 8
    assert np.median(np.abs(errors)) < 0.2, errors


# --- labels against pixels --------------------------------------------------------------------------------------


def test_appearance_object_hue_matches_the_class_name(tmp_path):
    hues = {"red": 0.0, "yellow": 0.15, "green": 0.36, "blue": 0.62}  # the class families' hues (HSV)
    root = generate_synthetic("synth_appearance", tmp_path, num_train=8, num_val=0, num_video_frames=2, seed=1)
    samples, _ = read_annotations("kinetics_list", root, "train")
    for sample in samples:
        frame = decoded_clip(sample.path)[0]
        saturation = frame.max(-1) - frame.min(-1)
        # The most saturated pixels are the object's (background and distractor are far greyer).
        pixels = frame.reshape(-1, 3)[np.argsort(saturation.ravel())[-20:]]
        hue = colorsys.rgb_to_hsv(*np.median(pixels, 0))[0]
        colour = sample.path.parent.name.split("_")[0]
        distance = min(abs(hue - hues[colour]), 1 - abs(hue - hues[colour]))
        assert distance < 0.08, (sample.path.name, colour, hue)


def dominant_shift(clip: np.ndarray, lag: int = 4, reach: int = 6) -> tuple[int, int]:
    """The (dx, dy) in pixels that best maps the moving foreground of frame t onto frame t + lag (torus)."""
    foreground = np.abs(clip - np.median(clip, 0, keepdims=True)).sum(-1)  # (T, H, W); the scene is static
    scores = {(dx, dy): sum((np.roll(foreground[t], (dy, dx), (0, 1)) * foreground[t + lag]).sum()
                            for t in range(len(foreground) - lag))
              for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1)}
    return max(scores, key=scores.get)


def test_motion_direction_matches_the_template(tmp_path):
    directions = {"Moving [something] from left to right": (1, 0), "Moving [something] from right to left": (-1, 0),
                  "Moving [something] up": (0, -1), "Moving [something] down": (0, 1),
                  "Turning [something] clockwise": (0, 0), "Turning [something] counterclockwise": (0, 0)}
    root = generate_synthetic("synth_motion", tmp_path, num_train=6, num_val=0, num_video_frames=16, seed=5)
    entries = json.loads((root / "train.json").read_text())
    assert {e["template"] for e in entries} == set(directions)
    for entry in entries:
        dx, dy = dominant_shift(decoded_clip(root / "videos" / f"{entry['id']}.webm"))
        assert (np.sign(dx), np.sign(dy)) == directions[entry["template"]], (entry["template"], dx, dy)
