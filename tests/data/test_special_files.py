"""Files that are no regular files are refused before they are opened, in one line naming them: a FIFO would make
a reader wait for a writer forever (``python -m data check`` hung on a FIFO ``train.csv``). And ``data check``
writes its manifest into a root by a rename that replaces a link planted at its path, never writes through it."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.__main__ import main
from data.annotations import EPIC_COLUMNS, read_annotations
from data.datasets import check_files, load_pose
from data.pose import PoseFormatError, read_gym_pose
from data.root_files import NotRegularFileError, open_regular
from data.samples import Sample
from data.video_io import FrameFolderVideo, Video, VideoDecodeError, write_frame_folder, write_video
from tests.data.test_formats import index_frames


@contextlib.contextmanager
def unblocking(fifo: Path, every_s: float = 5.0):
    """Yields a list that holds True once a reader was found blocked on ``fifo``: every ``every_s`` seconds a
    watchdog opens the FIFO's other end, so that a reader waiting on it ends (it reads nothing) and the test fails
    rather than hangs. (A writer opened without blocking finds a reader only if one is waiting.)"""
    fired, done = [], threading.Event()

    def release():
        while not done.wait(every_s):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                fired.append(True)
            except OSError:  # no reader waiting: nothing to release
                pass

    watchdog = threading.Thread(target=release, daemon=True)
    watchdog.start()
    try:
        yield fired
    finally:
        done.set()
        watchdog.join()


def test_open_regular_refuses_a_fifo_a_folder_and_a_device_unopened(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "FIFO"), (tmp_path, "folder"), (Path("/dev/null"), "character device")):
        with pytest.raises(NotRegularFileError, match=f"^{path}: not a regular file \\(a {kind}\\)"):
            open_regular(path)
    (tmp_path / "file.txt").write_text("x")
    with open_regular(tmp_path / "file.txt") as handle:
        assert handle.read() == "x"
    with pytest.raises(ValueError, match="reads only"):
        open_regular(tmp_path / "file.txt", "w")


def test_python_m_data_check_refuses_a_fifo_list_in_one_line_and_does_not_hang(tmp_path, capsys):
    os.mkfifo(tmp_path / "train.csv")
    (tmp_path / "val.csv").write_text("")
    with unblocking(tmp_path / "train.csv") as hung:
        code = main(["check", "kinetics400", "--root", str(tmp_path), "--quick"])
    assert not hung, "data check waited on the FIFO"
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: {tmp_path / 'train.csv'}: not a regular file (a FIFO); a dataset's files " \
                                "must be regular files\n"


@pytest.mark.parametrize("name", ["labels.json", "train.json"])
def test_a_fifo_ssv2_file_is_refused_naming_it(tmp_path, name):
    (tmp_path / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
    (tmp_path / "train.json").write_text("[]")
    (tmp_path / name).unlink()
    os.mkfifo(tmp_path / name)
    with unblocking(tmp_path / name) as hung, pytest.raises(NotRegularFileError, match=name):
        read_annotations("ssv2", tmp_path, "train")
    assert not hung


def test_a_fifo_epic_annotation_file_is_refused_naming_it_and_the_video_info_file_is_never_opened(tmp_path):
    """A FIFO list stops the read; a FIFO EPIC_100_video_info.csv is not opened (a frames folder's rate comes from
    its video id), so it neither hangs the read nor fails it."""
    ann = tmp_path / "annotations"
    ann.mkdir()
    for kind in ("verb", "noun"):
        (ann / f"EPIC_100_{kind}_classes.csv").write_text("id,key,instances,category\n0,take,1,0\n")
    row = "P01_01_0,P01,P01_01,00:00:00.00,00:00:00.00,00:00:00.05,0,2,take take,take,0,take,0,\"['take']\",\"[0]\""
    (ann / "EPIC_100_train.csv").write_text(",".join(EPIC_COLUMNS) + "\n" + row + "\n")
    write_frame_folder(tmp_path / "P01" / "rgb_frames" / "P01_01", index_frames(2))
    os.rename(tmp_path / "P01" / "rgb_frames" / "P01_01" / "000001.jpg",
              tmp_path / "P01" / "rgb_frames" / "P01_01" / "frame_1.jpg")
    os.rename(tmp_path / "P01" / "rgb_frames" / "P01_01" / "000002.jpg",
              tmp_path / "P01" / "rgb_frames" / "P01_01" / "frame_2.jpg")
    os.mkfifo(ann / "EPIC_100_video_info.csv")
    with unblocking(ann / "EPIC_100_video_info.csv") as hung:
        samples, bad = read_annotations("epic_kitchens100", tmp_path, "train")
    assert not bad and [(s.path.name, s.fps) for s in samples] == [("P01_01", 60.0)]
    os.unlink(ann / "EPIC_100_train.csv")
    os.mkfifo(ann / "EPIC_100_train.csv")
    with unblocking(ann / "EPIC_100_train.csv") as hung_too, pytest.raises(NotRegularFileError,
                                                                            match="EPIC_100_train.csv"):
        read_annotations("epic_kitchens100", tmp_path, "train")
    assert not hung and not hung_too


def test_a_fifo_video_frame_or_pose_file_is_unusable_never_opened(tmp_path):
    write_video(tmp_path / "good.mp4", index_frames(4), fps=10)
    os.mkfifo(tmp_path / "video.mp4")
    with pytest.raises(VideoDecodeError, match="not a regular file \\(a FIFO\\)"):
        Video(tmp_path / "video.mp4")
    folder = write_frame_folder(tmp_path / "frames", index_frames(3))
    os.unlink(folder / "000002.jpg")
    os.mkfifo(folder / "000002.jpg")
    with pytest.raises(VideoDecodeError, match="frame 000002.jpg is not a regular file \\(a FIFO\\)"):
        FrameFolderVideo(folder)
    os.mkfifo(tmp_path / "pose.npz")
    with pytest.raises(PoseFormatError, match="pose.npz: not a regular file \\(a FIFO\\)"):
        load_pose(tmp_path / "pose.npz")
    (tmp_path / "labels").mkdir()
    os.mkfifo(tmp_path / "labels" / "0001.mat")
    with pytest.raises(PoseFormatError, match="0001.mat: not a regular file"):
        load_pose(tmp_path / "labels" / "0001.mat")
    status = check_files([Sample(tmp_path / "video.mp4", 0, "v", 1), Sample(folder, 0, "f", 2)])
    assert status == {str(tmp_path / "video.mp4"): "not a regular file (a FIFO)",
                      str(folder): "frame 000002.jpg is not a regular file (a FIFO)"}


def test_a_numpy_array_file_named_npz_is_a_pose_format_error(tmp_path):
    with open(tmp_path / "pose.npz", "wb") as handle:  # np.save, not np.savez: it was a TypeError traceback
        np.save(handle, np.zeros((1, 4, 17, 2)))
    with pytest.raises(PoseFormatError, match="one .npy array, not an .npz"):
        read_gym_pose(tmp_path / "pose.npz")


# --- the manifest ------------------------------------------------------------------------------------------------


def test_data_check_replaces_a_linked_manifest_and_never_writes_its_target(tmp_path, capsys):
    root = tmp_path / "k400"
    (root / "train").mkdir(parents=True)
    write_video(root / "train" / "a.mp4", index_frames(4), fps=10)
    (root / "train.csv").write_text("train/a.mp4 0\n")
    target = tmp_path / "bashrc"
    target.write_text("export PATH=/usr/bin\n")
    manifest = root / "manifest-kinetics400-train.json"
    os.symlink(target, manifest)
    assert main(["check", "kinetics400", "--root", str(root), "--split", "train", "--quick"]) == 0
    assert target.read_text() == "export PATH=/usr/bin\n"  # it was overwritten with the manifest
    assert not manifest.is_symlink() and json.loads(manifest.read_text())["dataset"] == "kinetics400"
    assert capsys.readouterr().out.endswith(f"manifest: {manifest}\n")
    assert sorted(p.name for p in root.iterdir()) == ["manifest-kinetics400-train.json", "train", "train.csv"]


def test_data_synth_writes_a_new_folder_and_refuses_one_holding_files(tmp_path, capsys):
    out = tmp_path / "set"
    out.mkdir()
    os.symlink(tmp_path / "victim.csv", out / "train.csv")  # a write into the folder would follow it
    assert main(["synth", "synth_appearance", "--out", str(out), "--videos", "3"]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert not (tmp_path / "victim.csv").exists()
    assert main(["synth", "synth_appearance", "--out", str(tmp_path / "new"), "--videos", "3"]) == 0
    assert (tmp_path / "new" / "train.csv").is_file() and not list(tmp_path.glob(".new-*"))
