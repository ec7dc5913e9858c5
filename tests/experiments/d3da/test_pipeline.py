"""The RGB+pose training path beyond what the other pose tests pin: ``RGBPoseClassifier``'s refusals (views of clip
and joints that do not match, pixel mixing by cutmix alone) against the documented contract; the d3da task's
system and data module against the run's configuration (optimisation, test protocol, data options); NTU
camera-space joints through ``TrainTransform``/``TestTransform`` and ``VideoClipDataset`` against the module
docstrings (camera joints never scaled or cropped, only mirrored on a flip with left/right swapped by Kinect v2
joint name; skeleton frames beyond the file clamped to its last one); and the main actor's energy against the
2s-AGCN ``get_nonzero_std`` rule written as plain sums."""

from __future__ import annotations

import dataclasses
import random
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import lightning_modules  # noqa: F401  (repairs torchvision before anything imports it)
from data.annotations import Sample
from data.datasets import VideoClipDataset
from data.pose import NTU_NUM_JOINTS, ntu_main_body_joints, read_ntu_skeleton
from data.transforms import TestTransform, TrainTransform
from data.video_io import write_frame_folder
from experiments.harness.plan import resolve_runs
from experiments.harness.tasks import get_task
from lightning_modules import RGBPoseClassifier
from tests.data.test_formats import frame_ids, index_frames
from tests.data.test_pose_alignment_reference import (
    KINECT_V2_JOINTS,
    pairs_by_name,
    ramp_video,
    reference_energy,
    skeleton_text,
)

BODY_INFO = [0.0] * 8 + [2.0]  # clippedEdges ... trackingState (tracked)


def _kinect_mirror_partner() -> dict[int, int]:
    """Joint index -> the index of its mirror-image joint, by Kinect v2 name (midline joints map to themselves)."""
    partner = {j: j for j in range(NTU_NUM_JOINTS)}
    for pair in pairs_by_name(KINECT_V2_JOINTS):
        left, right = sorted(pair)
        partner[left], partner[right] = right, left
    return partner


def _tiny_figure_run():
    return resolve_runs("d3da_figureA1", scale="tiny", rows=["pennaction"])[0]


# ---- RGBPoseClassifier: what it refuses ------------------------------------------------------------------------


def test_multi_view_fold_refuses_video_and_pose_with_different_view_layouts():
    """(B=2, V=3) clips with (B=3, V=2) joints both fold to 6 inputs: without the (B, V) check every clip would be
    scored with another view's (or another video's) joints, silently."""
    module = RGBPoseClassifier(torch.nn.Linear(2, 6), 6)
    video, pose = torch.zeros(2, 3, 3, 4, 8, 8), torch.zeros(3, 2, 4, 13, 2)
    with pytest.raises(ValueError, match=r"share \(B, V\)"):
        module.fold_views({"video": video, "pose": pose})


def test_cutmix_alone_is_refused():
    """Cutmix pastes pixels of another clip and leaves its joints behind, as mixup does."""
    with pytest.raises(ValueError, match="cutmix"):
        RGBPoseClassifier(torch.nn.Linear(2, 6), 6, cutmix_alpha=1.0)


# ---- the d3da task: the run's configuration reaches the system and the data module -----------------------------


def test_task_system_takes_the_runs_optimisation_and_test_protocol():
    cfg = _tiny_figure_run()
    cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=0.0123, label_smoothing=0.3, epochs=9),
                              data=dataclasses.replace(cfg.data, test_view_average="logits"))
    module = get_task(cfg.task).system(cfg, torch.nn.Linear(2, 6), types.SimpleNamespace(num_classes=6))
    assert isinstance(module, RGBPoseClassifier)
    assert (module.hparams.lr, module.hparams.label_smoothing, module.hparams.epochs) == (0.0123, 0.3, 9)
    assert module.hparams.view_average == "logits"


