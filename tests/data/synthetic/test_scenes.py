"""Synthetic sets, what tests/data/synthetic/test_sets.py and tests/data/synthetic/test_streams_and_cache.py leave open
(found by mutation testing of data/synthetic/):

- synth_motion's "every single frame has the same distribution in every class" and synth_verbnoun's "each frame's
  object positions and orientations have the same distribution for every motion": with one generator state, the
  first frame is the same for every class (only the motion depends on the label, and it has not acted yet), and the
  renderer wraps objects around the borders (torus) instead of cutting them off;
- the sense of rotation of the "clockwise" classes, and the direction of synth_verbnoun's translations;
- synth_verbnoun: the objects are there on exactly the segment's frames, in the colour its noun names;
- synth_appearance: the drawn shape is the one the class names, and the drift is the same for every class;
- every set's validation videos come from their own streams, not the training videos' (seeding keyed by split);
- each written video is the one rendered from the generator keyed by its (seed, split, index), frames in order
  (decoded against rendered; PennAction JPEGs and .mat joints together);
- balanced labels come in random order, not cycling through the classes; to_uint8 rounds and saturates;
- a split other than train and val is refused (it once drew val's streams again).
"""

from __future__ import annotations

import colorsys
import json
import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import gaussian_filter

import data  # noqa: F401  (repairs torchvision before anything imports it)
from data.annotations import read_annotations
from data.synthetic import appearance, generate_synthetic, motion, pose, verbnoun
from data.synthetic.render import render_object, to_uint8
from data.synthetic.seeding import LABELS, split_rng, video_rng
from tests.data.synthetic.test_sets import epic_rows, read_label_mat
from tests.data.synthetic.test_streams_and_cache import decoded_clip, dominant_shift, frame_image

SIZE = 40
FRAMES = 6  # per video of the small sets


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([12345, seed])


# --- one frame carries no class information (synth_motion, synth_verbnoun's verbs) -----------------------------


def test_motion_first_frame_is_the_same_for_every_class():
    # Looks, sizes, start positions and orientations are drawn identically for every class and the motion has not
    # acted at t = 0: from one generator state every class draws the same first frame (and names the same object).
    for seed in range(4):
        renders = [motion._render(_rng(seed), label, SIZE, 3) for label in range(motion.SPEC.num_classes)]
        for label, (frames, thing) in enumerate(renders[1:], 1):
            np.testing.assert_array_equal(frames[0], renders[0][0][0], err_msg=f"seed {seed}, class {label}")
            assert thing == renders[0][1]
        # ...and the classes do differ once the objects move.
        assert all(not np.array_equal(frames[2], renders[0][0][2]) for frames, _ in renders[1:])


def test_verbnoun_first_segment_frame_is_the_same_for_every_verb():
    looks = [("triangle", np.array([0.9, 0.2, 0.1])), ("ell", np.array([0.1, 0.8, 0.3]))]
    base = np.full((3, SIZE, SIZE, 3), 0.5, dtype=np.float32)
    for seed in range(3):
        moved = [verbnoun._move_objects(_rng(seed), base.copy(), SIZE, m, looks) for _, _, m in verbnoun._VERBS]
        for k, frames in enumerate(moved[1:], 1):
            np.testing.assert_array_equal(frames[0], moved[0][0], err_msg=f"seed {seed}, verb {k}")
            assert not np.array_equal(frames[2], moved[0][2])


def test_objects_wrap_around_the_borders():
    # A torus: an object crossing a border re-enters on the other side, so it keeps its whole area (a cut-off
    # object would tell where it is heading). Centres in the middle, on the right edge, on the bottom-left corner.
    cx, cy = np.array([20.0, 39.6, 0.3]), np.array([20.0, 17.0, 39.8])
    for shape in ("disk", "square", "triangle", "cross", "ell"):
        masks = render_object(SIZE, shape, cx, cy, np.array([0.3, 0.3, 0.3]), 6.0)
        areas = masks.sum((1, 2))
        np.testing.assert_allclose(areas[1:], areas[0], rtol=0.02, err_msg=shape)
        assert masks[1][:, :3].sum() > 5 and masks[1][:, -3:].sum() > 5, shape  # both sides of the right edge


# --- directions and senses of rotation ---------------------------------------------------------------------------


