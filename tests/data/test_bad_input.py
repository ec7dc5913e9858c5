"""Bad input files, written here, get an error, a reported bad line or a warning that names the file (and line),
and lose nothing silently: EPIC class lists, repeated videos and ones in two splits (Kinetics lists, official
Kinetics, SSv2, EPIC), an infinite Kinetics time, and the LRA files (a truncated or foreign CIFAR pickle, an empty
IMDB review, a truncated Pathfinder image)."""

from __future__ import annotations

import io
import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.__main__ import main
from data.annotations import EPIC_COLUMNS, class_counts, read_annotations
from data.lra import read_lra

# --- EPIC-KITCHENS class lists -----------------------------------------------------------------------------------

CLASS_HEADER = "id,key,instances,category\n"


def _epic_root(root: Path, verbs: bytes, train_rows: list[str] = ()) -> Path:
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "EPIC_100_verb_classes.csv").write_bytes(verbs)
    (root / "annotations" / "EPIC_100_noun_classes.csv").write_text(CLASS_HEADER + "0,tap,['tap'],0\n")
    for name in ("EPIC_100_train.csv", "EPIC_100_validation.csv"):
        (root / "annotations" / name).write_text(",".join(EPIC_COLUMNS) + "\n" + "".join(train_rows))
    return root


def test_an_epic_class_row_without_a_key_names_the_file_and_line(tmp_path):
    root = _epic_root(tmp_path, (CLASS_HEADER + "0,take,['take'],0\n1\n").encode())  # it was AttributeError
    with pytest.raises(ValueError, match=r"EPIC_100_verb_classes.csv:3: missing key 'key' \(a row is id,key,"):
        class_counts("epic_kitchens100", root)


def test_an_epic_class_list_in_latin1_names_the_file_and_line(tmp_path):
    root = _epic_root(tmp_path, (CLASS_HEADER + "0,take,['take'],0\n1,sauté,['sauté'],0\n").encode("latin-1"))
    with pytest.raises(ValueError, match=r"EPIC_100_verb_classes.csv:3: not UTF-8 text \(byte 0xe9"):
        read_annotations("epic_kitchens100", root, "train")


def _epic_row(narration: str, verb: int, start: str = "00:00:01.00") -> str:
    return (f"{narration},P01,P01_01,{start},{start},00:00:02.00,50,100,take tap,take,{verb},tap,0,"
            f"\"['tap']\",\"[0]\"\n")


def test_an_epic_narration_annotated_twice_with_different_verbs_is_left_out_naming_both_lines(tmp_path):
    verbs = (CLASS_HEADER + "0,take,['take'],0\n1,put,['put'],0\n").encode()
    root = _epic_root(tmp_path, verbs, [_epic_row("P01_01_0", 0), _epic_row("P01_01_1", 0), _epic_row("P01_01_0", 1)])
    samples, bad = read_annotations("epic_kitchens100", root, "train")
    assert [s.video_id for s in samples] == ["P01_01_1"]
    assert [(Path(b.file).name, b.line_number) for b in bad] == [("EPIC_100_train.csv", 2), ("EPIC_100_train.csv", 4)]
    assert "label (0, 0) here, (1, 0) on line 4" in bad[0].reason and "narration P01_01_0" in bad[0].reason


# --- the same video twice ----------------------------------------------------------------------------------------


