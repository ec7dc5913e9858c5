"""FineGYM's Gym99 layout (``data.annotations`` format ``finegym99``): the release's element lists, the elements cut
into ``subactions/``, and their 2-D keypoints as ``.npz`` arrays (``data.pose.read_gym_pose``), read as data."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest

from data.annotations import annotation_source, class_counts, detect_format, read_annotations
from data.datasets import load_pose, pose_space
from data.pose import COCO_JOINTS, PoseFormatError, read_gym_pose, write_gym_pose

TRAIN = "gym99_train_element_v1.1.txt"
ELEMENT = "0LtLS9wROrk_E_002407_002435_A_0003_0005"
OTHER = "zfqS-wCJSsw_E_000010_000042_A_0012_0014"


def test_lines_become_elements_with_their_video_and_keypoints(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / TRAIN).write_text(f"{ELEMENT} 51\n\n{OTHER} 0\n")
    assert detect_format(tmp_path) == "finegym99" and class_counts("finegym99", tmp_path) == 99
    assert annotation_source("finegym99", tmp_path, "train") == tmp_path / "annotations" / TRAIN
    samples, bad = read_annotations("finegym99", tmp_path, "train")
    assert not bad
    assert [(s.video_id, s.label, s.line) for s in samples] == [(ELEMENT, 51, 1), (OTHER, 0, 3)]
    assert samples[0].path == tmp_path / "subactions" / f"{ELEMENT}.mp4"
    assert samples[0].pose == tmp_path / "poses" / f"{ELEMENT}.npz"


@pytest.mark.parametrize("line, reason", [
    ("../../../../etc/passwd 3", "does not follow"),  # an id names no file outside subactions/
    (f"/tmp/{ELEMENT} 3", "does not follow"),
    (f"{ELEMENT} 99", "outside Gym99's 99 classes"),
    (f"{ELEMENT}", "expected '<element id> <label index>'"),
    (f"{ELEMENT} -1", "label: '-1' is not a whole number"),
])
def test_a_bad_line_is_named_with_its_file_and_line_and_the_rest_is_read(tmp_path, line, reason):
    (tmp_path / TRAIN).write_text(f"{OTHER} 4\n{line}\n")
    samples, bad = read_annotations("finegym99", tmp_path, "train")
    assert [s.video_id for s in samples] == [OTHER]
    (entry,) = bad
    assert (entry.file, entry.line_number, entry.text) == (str(tmp_path / TRAIN), 2, line)
    assert reason in entry.reason


def test_an_element_labelled_twice_differently_is_left_out(tmp_path):
    (tmp_path / TRAIN).write_text(f"{ELEMENT} 3\n{ELEMENT} 4\n{OTHER} 1\n")
    samples, bad = read_annotations("finegym99", tmp_path, "train")
    assert [s.video_id for s in samples] == [OTHER] and [b.line_number for b in bad] == [1, 2]


def _keypoints(persons: int, frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 300, (persons, frames, len(COCO_JOINTS), 2))


def test_the_gymnast_is_the_person_of_the_highest_scores_in_one_based_pixels(tmp_path):
    keypoint = _keypoints(3, 5)
    score = np.full((3, 5, 17), 0.2)
    score[1] = 0.9  # the second person the estimator listed
    path = write_gym_pose(tmp_path / "poses" / f"{ELEMENT}.npz", keypoint, score)
    joints = read_gym_pose(path)
    assert joints.shape == (5, 17, 2) and joints.dtype == np.float32
    np.testing.assert_allclose(joints, keypoint[1] + 1, rtol=0, atol=1e-4)
    assert pose_space(path) == "pixel"
    np.testing.assert_array_equal(load_pose(path), joints)


class _WritesAFile:
    """Unpickling this object would create ``target``: a pickled object array must never be unpickled."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_an_npz_with_a_pickled_object_array_is_refused_without_running_it(tmp_path):
    target = tmp_path / "written_by_the_file"
    payload = np.empty(1, dtype=object)
    payload[0] = _WritesAFile(target)
    path = tmp_path / "pose.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in (("keypoint", payload), ("keypoint_score", np.zeros((1, 1, 17)))):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=True)
            archive.writestr(f"{name}.npy", buffer.getvalue())
    with pytest.raises(PoseFormatError, match=f"{path}: not a readable .npz"):
        read_gym_pose(path)
    assert not target.exists()
    pickle.dumps(PoseFormatError(path, "x"))  # the error crosses loader processes


@pytest.mark.parametrize("arrays, reason", [
    ({"keypoint": _keypoints(1, 4)}, "missing arrays ['keypoint_score']"),
    ({"keypoint": _keypoints(1, 4)[..., :13, :], "keypoint_score": np.ones((1, 4, 13))}, "must be (M, T, 17, 2)"),
    ({"keypoint": _keypoints(1, 0), "keypoint_score": np.ones((1, 0, 17))}, "no frame"),
    ({"keypoint": np.full((1, 2, 17, 2), np.nan), "keypoint_score": np.ones((1, 2, 17))}, "non-finite"),
])
def test_malformed_keypoints_are_named_with_their_file(tmp_path, arrays, reason):
    path = tmp_path / "pose.npz"
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    with pytest.raises(PoseFormatError, match=f"^{path}: ") as caught:
        read_gym_pose(path)
    assert reason in caught.value.reason


def test_a_file_that_is_not_an_npz_is_named(tmp_path):
    path = tmp_path / "pose.npz"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(PoseFormatError, match="not a readable .npz"):
        read_gym_pose(path)
