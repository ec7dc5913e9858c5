"""PennAction and NTU RGB+D readers, and the class tables, on tiny fixtures written here in the published layouts
(real video files and frame folders, real CSV / MATLAB / .skeleton files), through the datasets and the DataModule;
EPIC-KITCHENS-100's are in ``test_epic.py``. The frames that show their index (``index_frames``, ``frame_ids``) are
shared by other test modules."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import savemat

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.annotations import detect_format, read_annotations
from data.datamodule import VideoDataModule
from data.datasets import VideoClipDataset
from data.pose import (
    PENNACTION_ACTIONS,
    PoseFormatError,
    ntu_body,
    ntu_main_body_joints,
    read_ntu_skeleton,
    read_pennaction_labels,
    write_ntu_skeleton,
    write_pennaction_labels,
)
from data.pose_annotations import ntu_is_train, parse_ntu_name
from data.synthetic import SYNTHETIC_SETS
from data.video_io import FrameFolderVideo, Video, VideoDecodeError, open_video, write_frame_folder, write_video

BITS = 7  # frame i shows its index in binary as vertical black/white stripes: survives H.264, MPEG-4 and JPEG


def index_frames(num_frames: int, height: int = 24, width: int = 56) -> np.ndarray:
    bits = (np.arange(num_frames)[:, None] >> np.arange(BITS)[None]) & 1  # (T, BITS)
    stripe = np.minimum(np.arange(width) * BITS // width, BITS - 1)
    return np.repeat((bits[:, None, stripe, None] * 255).astype(np.uint8), height, axis=1).repeat(3, axis=3)


def frame_ids(clip: torch.Tensor) -> list[int]:
    """(C, T, H, W) uint8 index clip -> its frame indices."""
    columns = clip.float().mean(dim=(0, 2))  # (T, W)
    width = clip.shape[-1]
    centres = [int((b + 0.5) * width / BITS) for b in range(BITS)]
    return [sum(int(row[c] > 127) << b for b, c in enumerate(centres)) for row in columns]


# --- PennAction -----------------------------------------------------------------------------------------------


def pennaction_joints(num_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """x encodes the frame number (x[t, j] = 100 t + j) so pose/frame alignment can be checked."""
    t = np.arange(num_frames)[:, None]
    x = 100.0 * t + np.arange(13)[None]
    y = np.random.default_rng(seed).uniform(0, 24, (num_frames, 13))
    return x, y


@pytest.fixture
def penn_root(tmp_path) -> Path:
    """0001-0003 train, 0004 test (videos of 6-12 frames); then broken cases."""
    specs = {"0001": ("bowl", True, 12), "0002": ("squat", True, 8), "0003": ("pullup", True, 6),
             "0004": ("tennis_serve", False, 10)}
    for video_id, (action, train, n) in specs.items():
        write_frame_folder(tmp_path / "frames" / video_id, index_frames(n))
        x, y = pennaction_joints(n, int(video_id))
        write_pennaction_labels(tmp_path / "labels" / f"{video_id}.mat", action, x, y, (24, 56), train,
                                view="side")
    return tmp_path


def test_pennaction_label_file_round_trip(tmp_path):
    x, y = pennaction_joints(5, 0)
    visibility = np.ones((5, 13))
    visibility[2, :] = 0
    path = write_pennaction_labels(tmp_path / "labels" / "0042.mat", "golf_swing", x, y, (480, 640), False,
                                   visibility=visibility)
    labels = read_pennaction_labels(path)
    assert (labels.action, labels.view, labels.nframes, labels.height, labels.width) == ("golf_swing", "front", 5,
                                                                                       480, 640)
    assert labels.train is False and labels.label == PENNACTION_ACTIONS.index("golf_swing") == 5
    np.testing.assert_array_equal(labels.x, x)
    np.testing.assert_array_equal(labels.y, y)
    assert labels.visibility[2].sum() == 0 and labels.joints().shape == (5, 13, 2)
    np.testing.assert_allclose(labels.bbox[0], [x[0].min(), y[0].min(), x[0].max(), y[0].max()])
    np.testing.assert_array_equal(labels.bbox[2], 0)  # no visible joint: an empty box


def test_pennaction_reader_splits_and_malformed_label_files(penn_root):
    train, bad = read_annotations("pennaction", penn_root, "train")
    assert [(s.video_id, s.label) for s in train] == [("0001", 3), ("0002", 11), ("0003", 8)]
    assert train[0].path == penn_root / "frames" / "0001" and train[0].pose == penn_root / "labels" / "0001.mat"
    val, _ = read_annotations("pennaction", penn_root, "val")
    assert [(s.video_id, s.label) for s in val] == [("0004", 14)] and not bad
    assert detect_format(penn_root) == "pennaction"

    labels = penn_root / "labels"
    (labels / "0005.mat").write_bytes(b"not a mat file at all")
    x, y = pennaction_joints(4, 5)
    base = {"action": "bowl", "pose": "front", "x": x, "y": y, "visibility": np.ones((4, 13)),
            "bbox": np.zeros((4, 4)), "dimensions": np.array([[24, 56, 4]]), "nframes": np.array([[4]]),
            "train": np.array([[1]])}
    savemat(labels / "0006.mat", {**base, "action": "breakdance"})
    savemat(labels / "0007.mat", {**base, "x": x[:, :12]})
    savemat(labels / "0008.mat", {k: v for k, v in base.items() if k != "visibility"})
    savemat(labels / "0009.mat", {**base, "train": np.array([[0]])})
    train, bad = read_annotations("pennaction", penn_root, "train")
    assert len(train) == 3
    assert [(Path(b.file).name, b.line_number) for b in bad] == [(f"000{i}.mat", 0) for i in range(5, 10)]
    reasons = [b.reason for b in bad]
    assert "MATLAB" in reasons[0] and "breakdance" in reasons[1] and "'x'" in reasons[2]
    assert "visibility" in reasons[3] and "train" in reasons[4]
    _, bad_val = read_annotations("pennaction", penn_root, "val")
    assert len(bad_val) == 5  # a broken label file's split is unknown: both splits report it


def test_frame_folder_video_matches_the_video_interface(penn_root):
    video = open_video(penn_root / "frames" / "0001")
    assert isinstance(video, FrameFolderVideo) and video.num_frames == 12 and video.duration == pytest.approx(0.4)
    assert frame_ids(video.get_clip(0, 1, frame_indices=[0, 11, 3, 3])) == [0, 11, 3, 3]
    assert frame_ids(video.get_clip(0.1, 0.2)) == [3, 4, 5]  # [3/30 s, 6/30 s)
    assert frame_ids(video.get_clip(0, 0.4, num_frames=4)) == [0, 4, 7, 11]
    assert isinstance(open_video(write_video(penn_root / "clip.mp4", index_frames(4), fps=10)), Video)
    broken = penn_root / "frames"
    (broken / "gap").mkdir()
    write_frame_folder(broken / "gap", index_frames(3))
    (broken / "gap" / "000002.jpg").unlink()
    (broken / "empty").mkdir()
    write_frame_folder(broken / "bad", index_frames(2))
    (broken / "bad" / "000002.jpg").write_bytes(b"\xff\xd8 truncated")
    cases = {"gap": "gaps", "empty": "no frames", "missing": "missing file"}
    for name, reason in cases.items():
        with pytest.raises(VideoDecodeError, match=reason):
            open_video(broken / name)
    with pytest.raises(VideoDecodeError, match="cannot decode frame 000002.jpg"):
        open_video(broken / "bad").get_clip(0, 1)
    with pytest.raises(VideoDecodeError, match="outside"):
        open_video(broken / "bad").get_clip(0, 1, frame_indices=[2])


def test_pennaction_batches_carry_aligned_pose(penn_root, tmp_path):
    dm = VideoDataModule("pennaction", root=penn_root, num_frames=4, batch_size=3, num_workers=0, test_clips=2,
                         test_crops=3, crop_size=24, train_scale=(24, 28), with_pose=True, failures_dir=tmp_path)
    dm.setup("fit")
    assert dm.num_classes == 15 and dm.sampling == "segments"
    batch = next(iter(dm.train_dataloader()))
    assert batch["pose"].shape == (3, 4, 13, 2) and batch["pose"].dtype == torch.float32
    val = next(iter(dm.val_dataloader()))  # one view, no view axis: shaped as training batches
    assert val["video"].shape == (1, 3, 4, 24, 24) and val["pose"].shape == (1, 4, 13, 2)
    # The train transform resizes, so read the frames back unresized to check that pose[t] is frame t's joints.
    raw = VideoClipDataset(dm._splits["train"][0], "train", None, num_frames=4, sampling="segments", with_pose=True)
    for index in range(3):
        item = raw[index]
        ids = frame_ids((item["video"] * 255).round().to(torch.uint8))
        np.testing.assert_array_equal(item["pose"][:, 0, 0].numpy(), 100.0 * np.array(ids))
    dm.setup("test")
    test = next(iter(dm.test_dataloader()))
    assert test["video"].shape == (1, 6, 3, 4, 24, 24) and test["pose"].shape == (1, 6, 4, 13, 2)
    raw_test = VideoClipDataset(dm._splits["val"][0], "test", None, num_frames=4, sampling="segments", num_clips=2,
                                with_pose=True)
    clips = raw_test[0]["pose"]  # (2, T, 13, 2): the two clips' joints as stored
    # Views 0-2 are clip 0's crops, 3-5 clip 1's: 24-px crops at x = 0, 16, 32 of the 56-px-wide frames (their
    # short side is the crop size: no resize), so each view's joints are shifted left by its crop's offset.
    expected = torch.stack([clip - torch.tensor([left, 0.0]) for clip in clips for left in (0, 16, 32)])
    torch.testing.assert_close(test["pose"][0], expected.to(test["pose"].dtype))
    assert test["label"].tolist() == [14]
    with pytest.raises(ValueError, match="pose dataset"):
        VideoDataModule("kinetics400", root=penn_root, with_pose=True)


def test_pennaction_pose_file_shorter_than_its_frames_is_a_corrupt_file(penn_root, tmp_path):
    """PennAction has one pose row per frame: a shorter pose file is reported, not clamped to its last row."""
    x, y = pennaction_joints(5, 2)
    write_pennaction_labels(penn_root / "labels" / "0002.mat", "squat", x, y, (24, 56), True, view="side")  # 8 frames
    dm = VideoDataModule("pennaction", root=penn_root, num_frames=4, batch_size=3, num_workers=0, crop_size=24,
                         train_scale=(24, 28), with_pose=True, failures_dir=tmp_path)
    dm.setup("fit")
    (batch,) = list(dm.train_dataloader())
    assert sorted(batch["label"].tolist()) == [3, 8]  # 0001 (bowl) and 0003 (pullup); 0002 left out
    report = dm.data_report()["train"]
    (corrupt,) = report["corrupt"]
    assert corrupt["path"] == str(penn_root / "labels" / "0002.mat")
    assert corrupt["reason"] == f"5 pose frames for the 8 frames of {penn_root / 'frames' / '0002'} (PennAction has " \
                                "one per frame)"
    assert report["unusable_samples"] == 1 and report["skipped_at_train"] == 1


# --- NTU RGB+D ------------------------------------------------------------------------------------------------


def test_ntu_skeleton_round_trip_and_main_body(tmp_path):
    rng = np.random.default_rng(0)
    a = ntu_body(rng.uniform(-1, 1, (25, 3)) + [0, 0, 3], body_id="72057594037931101")
    b = ntu_body(rng.uniform(-0.5, 0.5, (25, 3)) + [0, 0, 3], body_id="72057594037931102")
    frames = [[a], [], [b, a], [a]]
    path = write_ntu_skeleton(tmp_path / "S001C001P001R001A001.skeleton", frames)
    assert path.read_bytes().startswith(b"4\r\n1\r\n72057594037931101 0 1 1 1 1 0 0 0 2\r\n25\r\n")
    parsed = read_ntu_skeleton(path)
    assert [len(f) for f in parsed] == [1, 0, 2, 1] and parsed[2][0].body_id == b.body_id
    np.testing.assert_allclose(parsed[0][0].joints, a.joints, rtol=1e-6, atol=1e-4)  # 7 significant digits
    joints = ntu_main_body_joints(parsed)  # body a spreads twice as wide as b: the larger energy
    assert joints.shape == (4, 25, 3) and not joints[1].any()
    np.testing.assert_allclose(joints[2], a.joints[:, :3], rtol=1e-6)


def test_ntu_skeleton_errors_name_the_line(tmp_path):
    body = ntu_body(np.ones((25, 3)))
    good = write_ntu_skeleton(tmp_path / "good.skeleton", [[body], [body]]).read_text().splitlines()
    cases = {
        "truncated": (good[:20], "file ends", 21),
        "short_joint": (good[:5] + ["1 2 3"] + good[6:], "expected 12 values", 6),
        "bad_count": (["two"] + good[1:], "expected a count", 1),
        "bad_value": (good[:4] + [good[4].replace("1", "x", 1)] + good[5:], "could not convert", 5),
        "joint_count": (good[:3] + ["24"] + good[4:], "joint count", 4),
    }
    for name, (lines, message, line) in cases.items():
        path = tmp_path / f"{name}.skeleton"
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(PoseFormatError, match=message) as info:
            read_ntu_skeleton(path)
        assert info.value.line == line and str(path) in str(info.value), name


def test_ntu_skeleton_without_any_body_is_a_bad_pose_file(tmp_path):
    """NTU ships skeleton files whose frames hold no body (its missing-skeleton lists): never all-zero joints."""
    from data.datasets import load_pose

    path = write_ntu_skeleton(tmp_path / "S001C001P001R001A001.skeleton", [[], [], []])
    assert [len(f) for f in read_ntu_skeleton(path)] == [0, 0, 0]
    with pytest.raises(PoseFormatError, match="no body in any frame") as info:
        load_pose(path)
    assert str(path) in str(info.value)


def test_ntu_names_and_protocols():
    name = parse_ntu_name("S017C003P038R002A060_rgb")
    assert name == (17, 3, 38, 2, 60)
    with pytest.raises(ValueError):
        parse_ntu_name("S17C003P038R002A060")
    assert ntu_is_train(name, 60, "xsub") and ntu_is_train(name, 60, "xview")
    assert not ntu_is_train(name._replace(performer=3), 60, "xsub")
    assert not ntu_is_train(name._replace(camera=1), 60, "xview")
    assert ntu_is_train(name._replace(performer=103), 120, "xsub")
    assert not ntu_is_train(name._replace(performer=103), 60, "xsub")  # 103 is an NTU120 training subject only
    assert ntu_is_train(name._replace(setup=18), 120, "xset") and not ntu_is_train(name, 120, "xset")
    with pytest.raises(ValueError, match="protocol"):
        ntu_is_train(name, 120, "xview")


NTU_FRAMES = 10


@pytest.fixture
def ntu_root(tmp_path) -> Path:
    """Three complete samples, one without skeleton, one without video, one NTU120-only setup, one bad name."""
    rgb, skeletons = tmp_path / "nturgb+d_rgb", tmp_path / "nturgb+d_skeletons"
    rgb.mkdir()
    skeletons.mkdir()

    def sample(stem: str, video: bool = True, skeleton: bool = True) -> None:
        if video:
            write_video(rgb / f"{stem}_rgb.avi", index_frames(NTU_FRAMES), fps=30)
        if skeleton:  # x of joint 0 is the frame index: alignment can be read back from the pose
            frames = [[ntu_body(np.c_[np.full(25, float(t)), np.zeros(25), np.full(25, 3.0)])]
                      for t in range(NTU_FRAMES - 2)]  # two frames fewer than the video, as happens in NTU
            write_ntu_skeleton(skeletons / f"{stem}.skeleton", frames)

    sample("S001C001P001R001A001")  # xsub train (P001), xview val (C001)
    sample("S001C002P003R001A002")  # xsub val (P003), xview train (C002)
    sample("S002C003P002R002A060")  # xsub train, xview train
    sample("S001C002P001R002A005", skeleton=False)
    sample("S001C003P001R001A007", video=False)
    sample("S018C001P045R001A120")  # NTU120 only (setup 18)
    write_video(rgb / "clip_rgb.avi", index_frames(4), fps=30)  # not an NTU name
    return tmp_path


def test_ntu_reader_protocols(ntu_root):
    def ids(fmt, split):
        samples, bad = read_annotations(fmt, ntu_root, split)
        return [s.video_id for s in samples], bad

    train, bad = ids("ntu60_xsub", "train")
    assert train == ["S001C001P001R001A001", "S001C002P001R002A005", "S001C003P001R001A007", "S002C003P002R002A060"]
    assert [(Path(b.file).name, b.line_number) for b in bad] == [("clip_rgb.avi", 0)]
    assert ids("ntu60_xsub", "val")[0] == ["S001C002P003R001A002"]
    assert ids("ntu60_xview", "val")[0] == ["S001C001P001R001A001"]
    assert "S018C001P045R001A120" in ids("ntu120_xsub", "train")[0]  # P045 trains in NTU120 cross-subject
    assert ids("ntu120_xset", "train")[0] == ["S002C003P002R002A060", "S018C001P045R001A120"]  # even setups
    samples, _ = read_annotations("ntu60_xsub", ntu_root, "val")
    assert samples[0].label == 1 and samples[0].path.name == "S001C002P003R001A002_rgb.avi"
    assert samples[0].pose.name == "S001C002P003R001A002.skeleton"
    with pytest.raises(FileNotFoundError, match="NTU"):
        read_annotations("ntu60_xsub", ntu_root / "nowhere", "train")


def test_ntu_datamodule_pose_alignment_and_missing_files(ntu_root, tmp_path, caplog):
    dm = VideoDataModule("ntu60", root=ntu_root, num_frames=4, batch_size=4, num_workers=0, crop_size=24,
                         train_scale=(24, 28), with_pose=True, failures_dir=tmp_path)
    dm.setup("fit")
    assert dm.num_classes == 60 and dm.annotation_format == "ntu60_xsub"
    with caplog.at_level(logging.WARNING, logger="data.datasets"):
        batches = list(dm.train_dataloader())
    # 4 training samples: one lacks its skeleton, one its video; both are skipped with a warning.
    assert len(batches) == 1 and sorted(batches[0]["label"].tolist()) == [0, 59]
    assert batches[0]["pose"].shape == (2, 4, 25, 3)
    assert any("S001C002P001R002A005.skeleton" in r.getMessage() for r in caplog.records)
    raw = VideoClipDataset(dm._splits["train"][0], "train", None, num_frames=8, sampling="segments",
                           with_pose=True)
    item = raw[[s.video_id for s in raw.samples].index("S001C001P001R001A001")]
    ids = frame_ids((item["video"] * 255).round().to(torch.uint8))
    # Skeleton frame t has x = t; the last two video frames have no skeleton frame and take the last one (7).
    np.testing.assert_array_equal(item["pose"][:, 0, 0].numpy(), np.minimum(ids, NTU_FRAMES - 3))
    report = dm.data_report()["train"]
    assert (report["expected"], report["found"], report["pose_expected"], report["pose_found"]) == (4, 3, 4, 3)
    assert sorted(Path(p).name for p in report["missing"]) == ["S001C002P001R002A005.skeleton",
                                                               "S001C003P001R001A007_rgb.avi"]
    assert report["unusable_samples"] == 2 and report["skipped_at_train"] == 2

    rgb_only = VideoDataModule("ntu60", root=ntu_root, num_frames=4, batch_size=4, num_workers=0, crop_size=24,
                               train_scale=(24, 28), failures_dir=tmp_path / "rgb")
    rgb_only.setup("fit")
    batch = next(iter(rgb_only.train_dataloader()))
    assert "pose" not in batch and len(batch["label"]) == 3  # without pose, a missing skeleton does not matter


# --- class tables: labels within the class count --------------------------------------------------------------


def test_a_kinetics_list_label_past_the_class_count_is_a_bad_line(tmp_path):
    (tmp_path / "videos").mkdir()
    for i in range(2):
        write_video(tmp_path / "videos" / f"clip {i}.mp4", index_frames(8), fps=10)
    (tmp_path / "train.csv").write_text("videos/clip 0.mp4 0\nvideos/clip 1.mp4 399\nvideos/clip 0.mp4 400\n")
    (tmp_path / "val.csv").write_text("videos/clip 1.mp4 1\n")
    samples, bad = read_annotations("kinetics_list", tmp_path, "train", num_classes=400)
    assert [s.label for s in samples] == [0, 399]
    assert [(Path(b.file).name, b.line_number, b.reason) for b in bad] == [
        ("train.csv", 3, "label 400 outside the 400 classes (0..399)")]
    dm = VideoDataModule("kinetics400", root=tmp_path, num_frames=4, num_workers=0, failures_dir=tmp_path / "f")
    dm.setup("fit")
    (line,) = dm.data_report()["train"]["bad_annotation_lines"]
    assert line["line"] == 3 and "label 400" in line["reason"] and len(dm._splits["train"][0]) == 2


@pytest.mark.parametrize("labels, problems", [
    ({"Moving something up": "173", "Moving something down": "1", "Pushing something": "2"},
     "'Moving something up' has index 173, outside 0..2; no class has index 0"),
    ({"Moving something up": "0", "Moving something down": "0", "Pushing something": "2"},
     "index 0 is given to 'Moving something up' and 'Moving something down'; no class has index 1"),
])
def test_an_ssv2_class_table_with_a_gap_or_a_repeated_index_is_refused(tmp_path, labels, problems):
    import json

    from data.annotations import ssv2_label_index

    (tmp_path / "labels.json").write_text(json.dumps(labels))
    entry = {"id": "1", "label": "x", "template": "Moving [something] up", "placeholders": ["x"]}
    for name in ("train.json", "validation.json"):
        (tmp_path / name).write_text(json.dumps([entry]))
    expected = f"{tmp_path / 'labels.json'}: the 3 classes must have the indices 0..2, each once: {problems}"
    with pytest.raises(ValueError) as caught:
        ssv2_label_index(tmp_path)
    assert str(caught.value) == expected
    dm = VideoDataModule("ssv2", root=tmp_path, num_frames=4, num_workers=0, failures_dir=tmp_path / "f")
    with pytest.raises(ValueError) as caught:
        dm.setup("fit")
    assert str(caught.value) == expected


def test_a_kinetics_training_header_without_label_is_named_for_every_split(tmp_path):
    """The class names come from train.csv's label column: without it every val row would be an unknown class."""
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.csv").write_text("class,youtube_id,time_start,time_end,split\nbowl,a,0,10,"
                                                        "train\n")
    (tmp_path / "annotations" / "val.csv").write_text("label,youtube_id,time_start,time_end,split\nbowl,b,0,10,val\n")
    for split in ("train", "val"):
        with pytest.raises(ValueError, match=rf"^{tmp_path / 'annotations' / 'train.csv'}: header class,youtube_id,"
                                             r"time_start,time_end,split has no 'label' column"):
            read_annotations("kinetics", tmp_path, split)