def _spin(clip: np.ndarray, window: int = 7) -> float:
    """Rotation rate (rad/frame; > 0 = clockwise on screen, y pointing down) of the moving content of a clip (T, H,
    W, C), from brightness constancy with a rigid model per window around (xc, yc): flow u = a - w (y - yc),
    v = b + w (x - xc). Windows are weighted by their temporal change; the static background gives w = 0."""
    frames = gaussian_filter(clip, (0, 0.7, 0.7, 0))
    mid, change = (frames[1:] + frames[:-1]) / 2, frames[1:] - frames[:-1]  # (T - 1, H, W, C)
    gy, gx = np.gradient(mid, axis=(1, 2))
    offsets = np.arange(window, dtype=float) - window // 2

    def windows(g):  # (T - 1, Y, X, C, window_y, window_x), window centres 2 px apart
        return sliding_window_view(g, (window, window), axis=(1, 2))[:, ::2, ::2]

    wx, wy, wt = windows(gx), windows(gy), windows(change)
    columns = [wx, wy, offsets * wy - offsets[:, None] * wx]  # d(brightness)/d(a, b, w)
    flat = [c.reshape(*c.shape[:3], -1) for c in columns]
    normal = np.stack([np.stack([(f * g).sum(-1) for g in flat], -1) for f in flat], -2)  # (T-1, Y, X, 3, 3)
    rhs = np.stack([-(f * wt.reshape(f.shape)).sum(-1) for f in flat], -1)
    rate = np.linalg.solve(normal + 1e-9 * np.eye(3), rhs[..., None])[..., 2, 0]
    energy = (wt ** 2).sum((-3, -2, -1))
    return float((rate * energy).sum() / energy.sum())


def test_spin_estimate_reads_a_known_rotation():
    # The estimator against a clip whose sense is known without the code under test: an L rotated by +-7 deg per
    # frame with the y axis pointing down (x' = x cos a - y sin a, y' = x sin a + y cos a turns clockwise).
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] + 0.5 - SIZE / 2
    for sign in (1, -1):
        frames = []
        for t in range(6):
            a = -sign * math.radians(7) * t  # back-rotate the pixel into the shape's frame
            x, y = xs * math.cos(a) - ys * math.sin(a), xs * math.sin(a) + ys * math.cos(a)
            inside = ((x >= -8) & (x <= -3) & (np.abs(y) <= 8)) | ((y >= 3) & (y <= 8) & (x >= -8) & (x <= 6))
            frames.append(np.repeat((0.3 + 0.6 * inside)[..., None], 3, -1))
        assert np.sign(_spin(np.stack(frames))) == sign


def test_motion_turning_classes_turn_the_named_way(tmp_path):
    root = generate_synthetic("synth_motion", tmp_path, num_train=12, num_val=0, num_video_frames=8, seed=5)
    turns = 0
    for entry in json.loads((root / "train.json").read_text()):
        if entry["template"].startswith("Turning"):
            expected = -1 if "counterclockwise" in entry["template"] else 1
            rate = _spin(decoded_clip(root / "videos" / f"{entry['id']}.webm"))
            assert np.sign(rate) == expected, (entry["template"], rate)
            turns += 1
    assert turns == 4


@pytest.fixture(scope="module")
def verbnoun_set(tmp_path_factory):
    # 16-frame segments: the objects travel 10-19 px, so the segment's median frame is the static scene.
    return generate_synthetic("synth_verbnoun", tmp_path_factory.mktemp("vn"), num_train=18, num_val=4,
                              num_video_frames=16, seed=2)


def _segment_clips(root, split: str):
    rows = epic_rows(root, split)
    for video_id, group in rows.groupby("video_id", sort=False):
        whole = decoded_clip(root / group["participant_id"].iloc[0] / "videos" / f"{video_id}.MP4")
        for row in group.itertuples():
            yield row, whole[row.start_frame - 1:row.stop_frame]


def test_verbnoun_verbs_move_and_turn_the_named_way(verbnoun_set):
    # EPIC-style verbs: move-right +x, move-left -x, lift up (-y on screen), lower down, turn-clockwise
    # clockwise on screen, turn-anticlockwise the other way.
    shifts = {"move-right": (1, 0), "move-left": (-1, 0), "lift": (0, -1), "lower": (0, 1)}
    spins = {"turn-clockwise": 1, "turn-anticlockwise": -1}
    seen = set()
    for row, clip in _segment_clips(verbnoun_set, "train"):
        if row.verb in shifts:
            dx, dy = dominant_shift(clip)
            assert (np.sign(dx), np.sign(dy)) == shifts[row.verb], (row.narration_id, row.verb, dx, dy)
        else:
            rate = _spin(clip)
            assert np.sign(rate) == spins[row.verb], (row.narration_id, row.verb, rate)
        seen.add(row.verb)
    assert seen == set(shifts) | set(spins)


