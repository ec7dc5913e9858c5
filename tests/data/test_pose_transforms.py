"""Joints move with the pixels: scale, crop and flip (with left/right swapped) for PennAction pixel joints, flip for
NTU camera-space joints; test crops sit where pytorchvideo's uniform_crop puts them."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from pytorchvideo.transforms.functional import uniform_crop

import data  # noqa: F401  (repairs torchvision before anything imports it)
from data.annotations import read_annotations
from data.datasets import VideoClipDataset
from data.pose import COCO_JOINTS, FLIP_PAIRS, NTU_NUM_JOINTS, PENNACTION_JOINTS
from data.synthetic import generate_synthetic
from data.transforms import TestTransform, TrainTransform, transform_joints, uniform_crop_offsets


@pytest.mark.parametrize("height,width,size", [(24, 56, 24), (56, 24, 24), (32, 32, 24), (45, 61, 20)])
def test_crop_offsets_are_pytorchvideos(height, width, size):
    video = torch.rand(3, 2, height, width)
    for index in (0, 1, 2):
        top, left = uniform_crop_offsets(height, width, size, index)
        assert torch.equal(TF.crop(video, top, left, size, size), uniform_crop(video, size, index))


def test_pixel_joints_follow_scale_crop_and_flip():
    joints = torch.rand(2, 13, 2, dtype=torch.float64) * 40 + 0.5  # 1-based pixel centres in a 40x40 frame
    moved = transform_joints(joints, "pixel", scale=(0.8, 0.8), top=3, left=1)
    # Pixel i (1-based) spans [i - 0.5, i + 0.5): its edges scale, then the crop origin moves.
    torch.testing.assert_close(moved[..., 0], (joints[..., 0] - 0.5) * 0.8 + 0.5 - 1)
    torch.testing.assert_close(moved[..., 1], (joints[..., 1] - 0.5) * 0.8 + 0.5 - 3)
    flipped = transform_joints(joints, "pixel", scale=(0.8, 0.8), top=3, left=1, flip_width=24)
    pairs = dict(FLIP_PAIRS[13]) | {j: i for i, j in FLIP_PAIRS[13]}
    for j in range(13):  # joint j of the mirrored figure is the original's opposite-side joint
        source = pairs.get(j, j)
        torch.testing.assert_close(flipped[..., j, 0], 24 + 1 - moved[..., source, 0])
        torch.testing.assert_close(flipped[..., j, 1], moved[..., source, 1])
    assert PENNACTION_JOINTS[5] == "left_wrist" and pairs[5] == 6  # spot check of the pairing


@pytest.mark.parametrize("names", [PENNACTION_JOINTS, COCO_JOINTS], ids=["pennaction", "coco"])
def test_every_flip_pair_swaps_a_left_joint_with_its_right_one(names):
    """By name, for the layouts that have names (COCO's 17 keypoints: FineGYM at paper scale, which flips)."""
    pairs = FLIP_PAIRS[len(names)]
    assert {names[i].replace("left_", "right_") for i, _ in pairs} == {names[j] for _, j in pairs}
    unpaired = set(range(len(names))) - {k for pair in pairs for k in pair}
    assert not any(names[k].startswith(("left_", "right_")) for k in unpaired)


def test_camera_joints_only_flip():
    joints = torch.randn(3, NTU_NUM_JOINTS, 3, dtype=torch.float64)
    torch.testing.assert_close(transform_joints(joints, "camera", (0.5, 0.5), 7, 9), joints)
    flipped = transform_joints(joints, "camera", (0.5, 0.5), 7, 9, flip_width=32)
    torch.testing.assert_close(flipped[:, 8, 0], -joints[:, 4, 0])  # right shoulder <- left shoulder, mirrored
    torch.testing.assert_close(flipped[:, 4, 1:], joints[:, 8, 1:])
    torch.testing.assert_close(flipped[:, 0], joints[:, 0] * torch.tensor([-1.0, 1, 1], dtype=torch.float64))
    with pytest.raises(ValueError, match="no left/right joint pairs known for 7 joints"):
        transform_joints(torch.zeros(1, 7, 2), "pixel", (1, 1), 0, 0, flip_width=8)
    with pytest.raises(ValueError, match="pose_space"):
        transform_joints(joints, "world", (1, 1), 0, 0)


def test_joints_stay_on_the_drawn_figure_through_train_and_test_transforms(tmp_path):
    """synth_pose draws the figure at its joints: after random scale, crop and flip, and on every test crop, the
    pixel under each joint still has the figure's colour (the head's), and the figure's left shoulder is still on
    the image's right (front view), i.e. left and right were swapped with the flip."""
    root = generate_synthetic("synth_pose", tmp_path, num_train=6, num_val=0, num_video_frames=8, size=64, seed=3)
    samples, _ = read_annotations("pennaction", root, "train")
    train = TrainTransform(40, (48, 64), hflip=True, mean=(0, 0, 0), std=(1, 1, 1), rng=random.Random(0))
    test = TestTransform(40, num_crops=3, short_side=48, mean=(0, 0, 0), std=(1, 1, 1))
    checked, flips = 0, set()
    for mode, transform in (("train", train), ("test", test)):
        dataset = VideoClipDataset(samples, mode, transform, num_frames=4, sampling="segments", with_pose=True,
                                   num_clips=1)
        for _ in range(4 if mode == "train" else 1):
            for index in range(len(samples)):
                item = dataset[index]
                videos = item["video"] if mode == "test" else item["video"][None]  # (V, C, T, H, W)
                poses = item["pose"] if mode == "test" else item["pose"][None]  # (V, T, J, 2)
                for video, pose in zip(videos, poses):
                    checked += _check_on_figure(video, pose)
                    flips.add(bool((pose[:, 1, 0] > pose[:, 2, 0]).all()))  # left shoulder on the image's right
    assert checked > 200 and flips == {True}


def _check_on_figure(video: torch.Tensor, pose: torch.Tensor) -> int:
    """Asserts every joint inside the frame sits on figure-coloured pixels; returns how many were checked."""
    size, checked = video.shape[-1], 0
    for t in range(video.shape[1]):
        frame = video[:, t].permute(1, 2, 0).numpy()  # (H, W, 3) in [0, 1]
        cols, rows = np.round(pose[t, :, 0].numpy()).astype(int) - 1, np.round(pose[t, :, 1].numpy()).astype(int) - 1
        if not (0 <= cols[0] < size and 0 <= rows[0] < size):
            continue
        figure = frame[rows[0], cols[0]]  # the head's colour: the whole figure is drawn in it
        typical = np.median(np.abs(frame - figure).sum(-1))
        for col, row in zip(cols[1:], rows[1:]):
            if 1 <= col < size - 1 and 1 <= row < size - 1:  # the 3x3 neighbourhood tolerates rounding
                near = np.abs(frame[row - 1:row + 2, col - 1:col + 2] - figure).sum(-1).min()
                assert near < 0.35 * typical, (t, col, row, near, typical)
                checked += 1
    return checked