@pytest.mark.parametrize("dataset, remove, named", [
    ("kinetics400", "val.csv", "val.csv not found; Kinetics-400 expects `path label` lists"),
    ("ssv2", "labels.json", "labels.json not found; Something-Something V2 expects labels.json, train.json"),
])
def test_a_missing_annotation_file_is_named_with_what_the_dataset_expects(tmp_path, dataset, remove, named):
    import json

    from data.datamodule import MissingAnnotationError

    (tmp_path / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
    for name in ("train.json", "validation.json"):
        (tmp_path / name).write_text("[]")
    for name in ("train.csv", "val.csv"):
        (tmp_path / name).write_text("videos/a.mp4 0\n")
    if dataset == "kinetics400":
        (tmp_path / "labels.json").unlink()  # else the folder reads as SSv2
    (tmp_path / remove).unlink()
    dm = VideoDataModule(dataset, root=tmp_path, num_frames=4, num_workers=0, failures_dir=tmp_path / "f")
    with pytest.raises(MissingAnnotationError) as caught:
        dm.setup("fit")
    assert str(caught.value).startswith(f"{tmp_path / remove} not found") and named in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, ValueError)
    with pytest.raises(MissingAnnotationError, match=f"^{tmp_path / 'gone'} does not exist; "):
        VideoDataModule(dataset, root=tmp_path / "gone", failures_dir=tmp_path / "f").setup("fit")