def test_verbnoun_objects_appear_exactly_during_their_segments_in_the_named_colour(verbnoun_set):
    # "Only during a segment do the labelled objects appear": saturated pixels (objects: saturation x value >=
    # 0.45) fill every frame of a segment and are nearly absent from the idle frames around it (measured: >= 84
    # vs <= 36 pixels with max - min > 0.3). The noun key's modifier names the colour family (HSV hue).
    hues = {"red": 0.0, "blue": 0.62, "green": 0.36}
    rows = epic_rows(verbnoun_set, "train")
    for video_id, group in rows.groupby("video_id", sort=False):
        whole = decoded_clip(verbnoun_set / group["participant_id"].iloc[0] / "videos" / f"{video_id}.MP4")
        saturation = whole.max(-1) - whole.min(-1)
        coloured = (saturation > 0.3).sum((1, 2))
        for row in group.itertuples():
            first, last = row.start_frame - 1, row.stop_frame - 1  # 0-based, inclusive
            assert coloured[first:last + 1].min() > 60, (row.narration_id, coloured[first:last + 1])
            idle = [coloured[first - 1]] + ([coloured[last + 1]] if last + 1 < len(whole) else [])
            assert max(idle) < 50, (row.narration_id, idle)
            frame = whole[first]
            pixels = frame.reshape(-1, 3)[np.argsort(saturation[first].ravel())[-20:]]
            hue = colorsys.rgb_to_hsv(*np.median(pixels, 0))[0]
            expected = hues[row.noun.split(":")[1]]
            assert min(abs(hue - expected), 1 - abs(hue - expected)) < 0.08, (row.narration_id, row.noun, hue)


# --- synth_appearance: the shape is the named one, the drift is the same for every class ----------------------


def _footprint(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Opacity (T, H, W) of the object in two renders that differ only in its colour: a - b = alpha (c_a - c_b)."""
    difference = np.linalg.norm(a.astype(float) - b.astype(float), axis=-1)
    return difference / difference.max(axis=(1, 2), keepdims=True)


def _roundness(alpha: np.ndarray) -> float:
    """area² / (2 pi polar moment): 1 for a disk, 0.82 for a plus-shaped cross with arms a third of its reach."""
    peak = np.unravel_index(alpha.argmax(), alpha.shape)  # centre it: the object may straddle a border (torus)
    alpha = np.roll(alpha, (alpha.shape[0] // 2 - peak[0], alpha.shape[1] // 2 - peak[1]), (0, 1))
    ys, xs = np.mgrid[0:alpha.shape[0], 0:alpha.shape[1]]
    area = alpha.sum()
    cy, cx = (alpha * ys).sum() / area, (alpha * xs).sum() / area
    return area ** 2 / (2 * math.pi * (alpha * ((ys - cy) ** 2 + (xs - cx) ** 2)).sum())


def test_appearance_draws_the_named_shape_with_a_class_independent_drift():
    names = appearance.SPEC.class_names
    for seed in range(3):
        renders = [appearance._render(_rng(seed), label, SIZE, 6) for label in range(len(names))]
        for shape in ("disk", "cross"):
            labels = [k for k, name in enumerate(names) if name.endswith(shape)]
            assert len(labels) == 4
            first = _footprint(renders[labels[0]], renders[labels[1]])
            for other in labels[2:]:  # the same object, frame by frame, whatever the colour family
                np.testing.assert_allclose(_footprint(renders[labels[0]], renders[other]), first, atol=0.08,
                                           err_msg=f"seed {seed}: the drift depends on the class")
            roundness = [_roundness(alpha) for alpha in first]
            if shape == "disk":
                assert min(roundness) > 0.93, (seed, roundness)
            else:
                assert max(roundness) < 0.88, (seed, roundness)


# --- splits: validation videos are not training videos ----------------------------------------------------------


def _blur(frames: np.ndarray) -> np.ndarray:
    """Frames (..., H, W, C) smoothed over 1 px: the scene without the per-frame pixel noise the codecs drop."""
    return gaussian_filter(frames, (0,) * (frames.ndim - 3) + (1, 1, 0))


def _differing(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels whose smoothed colour differs by more than 0.04 in some channel."""
    return float((np.abs(_blur(a) - _blur(b)).max(-1) > 0.04).mean())


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory):
    base = tmp_path_factory.mktemp("small")
    params = dict(num_train=6, num_val=6, num_video_frames=FRAMES, seed=0)
    return {name: generate_synthetic(name, base / name, **params)
            for name in ("synth_appearance", "synth_motion", "synth_pose")}


