"""Each kind of row the data floor reads has one declared schema (``data.schemas``), checked when the file is read:
a wrong type, a missing field, a non-finite or out-of-range number is one line naming the file, the row and the
field, where it was an OverflowError traceback (a stop time past any float in the annotations) or a silent
acceptance. The pose files, arrays rather than rows, keep their own
checks; their non-finite numbers are refused too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.__main__ import main
from data.annotations import EPIC_COLUMNS, class_counts, read_annotations
from data.pose import PoseFormatError, read_ntu_skeleton, read_pennaction_labels
from data.schemas import MAX_SECONDS, KineticsRow, describe, validate_row
from tests.data.test_epic import epic_row

CLASSES = "id,key,instances,category\n0,take,1,0\n1,put,1,0\n"


def _epic(root: Path, rows: list[str]) -> Path:
    ann = root / "annotations"
    ann.mkdir(parents=True)
    for kind in ("verb", "noun"):
        (ann / f"EPIC_100_{kind}_classes.csv").write_text(CLASSES)
    for name in ("EPIC_100_train.csv", "EPIC_100_validation.csv"):
        (ann / name).write_text(",".join(EPIC_COLUMNS) + "\n" + "".join(r + "\n" for r in rows))
    return root


def test_a_stop_time_past_any_float_is_one_bad_line_in_data_check_naming_file_line_and_field(tmp_path, capsys):
    root = _epic(tmp_path, [epic_row("P01_01_0", "P01_01", "00:00:00.00", "9" * 400 + ":00:00.00", 0, 1)])
    assert main(["check", "epic_kitchens100", "--root", str(root)]) == 1  # one line per row, no traceback
    out = capsys.readouterr().out
    assert f"bad line {root / 'annotations' / 'EPIC_100_train.csv'}:2: stop_timestamp: timestamp '999" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("stop, field", [
    ("9" * 400 + ":00:00.00", "stop_timestamp: timestamp '999"),  # was an OverflowError: int too large for a float
    ("999:00:00.00", "stop_timestamp: timestamp '999:00:00.00' is past 168 hours"),
    ("00:00:01.1234567890123", "stop_timestamp: timestamp"),
])
def test_a_stop_time_past_any_video_is_a_bad_line_naming_the_field(tmp_path, stop, field):
    root = _epic(tmp_path, [epic_row("P01_01_0", "P01_01", "00:00:00.00", stop, 0, 1),
                            epic_row("P01_01_1", "P01_01", "00:00:00.00", "00:00:01.00", 1, 0)])
    samples, bad = read_annotations("epic_kitchens100", root, "train")
    assert [s.video_id for s in samples] == ["P01_01_1"]
    assert [b.line_number for b in bad] == [2] and bad[0].reason.startswith(field)


def test_epic_rows_name_each_bad_field(tmp_path):
    good = epic_row("P01_01_0", "P01_01", "00:00:00.00", "00:00:01.00", 0, 1)
    rows = [good.replace(",0,plate,1,", ",0,plate,1e3,"),  # noun_class not a whole number
            good.replace("P01_01_0,", ",", 1),  # empty narration id
            good.replace(",0,plate,1,", ",0,plate,99999999999999999999,")]
    samples, bad = read_annotations("epic_kitchens100", _epic(tmp_path, rows), "train")
    assert not samples and [b.reason for b in bad] == [
        "noun_class: '1e3' is not a whole number",
        "narration_id: String should have at least 1 character (got '')",
        "noun_class: Input should be less than or equal to 2147483647 (got '99999999999999999999')"]


def test_an_epic_class_row_with_a_bad_id_names_the_file_line_and_field(tmp_path):
    root = _epic(tmp_path, [])
    (root / "annotations" / "EPIC_100_verb_classes.csv").write_text(CLASSES + "2.5,open,1,0\n")
    with pytest.raises(ValueError, match=r"EPIC_100_verb_classes.csv:4: id: '2.5' is not a whole number"):
        class_counts("epic_kitchens100", root)


def test_official_kinetics_times_and_ids_are_bounded(tmp_path):
    (tmp_path / "annotations").mkdir()
    header = "label,youtube_id,time_start,time_end,split\n"
    (tmp_path / "annotations" / "train.csv").write_text(
        header + "bowling,aaa,0,1e308,train\n" + f"bowling,{'b' * 300},0,10,train\nbowling,ccc,-5,10,train\n"
        "bowling,ddd,0,10,train\n")
    samples, bad = read_annotations("kinetics", tmp_path, "train")
    assert [s.video_id for s in samples] == ["ddd_000000_000010"]
    assert [b.reason for b in bad] == [
        f"time_end: Input should be less than or equal to {MAX_SECONDS:g} (got '1e308')",
        "youtube_id: String should have at most 255 characters (got '" + "b" * 40 + "')",
        "time_start: Input should be greater than or equal to 0 (got '-5')"]


def test_ssv2_entries_and_class_tables_name_the_bad_field(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"Moving something up": "0", "Moving something down": "one"}))
    with pytest.raises(ValueError, match=r"labels.json: Moving something down: 'one' is not a whole number"):
        read_annotations("ssv2", tmp_path, "train")
    (tmp_path / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
    good = {"id": "1", "template": "Moving [something] up"}
    entries = [good, {**good, "id": "a\0b"}, {**good, "id": 7}, {**good, "id": True}, {**good, "template": 3}]
    (tmp_path / "train.json").write_text(json.dumps(entries))
    samples, bad = read_annotations("ssv2", tmp_path, "train")
    assert [s.video_id for s in samples] == ["1", "7"]
    assert [b.reason for b in bad] == ["id: holds a NUL byte (got 'a\\x00b')",
                                       "id: Input should be a valid string (got 'True')",
                                       "template: Input should be a valid string (got '3')"]


def test_json_nested_past_the_parser_is_one_line(tmp_path):
    (tmp_path / "labels.json").write_text("[" * 100_000 + "]" * 100_000)  # was a RecursionError traceback
    with pytest.raises(ValueError, match="labels.json: JSON nested too deeply to read"):
        read_annotations("ssv2", tmp_path, "train")
    (tmp_path / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
    (tmp_path / "train.json").write_text("[" * 100_000 + "]" * 100_000)
    samples, bad = read_annotations("ssv2", tmp_path, "train")
    assert not samples and bad[0].reason == "JSON nested too deeply to read"


def test_gym99_labels_must_be_whole_numbers_in_range(tmp_path):
    element = "0LtLS9wROrk_E_002407_002435_A_0003_0005"
    (tmp_path / "gym99_train_element_v1.1.txt").write_text(f"{element} ٣\n{element} 99\n{element} 1_0\n")
    samples, bad = read_annotations("finegym99", tmp_path, "train")
    assert not samples and [b.reason for b in bad] == [
        "label: '٣' is not a whole number", "label: label 99 outside Gym99's 99 classes (0..98) (got '99')",
        "label: '1_0' is not a whole number"]


def test_the_schema_errors_are_one_line_and_say_the_value(tmp_path):
    with pytest.raises(ValueError) as caught:
        validate_row(KineticsRow, {"label": "x", "youtube_id": "x\ny", "time_start": "inf", "time_end": "1"})
    assert str(caught.value) == "time_start: Input should be a finite number (got 'inf')"
    with pytest.raises(ValueError, match="^missing key 'youtube_id'; missing key 'time_start'; missing key "
                                         "'time_end'$"):
        validate_row(KineticsRow, {"label": "x"})
    from pydantic import ValidationError
    try:
        KineticsRow.model_validate({"label": "x", "youtube_id": "a\nb", "time_start": 0, "time_end": 1})
    except ValidationError as err:  # pragma: no cover - the id is valid text: no error expected
        pytest.fail(describe(err))


def test_pose_files_refuse_non_finite_numbers_in_one_line(tmp_path):
    path = tmp_path / "0001.mat"
    fields = {"action": "bowl", "pose": "side", "x": np.zeros((2, 13)), "y": np.zeros((2, 13)),
              "visibility": np.ones((2, 13)), "bbox": np.zeros((2, 4)), "dimensions": np.array([[24, 56, 2]]),
              "nframes": np.array([[np.inf]]), "train": np.array([[1]])}
    savemat(str(path), fields)  # an infinite nframes was an OverflowError traceback
    with pytest.raises(PoseFormatError, match="field 'nframes' is inf, not a finite number"):
        read_pennaction_labels(path)
    savemat(str(path), {**fields, "nframes": np.array([[2]]), "dimensions": np.array([[24, np.nan, 2]])})
    with pytest.raises(PoseFormatError, match="field 'dimensions' must be"):
        read_pennaction_labels(path)
    skeleton = tmp_path / "S001C001P001R001A001.skeleton"
    skeleton.write_text("1\n1\n" + "1 " * 10 + "\n25\n" + ("nan " * 12 + "\n") * 25)
    with pytest.raises(PoseFormatError, match=":5: joint line: a value that is not a finite number"):
        read_ntu_skeleton(skeleton)
