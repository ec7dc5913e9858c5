"""How annotation rows become samples, and how their bad rows are named, for the formats other than NTU; the
expected values are written out literally here from the published formats:

* official Kinetics: a root with no train.csv takes its sorted class names from its other annotation files; a row
  without a label is a bad line that shifts no class index; clip names truncate fractional times as the Kinetics
  download tool's ``'%06d'`` does; a header lacking a column is one bad line 1 naming the file;
* Something-Something V2: a cut-off JSON file is reported at the line the parser stopped on, a bad entry names its
  split file and entry number;
* Kinetics "path label" lists: ``path, label`` (comma and space) is the path without the comma;
* EPIC-KITCHENS-100: one narration id in two videos is left out; the ``.mp4`` spelling of a mirror is found; a row
  with an unparsable ``all_noun_classes`` or more fields than the header is a bad line (with its text); a header
  without ``noun_class`` is one bad line 1; class lists are read in id order and a gap in their ids is refused.

Files are written into ``tmp_path`` and read through ``read_annotations``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.annotations import EPIC_COLUMNS, class_names, epic_class_names, read_annotations
from tests.data.test_annotation_protocols import epic_root
from tests.data.test_epic import epic_row

KINETICS_HEADER = "label,youtube_id,time_start,time_end,split\n"


def _kinetics_root(root: Path, files: dict[str, str]) -> Path:
    (root / "annotations").mkdir()
    for name, text in files.items():
        (root / "annotations" / name).write_text(text)
    return root


def _bad(bad) -> list[tuple[str, int, str]]:
    return [(Path(b.file).name, b.line_number, b.reason) for b in bad]


# --- official Kinetics ------------------------------------------------------------------------------------------


def test_a_kinetics_root_without_train_csv_takes_its_sorted_classes_from_its_other_annotation_files(tmp_path):
    """Evaluating alone (no train.csv) must still read val: its classes are those of the annotation files there."""
    root = _kinetics_root(tmp_path, {"val.csv": KINETICS_HEADER + "zumba,aaa,0,10,val\nbowling,bbb,5,15,val\n"})
    assert class_names("kinetics", root) == ["bowling", "zumba"]
    samples, bad = read_annotations("kinetics", root, "val")
    assert [(s.video_id, s.label) for s in samples] == [("aaa_000000_000010", 1), ("bbb_000005_000015", 0)]
    assert not bad


def test_a_kinetics_training_row_without_a_label_is_a_bad_line_that_shifts_no_class_index(tmp_path):
    """An empty label must not become a class "" (it would sort first and move every index up by one)."""
    root = _kinetics_root(tmp_path, {"train.csv": KINETICS_HEADER + "zumba,aaa,0,10,train\n,bbb,0,10,train\n"
                                                                    "bowling,ccc,0,10,train\n"})
    assert class_names("kinetics", root) == ["bowling", "zumba"]
    samples, bad = read_annotations("kinetics", root, "train")
    assert [(s.video_id, s.label) for s in samples] == [("aaa_000000_000010", 1), ("ccc_000000_000010", 0)]
    assert _bad(bad) == [("train.csv", 3, "unknown class ''")]


def test_kinetics_clip_names_truncate_fractional_times_and_labels_are_matched_stripped(tmp_path):
    """The download tool names clips '%s_%s_%s.mp4' % (id, '%06d' % start, '%06d' % end): '%06d' % 10.6 is
    '000010'. A label padded with spaces is the class its stripped name is (the class list strips it too)."""
    root = _kinetics_root(tmp_path, {"train.csv": KINETICS_HEADER + "bowling,aaa,10.6,20.9,train\n"
                                                                    "zumba,bbb,0,10,train\n",
                                     "val.csv": KINETICS_HEADER + " zumba ,ccc,1.5,11.5,val\n"})
    train, bad_train = read_annotations("kinetics", root, "train")
    assert [s.path.relative_to(root) for s in train] == [Path("train/aaa_000010_000020.mp4"),
                                                         Path("train/bbb_000000_000010.mp4")]
    val, bad_val = read_annotations("kinetics", root, "val")
    assert [(s.path, s.label) for s in val] == [(root / "val" / "ccc_000001_000011.mp4", 1)]
    assert not bad_train and not bad_val


def test_a_kinetics_header_lacking_a_column_is_one_bad_line_1_naming_the_file(tmp_path):
    root = _kinetics_root(tmp_path, {"train.csv": KINETICS_HEADER + "bowling,aaa,0,10,train\n",
                                     "val.csv": "label,time_start,time_end,split\nbowling,0,10,val\n"})
    samples, bad = read_annotations("kinetics", root, "val")
    assert not samples
    assert [(b.file, b.line_number, b.reason) for b in bad] == [
        (str(root / "annotations" / "val.csv"), 1, "header lacks ['youtube_id']")]


# --- Something-Something V2 -------------------------------------------------------------------------------------


def test_a_cut_off_ssv2_file_is_reported_at_the_line_the_json_parser_stopped_on(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
    (tmp_path / "train.json").write_text('[\n  {"id": "1", "template": "Moving [something] up"},\n  {"id": 2 oops\n]\n')
    samples, bad = read_annotations("ssv2", tmp_path, "train")
    assert not samples and len(bad) == 1
    assert (Path(bad[0].file).name, bad[0].line_number) == ("train.json", 3)  # not the character offset (65)


def test_a_bad_ssv2_entry_names_its_split_file_and_entry_number(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
    good = {"id": " 7 ", "label": "moving a cup up", "template": "Moving [something] up", "placeholders": ["a cup"]}
    (tmp_path / "train.json").write_text(json.dumps([good, {**good, "id": "8", "template": "Lifting [something]"}]))
    (tmp_path / "validation.json").write_text(json.dumps([{**good, "id": "9"}, {"id": "10"}]))
    train, bad_train = read_annotations("ssv2", tmp_path, "train")
    assert [(s.path, s.video_id) for s in train] == [(tmp_path / "videos" / "7.webm", "7")]  # the id stripped
    assert [(b.file, b.line_number) for b in bad_train] == [(str(tmp_path / "train.json"), 2)]
    _, bad_val = read_annotations("ssv2", tmp_path, "val")
    assert [(b.file, b.line_number, b.reason) for b in bad_val] == [
        (str(tmp_path / "validation.json"), 2, "missing key 'template'")]


# --- Kinetics "path label" lists --------------------------------------------------------------------------------


def test_a_path_label_line_with_comma_and_space_is_the_path_without_the_comma(tmp_path):
    (tmp_path / "train.csv").write_text("videos/a.mp4, 3\nvideos/b c.mp4 ,4\n")
    samples, bad = read_annotations("kinetics_list", tmp_path, "train", num_classes=5)
    assert [(s.path, s.label, s.video_id) for s in samples] == [
        (tmp_path / "videos" / "a.mp4", 3, "a"), (tmp_path / "videos" / "b c.mp4", 4, "b c")]
    assert not bad


# --- EPIC-KITCHENS-100 ------------------------------------------------------------------------------------------


def test_an_epic_narration_id_in_two_videos_is_left_out_naming_both_lines(tmp_path):
    """Same labels and segment, other video: which video holds the narration is unknown."""
    rows = [epic_row("P03_11_0", "P03_11", "00:00:01.00", "00:00:02.00", 0, 1),
            epic_row("P03_11_1", "P03_11", "00:00:03.00", "00:00:04.00", 1, 2),
            epic_row("P03_11_0", "P03_12", "00:00:01.00", "00:00:02.00", 0, 1)]
    samples, bad = read_annotations("epic_kitchens100", epic_root(tmp_path, rows), "train")
    assert [s.video_id for s in samples] == ["P03_11_1"]
    assert [b.line_number for b in bad] == [2, 4]
    videos = tmp_path / "P03" / "videos"
    assert f"path {videos / 'P03_11.MP4'} here, {videos / 'P03_12.MP4'} on line 4" in bad[0].reason


def test_an_epic_video_spelled_mp4_by_a_mirror_is_found_and_MP4_is_preferred(tmp_path):
    rows = [epic_row("P03_11_0", "P03_11", "00:00:01.00", "00:00:02.00", 0, 1),
            epic_row("P03_12_0", "P03_12", "00:00:01.00", "00:00:02.00", 0, 1)]
    root = epic_root(tmp_path, rows)
    videos = root / "P03" / "videos"
    videos.mkdir(parents=True)
    (videos / "P03_11.mp4").write_bytes(b"x")
    (videos / "P03_12.MP4").write_bytes(b"x")
    (videos / "P03_12.mp4").write_bytes(b"x")
    samples, _ = read_annotations("epic_kitchens100", root, "train")
    assert [s.path for s in samples] == [videos / "P03_11.mp4", videos / "P03_12.MP4"]


def test_epic_rows_with_a_broken_noun_list_or_an_extra_field_are_bad_lines_with_their_text(tmp_path):
    good = epic_row("P03_11_0", "P03_11", "00:00:01.00", "00:00:02.00", 0, 1)
    broken_list = epic_row("P03_11_1", "P03_11", "00:00:03.00", "00:00:04.00", 1, 2).replace('"[2]"', '"[2, 0"')
    extra_field = epic_row("P03_11_2", "P03_11", "00:00:05.00", "00:00:06.00", 1, 0) + ",extra"
    samples, bad = read_annotations("epic_kitchens100", epic_root(tmp_path, [good, broken_list, extra_field]), "train")
    assert [s.video_id for s in samples] == ["P03_11_0"]
    assert [(Path(b.file).name, b.line_number) for b in bad] == [("EPIC_100_train.csv", 3), ("EPIC_100_train.csv", 4)]
    assert bad[1].reason == "16 fields, header has 15"
    assert bad[0].text.startswith("P03_11_1,P03,P03_11,") and bad[1].text.startswith("P03_11_2,P03,P03_11,")


def test_an_epic_header_without_noun_class_is_one_bad_line_1(tmp_path):
    root = epic_root(tmp_path, [])
    columns = [c for c in EPIC_COLUMNS if c != "noun_class"]
    row = "P03_11_0,P03,P03_11,00:00:01.00,00:00:01.00,00:00:02.00,50,100,take tap,take,0,tap,\"['tap']\",\"[0]\""
    (root / "annotations" / "EPIC_100_train.csv").write_text(",".join(columns) + "\n" + row + "\n")
    samples, bad = read_annotations("epic_kitchens100", root, "train")
    assert not samples
    assert [(Path(b.file).name, b.line_number, b.reason) for b in bad] == [
        ("EPIC_100_train.csv", 1, "header lacks ['noun_class']")]


def test_epic_class_lists_are_read_in_id_order_and_a_gap_in_the_ids_is_refused(tmp_path):
    root = epic_root(tmp_path, [])
    verbs = root / "annotations" / "EPIC_100_verb_classes.csv"
    verbs.write_text("id,key,instances,category\n2,put,['put'],0\n0,take,['take'],0\n1,open,['open'],0\n")
    assert epic_class_names(root) == {"verb": ["take", "open", "put"], "noun": ["tap", "plate", "knife"]}
    verbs.write_text("id,key,instances,category\n0,take,['take'],0\n1,open,['open'],0\n3,put,['put'],0\n")
    with pytest.raises(ValueError, match=r"EPIC_100_verb_classes.csv: class ids must be 0\.\.2$"):
        read_annotations("epic_kitchens100", root, "train")
