"""``python -m data check`` on tiny datasets written here: the all-splits totals (a file or bad line shared by two
splits counted once and named, pose and unusable-sample totals, a bad segment of the second split), what the
manifest says of a sample whose pose file is bad or missing, where the manifest goes when its default target cannot
be written, and what the text report names. Expected values are literals worked out by hand from the files each
test writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.__main__ import main
from data.annotations import EPIC_COLUMNS
from data.pose import ntu_body, write_ntu_skeleton, write_pennaction_labels
from data.video_io import write_frame_folder
from tests.data.test_cli import kinetics_root, random_frames, run_check  # noqa: F401  (kinetics_root: a fixture)
from tests.experiments.harness.test_cli_options import EPIC_SEGMENT_ROW, epic_root_with_one_short_video


def _kinetics_shared_root(root: Path) -> Path:
    """train.csv and val.csv both list a missing video and a zero-byte one; train.csv has two malformed lines (3, 4);
    val.csv also lists a present one. Under --quick the present file's bytes are never decoded."""
    root.mkdir(parents=True)
    (root / "empty.mp4").write_bytes(b"")
    (root / "ok.mp4").write_bytes(b"stat only")
    (root / "train.csv").write_text("shared.mp4 1\nempty.mp4 0\nno_label.mp4\nx.mp4 -1\n")
    (root / "val.csv").write_text("shared.mp4 1\nempty.mp4 0\nok.mp4 2\n")
    return root


def test_all_splits_totals_count_a_file_listed_by_both_splits_once(tmp_path, capsys):
    root = _kinetics_shared_root(tmp_path / "k400")
    code, report = run_check(capsys, "kinetics400", "--root", str(root), "--quick")
    assert code == 1 and report["split"] == "all"
    # One missing file and one zero-byte file, each listed by both splits: one of each in the totals.
    assert (report["missing"], report["missing_paths"]) == (1, [str(root / "shared.mp4")])
    assert (report["corrupt"], report["corrupt_paths"]) == (1, [{"path": str(root / "empty.mp4"),
                                                                 "reason": "zero-byte file"}])
    # Two distinct bad lines of the same file stay two.
    assert report["bad_annotation_lines"] == 2
    assert [(Path(b["file"]).name, b["line"]) for b in report["bad_lines"]] == [("train.csv", 3), ("train.csv", 4)]
    # Samples are per split: train 2 (both unusable), val 3 (2 unusable).
    assert (report["samples"], report["unusable_samples"]) == (5, 4)
    # Files are counted once: shared.mp4, empty.mp4 and ok.mp4; all but the missing one found (the per-split
    # counts are 2 + 3 expected, 1 + 2 found), and the two listed by both splits are named.
    assert (report["expected"], report["found"]) == (3, 2)
    assert [(s["expected"], s["found"]) for s in report["splits"].values()] == [(2, 1), (3, 2)]
    assert report["shared_videos"] == [str(root / "empty.mp4"), str(root / "shared.mp4")]

    assert main(["check", "kinetics400", "--root", str(root), "--quick"]) == 1
    lines = capsys.readouterr().out.splitlines()
    # Each problem is named once, with its file (and line).
    assert lines.count(f"  missing  {root / 'shared.mp4'}") == 1
    assert lines.count(f"  corrupt  {root / 'empty.mp4'}: zero-byte file") == 1
    assert sum(line.startswith("  bad line ") for line in lines) == 2
    assert [line for line in lines if line.startswith("  in several splits")] == [
        f"  in several splits  {root / 'empty.mp4'}", f"  in several splits  {root / 'shared.mp4'}"]
    assert "3 videos expected, 2 found, 1 missing, 1 corrupt" in lines[0]


def test_a_split_whose_videos_are_all_missing_is_not_an_empty_split(tmp_path, capsys):
    root = tmp_path / "k400"
    root.mkdir()
    (root / "train.csv").write_text("a.mp4 0\n")
    (root / "val.csv").write_text("b.mp4 0\nc.mp4 1\n")
    code, report = run_check(capsys, "kinetics400", "--root", str(root), "--split", "val", "--quick")
    assert code == 1 and (report["samples"], report["found"], report["missing"]) == (2, 0, 2)
    assert report["empty_splits"] == []  # it has samples: their files are reported missing instead


