"""Annotation readers against the datasets' published definitions, written out literally here:

* NTU RGB+D 60 (Shahroudy et al., CVPR 2016) and NTU RGB+D 120 (Liu et al., TPAMI 2019):
  the cross-subject training performers, the cross-view training cameras (2 and 3), the cross-setup training
  setups (the even ids), the setups of each version (NTU60: S001-S017, NTU120: S001-S032) and class counts;
* Something-Something V2: the class of an entry is its ``template`` with every "[" and "]" removed, whatever the
  placeholder ("[something]", "[Something]", "[number of]", "[part]"), as the official/PySlowFast loaders do;
* official Kinetics: class indices follow the sorted class names of the *training* annotations only;
* EPIC-KITCHENS-100: a segment is [start_timestamp, stop_timestamp] (not narration_timestamp), and one narration
  annotated with two segments is left out;
* PennAction: its 15 actions indexed in alphabetical order.

Samples are read through ``read_annotations`` from files written into ``tmp_path``; NTU needs only file names, so
its skeleton files are empty.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.annotations import EPIC_COLUMNS, Sample, class_counts, class_names, read_annotations
from data.datasets import VideoClipDataset
from data.pose import PENNACTION_ACTIONS, write_pennaction_labels
from data.video_io import write_video
from tests.data.test_formats import frame_ids, index_frames

# --- NTU RGB+D 60 / 120: the papers' protocol lists -----------------------------------------------------------

# NTU RGB+D (CVPR 2016), cross-subject evaluation: the 20 training subjects of the 40.
NTU60_XSUB_TRAIN_SUBJECTS = [1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38]
# NTU RGB+D 120 (TPAMI 2019), cross-subject evaluation: the 53 training subjects of the 106.
NTU120_XSUB_TRAIN_SUBJECTS = [1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47,
                              49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91,
                              92, 93, 94, 95, 97, 98, 100, 103]


def _ntu_root(root: Path, stems: list[str]) -> Path:
    """An NTU root of skeleton files only: the readers take everything from the names."""
    skeletons = root / "nturgb+d_skeletons"
    skeletons.mkdir(parents=True)
    for stem in stems:
        (skeletons / f"{stem}.skeleton").write_text("")
    return root


def _split_ids(fmt: str, root: Path) -> tuple[list[str], list[str], list]:
    (train, bad_train), (val, bad_val) = (read_annotations(fmt, root, split) for split in ("train", "val"))
    assert bad_train == bad_val
    return [s.video_id for s in train], [s.video_id for s in val], bad_train


def test_ntu60_cross_subject_trains_on_the_papers_20_subjects(tmp_path):
    stems = [f"S001C001P{p:03d}R001A001" for p in range(1, 41)]
    train, val, bad = _split_ids("ntu60_xsub", _ntu_root(tmp_path, stems))
    assert train == [f"S001C001P{p:03d}R001A001" for p in NTU60_XSUB_TRAIN_SUBJECTS] and not bad
    assert val == [f"S001C001P{p:03d}R001A001" for p in range(1, 41) if p not in NTU60_XSUB_TRAIN_SUBJECTS]


def test_ntu120_cross_subject_trains_on_the_papers_53_subjects(tmp_path):
    stems = [f"S018C001P{p:03d}R001A001" for p in range(1, 107)]
    train, val, bad = _split_ids("ntu120_xsub", _ntu_root(tmp_path, stems))
    assert train == [f"S018C001P{p:03d}R001A001" for p in NTU120_XSUB_TRAIN_SUBJECTS] and not bad
    assert val == [f"S018C001P{p:03d}R001A001" for p in range(1, 107) if p not in NTU120_XSUB_TRAIN_SUBJECTS]


def test_ntu60_cross_view_trains_on_cameras_2_and_3(tmp_path):
    stems = [f"S001C{c:03d}P001R001A001" for c in (1, 2, 3)]
    train, val, bad = _split_ids("ntu60_xview", _ntu_root(tmp_path, stems))
    assert train == ["S001C002P001R001A001", "S001C003P001R001A001"] and val == ["S001C001P001R001A001"]
    assert not bad


def test_ntu_setups_of_each_version_and_cross_setup_trains_on_even_setups(tmp_path):
    """NTU60 is S001-S017, NTU120 S001-S032; NTU120 cross-setup trains on the 16 even setup ids, 32 included."""
    stems = [f"S{s:03d}C001P001R001A001" for s in range(1, 33)]
    root = _ntu_root(tmp_path, stems + ["S000C001P001R001A001"])
    train, val, bad = _split_ids("ntu120_xset", root)
    assert train == [f"S{s:03d}C001P001R001A001" for s in range(2, 33, 2)]
    assert val == [f"S{s:03d}C001P001R001A001" for s in range(1, 33, 2)]
    assert [Path(b.file).name for b in bad] == ["S000C001P001R001A001.skeleton"]  # no setup 0
    ntu60 = _split_ids("ntu60_xsub", root)
    assert ntu60[0] == [f"S{s:03d}C001P001R001A001" for s in range(1, 18)] and ntu60[1] == []  # P001 trains
    ntu120 = _split_ids("ntu120_xsub", root)
    assert ntu120[0] == [f"S{s:03d}C001P001R001A001" for s in range(1, 33)]


def test_a_name_outside_the_dataset_is_reported_not_put_in_a_split(tmp_path):
    """Setups above NTU120's 32, cameras above 3, performers above 40 (NTU60) or 106 (NTU120), replications above 2:
    no such file exists, and under cross-view a camera 4 would otherwise be silently validation data."""
    root = _ntu_root(tmp_path, ["S033C001P001R001A001", "S001C004P001R001A001", "S001C001P041R001A001",
                                "S018C001P107R001A001", "S001C001P001R003A001", "S001C001P001R001A001"])
    for fmt, reasons in (
            ("ntu60_xview", {"S001C001P001R003A001": "replication R003", "S001C001P041R001A001": "performer P041",
                             "S001C004P001R001A001": "camera C004", "S033C001P001R001A001": "setup S033"}),
            ("ntu120_xsub", {"S001C001P001R003A001": "replication R003", "S001C004P001R001A001": "camera C004",
                             "S018C001P107R001A001": "performer P107", "S033C001P001R001A001": "setup S033"})):
        train, val, bad = _split_ids(fmt, root)
        assert {Path(b.file).stem: b.reason for b in bad} == {
            stem: f"{reason} outside NTU{fmt[3:fmt.index('_')]}" for stem, reason in reasons.items()}, fmt
        assert train + val == ["S001C001P001R001A001"] + (["S001C001P041R001A001"] if fmt == "ntu120_xsub" else [])


@pytest.mark.parametrize("fmt, classes", [("ntu60_xsub", 60), ("ntu60_xview", 60), ("ntu120_xsub", 120),
                                          ("ntu120_xset", 120)])
def test_ntu_class_counts_and_1_based_actions(tmp_path, fmt, classes):
    stems = [f"S002C002P001R001A{a:03d}" for a in range(1, 122)]  # trains under all four protocols
    samples, bad = read_annotations(fmt, _ntu_root(tmp_path, stems), "train")
    assert class_counts(fmt, tmp_path) == classes
    assert [(s.video_id, s.label) for s in samples] == [(f"S002C002P001R001A{a:03d}", a - 1)
                                                       for a in range(1, classes + 1)]
    assert [Path(b.file).name for b in bad] == [f"S002C002P001R001A{a:03d}.skeleton" for a in range(classes + 1, 122)]


# --- Something-Something V2: template -> class -----------------------------------------------------------------

SSV2_LABELS = {  # as in the official labels.json: the templates without brackets, index values as strings
    "Moving part of something": "0",
    "Putting number of something onto something": "1",
    "Something falling like a rock": "2",
    "Pretending to put something behind something": "3",
}
SSV2_ENTRIES = [  # as in the official train/validation.json
    {"id": "11", "label": "moving handle of a mug", "template": "Moving [part] of [something]",
     "placeholders": ["handle", "a mug"]},
    {"id": "12", "label": "putting 2 coins onto a book", "template": "Putting [number of] [something] onto "
                                                                   "[something]",
     "placeholders": ["2", "coins", "a book"]},
    {"id": "13", "label": "pen falling like a rock", "template": "[Something] falling like a rock",
     "placeholders": ["pen"]},
    {"id": "14", "label": "pretending to put a cup behind a box",
     "template": "Pretending to put [something] behind [something]", "placeholders": ["a cup", "a box"]},
]


def test_ssv2_class_is_the_template_without_any_bracket(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps(SSV2_LABELS))
    (tmp_path / "train.json").write_text(json.dumps(SSV2_ENTRIES))
    (tmp_path / "validation.json").write_text(json.dumps(SSV2_ENTRIES[::-1]))
    train, bad = read_annotations("ssv2", tmp_path, "train")
    assert [(s.video_id, s.label, s.line) for s in train] == [("11", 0, 1), ("12", 1, 2), ("13", 2, 3), ("14", 3, 4)]
    assert not bad
    assert class_names("ssv2", tmp_path) == list(SSV2_LABELS) and class_counts("ssv2", tmp_path) == 4


# --- official Kinetics: class indices from the training annotations -------------------------------------------


def test_kinetics_class_indices_come_from_the_training_file_only(tmp_path):
    """A class only the val file names is not a new class (it would shift every later index): it is a bad line."""
    (tmp_path / "annotations").mkdir()
    header = "label,youtube_id,time_start,time_end,split\n"
    (tmp_path / "annotations" / "train.csv").write_text(header + "zumba,aaa,0,10,train\nbowling,bbb,5,15,train\n")
    (tmp_path / "annotations" / "val.csv").write_text(header + "abseiling,ccc,0,10,val\nzumba,ddd,1,11,val\n")
    assert class_names("kinetics", tmp_path) == ["bowling", "zumba"] and class_counts("kinetics", tmp_path) == 2
    train, _ = read_annotations("kinetics", tmp_path, "train")
    assert [(s.video_id, s.label) for s in train] == [("aaa_000000_000010", 1), ("bbb_000005_000015", 0)]
    val, bad = read_annotations("kinetics", tmp_path, "val")
    assert [(s.video_id, s.label) for s in val] == [("ddd_000001_000011", 1)]
    assert [(b.line_number, b.reason) for b in bad] == [(2, "unknown class 'abseiling'")]


# --- EPIC-KITCHENS-100: segments from start/stop timestamps -----------------------------------------------------


def epic_root(root: Path, rows: list[str]) -> Path:
    ann = root / "annotations"
    ann.mkdir()
    for kind, names in (("verb", ["take", "put"]), ("noun", ["tap", "plate", "knife"])):
        lines = [f"{i},{name},['{name}'],{kind}" for i, name in enumerate(names)]
        (ann / f"EPIC_100_{kind}_classes.csv").write_text("id,key,instances,category\n" + "\n".join(lines) + "\n")
    for name in ("EPIC_100_train.csv", "EPIC_100_validation.csv"):
        (ann / name).write_text(",".join(EPIC_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    return root


def _epic_row(narration_id: str, narration_ts: str, start: str, stop: str, verb: int, noun: int) -> str:
    # start_frame/stop_frame deliberately disagree with the timestamps: segments are located by timestamp.
    return (f"{narration_id},P03,P03_11,{narration_ts},{start},{stop},999,1999,narration,verb,{verb},noun,{noun},"
            f"\"['noun']\",\"[{noun}]\"")


def test_epic_segment_is_start_to_stop_timestamp_not_the_narration_time(tmp_path):
    rows = [
        _epic_row("P03_11_0", "00:00:00.50", "00:01:02.25", "01:00:03.75", 1, 2),
        _epic_row("P03_11_1", "00:00:09.00", "00:00:04.00", "00:00:04.00", 0, 0),  # line 3: empty segment
    ]
    samples, bad = read_annotations("epic_kitchens100", epic_root(tmp_path, rows), "train")
    (sample,) = samples
    assert sample.video_id == "P03_11_0" and sample.label == (1, 2) and sample.line == 2
    assert sample.path == tmp_path / "P03" / "videos" / "P03_11.MP4"
    start, stop = sample.segment
    assert (start, stop) == (62.25, 3603.75)  # 1 min 2.25 s; 1 h 3.75 s (exact in binary floating point)
    assert [(b.line_number, b.reason) for b in bad] == [(3, "stop_timestamp 4s is not after start_timestamp 4s")]


def test_an_epic_narration_with_two_segments_is_left_out(tmp_path):
    rows = [
        _epic_row("P03_11_0", "00:00:01.00", "00:00:01.00", "00:00:02.00", 0, 1),
        _epic_row("P03_11_1", "00:00:03.00", "00:00:03.00", "00:00:04.00", 1, 1),
        _epic_row("P03_11_0", "00:00:01.00", "00:00:05.00", "00:00:06.00", 0, 1),  # same labels, another segment
    ]
    samples, bad = read_annotations("epic_kitchens100", epic_root(tmp_path, rows), "train")
    assert [s.video_id for s in samples] == ["P03_11_1"]
    assert [b.line_number for b in bad] == [2, 4]
    assert "segment (1.0, 2.0) here, (5.0, 6.0) on line 4" in bad[0].reason


# --- PennAction: the 15 actions in alphabetical order ------------------------------------------------------------

PENNACTION_ACTION_NAMES = ["baseball_pitch", "baseball_swing", "bench_press", "bowl", "clean_and_jerk", "golf_swing",
                           "jump_rope", "jumping_jacks", "pullup", "pushup", "situp", "squat", "strum_guitar",
                           "tennis_forehand", "tennis_serve"]  # the dataset README's 15 actions, sorted


def test_pennaction_labels_index_the_actions_alphabetically(tmp_path):
    assert sorted(PENNACTION_ACTION_NAMES) == PENNACTION_ACTION_NAMES  # "_" sorts before letters: jump_rope first
    x = np.zeros((2, 13))
    for number, action in enumerate(PENNACTION_ACTION_NAMES, start=1):
        write_pennaction_labels(tmp_path / "labels" / f"{number:04d}.mat", action, x, x, (24, 32), train=True)
    (tmp_path / "frames").mkdir()
    samples, bad = read_annotations("pennaction", tmp_path, "train")
    assert [(s.video_id, s.label) for s in samples] == [(f"{i + 1:04d}", i) for i in range(15)] and not bad
    assert list(PENNACTION_ACTIONS) == PENNACTION_ACTION_NAMES and class_counts("pennaction", tmp_path) == 15


# --- rows to dataset items: (verb, noun) order and segment placement ---------------------------------------------


def test_a_verb_noun_sample_becomes_a_verb_then_noun_label_clipped_to_its_segment(tmp_path):
    """Item label (2,) is (verb, noun) as annotated; its frames lie inside [start, stop) of its video."""
    video = write_video(tmp_path / "P03_11.MP4", index_frames(40), fps=10)
    sample = Sample(video, (1, 2), "P03_11_0", 2, segment=(1.5, 2.5))  # frames 15..24 at 10 fps
    item = VideoClipDataset([sample], "test", None, sampling="segments", num_frames=5)[0]
    assert item["label"].tolist() == [1, 2]
    ids = frame_ids((item["video"][0] * 255).round().to(torch.uint8))
    assert ids == [16, 18, 20, 22, 24]  # the centre frame of each 2-frame segment of frames 15..24
