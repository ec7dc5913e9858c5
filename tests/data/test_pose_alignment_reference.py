"""Pose data against references written here: NTU's left/right joint pairs against the Kinect v2 joint names of the
NTU RGB+D release (its README), the main body and the field order of a hand-written ``.skeleton`` file, pixel
joints through the train and test transforms against where the transformed frames' own pixels say each source
pixel went (coordinate ramps, non-square frames), test-mode joints against the frames of the same view, and
synth_pose's 1-based labels against the drawn head's centre."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

import data  # noqa: F401  (repairs torchvision before anything imports it)
from data.annotations import read_annotations
from data.datasets import VideoClipDataset
from data.pose import (
    FLIP_PAIRS,
    NTU_NUM_JOINTS,
    PENNACTION_JOINTS,
    ntu_main_body_joints,
    read_ntu_skeleton,
    write_pennaction_labels,
)
from data.synthetic import generate_synthetic
from data.transforms import TestTransform, TrainTransform
from data.video_io import write_frame_folder
from tests.data.test_formats import frame_ids, index_frames

# The 25 Kinect v2 joints in the order of NTU RGB+D's README (1-based there).
KINECT_V2_JOINTS = (
    "base_of_spine", "middle_of_spine", "neck", "head", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot", "spine", "left_hand_tip", "left_thumb",
    "right_hand_tip", "right_thumb",
)


def pairs_by_name(names: tuple[str, ...]) -> set[frozenset[int]]:
    """Every (left_X, right_X) index pair, found by name."""
    pairs = set()
    for i, name in enumerate(names):
        if name.startswith("left_"):
            pairs.add(frozenset((i, names.index("right_" + name[len("left_"):]))))
    return pairs


def test_ntu_flip_pairs_are_the_kinect_v2_left_right_joints():
    assert len(KINECT_V2_JOINTS) == NTU_NUM_JOINTS
    assert {frozenset(pair) for pair in FLIP_PAIRS[NTU_NUM_JOINTS]} == pairs_by_name(KINECT_V2_JOINTS)
    assert len(FLIP_PAIRS[NTU_NUM_JOINTS]) == 10  # no joint in two pairs, no midline joint paired


# --- NTU .skeleton: hand-written files -----------------------------------------------------------------------


def skeleton_text(frames: list[list[tuple[str, list[float], np.ndarray]]]) -> str:
    """The .skeleton layout written line by line: frame count; per frame the body count; per body its id and 9
    values, the joint count and 25 lines of 12 values (CRLF, as released)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, info, joints in bodies:
            lines.append(" ".join([body_id] + [repr(v) for v in info]))
            lines.append("25")
            for row in joints:
                lines.append(" ".join(repr(float(v)) for v in row))
    return "\r\n".join(lines) + "\r\n"


def _joint_rows(offset: float, step: float = 100.0) -> np.ndarray:
    """(25, 12): value = offset + step * joint + field, so a read-back names its joint and field."""
    return offset + step * np.arange(25)[:, None] + np.arange(12)[None]


def test_hand_written_skeleton_fields_and_main_body(tmp_path):
    info_a = [1.0, 0.25, 2.0, 0.5, 3.0, 0.0, -0.125, 0.0625, 2.0]  # clippedEdges ... trackingState
    # Body "B" is seen first, its joints 10 apart; body "A"'s are 100 apart: A has the larger energy.
    frames = [[("B", info_a, _joint_rows(0.5, 10))], [("A", info_a, _joint_rows(0.25))],
              [("B", info_a, _joint_rows(0.5, 10)), ("A", info_a, _joint_rows(0.25))],
              [("A", info_a, _joint_rows(0.25))]]
    path = tmp_path / "S001C001P001R001A050.skeleton"
    path.write_text(skeleton_text(frames))
    parsed = read_ntu_skeleton(path)
    assert [[b.body_id for b in f] for f in parsed] == [["B"], ["A"], ["B", "A"], ["A"]]
    np.testing.assert_array_equal(parsed[1][0].info, info_a)
    np.testing.assert_array_equal(parsed[2][1].joints, _joint_rows(0.25))
    xyz = ntu_main_body_joints(parsed)
    assert xyz.shape == (4, 25, 3) and not xyz[0].any()  # frame 0 holds only B: zeros
    for t in (1, 2, 3):
        for j in range(25):
            np.testing.assert_allclose(xyz[t, j], [0.25 + 100 * j + f for f in range(3)])
    colour = ntu_main_body_joints(parsed, fields=slice(5, 7))  # colorX, colorY
    np.testing.assert_allclose(colour[2, 7], [0.25 + 700 + 5, 0.25 + 700 + 6])


