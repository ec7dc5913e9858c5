"""Every read stays in its data root, per dataset: a link to a file or a folder outside the root, a ``..`` component
or an absolute path in a list is refused in one line naming the file, the root and where it leads, and the file
outside is neither read nor counted found. The outside files here are valid data (a JPEG, a video, keypoints), so
a reader that followed the link would accept them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.__main__ import main
from data.annotations import EPIC_COLUMNS, read_annotations
from data.datasets import VideoClipDataset, check_files
from data.davis import DavisDataset, DavisReadError, list_sequences, write_davis_fixture
from data.lra import LRAFormatError, read_lra
from data.pose import ntu_body, write_gym_pose, write_ntu_skeleton, write_pennaction_labels
from data.root_files import DataRoot, OutsideRootError, inside_root
from data.video_io import FrameFolderVideo, VideoDecodeError, write_frame_folder, write_video
from tests.data.test_epic import epic_row, write_epic_frames
from tests.data.test_formats import index_frames, pennaction_joints

ELEMENT = "0LtLS9wROrk_E_002407_002435_A_0003_0005"
GYM_TRAIN = "gym99_train_element_v1.1.txt"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the data root holding valid data: a video, frames, keypoints and a text file."""
    folder = tmp_path / "outside"
    folder.mkdir()
    write_video(folder / "clip.mp4", index_frames(8), fps=10)
    write_epic_frames(folder / "frames", index_frames(3))
    write_gym_pose(folder / "pose.npz", np.ones((1, 4, 17, 2)), np.ones((1, 4, 17)))
    (folder / "secret.txt").write_text("root:x:0:0:root:/root:/bin/bash\n")  # as a system file would read
    return folder


def _leaves(reason: str, root: Path) -> bool:
    return reason.startswith(f"path leaves the data root {root}: ")


# --- the helper -------------------------------------------------------------------------------------------------


def test_the_root_helper_resolves_links_and_dots_and_names_the_file_root_and_target(tmp_path, outside):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    os.symlink(outside / "secret.txt", root / "sub" / "link.txt")
    os.symlink(outside, root / "folder")
    os.symlink(root / "sub" / "link.txt", root / "chain.txt")  # a link to a link that leaves
    (root / "sub" / "own.txt").write_text("x")
    os.symlink(root / "sub" / "own.txt", root / "inside.txt")
    checked = DataRoot(root)
    for path in (root / "sub" / "own.txt", root / "inside.txt", root / "missing.mp4", root / "sub" / ".." / "x"):
        assert checked.inside(path) == path
    escapes = {root / "sub" / "link.txt": outside / "secret.txt", root / "folder" / "clip.mp4": outside / "clip.mp4",
               root / "chain.txt": outside / "secret.txt", root / ".." / "outside" / "clip.mp4": outside / "clip.mp4",
               outside / "clip.mp4": outside / "clip.mp4", root / "sub" / ".." / "..": tmp_path}
    for path, real in escapes.items():
        with pytest.raises(OutsideRootError) as caught:
            checked.inside(path)
        assert str(caught.value) == f"path leaves the data root {root}: {path}" + (
            f" (resolves to {real})" if str(real) != str(path) else "")
    with pytest.raises(ValueError, match="NUL byte"):
        inside_root(root, root / "a\0b")
    assert "\n" not in str(OutsideRootError(root / "a\nb", root))  # one line: the break is escaped


def test_a_root_that_is_a_link_is_judged_where_it_really_is(tmp_path, outside):
    (tmp_path / "disk" / "videos").mkdir(parents=True)
    os.symlink(tmp_path / "disk", tmp_path / "root")
    root = tmp_path / "root"
    assert inside_root(root, root / "videos" / "a.mp4") == root / "videos" / "a.mp4"
    os.symlink(outside / "clip.mp4", tmp_path / "disk" / "videos" / "b.mp4")
    with pytest.raises(OutsideRootError):
        inside_root(root, root / "videos" / "b.mp4")


# --- Kinetics, SSv2 ---------------------------------------------------------------------------------------------