def test_a_kinetics_list_video_twice_is_read_once_or_left_out_with_each_line_named(tmp_path, caplog):
    """a.mp4 with labels 3 and 5: which is right is unknown, so neither line is read; b.mp4 twice with one label:
    read once, the repeat reported; val's b.mp4 is trained on: kept (the split is the dataset's), with a warning
    naming both lines."""
    (tmp_path / "train.csv").write_text("a.mp4 3\nb.mp4 1\na.mp4 5\nb.mp4 1\nc.mp4 0\n")
    (tmp_path / "val.csv").write_text("b.mp4 1\nd.mp4 2\n")
    samples, bad = read_annotations("kinetics_list", tmp_path, "train", num_classes=10)
    assert [(s.path.name, s.label, s.line) for s in samples] == [("b.mp4", 1, 2), ("c.mp4", 0, 5)]
    assert [(Path(b.file).name, b.line_number) for b in bad] == [("train.csv", 1), ("train.csv", 3), ("train.csv", 4)]
    assert "label 3 here, 5 on line 3" in bad[0].reason and "label 5 here, 3 on line 1" in bad[1].reason
    assert "repeats line 2" in bad[2].reason and bad[2].text == "b.mp4 1"

    with caplog.at_level(logging.WARNING, logger="data.annotations"):
        samples, bad = read_annotations("kinetics_list", tmp_path, "val", num_classes=10)
    assert [s.path.name for s in samples] == ["b.mp4", "d.mp4"] and not bad
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"{tmp_path / 'val.csv'}: 1 video(s) of the val split are in the training split")
    assert "line 1 (b, train.csv:2)" in warning


def test_python_m_data_check_lists_repeated_videos_as_bad_lines_and_warns_of_cross_split_ones(tmp_path, capsys,
                                                                                                 caplog):
    (tmp_path / "train.csv").write_text("a.mp4 3\na.mp4 5\nc.mp4 1\nc.mp4 1\n")
    (tmp_path / "val.csv").write_text("c.mp4 1\nb.mp4 1\n")
    with caplog.at_level(logging.WARNING, logger="data.annotations"):
        code = main(["check", "kinetics400", "--root", str(tmp_path), "--quick", "--manifest",
                     str(tmp_path / "m.json")])
    out = capsys.readouterr().out
    assert code == 1 and "3 bad annotation lines" in out
    for file, line, reason in (("train.csv", 1, "video a is annotated differently"),
                               ("train.csv", 2, "video a is annotated differently"),
                               ("train.csv", 4, "video c repeats line 3: read once")):
        assert f"bad line {tmp_path / file}:{line}: {reason}" in out
    assert any("line 1 (c, train.csv:3)" in r.getMessage() for r in caplog.records)


def test_official_kinetics_repeated_clips_and_an_infinite_time_are_bad_lines(tmp_path, caplog):
    (tmp_path / "annotations").mkdir()
    header = "label,youtube_id,time_start,time_end,split\n"
    (tmp_path / "annotations" / "train.csv").write_text(
        header + "abseiling,aaa,0,10,train\nbowling,aaa,0,10,train\nbowling,bbb,0,10,train\n"
                 "bowling,ccc,0,inf,train\n")  # inf was an OverflowError traceback
    (tmp_path / "annotations" / "val.csv").write_text(header + "bowling,bbb,0,10,val\nbowling,ddd,5,15,val\n")
    samples, bad = read_annotations("kinetics", tmp_path, "train")
    assert [s.video_id for s in samples] == ["bbb_000000_000010"]
    assert [(Path(b.file).name, b.line_number) for b in bad] == [("train.csv", 2), ("train.csv", 3), ("train.csv", 5)]
    assert bad[2].reason == "time_end: Input should be a finite number (got 'inf')"
    with caplog.at_level(logging.WARNING, logger="data.annotations"):
        samples, bad = read_annotations("kinetics", tmp_path, "val")
    assert [s.video_id for s in samples] == ["bbb_000000_000010", "ddd_000005_000015"] and not bad
    assert any("line 2 (bbb_000000_000010, train.csv:4)" in r.getMessage() for r in caplog.records)