def test_validation_videos_have_their_own_scenes(small_sets, verbnoun_set):
    # Each video is drawn from its own stream keyed by (seed, split, index): the val video at index i shares
    # nothing with the train video at index i, so most of the frame (the random background texture) differs. A
    # split missing from the key repeats the training scenes (background, clutter, placement) in validation.
    pairs = []
    for name in ("synth_appearance", "synth_motion"):
        fmt = "kinetics_list" if name == "synth_appearance" else "ssv2"
        (train, _), (val, _) = (read_annotations(fmt, small_sets[name], split) for split in ("train", "val"))
        pairs += [(name, decoded_clip(t.path)[0], decoded_clip(v.path)[0]) for t, v in zip(train, val)]
    pairs += [("synth_pose", frame_image(small_sets["synth_pose"], f"{i:04d}", 0), frame_image(small_sets["synth_pose"],
                                                                                      f"{i + 6:04d}", 0))
              for i in range(1, 7)]
    train_rows, val_rows = epic_rows(verbnoun_set, "train"), epic_rows(verbnoun_set, "val")
    for t, v in zip(train_rows.drop_duplicates("video_id").itertuples(), val_rows.drop_duplicates("video_id")
                    .itertuples()):
        pairs.append(("synth_verbnoun",
                      decoded_clip(verbnoun_set / t.participant_id / "videos" / f"{t.video_id}.MP4")[0],
                      decoded_clip(verbnoun_set / v.participant_id / "videos" / f"{v.video_id}.MP4")[0]))
    assert len(pairs) >= 19
    for name, train_frame, val_frame in pairs:
        assert _differing(train_frame, val_frame) > 0.6, name  # measured: >= 0.85; shared stream <= 0.35


# --- written videos are the rendered ones, keyed by (seed, split, index), frames in order ----------------------


def test_written_videos_decode_to_the_rendered_frames(small_sets):
    # The package's claim: every video is drawn from the generator seeded by (seed, split, index), so any one can
    # be regenerated alone. Lossy codecs: a few levels off on average; another video or another frame order is
    # tens of levels off.
    for name, module, fmt in (("synth_appearance", appearance, "kinetics_list"), ("synth_motion", motion, "ssv2")):
        for split in ("train", "val"):
            samples, _ = read_annotations(fmt, small_sets[name], split)
            for index, sample in enumerate(samples):
                rendered = module._render(video_rng(0, split, index), sample.label, SIZE, FRAMES)
                rendered = (rendered[0] if name == "synth_motion" else rendered).astype(float) / 255
                decoded = decoded_clip(sample.path)
                assert decoded.shape == rendered.shape
                error = np.abs(_blur(decoded) - _blur(rendered)).mean((1, 2, 3))
                # measured: <= 0.013 (appearance); frames reversed >= 0.022, another video >= 0.10
                assert error.max() < 0.018, (name, split, index, error)


def test_pose_frames_and_joints_are_the_rendered_ones(small_sets):
    root = small_sets["synth_pose"]
    for split, first_id in (("train", 1), ("val", 7)):
        for index in range(6):
            video_id = f"{first_id + index:04d}"
            label = read_label_mat(root, video_id)
            action = pose.SPEC.class_names.index(str(label["action"].item()))
            frames, joints = pose._render(video_rng(0, split, index), action, SIZE, FRAMES)
            # PennAction's 1-based coordinates: the centre of the top-left pixel is (1, 1), i.e. 0-based + 1/2.
            np.testing.assert_allclose(label["x"], joints[..., 0] + 0.5, atol=1e-9)
            np.testing.assert_allclose(label["y"], joints[..., 1] + 0.5, atol=1e-9)
            decoded = np.stack([frame_image(root, video_id, t) for t in range(FRAMES)])  # JPEG quality 90
            error = np.abs(_blur(decoded) - _blur(frames / 255)).mean((1, 2, 3))
            assert error.max() < 0.018, (video_id, error)


# --- label order -------------------------------------------------------------------------------------------------


def test_balanced_labels_come_in_random_order(tmp_path):
    # "Every class equally often (up to one), in random order": not 0, 1, 2, ... cycling through the classes.
    root = generate_synthetic("synth_appearance", tmp_path, num_train=24, num_val=0, num_video_frames=2, seed=0)
    labels = [int(line.split()[1]) for line in (root / "train.csv").read_text().splitlines()]
    assert sorted(labels) == sorted(list(range(8)) * 3)
    assert labels != [i % 8 for i in range(24)] and labels != sorted(labels)


def test_to_uint8_rounds_to_the_nearest_level_and_saturates():
    # Frames are floats in [0, 1] until to_uint8: nearest of the 256 levels; out of range saturates, never wraps.
    values = np.array([-0.2, 0.0, 0.3 / 255, 0.6 / 255, 0.5, 127.4 / 255, 254.6 / 255, 1.0, 1.3], dtype=np.float32)
    assert to_uint8(values).tolist() == [0, 0, 0, 1, 128, 127, 255, 255, 255]


@pytest.mark.parametrize("split", ["test", "validation", "Val"])
def test_a_split_with_no_stream_of_its_own_is_refused_by_name(split):
    # Only train and val have streams: any other name once drew val's videos and labels again, silently.
    with pytest.raises(ValueError, match=f"splits train, val; got '{split}'"):
        video_rng(0, split, 0)
    with pytest.raises(ValueError, match=f"got '{split}'"):
        split_rng(0, split, LABELS)