def test_kinetics_lists_a_linked_video_folder_and_a_linked_list_are_refused(tmp_path, outside):
    root = tmp_path / "k400"
    root.mkdir()
    os.symlink(outside, root / "train")
    (root / "train.csv").write_text("train/clip.mp4 0\n")
    samples, bad = read_annotations("kinetics_list", root, "train", num_classes=5)
    assert not samples and _leaves(bad[0].reason, root)
    assert bad[0].reason.endswith(f"(resolves to {outside / 'clip.mp4'})")
    (root / "train.csv").unlink()
    (outside / "train.csv").write_text("clip.mp4 0\n")
    os.symlink(outside / "train.csv", root / "train.csv")
    with pytest.raises(OutsideRootError, match=f"{root / 'train.csv'} \\(resolves to {outside / 'train.csv'}"):
        read_annotations("kinetics_list", root, "train", num_classes=5)
    assert main(["check", "kinetics400", "--root", str(root), "--quick"]) == 2


def test_official_kinetics_ids_and_folders_leaving_the_root_are_bad_lines(tmp_path, outside):
    root = tmp_path / "k400"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nbowling,../../outside/clip,0,10,train\n"
        "bowling,aaa,0,10,train\n")
    samples, bad = read_annotations("kinetics", root, "train")
    assert [s.video_id for s in samples] == ["aaa_000000_000010"] and _leaves(bad[0].reason, root)
    os.symlink(outside, root / "val")
    (root / "annotations" / "val.csv").write_text("label,youtube_id,time_start,time_end,split\nbowling,aaa,0,10,val\n")
    samples, bad = read_annotations("kinetics", root, "val")
    assert not samples and bad[0].line_number == 2 and _leaves(bad[0].reason, root)