def test_pennaction_all_splits_pose_totals_a_bad_label_file_once_and_manifest_statuses(tmp_path, capsys):
    root = tmp_path / "penn"
    for video_id, pose_frames, train in (("0001", 6, True), ("0002", 4, True), ("0003", 6, False)):
        write_frame_folder(root / "frames" / video_id, random_frames(6))
        xy = np.ones((pose_frames, 13))
        write_pennaction_labels(root / "labels" / f"{video_id}.mat", "bowl", xy, xy, (24, 32), train)
    broken = root / "labels" / "0004.mat"
    broken.write_bytes(b"not a MATLAB file")  # its split is unknown: a bad line of both splits
    code, report = run_check(capsys, "pennaction", "--root", str(root))
    assert code == 1
    assert report["bad_annotation_lines"] == 1 and [b["file"] for b in report["bad_lines"]] == [str(broken)]
    assert (report["splits"]["train"]["bad_annotation_lines"], report["splits"]["val"]["bad_annotation_lines"]) == (
        1, 1)
    assert (report["pose_expected"], report["pose_found"], report["corrupt"]) == (3, 3, 1)
    assert (report["splits"]["val"]["pose_expected"], report["splits"]["train"]["pose_expected"]) == (1, 2)
    # 0002's frame folder is fine but its pose file is not: the sample is unusable.
    assert (report["samples"], report["unusable_samples"]) == (3, 1)

    manifest = json.loads(Path(report["manifest"]).read_text())
    assert manifest["decoded"] is True
    status = {e["video_id"]: e["status"] for e in manifest["splits"]["train"]["entries"]}
    assert status == {"0001": "ok", "0002": (f"{root / 'labels' / '0002.mat'}: 4 pose frames for the 6 frames of "
                                             f"{root / 'frames' / '0002'} (PennAction has one per frame)")}


def test_ntu_video_without_its_skeleton_is_an_unusable_sample_with_a_missing_pose_file(tmp_path, capsys):
    root = tmp_path / "ntu"
    (root / "nturgb+d_rgb").mkdir(parents=True)
    stems = ("S001C001P001R001A001", "S001C001P001R001A002")  # performer 1: both train under cross-subject
    for stem in stems:
        (root / "nturgb+d_rgb" / f"{stem}_rgb.avi").write_bytes(b"stat only")
    skeleton = root / "nturgb+d_skeletons" / f"{stems[0]}.skeleton"
    write_ntu_skeleton(skeleton, [[ntu_body(np.ones((25, 3)))]] * 2)
    absent = root / "nturgb+d_skeletons" / f"{stems[1]}.skeleton"
    code, report = run_check(capsys, "ntu60", "--root", str(root), "--split", "train", "--quick")
    assert code == 1
    assert (report["expected"], report["found"], report["pose_expected"], report["pose_found"]) == (2, 2, 2, 1)
    assert (report["missing"], report["missing_paths"]) == (1, [str(absent)])
    assert (report["samples"], report["unusable_samples"]) == (2, 1)

    manifest = json.loads(Path(report["manifest"]).read_text())
    assert manifest["decoded"] is False  # --quick
    status = {e["video_id"]: e["status"] for e in manifest["splits"]["train"]["entries"]}
    assert status == {stems[0]: "ok", stems[1]: f"{absent}: missing file"}


def test_a_segment_past_the_end_in_the_validation_split_fails_the_all_splits_check(tmp_path, capsys):
    epic, row = epic_root_with_one_short_video(tmp_path), EPIC_SEGMENT_ROW
    header = ",".join(EPIC_COLUMNS) + "\n"
    (epic / "EPIC_100_train.csv").write_text(header + row.format(n=0, a=0, b=2))
    (epic / "EPIC_100_validation.csv").write_text(header + row.format(n=1, a=1, b=3) + row.format(n=2, a=8, b=9))
    code, report = run_check(capsys, "epic_kitchens100", "--root", str(epic))
    assert code == 1 and (report["missing"], report["corrupt"], report["bad_annotation_lines"]) == (0, 0, 0)
    assert [(b["line"], "starts after" in b["reason"]) for b in report["bad_segments"]] == [(3, True)]

    assert main(["check", "epic_kitchens100", "--root", str(epic)]) == 1
    assert f"  bad segment {epic / 'P01' / 'videos' / 'P01_01.MP4'} (line 3: " in capsys.readouterr().out


def test_manifest_goes_to_the_working_directory_only_when_the_default_target_cannot_be_written(
        kinetics_root, tmp_path, monkeypatch, capsys):  # noqa: F811  (kinetics_root: the fixture imported above)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    # A folder in the way stands in for a read-only root (the tests may run as root, which ignores permissions).
    (kinetics_root / "manifest-kinetics400-val.json").mkdir()
    code, report = run_check(capsys, "kinetics400", "--root", str(kinetics_root), "--split", "val", "--quick")
    assert code == 0 and report["manifest"] == str(workdir / "manifest-kinetics400-val.json")
    assert json.loads((workdir / "manifest-kinetics400-val.json").read_text())["dataset"] == "kinetics400"

    # An explicit --manifest that cannot be written is a bad argument (exit 2, named), not a data problem (1) nor a
    # manifest silently written elsewhere.
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    capsys.readouterr()
    code = main(["check", "kinetics400", "--root", str(kinetics_root), "--split", "train", "--quick",
                 "--manifest", str(blocked / "m.json")])
    assert code == 2 and not (workdir / "manifest-kinetics400-train.json").exists()
    assert capsys.readouterr().err.startswith(f"error: --manifest {blocked / 'm.json'}: cannot write it (")

