"""EPIC-KITCHENS-100's reader on tiny fixtures written here in the published layouts: the CSVs with untrimmed videos,
or with the extracted frames (``<participant>/rgb_frames/<video_id>/frame_<n>.jpg``, the layout Motionformer's code
reads) at the rate of the frames by the video's name (60 fps EPIC-55, 50 fps EPIC-100, not the recording's rate that
``EPIC_100_video_info.csv`` lists); through the datasets and the DataModule."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.annotations import EPIC_COLUMNS, class_counts, detect_format, epic_timestamp, read_annotations
from data.clip_sampling import segment_range, shift_clip, uniform_segments
from data.datamodule import VideoDataModule
from data.datasets import VideoClipDataset, check_files
from data.video_io import FrameFolderVideo, VideoDecodeError, write_video
from tests.data.test_formats import frame_ids, index_frames

EPIC_FPS = 50
# EPIC_100_video_info.csv as the release has it: the recordings' native rates, which the extracted frames do not have
VIDEO_INFO = "video_id,duration,fps,resolution\nP01_01,1.0,59.9400599400599,1920x1080\nP01_101,1.2,90.0,1920x1080\n"
VERBS = ["take", "put", "open"]
NOUNS = ["tap", "plate", "cupboard", "knife"]


def epic_row(nid: str, video: str, start: str, stop: str, verb: int, noun: int) -> str:
    participant = video.split("_")[0]
    return (f"{nid},{participant},{video},{start},{start},{stop},1,2,{VERBS[verb % 3]} {NOUNS[noun % 4]},"
            f"{VERBS[verb % 3]},{verb},{NOUNS[noun % 4]},{noun},\"['{NOUNS[noun % 4]}']\",\"[{noun}]\"")


@pytest.fixture
def epic_root(tmp_path) -> Path:
    """P01_01 (60 frames at 50 fps = 1.2 s) exists, P01_02 is zero bytes, P02_01 is missing."""
    ann = tmp_path / "annotations"  # the annotations/ sub-folder variant (the root variant is tested below)
    ann.mkdir()
    for kind, names in (("verb", VERBS), ("noun", NOUNS)):
        rows = [f"{i},{name},{10 - i},{kind}category" for i, name in enumerate(names)]
        (ann / f"EPIC_100_{kind}_classes.csv").write_text("id,key,instances,category\n" + "\n".join(rows) + "\n")
    header = ",".join(EPIC_COLUMNS)
    train = [
        epic_row("P01_01_0", "P01_01", "00:00:00.20", "00:00:00.60", 0, 1),  # frames 10..29
        epic_row("P01_01_1", "P01_01", "00:00:00.00", "00:00:00.40", 2, 3),  # frames 0..19
        epic_row("P01_01_2", "P01_01", "00:00:00.80", "00:00:05.00", 1, 0),  # runs past the end: frames 40..59
        epic_row("P01_02_0", "P01_02", "00:00:00.00", "00:00:01.00", 1, 2),  # zero-byte video
        epic_row("P02_01_0", "P02_01", "00:00:00.00", "00:00:01.00", 1, 2),  # missing video
        epic_row("P01_01_3", "P01_01", "00:00:0.5", "00:00:01.00", 0, 0),  # line 7: bad timestamp
        epic_row("P01_01_4", "P01_01", "00:00:01.00", "00:00:00.50", 0, 0),  # line 8: stop before start
        epic_row("P01_01_5", "P01_01", "00:00:00.00", "00:00:00.50", 3, 0),  # line 9: verb_class out of range
        "P01_01_6,P01,P01_01,00:00:00.00,00:00:00.00",  # line 10: cut short
        epic_row("P01_01_7", "P02_01", "00:00:00.00", "00:00:00.50", 0, 0).replace(",P02,", ",P01,", 1),  # 11
    ]
    (ann / "EPIC_100_train.csv").write_text(header + "\n" + "\n".join(train) + "\n")
    val = [epic_row("P01_01_9", "P01_01", "00:00:00.20", "00:00:00.60", 2, 1)]
    (ann / "EPIC_100_validation.csv").write_text(header + "\n" + "\n".join(val) + "\n")
    videos = tmp_path / "P01" / "videos"
    videos.mkdir(parents=True)
    write_video(videos / "P01_01.MP4", index_frames(60), fps=EPIC_FPS)
    (videos / "P01_02.MP4").write_bytes(b"")
    return tmp_path


def test_epic_timestamps_and_segment_arithmetic():
    assert epic_timestamp("00:00:01.089") == pytest.approx(1.089)
    assert epic_timestamp("01:02:03.50") == pytest.approx(3723.5)
    for bad in ("1.5", "00:61:00.00", "00:00:aa.00", ""):
        with pytest.raises(ValueError):
            epic_timestamp(bad)
    assert segment_range(0.2, 0.6, 50, 60) == (10, 20)
    assert segment_range(0.8, 5.0, 50, 60) == (40, 20)  # clipped to the video's end
    assert segment_range(0.5, 0.501, 50, 60) == (25, 1)  # shorter than a frame: still one frame
    with pytest.raises(ValueError, match="starts after"):
        segment_range(1.2, 2.0, 50, 60)
    clip = shift_clip(uniform_segments(20, 50, 4, "center"), 10, 50)
    assert clip.frame_indices == (12, 17, 22, 27) and clip.clip_start_sec == pytest.approx(12 / 50)
    assert clip.clip_end_sec == pytest.approx(28 / 50)


def test_epic_reader_segments_labels_and_bad_lines(epic_root):
    samples, bad = read_annotations("epic_kitchens100", epic_root, "train")
    assert [s.video_id for s in samples] == ["P01_01_0", "P01_01_1", "P01_01_2", "P01_02_0", "P02_01_0"]
    first = samples[0]
    assert first.path == epic_root / "P01" / "videos" / "P01_01.MP4" and first.label == (0, 1)
    assert first.segment == pytest.approx((0.2, 0.6)) and first.line == 2
    assert samples[4].path == epic_root / "P02" / "videos" / "P02_01.MP4"
    assert [(Path(b.file).name, b.line_number) for b in bad] == [("EPIC_100_train.csv", n) for n in (7, 8, 9, 10, 11)]
    reasons = [b.reason for b in bad]
    assert "HH:MM:SS" in reasons[0] and "not after" in reasons[1] and "verb_class 3" in reasons[2]
    assert "fields" in reasons[3] and "participant" in reasons[4]
    assert class_counts("epic_kitchens100", epic_root) == {"verb": 3, "noun": 4}
    assert detect_format(epic_root) == "epic_kitchens100"


def test_epic_annotations_in_the_root_are_found_too(epic_root):
    for file in (epic_root / "annotations").iterdir():
        file.rename(epic_root / file.name)
    (epic_root / "annotations").rmdir()
    samples, _ = read_annotations("epic_kitchens100", epic_root, "val")
    assert [(s.video_id, s.label) for s in samples] == [("P01_01_9", (2, 1))]
    assert detect_format(epic_root) == "epic_kitchens100"


def test_epic_dataset_samples_inside_the_segment(epic_root, tmp_path):
    samples, _ = read_annotations("epic_kitchens100", epic_root, "train")
    train = VideoClipDataset(samples, "train", None, sampling="segments", num_frames=4)
    for _ in range(5):  # random segment sampling never leaves the segment
        for index, (lo, hi) in enumerate([(10, 30), (0, 20), (40, 60)]):
            ids = frame_ids((train[index]["video"] * 255).round().to(torch.uint8))
            assert all(lo <= i < hi for i in ids) and ids == sorted(ids), (index, ids)
    test = VideoClipDataset(samples, "test", None, sampling="segments", num_frames=4, num_clips=1,
                            failures_path=tmp_path / "f.jsonl", dataset_name="epic", split="train")
    item = test[0]
    assert frame_ids((item["video"][0] * 255).round().to(torch.uint8)) == [12, 17, 22, 27]
    assert item["label"].dtype == torch.int64 and item["label"].tolist() == [0, 1]
    assert test[3] is None and test[4] is None  # zero-byte and missing videos are skipped, not replaced
    report = test.data_report()
    assert (report["expected"], report["found"], report["samples"], report["unusable_samples"]) == (3, 2, 5, 2)
    assert report["missing"] == [str(epic_root / "P02" / "videos" / "P02_01.MP4")]
    assert [c["reason"] for c in report["corrupt"]] == ["zero-byte file"]
    assert report["skipped_at_test"] == 2


def test_epic_segment_beyond_the_video_is_a_reported_failure(epic_root, tmp_path):
    samples, _ = read_annotations("epic_kitchens100", epic_root, "train")
    late = samples[0]._replace(segment=(3.0, 4.0), line=42)
    dataset = VideoClipDataset([late], "train", None, num_frames=4, failures_path=tmp_path / "f.jsonl",
                               dataset_name="epic", split="train")
    assert dataset[0] is None
    (failure,) = dataset.failures()
    assert failure["line"] == 42 and "starts after" in failure["reason"] and failure["kind"] == "bad_segment"
    report = dataset.data_report()  # the annotation is at fault, not the video: it is not listed as corrupt
    assert not report["corrupt"] and report["found"] == 1 and report["skipped_at_train"] == 1
    assert report["bad_segments"] == [{"path": str(late.path), "line": 42, "reason": failure["reason"]}]


def test_epic_datamodule_batches_carry_verb_noun_pairs(epic_root, tmp_path):
    dm = VideoDataModule("epic_kitchens100", root=epic_root, num_frames=4, batch_size=5, num_workers=0,
                         test_clips=2, crop_size=24, train_scale=(24, 28), failures_dir=tmp_path)
    assert dm.num_classes == {"verb": 3, "noun": 4}  # known before setup: read from the class lists
    dm.setup("fit")
    assert dm.sampling == "segments" and dm.num_classes == {"verb": 3, "noun": 4}
    (batch,) = list(dm.train_dataloader())  # 5 samples, 2 unreadable: one batch of the 3 readable ones
    assert batch["label"].shape == (3, 2) and batch["label"].dtype == torch.int64
    assert sorted(tuple(pair) for pair in batch["label"].tolist()) == [(0, 1), (1, 0), (2, 3)]
    assert batch["video"].shape == (3, 3, 4, 24, 24)
    dm.setup("test")
    test = next(iter(dm.test_dataloader()))
    assert test["label"].tolist() == [[2, 1]] and test["video"].shape == (1, 2, 3, 4, 24, 24)
    report = dm.data_report()
    assert report["train"]["samples"] == 5 and len(report["train"]["bad_annotation_lines"]) == 5
    assert dm.describe()["num_classes"] == {"verb": 3, "noun": 4}


def test_epic_without_its_class_lists_fails_naming_the_file(epic_root, tmp_path):
    """Without them an out-of-range class index would pass the reader and fail in training: the lists are
    required, and the data module says which one is missing and what EPIC expects."""
    from data.datamodule import MissingAnnotationError

    (epic_root / "annotations" / "EPIC_100_noun_classes.csv").unlink()
    with pytest.raises(FileNotFoundError, match="EPIC_100_noun_classes.csv"):
        read_annotations("epic_kitchens100", epic_root, "val")
    dm = VideoDataModule("epic_kitchens100", root=epic_root, num_frames=4, num_workers=0, failures_dir=tmp_path)
    with pytest.raises(MissingAnnotationError) as caught:
        dm.setup("fit")
    message = str(caught.value)
    assert "annotations/EPIC_100_noun_classes.csv" in message and "EPIC-KITCHENS-100 expects" in message
    assert isinstance(caught.value, ValueError)  # the command lines print it in one line


def test_epic_class_list_with_a_repeated_id_is_refused(epic_root):
    file = epic_root / "annotations" / "EPIC_100_verb_classes.csv"
    file.write_text(file.read_text() + "1,wash,3,verbcategory\n")  # a second class 1: two classes merged
    with pytest.raises(ValueError, match=r"EPIC_100_verb_classes.csv:5: class id 1 is given to 'put' already"):
        class_counts("epic_kitchens100", epic_root)


# --- the extracted frames ------------------------------------------------------------------------------------


def write_epic_frames(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True)
    for number, array in enumerate(frames, start=1):
        Image.fromarray(array).save(folder / f"frame_{number:010d}.jpg", quality=95)


@pytest.fixture
def frames_root(epic_root) -> Path:
    """``epic_root`` with P01_01 (EPIC-55's naming) as 60 extracted frames instead of a video (P01_02's zero-byte
    video stays), and P01_101 (the EPIC-100 extension's) as 60 extracted frames, one validation narration of it; with
    the release's ``EPIC_100_video_info.csv``, whose recording rates (59.94, 90) the frames do not have."""
    (epic_root / "P01" / "videos" / "P01_01.MP4").unlink()
    write_epic_frames(epic_root / "P01" / "rgb_frames" / "P01_01", index_frames(60))
    write_epic_frames(epic_root / "P01" / "rgb_frames" / "P01_101", index_frames(60))
    val = epic_root / "annotations" / "EPIC_100_validation.csv"
    val.write_text(val.read_text() + epic_row("P01_101_0", "P01_101", "00:00:00.20", "00:00:00.60", 0, 2) + "\n")
    (epic_root / "annotations" / "EPIC_100_video_info.csv").write_text(VIDEO_INFO)
    return epic_root


def test_frames_are_read_where_the_video_is_absent_at_60_fps_for_an_epic55_name(frames_root, tmp_path):
    """P01_01's frames at 60 fps, the rate they were extracted at, not the 59.94 of the recording (which would put
    a segment 48 minutes in 172 frames early); the segments are frames [round up(start x 60), stop x 60)."""
    samples, bad = read_annotations("epic_kitchens100", frames_root, "train")
    assert len(samples) == 5 and len(bad) == 5  # as from the videos
    first = samples[0]
    assert first.path == frames_root / "P01" / "rgb_frames" / "P01_01" and first.fps == 60
    assert samples[3].path == frames_root / "P01" / "videos" / "P01_02.MP4" and samples[3].fps is None  # a file wins
    train = VideoClipDataset(samples, "train", None, sampling="segments", num_frames=4)
    for _ in range(5):
        for index, (lo, hi) in enumerate([(12, 36), (0, 24), (48, 60)]):  # [0.2, 0.6), [0, 0.4), [0.8, end) s
            ids = frame_ids((train[index]["video"] * 255).round().to(torch.uint8))
            assert all(lo <= i < hi for i in ids) and ids == sorted(ids), (index, ids)
    test = VideoClipDataset(samples, "test", None, sampling="segments", num_frames=4, num_clips=1)
    assert frame_ids((test[0]["video"][0] * 255).round().to(torch.uint8)) == [15, 21, 27, 33]  # 12 + 3 + 6k


def test_frames_of_an_epic100_name_are_read_at_50_fps(frames_root):
    """One segment, [0.2 s, 0.6 s), of an EPIC-55 and an EPIC-100 frames folder: frames 12..35 at 60 fps, 10..29 at
    50 (the video info's 90 fps for P01_101 would give 18..53)."""
    samples, bad = read_annotations("epic_kitchens100", frames_root, "val")
    assert not bad and [(s.video_id, s.path.name, s.fps) for s in samples] == [("P01_01_9", "P01_01", 60.0),
                                                                               ("P01_101_0", "P01_101", 50.0)]
    test = VideoClipDataset(samples, "test", None, sampling="segments", num_frames=4, num_clips=1)
    views = [frame_ids((test[i]["video"][0] * 255).round().to(torch.uint8)) for i in range(2)]
    assert views == [[15, 21, 27, 33], [12, 17, 22, 27]]


def test_the_datamodule_batches_frames_as_it_batches_videos(frames_root, tmp_path):
    dm = VideoDataModule("epic_kitchens100", root=frames_root, num_frames=4, batch_size=5, num_workers=0,
                         test_clips=2, crop_size=24, train_scale=(24, 28), failures_dir=tmp_path)
    dm.setup("fit")
    (batch,) = list(dm.train_dataloader())
    assert sorted(tuple(pair) for pair in batch["label"].tolist()) == [(0, 1), (1, 0), (2, 3)]
    assert batch["video"].shape == (3, 3, 4, 24, 24)


def test_the_video_info_list_is_not_needed_and_a_malformed_id_of_a_frames_folder_is_a_bad_line(frames_root, capsys):
    """The rate comes from the name: without EPIC_100_video_info.csv the frames read as before. A frames folder of
    a video id that is not ``<participant>_<2 or 3 digits>`` has no known rate: each of its rows is one bad line
    naming the file and line (``data check`` prints them), the other videos' rows are read; a video FILE of such an
    id is read at its own rate."""
    from data.__main__ import main

    (frames_root / "annotations" / "EPIC_100_video_info.csv").unlink()
    assert [s.fps for s in read_annotations("epic_kitchens100", frames_root, "val")[0]] == [60.0, 50.0]
    val = frames_root / "annotations" / "EPIC_100_validation.csv"
    for video_id in ("P01_1", "P01_1234", "P01_01_a"):
        write_epic_frames(frames_root / "P01" / "rgb_frames" / video_id, index_frames(2))
    (frames_root / "P01" / "videos" / "P01_7.MP4").write_bytes(b"")
    val.write_text(val.read_text() + "".join(epic_row(f"{v}_0", v, "00:00:00.00", "00:00:00.02", 0, 0) + "\n"
                                             for v in ("P01_1", "P01_1234", "P01_01_a", "P01_7")))
    samples, bad = read_annotations("epic_kitchens100", frames_root, "val")
    assert [(s.video_id, s.fps) for s in samples] == [("P01_01_9", 60.0), ("P01_101_0", 50.0), ("P01_7_0", None)]
    assert [(b.file, b.line_number) for b in bad] == [(str(val), n) for n in (4, 5, 6)]
    assert bad[0].reason == ("video_id 'P01_1' is not an EPIC-KITCHENS video name (<participant>_<2 or 3 digits>: "
                             "P01_01 of EPIC-55, its frames at 60 fps; P01_101 of EPIC-100, at 50 fps)")
    assert all("\n" not in b.reason for b in bad)
    assert main(["check", "epic_kitchens100", "--root", str(frames_root)]) == 1
    assert f"bad line {val}:5: video_id 'P01_1234' is not an EPIC-KITCHENS video name" in capsys.readouterr().out


def test_a_frame_folder_takes_one_naming_and_the_check_reads_a_large_one_at_its_ends(frames_root, monkeypatch):
    folder = frames_root / "P01" / "rgb_frames" / "P01_01"
    assert FrameFolderVideo(folder, EPIC_FPS).num_frames == 60
    mixed = frames_root / "mixed"
    shutil.copytree(folder, mixed)
    Image.fromarray(index_frames(1)[0]).save(mixed / "000061.jpg")
    with pytest.raises(VideoDecodeError, match="mixes"):
        FrameFolderVideo(mixed, EPIC_FPS)

    (folder / "frame_0000000030.jpg").write_bytes(b"not a jpeg")  # a middle frame
    samples, _ = read_annotations("epic_kitchens100", frames_root, "train")
    assert "cannot decode frame frame_0000000030.jpg" in check_files(samples[:1])[str(folder)]
    monkeypatch.setattr("data.datasets.FULLY_CHECKED_FRAMES", 59)  # a folder past the bound: ends only
    assert check_files(samples[:1])[str(folder)] is None
    (folder / "frame_0000000060.jpg").write_bytes(b"not a jpeg")
    assert "cannot decode frame frame_0000000060.jpg" in check_files(samples[:1])[str(folder)]


def test_frame_names_without_padding_are_read_in_number_order(tmp_path):
    from data.video_io import _list_frames

    folder = tmp_path / "unpadded"
    folder.mkdir()
    for number, array in enumerate(index_frames(12), start=1):  # 1.jpg ... 12.jpg: "10" sorts before "2"
        Image.fromarray(array).save(folder / f"{number}.jpg", quality=95)
    assert list(_list_frames(str(folder), 0).names) == [f"{n}.jpg" for n in range(1, 13)]
    assert frame_ids(FrameFolderVideo(folder, 30).get_clip(0, 0, frame_indices=[1, 9, 10, 11])) == [1, 9, 10, 11]