def test_an_ssv2_id_twice_with_two_labels_is_left_out_naming_both_entries(tmp_path, caplog):
    (tmp_path / "labels.json").write_text(json.dumps({"Moving something up": "0", "Moving something down": "1"}))
    up = {"id": "1", "label": "Moving a cup up", "template": "Moving [something] up", "placeholders": ["a cup"]}
    down = {**up, "template": "Moving [something] down"}
    (tmp_path / "train.json").write_text(json.dumps([down, {**up, "id": "2"}, up]))
    (tmp_path / "validation.json").write_text(json.dumps([{**up, "id": "2"}, {**up, "id": "3"}]))
    samples, bad = read_annotations("ssv2", tmp_path, "train")
    assert [(s.video_id, s.label) for s in samples] == [("2", 0)]
    assert [(Path(b.file).name, b.line_number) for b in bad] == [("train.json", 1), ("train.json", 3)]
    assert "label 1 here, 0 on line 3" in bad[0].reason
    with caplog.at_level(logging.WARNING, logger="data.annotations"):
        samples, bad = read_annotations("ssv2", tmp_path, "val")
    assert [s.video_id for s in samples] == ["2", "3"] and not bad
    assert any("line 1 (2, train.json:2)" in r.getMessage() for r in caplog.records)


# --- Long Range Arena ----------------------------------------------------------------------------------------------


def _cifar(root: Path) -> Path:
    d = root / "cifar-10-batches-py"
    d.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2], b"batch_label": b"x"}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)  # the release's protocol
    return d


def test_a_truncated_cifar_batch_names_the_file(tmp_path):
    d = _cifar(tmp_path)
    assert len(read_lra("image", tmp_path, "train")) == 9  # the intact batches read through the safe unpickler
    whole = (d / "data_batch_3").read_bytes()
    (d / "data_batch_3").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"data_batch_3: not a CIFAR-10 python batch"):
        read_lra("image", tmp_path, "train")


class _Opens:
    """Pickles as a call of ``open``: what unpickling an untrusted file may run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_a_cifar_batch_naming_any_other_callable_is_refused_by_name_unrun(tmp_path):
    d = _cifar(tmp_path)
    marker = tmp_path / "was_run"
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"data": _Opens(marker), b"labels": [1]}, f)
    with pytest.raises(ValueError, match=r"test_batch: .*refusing io\.open"):
        read_lra("image", tmp_path, "test")
    assert not marker.exists()


def test_an_empty_imdb_review_is_a_reported_bad_entry_not_a_training_example(tmp_path):
    from data.lra_datamodule import LRADataModule

    for split in ("train", "test"):
        for cls in ("pos", "neg"):
            (tmp_path / "aclImdb" / split / cls).mkdir(parents=True)
            (tmp_path / "aclImdb" / split / cls / "0_7.txt").write_text("Fine.")
    empty = tmp_path / "aclImdb" / "train" / "pos" / "1_9.txt"
    empty.write_bytes(b"")
    split = read_lra("text", tmp_path, "train")
    assert len(split) == 2 and empty not in split.files
    assert [(b.file, b.line_number) for b in split.bad_lines] == [(str(empty), 0)]
    dm = LRADataModule("text", root=tmp_path)
    dm.setup("fit")
    report = dm.data_report()["train"]
    assert (report["expected"], report["found"]) == (3, 2)
    assert report["bad_annotation_lines"] == [{"file": str(empty), "line": 0,
                                               "reason": "empty review (zero-byte file)"}]


def test_a_truncated_pathfinder_image_names_the_file_when_read(tmp_path):
    from PIL import Image

    d = tmp_path / "pathfinder32" / "curv_baseline"
    (d / "imgs" / "0").mkdir(parents=True)
    (d / "metadata").mkdir()
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)).save(buffer, format="PNG")
    (d / "imgs" / "0" / "sample_0.png").write_bytes(buffer.getvalue()[:600])  # header intact, pixels cut
    (d / "metadata" / "0.npy").write_text("imgs/0 sample_0.png 0 1 0 0\n")
    split = read_lra("pathfinder", tmp_path, "test")
    with pytest.raises(ValueError, match=r"sample_0.png: unreadable image"):
        split[0]