def reference_energy(frames_xyz: list[np.ndarray]) -> float:
    """2s-AGCN ntu_gendata.py ``get_nonzero_std``: the frames with a nonzero pose, then std(x) + std(y) + std(z)
    over all their joints, written as plain sums."""
    values = [row for xyz in frames_xyz if np.any(xyz) for row in xyz.tolist()]
    if not values:
        return 0.0
    total = 0.0
    for axis in range(3):
        column = [row[axis] for row in values]
        mean = sum(column) / len(column)
        total += math.sqrt(sum((v - mean) ** 2 for v in column) / len(column))
    return total


def test_main_body_is_the_most_energetic_ties_to_the_first_seen(tmp_path):
    """Two bodies in every frame, the still one listed first: the moving one is the main actor (its energy is the
    larger); an all-zero frame does not count; equal energies go to the body seen first."""
    info = [0.0] * 8 + [2.0]
    rng = np.random.default_rng(0)
    still = rng.uniform(-1, 1, (25, 12))
    moving = [still + rng.normal(0, 0.5, (25, 12)) for _ in range(3)]
    frames = [[("X", info, still), ("Y", info, moving[t])] for t in range(3)]
    frames.append([("X", info, np.zeros((25, 12))), ("Y", info, moving[2])])
    path = tmp_path / "S001C001P001R001A050.skeleton"
    path.write_text(skeleton_text(frames))
    parsed = read_ntu_skeleton(path)
    energies = {body: reference_energy([b.joints[:, :3] for f in parsed for b in f if b.body_id == body])
                for body in ("X", "Y")}
    assert energies["Y"] > energies["X"] > 0
    np.testing.assert_allclose(ntu_main_body_joints(parsed), [b.joints[:, :3] for f in parsed for b in f
                                                               if b.body_id == "Y"], rtol=1e-6)
    tie = [[("X", info, _joint_rows(0.5)), ("Y", info, _joint_rows(0.25))], [("Y", info, _joint_rows(0.25))],
           [("X", info, _joint_rows(0.5))]]
    path.write_text(skeleton_text(tie))
    xyz = ntu_main_body_joints(read_ntu_skeleton(path))  # same spread in every frame: X, listed first, is kept
    np.testing.assert_allclose(xyz[:, 0, 0], [0.5, 0.0, 0.5])


# --- pixel joints through the transforms: coordinate ramps ---------------------------------------------------


def ramp_video(height: int, width: int, num_frames: int = 2) -> torch.Tensor:
    """(3, T, H, W) float: channel 0 = 1-based x of the pixel, channel 1 = 1-based y. Bilinear resizing keeps a
    ramp exact away from the border, so each output pixel tells which source position it shows."""
    xs = torch.arange(1, width + 1, dtype=torch.float32).expand(height, width)
    ys = torch.arange(1, height + 1, dtype=torch.float32)[:, None].expand(height, width)
    return torch.stack([xs, ys, torch.zeros(height, width)])[:, None].repeat(1, num_frames, 1, 1)


def _inverse_axis_map(values: torch.Tensor, size: int, source_size: int) -> tuple[float, float]:
    """Fit source = a * index + b (index 0-based in the output) from a ramp line, on interior values only."""
    index = np.arange(size, dtype=np.float64)
    v = values.double().numpy()
    keep = (v > 1.0 + 1e-4) & (v < source_size - 1e-4)  # the border pixels are clamped by the resize
    a, b = np.polyfit(index[keep], v[keep], 1)
    np.testing.assert_allclose(v[keep], a * index[keep] + b, atol=1e-3)  # truly a ramp: a plain resize/crop/flip
    return a, b