def test_task_datamodule_keeps_the_runs_data_options_and_adds_joints(tmp_path):
    cfg = _tiny_figure_run()
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, options={"color_jitter": 0.4,
                                                                                "test_short_side": 36}))
    dm = get_task(cfg.task).datamodule(cfg, tmp_path)
    assert dm.with_pose is True
    assert (dm.augment.color_jitter, dm.test_short_side) == (0.4, 36)


# ---- NTU camera-space joints through the transforms and the dataset ----------------------------------------------


def test_train_transform_only_mirrors_camera_joints():
    """Camera-space joints (metres) are not pixels: the scale jitter and crop leave them alone; a flip negates x
    and renames left <-> right (by Kinect v2 name). Whether a draw flipped is read from a coordinate ramp."""
    joints = torch.randn(2, NTU_NUM_JOINTS, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    partner = _kinect_mirror_partner()
    transform = TrainTransform(16, (20, 22), hflip=True, mean=(0, 0, 0), std=(1, 1, 1), rng=random.Random(1))
    flips = set()
    for _ in range(8):
        out = transform({"video": ramp_video(24, 40), "pose": joints, "pose_space": "camera"})
        frame = out["video"][:, 0]
        flipped = bool(frame[0, 8, 1] < frame[0, 8, 0])  # x decreasing to the right: mirrored
        flips.add(flipped)
        expected = joints.clone()
        if flipped:
            for j in range(NTU_NUM_JOINTS):
                expected[:, j] = joints[:, partner[j]] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
        torch.testing.assert_close(out["pose"], expected, rtol=0, atol=0)
    assert flips == {True, False}


def test_test_transform_leaves_camera_joints_alone_on_every_crop():
    joints = torch.randn(2, NTU_NUM_JOINTS, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = TestTransform(16, num_crops=3, short_side=20, mean=(0, 0, 0), std=(1, 1, 1))(
        {"video": ramp_video(24, 40), "pose": joints, "pose_space": "camera"})
    assert out["pose"].shape == (3, 2, NTU_NUM_JOINTS, 3)
    for view in range(3):
        torch.testing.assert_close(out["pose"][view], joints, rtol=0, atol=0)


def _ntu_sample(root: Path, video_frames: int, skeleton_frames: int) -> Sample:
    """A frame-folder video whose frames show their index, and a one-body skeleton file with fewer frames whose
    joint j of frame t has x = t + j / 100 (metres), y = j / 10 - 1, z = 3."""
    write_frame_folder(root / "frames" / "v", index_frames(video_frames))
    frames = []
    for t in range(skeleton_frames):
        rows = np.zeros((NTU_NUM_JOINTS, 12))
        rows[:, 0] = t + np.arange(NTU_NUM_JOINTS) / 100
        rows[:, 1] = np.arange(NTU_NUM_JOINTS) / 10 - 1
        rows[:, 2] = 3.0
        rows[:, 11] = 2
        frames.append([("72057594037931101", BODY_INFO, rows)])
    skeleton = root / "S001C001P001R001A001.skeleton"
    skeleton.write_text(skeleton_text(frames))
    return Sample(root / "frames" / "v", 0, "v", 0, pose=skeleton)


def test_ntu_views_clamp_to_the_last_skeleton_frame_and_keep_camera_joints(tmp_path):
    """A skeleton file 8 frames shorter than its video: video frames past its end take its last pose (the
    datasets docstring: clamp), never a pose from its start; every test crop carries the view's joints unmoved."""
    video_frames, skeleton_frames = 20, 12
    sample = _ntu_sample(tmp_path, video_frames, skeleton_frames)
    plain = VideoClipDataset([sample], "test", None, num_frames=4, sampling="segments", num_clips=2,
                             with_pose=True)[0]
    assert plain["pose"].shape == (2, 4, NTU_NUM_JOINTS, 3)
    seen = []
    for view in range(2):
        for t, frame in enumerate(frame_ids((plain["video"][view] * 255).round().to(torch.uint8))):
            seen.append(frame)
            pose_frame = min(frame, skeleton_frames - 1)
            for j in range(NTU_NUM_JOINTS):
                assert plain["pose"][view, t, j].tolist() == pytest.approx([pose_frame + j / 100, j / 10 - 1, 3.0],
                                                                           abs=1e-5), (view, t, j, frame)
    assert max(seen) >= skeleton_frames  # some views reach past the skeleton: the clamp is exercised
    cropped = VideoClipDataset([sample], "test", TestTransform(24, num_crops=3, mean=(0, 0, 0), std=(1, 1, 1)),
                               num_frames=4, sampling="segments", num_clips=2, with_pose=True)[0]
    assert cropped["video"].shape[0] == cropped["pose"].shape[0] == 6  # clip-major: 2 clips x 3 crops
    for view in range(6):
        torch.testing.assert_close(cropped["pose"][view], plain["pose"][view // 3], rtol=0, atol=0)


# ---- NTU main actor ----------------------------------------------------------------------------------------------


def _assert_the_second_body_is_the_main_actor(tmp_path, frames, by_at_least: float) -> None:
    """Frames of two bodies written as an NTU skeleton file: by the reference energy the second body has at least
    ``by_at_least`` times the first's, and ``ntu_main_body_joints`` returns its joints."""
    path = tmp_path / "S001C001P001R001A050.skeleton"
    path.write_text(skeleton_text(frames))
    parsed = read_ntu_skeleton(path)
    first, second = frames[0][0][0], frames[0][1][0]
    energy = {body: reference_energy([b.joints[:, :3] for f in parsed for b in f if b.body_id == body])
              for body in (first, second)}
    assert energy[second] > by_at_least * energy[first]
    expected = np.stack([f[1][2][:, :3] for f in frames])
    np.testing.assert_allclose(ntu_main_body_joints(parsed), expected, rtol=1e-6)


def test_main_actor_energy_sums_each_axis_deviation(tmp_path):
    """A still body far from the camera (z = 4) listed first, a moving body near it (z = 2): per axis, the moving
    one spreads more (the main actor); a standard deviation over x, y and z pooled would pick the still one, whose
    coordinates differ most between axes."""
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(6):
        still, moving = np.zeros((NTU_NUM_JOINTS, 12)), np.zeros((NTU_NUM_JOINTS, 12))
        still[:, :3] = np.array([0.0, 0.0, 4.0]) + rng.normal(0, 0.01, (NTU_NUM_JOINTS, 3))
        moving[:, :3] = np.array([0.0, 0.0, 2.0]) + rng.normal(0, 0.3, (NTU_NUM_JOINTS, 3))
        frames.append([("STILL", BODY_INFO, still), ("MOVING", BODY_INFO, moving)])
    _assert_the_second_body_is_the_main_actor(tmp_path, frames, by_at_least=10)


def test_main_actor_energy_leaves_out_all_zero_frames(tmp_path):
    """Kinect writes an untracked body as all-zero joints: such frames are no pose (``get_nonzero_std`` drops them).
    Counted, the zeros would give the still body listed first a spread of metres and make it the main actor."""
    rng = np.random.default_rng(1)
    frames = []
    for t in range(6):
        ghost, actor = np.zeros((NTU_NUM_JOINTS, 12)), np.zeros((NTU_NUM_JOINTS, 12))
        if t >= 2:  # the first two frames: all-zero placeholders
            ghost[:, :3] = np.array([0.0, 0.0, 3.0]) + rng.normal(0, 0.01, (NTU_NUM_JOINTS, 3))
        actor[:, :3] = np.array([0.0, 0.0, 3.0]) + rng.normal(0, 0.1, (NTU_NUM_JOINTS, 3))
        frames.append([("GHOST", BODY_INFO, ghost), ("ACTOR", BODY_INFO, actor)])
    _assert_the_second_body_is_the_main_actor(tmp_path, frames, by_at_least=5)