def test_ssv2_is_read_in_its_root_layout_first_and_as_the_20bn_archives_unpack(tmp_path):
    import json

    from data.annotations import annotation_layout, ssv2_layout

    labels = {"Moving something up": "0", "Pushing something": "1"}
    entry = {"id": "7", "label": "x", "template": "Pushing [something]", "placeholders": ["x"]}
    shipped = tmp_path / "shipped"
    (shipped / "labels").mkdir(parents=True)
    (shipped / "labels" / "labels.json").write_text(json.dumps(labels))
    for name in ("train.json", "validation.json"):
        (shipped / "labels" / name).write_text(json.dumps([entry]))
    (shipped / "20bn-something-something-v2").mkdir()
    write_video(shipped / "20bn-something-something-v2" / "7.webm", index_frames(8), fps=12)
    assert detect_format(shipped) == "ssv2" and annotation_layout("ssv2", shipped) == "as shipped"
    (sample,), bad = read_annotations("ssv2", shipped, "val")
    assert not bad and sample.path == shipped / "20bn-something-something-v2" / "7.webm" and sample.label == 1
    dm = VideoDataModule("ssv2", root=shipped, num_frames=4, num_workers=0, failures_dir=tmp_path / "f")
    dm.setup("fit")
    assert dm.describe()["annotation_layout"] == "as shipped" and dm.data_report()["val"]["found"] == 1

    # labels.json in the root as well: the root layout is read, not a mix of the two
    (shipped / "labels.json").write_text(json.dumps(labels))
    assert ssv2_layout(shipped) == ("root", shipped, shipped / "videos")
    with pytest.raises(FileNotFoundError, match="validation.json"):
        read_annotations("ssv2", shipped, "val")
    assert annotation_layout("kinetics", shipped) is None