def test_ssv2_a_linked_video_folder_and_a_linked_class_table_are_refused(tmp_path, outside):
    root = tmp_path / "ssv2"
    root.mkdir()
    (outside / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
    (root / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
    (root / "train.json").write_text(json.dumps([{"id": "1", "template": "Moving [something] up"},
                                                 {"id": "/etc/passwd", "template": "Moving [something] up"}]))
    os.symlink(outside, root / "videos")
    samples, bad = read_annotations("ssv2", root, "train")
    assert not samples and [b.line_number for b in bad] == [1, 2] and all(_leaves(b.reason, root) for b in bad)
    (root / "labels.json").unlink()
    os.symlink(outside / "labels.json", root / "labels.json")
    with pytest.raises(OutsideRootError, match="labels.json"):
        read_annotations("ssv2", root, "train")


# --- EPIC-KITCHENS-100 ------------------------------------------------------------------------------------------


def _epic(root: Path, videos: list[str]) -> Path:
    (root / "annotations").mkdir(parents=True)
    for kind, names in (("verb", ["take", "put"]), ("noun", ["tap", "plate"])):
        rows = "".join(f"{i},{name},1,{kind}\n" for i, name in enumerate(names))
        (root / "annotations" / f"EPIC_100_{kind}_classes.csv").write_text("id,key,instances,category\n" + rows)
    rows = [epic_row(f"{video}_0", video, "00:00:00.00", "00:00:00.05", 0, 1) for video in videos]
    (root / "annotations" / "EPIC_100_train.csv").write_text(",".join(EPIC_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    (root / "annotations" / "EPIC_100_validation.csv").write_text(",".join(EPIC_COLUMNS) + "\n")
    return root


def test_epic_frames_linking_outside_are_refused_unread_as_outside_not_corrupt(tmp_path, outside, capsys):
    """A linked JPEG would decode; a link to a system file would read as a corrupt frame: both are "outside"."""
    root = _epic(tmp_path / "epic", ["P01_01", "P01_02"])
    for video, target in (("P01_01", outside / "frames" / "frame_0000000002.jpg"), ("P01_02", outside / "secret.txt")):
        folder = root / "P01" / "rgb_frames" / video
        write_epic_frames(folder, index_frames(3))
        (folder / "frame_0000000002.jpg").unlink()
        os.symlink(target, folder / "frame_0000000002.jpg")
    samples, bad = read_annotations("epic_kitchens100", root, "train")
    assert len(samples) == 2 and not bad  # the folders are inside: their frames are judged when they are opened
    status = check_files(samples)
    for sample, target in zip(samples, (outside / "frames" / "frame_0000000002.jpg", outside / "secret.txt")):
        assert status[str(sample.path)] == (f"leads outside the data root {root}: frame frame_0000000002.jpg "
                                            f"resolves to {target}")
    dataset = VideoClipDataset(samples, "train", None, sampling="segments", num_frames=2)
    assert dataset[0] is None and dataset.failures()[0]["reason"].startswith("leads outside the data root")
    assert main(["check", "epic_kitchens100", "--root", str(root), "--split", "train"]) == 1
    out = capsys.readouterr().out
    assert f"  outside  {samples[1].path}: leads outside the data root {root}: frame" in out and "corrupt  " not in out


def test_epic_a_linked_video_or_frame_folder_is_a_bad_line(tmp_path, outside):
    root = _epic(tmp_path / "epic", ["P01_01", "P01_02"])
    (root / "P01" / "videos").mkdir(parents=True)
    os.symlink(outside / "clip.mp4", root / "P01" / "videos" / "P01_01.MP4")
    (root / "P01" / "rgb_frames").mkdir()
    os.symlink(outside / "frames", root / "P01" / "rgb_frames" / "P01_02")
    samples, bad = read_annotations("epic_kitchens100", root, "train")
    assert not samples and [b.line_number for b in bad] == [2, 3] and all(_leaves(b.reason, root) for b in bad)


def test_a_frame_folder_opened_without_a_root_keeps_its_frames_inside_itself(tmp_path, outside):
    folder = tmp_path / "frames"
    write_frame_folder(folder, index_frames(2))
    os.symlink(folder / "000001.jpg", folder / "000003.jpg")  # a link inside the folder: read
    assert FrameFolderVideo(folder).num_frames == 3
    os.symlink(outside / "frames" / "frame_0000000001.jpg", folder / "000004.jpg")
    with pytest.raises(VideoDecodeError, match="leads outside the frame folder: frame 000004.jpg"):
        FrameFolderVideo(folder)
    assert FrameFolderVideo(folder, root=tmp_path).num_frames == 4  # inside a root that holds both


# --- FineGYM, PennAction, NTU -----------------------------------------------------------------------------------


def test_finegym_linked_videos_and_keypoints_are_bad_lines_not_found(tmp_path, outside):
    root = tmp_path / "gym"
    (root / "subactions").mkdir(parents=True)
    (root / "poses").mkdir()
    other = "zfqS-wCJSsw_E_000010_000042_A_0012_0014"
    (root / GYM_TRAIN).write_text(f"{ELEMENT} 3\n{other} 4\n")
    os.symlink(outside / "clip.mp4", root / "subactions" / f"{ELEMENT}.mp4")
    write_video(root / "subactions" / f"{other}.mp4", index_frames(4), fps=10)
    os.symlink(outside / "pose.npz", root / "poses" / f"{other}.npz")
    samples, bad = read_annotations("finegym99", root, "train")
    assert not samples and [b.line_number for b in bad] == [1, 2]
    assert bad[0].reason.endswith(f"(resolves to {outside / 'clip.mp4'})")
    assert bad[1].reason.endswith(f"(resolves to {outside / 'pose.npz'})")


def _pennaction(root: Path, video_id: str, frames: int = 4) -> None:
    write_frame_folder(root / "frames" / video_id, index_frames(frames))
    x, y = pennaction_joints(frames, 0)
    write_pennaction_labels(root / "labels" / f"{video_id}.mat", "bowl", x, y, (24, 56), True)


def test_pennaction_a_linked_frame_folder_label_file_or_frame_is_refused(tmp_path, outside, capsys):
    root = tmp_path / "penn"
    for video_id in ("0001", "0002", "0003"):
        _pennaction(root, video_id)
    _pennaction(tmp_path / "elsewhere", "0002")
    for link, target in ((root / "frames" / "0001", outside / "frames"),
                         (root / "labels" / "0002.mat", tmp_path / "elsewhere" / "labels" / "0002.mat")):
        (Path(link).unlink() if link.suffix else __import__("shutil").rmtree(link))
        os.symlink(target, link)
    os.unlink(root / "frames" / "0003" / "000002.jpg")
    os.symlink(outside / "frames" / "frame_0000000002.jpg", root / "frames" / "0003" / "000002.jpg")
    samples, bad = read_annotations("pennaction", root, "train")
    assert [s.video_id for s in samples] == ["0003"]
    assert [Path(b.file).name for b in bad] == ["0001.mat", "0002.mat"] and all(_leaves(b.reason, root) for b in bad)
    assert check_files(samples)[str(root / "frames" / "0003")].startswith(f"leads outside the data root {root}")
    assert main(["check", "pennaction", "--root", str(root), "--split", "train", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["found"] == 1 and report["corrupt"] == 1  # the folder is there, unusable; nothing outside counts


def test_ntu_a_linked_skeleton_video_or_folder_is_a_bad_annotation(tmp_path, outside):
    root = tmp_path / "ntu"
    (root / "nturgb+d_rgb").mkdir(parents=True)
    (root / "nturgb+d_skeletons").mkdir()
    body = [[ntu_body(np.c_[np.zeros(25), np.zeros(25), np.full(25, 3.0)])]]
    write_ntu_skeleton(outside / "S001C001P001R001A001.skeleton", body)
    os.symlink(outside / "S001C001P001R001A001.skeleton", root / "nturgb+d_skeletons" / "S001C001P001R001A001.skeleton")
    os.symlink(outside / "clip.mp4", root / "nturgb+d_rgb" / "S001C001P001R001A002_rgb.avi")
    samples, bad = read_annotations("ntu60_xsub", root, "train")
    assert not samples and len(bad) == 2 and all(_leaves(b.reason, root) for b in bad)
    os.rename(root / "nturgb+d_skeletons", tmp_path / "skeletons")
    os.symlink(tmp_path / "skeletons", root / "nturgb+d_skeletons")  # the whole folder elsewhere
    write_video(root / "nturgb+d_rgb" / "S001C001P001R001A003_rgb.avi", index_frames(4), fps=30)
    samples, bad = read_annotations("ntu60_xsub", root, "train")
    assert not samples and len(bad) == 3 and "S001C001P001R001A003.skeleton" in bad[-1].reason


# --- DAVIS, LRA -------------------------------------------------------------------------------------------------


def test_davis_a_sequence_name_or_frame_leaving_the_root_is_refused(tmp_path, outside):
    root = tmp_path / "davis"
    names = write_davis_fixture(root, num_sequences=2, num_frames=2, height=16, width=16)
    split = root / "ImageSets" / "2017" / "val.txt"
    split.write_text(f"{names[0]}\n../../../outside\n")
    with pytest.raises(ValueError, match=f"{split}:2: name: "):
        list_sequences(root)
    split.write_text("\n".join(names) + "\n")
    frame = root / "JPEGImages" / "480p" / names[1] / "00001.jpg"
    frame.unlink()
    os.symlink(outside / "frames" / "frame_0000000001.jpg", frame)
    with pytest.raises(DavisReadError, match="path leaves the data root") as caught:
        DavisDataset(root)
    assert caught.value.bad_files[0][0] == str(frame)


def test_lra_a_linked_review_batch_or_pathfinder_line_is_refused(tmp_path, outside):
    text = tmp_path / "lra_text" / "aclImdb"
    for split in ("train", "test"):
        for cls in ("pos", "neg"):
            (text / split / cls).mkdir(parents=True)
            (text / split / cls / "0.txt").write_text("fine")
    os.symlink(outside / "secret.txt", text / "train" / "pos" / "1.txt")
    reviews = read_lra("text", tmp_path / "lra_text", "train")
    assert len(reviews) == 2 and _leaves(reviews.bad_lines[0].reason, tmp_path / "lra_text")

    cifar = tmp_path / "lra_image" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    os.symlink(outside / "secret.txt", cifar / "test_batch")
    with pytest.raises(LRAFormatError, match="path leaves the data root"):
        read_lra("image", tmp_path / "lra_image", "test")

    finder = tmp_path / "lra_pathfinder" / "pathfinder32" / "curv_baseline"
    (finder / "imgs" / "0").mkdir(parents=True)
    (finder / "metadata").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(finder / "imgs" / "0" / "a.png")
    lines = ["imgs/0 a.png 0 1", "../../../../outside secret.txt 0 1", f"imgs/0 {outside / 'secret.txt'} 0 0"]
    (finder / "metadata" / "0.npy").write_text("\n".join(lines * 4) + "\n")
    split = read_lra("pathfinder", tmp_path / "lra_pathfinder", "train")
    assert {str(p) for p in split.files} == {str(finder / "imgs" / "0" / "a.png")}
    assert len(split.bad_lines) == 8 and all("path leaves the data root" in b.reason for b in split.bad_lines)