def _expected_joints(joints: torch.Tensor, frame: torch.Tensor, source_hw: tuple[int, int], flipped: bool
                     ) -> torch.Tensor:
    """Where the output frame (3, H, W) shows each source joint, 1-based; joints renamed left <-> right if flipped."""
    height, width = frame.shape[-2:]
    ax, bx = _inverse_axis_map(frame[0, height // 2], width, source_hw[1])
    ay, by = _inverse_axis_map(frame[1, :, width // 2], height, source_hw[0])
    out = torch.empty_like(joints, dtype=torch.float64)
    for j, name in enumerate(PENNACTION_JOINTS):
        partner = name
        if flipped and name.startswith(("left_", "right_")):
            partner = name.replace("left_", "tmp_").replace("right_", "left_").replace("tmp_", "right_")
        source = joints[..., PENNACTION_JOINTS.index(partner), :].double()
        out[..., j, 0] = (source[..., 0] - bx) / ax + 1
        out[..., j, 1] = (source[..., 1] - by) / ay + 1
    return out


def _source_joints(height: int, width: int, num_frames: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(height * width)
    return torch.stack([torch.rand(num_frames, 13, generator=gen) * (width - 8) + 4,
                        torch.rand(num_frames, 13, generator=gen) * (height - 8) + 4], -1)


@pytest.mark.parametrize("height,width", [(24, 40), (40, 24)])
def test_train_transform_moves_joints_where_the_pixels_go(height, width):
    video, joints = ramp_video(height, width), _source_joints(height, width)
    transform = TrainTransform(16, (20, 22), hflip=True, mean=(0, 0, 0), std=(1, 1, 1), rng=random.Random(1))
    flips = set()
    for _ in range(12):
        out = transform({"video": video, "pose": joints, "pose_space": "pixel"})
        frame = out["video"][:, 0]
        flipped = bool(frame[0, 8, 1] < frame[0, 8, 0])  # x decreasing to the right: mirrored
        flips.add(flipped)
        expected = _expected_joints(joints, frame, (height, width), flipped)
        torch.testing.assert_close(out["pose"].double(), expected, atol=2e-3, rtol=0)
    assert flips == {True, False}


@pytest.mark.parametrize("height,width", [(24, 40), (40, 24)])
def test_test_transform_moves_joints_with_each_crop(height, width):
    video, joints = ramp_video(height, width), _source_joints(height, width)
    out = TestTransform(16, num_crops=3, short_side=20, mean=(0, 0, 0), std=(1, 1, 1))(
        {"video": video, "pose": joints, "pose_space": "pixel"})
    assert out["pose"].shape == (3, 2, 13, 2)
    for view in range(3):
        expected = _expected_joints(joints, out["video"][view][:, 0], (height, width), flipped=False)
        torch.testing.assert_close(out["pose"][view].double(), expected, atol=2e-3, rtol=0)


# --- test-mode items: each view's joints are those of its own frames -----------------------------------------


def test_test_mode_views_carry_the_joints_of_their_own_frames(tmp_path):
    num_frames = 20
    write_frame_folder(tmp_path / "frames" / "0001", index_frames(num_frames))
    x = 100.0 * np.arange(num_frames)[:, None] + np.arange(13)[None]  # x names the frame (and the joint)
    write_pennaction_labels(tmp_path / "labels" / "0001.mat", "bowl", x, np.full((num_frames, 13), 5.0), (24, 56),
                            train=True)
    samples, _ = read_annotations("pennaction", tmp_path, "train")
    dataset = VideoClipDataset(samples, "test", None, num_frames=4, sampling="segments", num_clips=3, with_pose=True)
    item = dataset[0]
    assert item["video"].shape[0] == 3 and item["pose"].shape == (3, 4, 13, 2)
    seen = []
    for view in range(3):
        ids = frame_ids((item["video"][view] * 255).round().to(torch.uint8))
        seen.append(ids)
        for t, frame in enumerate(ids):
            for j in range(13):
                assert item["pose"][view, t, j, 0].item() == 100.0 * frame + j, (view, t, j)
    assert len({tuple(ids) for ids in seen}) == 3  # three distinct clips


# --- synth_pose: the labels are 1-based pixel centres of the drawn figure ------------------------------------


def test_synthetic_head_label_is_the_one_based_centre_of_the_drawn_head(tmp_path):
    """The horizontal centroid of the head disk's upper half (nothing else is drawn there) sits at column x - 1
    (0-based) for the label's 1-based x: a label half a pixel off moves the median offset by 0.5."""
    size = 64
    root = generate_synthetic("synth_pose", tmp_path, num_train=6, num_val=0, num_video_frames=4, size=size, seed=5)
    offsets = []
    for video_id in range(1, 7):
        label = scipy.io.loadmat(root / "labels" / f"{video_id:04d}.mat")
        for t in range(4):
            with Image.open(root / "frames" / f"{video_id:04d}" / f"{t + 1:06d}.jpg") as image:
                brightness = np.asarray(image, dtype=np.float64).mean(-1) / 255
            col, row = label["x"][t, 0] - 1, label["y"][t, 0] - 1  # 0-based pixel-index coordinates
            r0, c0 = int(round(row)), int(round(col))
            if not (6 <= r0 < size and 6 <= c0 < size - 6):
                continue
            window = brightness[r0 - 6:r0, c0 - 6:c0 + 7]  # rows above the centre, 13 columns around it
            background, head = np.median(brightness), brightness[r0, c0]
            weight = np.clip((window - background) / (head - background), 0, 1)
            weight = np.where(weight > 0.5, weight, 0.0)
            columns = np.arange(c0 - 6, c0 + 7)
            offsets.append((weight.sum(0) * columns).sum() / weight.sum() - col)
    assert len(offsets) >= 16
    assert abs(np.median(offsets)) < 0.2, np.round(offsets, 2)