# --- synthetic stand-ins in these formats ---------------------------------------------------------------------


def test_synthetic_pose_and_verbnoun_sets_load_through_the_real_readers(tmp_path):
    params = dict(num_train=6, num_val=3, num_video_frames=8)
    pose = VideoDataModule("synth_pose", cache_dir=tmp_path, synthetic_params=params, num_frames=4, batch_size=6,
                           num_workers=0, with_pose=True, failures_dir=tmp_path / "f1")
    pose.prepare_data()
    pose.setup("fit")
    names = SYNTHETIC_SETS["synth_pose"].class_names
    assert pose.num_classes == len(names)  # labels index the set's own actions, not all 15 of PennAction
    for sample in pose._splits["train"][0]:
        assert names[sample.label] == read_pennaction_labels(sample.pose).action
    batch = next(iter(pose.train_dataloader()))
    assert batch["pose"].shape == (6, 4, 13, 2) and int(batch["label"].max()) < len(names)

    verbnoun = VideoDataModule("synth_verbnoun", cache_dir=tmp_path, synthetic_params=params, num_frames=4,
                               batch_size=6, num_workers=0, failures_dir=tmp_path / "f2")
    verbnoun.prepare_data()
    verbnoun.setup("fit")
    spec = SYNTHETIC_SETS["synth_verbnoun"]
    assert verbnoun.num_classes == {"verb": len(spec.verb_names), "noun": len(spec.noun_names)}
    batch = next(iter(verbnoun.train_dataloader()))
    assert batch["label"].shape == (6, 2) and all(s.segment for s in verbnoun._splits["train"][0])
