"""``python -m data check`` and ``python -m data synth`` on tiny datasets written here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.__main__ import main
from data.annotations import EPIC_COLUMNS
from data.pose import ntu_body, write_ntu_skeleton
from data.video_io import write_video

REPO = Path(__file__).resolve().parents[2]


def random_frames(num_frames: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (num_frames, 24, 32, 3), dtype=np.uint8)


@pytest.fixture
def kinetics_root(tmp_path) -> Path:
    """train: 3 good videos, a missing one, a zero-byte one, an mp4 cut in half, a WebM cut in half (opens fine:
    only decoding its end shows the damage), and two malformed lines (7, 8). val: 2 good videos."""
    root = tmp_path / "k400"
    for split, count in (("train", 3), ("val", 2)):
        for i in range(count):
            (root / split).mkdir(parents=True, exist_ok=True)
            write_video(root / split / f"good{i}.mp4", random_frames(seed=i), fps=10)
    full_mp4 = write_video(root / "full.mp4", random_frames(seed=7), fps=10).read_bytes()
    full_webm = write_video(root / "full.webm", random_frames(40, seed=8), fps=10).read_bytes()
    (root / "train" / "empty.mp4").write_bytes(b"")
    (root / "train" / "cut.mp4").write_bytes(full_mp4[: len(full_mp4) // 2])
    (root / "train" / "cut.webm").write_bytes(full_webm[: len(full_webm) // 2])
    (root / "full.mp4").unlink()
    (root / "full.webm").unlink()
    lines = [f"train/good{i}.mp4 {i}" for i in range(3)]
    lines += ["train/missing.mp4 0", "train/empty.mp4 1", "train/cut.mp4 2", "no_label.mp4", "x.mp4 -1",
              "train/cut.webm 0"]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    (root / "val.csv").write_text("val/good0.mp4 0\nval/good1.mp4 1\n")
    return root


def run_check(capsys, *args: str) -> tuple[int, dict]:
    code = main(["check", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_check_reports_every_kind_of_problem(kinetics_root, capsys):
    code, report = run_check(capsys, "kinetics400", "--root", str(kinetics_root), "--split", "train")
    assert code == 1
    assert (report["dataset"], report["split"], report["format"]) == ("kinetics400", "train", "kinetics_list")
    assert (report["expected"], report["found"], report["missing"], report["corrupt"],
            report["bad_annotation_lines"]) == (7, 6, 1, 3, 2)
    assert report["missing_paths"] == [str(kinetics_root / "train" / "missing.mp4")]
    reasons = {Path(c["path"]).name: c["reason"] for c in report["corrupt_paths"]}
    assert set(reasons) == {"empty.mp4", "cut.mp4", "cut.webm"} and reasons["empty.mp4"] == "zero-byte file"
    assert "truncated" in reasons["cut.webm"] or "no frames" in reasons["cut.webm"]
    assert [(Path(b["file"]).name, b["line"]) for b in report["bad_lines"]] == [("train.csv", 7), ("train.csv", 8)]

    manifest = json.loads(Path(report["manifest"]).read_text())
    assert Path(report["manifest"]) == kinetics_root / "manifest-kinetics400-train.json"
    entries = {Path(e["path"]).name: e for e in manifest["splits"]["train"]["entries"]}
    assert entries["good0.mp4"]["status"] == "ok" and entries["good2.mp4"]["label"] == 2
    assert "missing file" in entries["missing.mp4"]["status"] and entries["missing.mp4"]["line"] == 4
    assert manifest["splits"]["train"]["bad_lines"][0]["text"] == "no_label.mp4"

    # --quick only stats: the half WebM (and the mp4 without its index) pass, the zero-byte file does not.
    code, quick = run_check(capsys, "kinetics400", "--root", str(kinetics_root), "--split", "train", "--quick",
                         "--manifest", str(kinetics_root / "elsewhere" / "m.json"))
    assert code == 1 and quick["corrupt"] == 1 and quick["manifest"].endswith("elsewhere/m.json")


def test_check_exit_status_and_all_splits(kinetics_root, capsys):
    code, val = run_check(capsys, "kinetics400", "--root", str(kinetics_root), "--split", "val")
    assert code == 0 and (val["expected"], val["found"], val["missing"], val["corrupt"]) == (2, 2, 0, 0)
    code, both = run_check(capsys, "kinetics400", "--root", str(kinetics_root))
    assert code == 1 and both["split"] == "all" and set(both["splits"]) == {"train", "val"}
    assert (both["expected"], both["found"], both["missing"], both["corrupt"]) == (9, 8, 1, 3)
    assert both["splits"]["val"]["found"] == 2

    main(["check", "kinetics400", "--root", str(kinetics_root), "--split", "val"])  # human-readable form
    text = capsys.readouterr().out
    assert "2 videos expected, 2 found, 0 missing, 0 corrupt" in text and "manifest:" in text

    assert main(["check", "ssv2", "--root", str(kinetics_root)]) == 2  # no labels.json: the annotations fail
    assert "labels.json" in capsys.readouterr().err


def test_check_of_a_missing_root_says_so_for_the_named_dataset_only(tmp_path, capsys):
    assert main(["check", "kinetics400", "--root", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'missing'} does not exist; Kinetics-400 expects ")
    assert "annotations/{train,val}.csv" in err and "train.csv / val.csv" in err
    assert len(err.splitlines()) == 1
    assert not any(other in err for other in ("labels.json", "EPIC_100", "labels/", "nturgb"))  # not the others'

    assert main(["check", "kinetics400", "--root", str(tmp_path)]) == 2  # a folder without annotations
    err = capsys.readouterr().err
    assert "no annotation files found; Kinetics-400 expects" in err and "labels.json" not in err
    assert main(["check", "ssv2", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'labels.json'} not found; Something-Something V2 expects labels.json, " in err


def test_check_epic_pennaction_style_and_ntu_layouts(tmp_path, capsys):
    epic = tmp_path / "epic"
    (epic / "P01" / "videos").mkdir(parents=True)
    write_video(epic / "P01" / "videos" / "P01_01.MP4", random_frames(30), fps=50)
    for kind, count in (("verb", 2), ("noun", 2)):
        rows = "".join(f"{i},{kind}{i},1,c\n" for i in range(count))
        (epic / f"EPIC_100_{kind}_classes.csv").write_text("id,key,instances,category\n" + rows)
    row = "P0{p}_0{v}_{n},P0{p},P0{p}_0{v},00:00:00.00,00:00:00.{a}0,00:00:00.{b}0,0,1,x,x,1,y,0,\"['y']\",\"[0]\""
    train = [row.format(p=1, v=1, n=0, a=0, b=2), row.format(p=1, v=1, n=1, a=2, b=4),
             row.format(p=2, v=1, n=0, a=0, b=2), row.format(p=1, v=1, n=2, a=5, b=1),
             row.format(p=1, v=1, n=3, a=8, b=9)]  # line 6: starts after the 0.6 s video ends
    (epic / "EPIC_100_train.csv").write_text(",".join(EPIC_COLUMNS) + "\n" + "\n".join(train) + "\n")
    code, report = run_check(capsys, "epic_kitchens100", "--root", str(epic), "--split", "train")
    # Counts are per video file: P01_01 (2 segments) found, P02_01 missing; line 5 has stop before start.
    assert code == 1 and (report["expected"], report["found"], report["missing"]) == (2, 1, 1)
    assert (report["samples"], report["unusable_samples"], report["bad_annotation_lines"]) == (4, 1, 1)
    assert report["bad_lines"][0]["line"] == 5
    assert [(b["line"], "starts after" in b["reason"]) for b in report["bad_segments"]] == [(6, True)]
    manifest = json.loads(Path(report["manifest"]).read_text())
    assert manifest["splits"]["train"]["entries"][1]["segment"] == [0.2, 0.4]

    ntu = tmp_path / "ntu"
    body = ntu_body(np.ones((25, 3)))
    (ntu / "nturgb+d_rgb").mkdir(parents=True)
    for stem in ("S001C001P001R001A001", "S001C002P001R001A002"):
        write_video(ntu / "nturgb+d_rgb" / f"{stem}_rgb.avi", random_frames(6), fps=30)
        write_ntu_skeleton(ntu / "nturgb+d_skeletons" / f"{stem}.skeleton", [[body]] * 6)
    cut = ntu / "nturgb+d_skeletons" / "S001C002P001R001A002.skeleton"
    cut.write_text("\n".join(cut.read_text().splitlines()[:40]))
    code, report = run_check(capsys, "ntu60", "--root", str(ntu), "--format", "ntu60_xview", "--split", "train")
    assert code == 1 and report["format"] == "ntu60_xview" and report["samples"] == 1  # camera 2 trains
    assert (report["pose_expected"], report["pose_found"], report["corrupt"]) == (1, 1, 1)
    assert "line 41" in report["corrupt_paths"][0]["reason"]
    code, report = run_check(capsys, "ntu60", "--root", str(ntu), "--split", "train")  # xsub: both train (P001)
    assert report["samples"] == 2 and report["expected"] == report["found"] == 2


def test_synth_then_check_is_clean(tmp_path, capsys):
    out = tmp_path / "motion"
    assert main(["synth", "synth_motion", "--out", str(out), "--videos", "5", "--seed", "3"]) == 0
    assert "4 train + 1 val" in capsys.readouterr().out
    meta = json.loads((out / "synthetic.json").read_text())
    assert (meta["num_train"], meta["num_val"], meta["seed"]) == (4, 1, 3)
    code, report = run_check(capsys, "synth_motion", "--root", str(out))
    assert code == 0 and (report["expected"], report["found"], report["bad_annotation_lines"]) == (5, 5, 0)
    assert main(["synth", "synth_motion", "--out", str(out), "--videos", "1"]) == 2


def test_module_entry_point_prints_one_json_object(kinetics_root):
    result = subprocess.run(
        [sys.executable, "-m", "data", "check", "kinetics400", "--root", str(kinetics_root), "--split", "val",
         "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"dataset", "split", "expected", "found", "missing", "corrupt", "bad_annotation_lines"} <= set(report)
    assert report["found"] == 2


def test_check_fails_on_a_split_without_samples_naming_its_file(kinetics_root, capsys):
    (kinetics_root / "val.csv").write_text("")
    code, report = run_check(capsys, "kinetics400", "--root", str(kinetics_root), "--split", "val")
    assert code == 1 and report["samples"] == 0
    assert report["empty_splits"] == [{"split": "val", "source": str(kinetics_root / "val.csv")}]
    assert main(["check", "kinetics400", "--root", str(kinetics_root)]) == 1
    assert f"  no samples in the val split ({kinetics_root / 'val.csv'})" in capsys.readouterr().out


def test_check_reports_labels_past_the_class_count_and_inconsistent_class_tables(kinetics_root, tmp_path, capsys):
    (kinetics_root / "val.csv").write_text("val/good0.mp4 0\nval/good1.mp4 400\n")  # Kinetics-400: 0..399
    code, report = run_check(capsys, "kinetics400", "--root", str(kinetics_root), "--split", "val")
    assert code == 1 and report["samples"] == 1
    assert [(b["line"], b["reason"]) for b in report["bad_lines"]] == [
        (2, "label 400 outside the 400 classes (0..399)")]

    ssv2 = tmp_path / "ssv2"
    ssv2.mkdir()
    (ssv2 / "labels.json").write_text(json.dumps({"Moving something up": "0", "Pushing something": "5"}))
    for name in ("train.json", "validation.json"):
        (ssv2 / name).write_text("[]")
    assert main(["check", "ssv2", "--root", str(ssv2)]) == 2
    err = capsys.readouterr().err
    assert f"{ssv2 / 'labels.json'}: the 2 classes must have the indices 0..1" in err and "index 5" in err


def test_check_fails_on_a_missing_class_list(tmp_path, capsys):
    epic = tmp_path / "epic"
    epic.mkdir()
    (epic / "EPIC_100_verb_classes.csv").write_text("id,key,instances,category\n0,take,1,c\n")
    for split in ("train", "validation"):
        (epic / f"EPIC_100_{split}.csv").write_text(",".join(EPIC_COLUMNS) + "\n")
    assert main(["check", "epic_kitchens100", "--root", str(epic)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {epic}: neither EPIC_100_noun_classes.csv nor annotations/EPIC_100_noun_classes."
                          f"csv; EPIC-KITCHENS-100 expects ") and len(err.splitlines()) == 1


def test_check_flags_a_pennaction_pose_file_that_does_not_match_its_frames(tmp_path, capsys):
    from data.pose import write_pennaction_labels
    from data.video_io import write_frame_folder

    root = tmp_path / "penn"
    for video_id, pose_frames in (("0001", 6), ("0002", 4)):  # 0002: 4 pose rows for 6 frames
        write_frame_folder(root / "frames" / video_id, random_frames(6))
        xy = np.ones((pose_frames, 13))
        write_pennaction_labels(root / "labels" / f"{video_id}.mat", "bowl", xy, xy, (24, 32), True)
    code, report = run_check(capsys, "pennaction", "--root", str(root), "--split", "train")
    assert code == 1 and (report["found"], report["pose_found"], report["corrupt"]) == (2, 2, 1)
    assert report["corrupt_paths"] == [{"path": str(root / "labels" / "0002.mat"), "reason": (
        f"4 pose frames for the 6 frames of {root / 'frames' / '0002'} (PennAction has one per frame)")}]
    code, quick = run_check(capsys, "pennaction", "--root", str(root), "--split", "train", "--quick")
    assert quick["corrupt"] == 0  # a stat only: the pose file is not read


def test_check_names_a_kinetics_training_header_without_labels(tmp_path, capsys):
    root = tmp_path / "k400"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.csv").write_text("class,youtube_id,time_start,time_end,split\nbowl,a,0,10,train\n")
    (root / "annotations" / "val.csv").write_text("label,youtube_id,time_start,time_end,split\nbowl,b,0,10,val\n")
    assert main(["check", "kinetics400", "--root", str(root), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert f"error: {root / 'annotations' / 'train.csv'}: header class,youtube_id" in err and "'label'" in err


def test_check_says_which_ssv2_layout_it_found(tmp_path, capsys):
    entry = {"id": "1", "label": "x", "template": "Moving [something] up", "placeholders": ["x"]}
    shipped_videos = "20bn-something-something-v2"
    roots = {"root": (tmp_path / "a", "", "videos"), "as shipped": (tmp_path / "b", "labels", shipped_videos)}
    for layout, (root, json_folder, videos) in roots.items():
        (root / json_folder).mkdir(parents=True, exist_ok=True)
        (root / json_folder / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
        for name in ("train.json", "validation.json"):
            (root / json_folder / name).write_text(json.dumps([entry]))
        (root / videos).mkdir()
        write_video(root / videos / "1.webm", random_frames(8), fps=12)
        code, report = run_check(capsys, "ssv2", "--root", str(root), "--split", "val")
        assert code == 0 and report["layout"] == layout and report["found"] == 1
        assert main(["check", "ssv2", "--root", str(root)]) == 0
        assert f"(ssv2, {layout} layout)" in capsys.readouterr().out
