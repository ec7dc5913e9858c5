"""Mutation audit of ``data.datamodule`` and ``data.datasets``: checks the existing suite let through.

Audited here, on tiny index videos and hand-written samples: ``setup()`` with no stage (Lightning's default)
builds the training split too; per-epoch validation resizes to ``test_short_side`` as the test does; making a
loader's iterator draws its worker seeds from the loader's own generator, seeded by Lightning's seed, and leaves
the global generator (restored on resume) alone; the class counts of synthetic sets follow their ``num_classes``
parameter (a synthetic PennAction-format set counts its own actions); the data report counts skips per sample,
``found`` per present file and unusable samples by their video or pose file, against counts made by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.annotations import BadAnnotation, Sample
from data.datamodule import VideoDataModule, dataset_num_classes, synthetic_num_classes
from data.datasets import build_report
from tests.data.test_datamodule_loaders import write_split

UNIT = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def wide_root(tmp_path_factory) -> Path:
    """32 x 48 videos: a resize to another short side changes the centre crop's pixels."""
    root = tmp_path_factory.mktemp("audit_wide")
    write_split(root, "train", 5, 12, 32, 48)
    write_split(root, "val", 2, 12, 32, 48)
    return root


def _datamodule(root: Path, tmp_path: Path, **overrides) -> VideoDataModule:
    options = dict(num_frames=2, frame_stride=2, batch_size=2, num_workers=0, test_clips=1, test_crops=1,
                   failures_dir=tmp_path / "failures", **UNIT)
    return VideoDataModule("kinetics400", root=root, **{**options, **overrides})


# --- splits and stages ------------------------------------------------------------------------------------------------


def test_setup_without_a_stage_builds_the_training_split_too(wide_root, tmp_path):
    """Lightning's setup(stage=None) means every stage: the training loader must exist afterwards."""
    dm = _datamodule(wide_root, tmp_path)
    dm.setup()
    assert len(dm.train_dataloader().dataset) == 5
    assert dm.describe()["num_train_videos"] == 5 and dm.describe()["num_val_videos"] == 2


def test_the_per_epoch_curve_reads_the_first_videos_and_the_test_all(wide_root, tmp_path):
    """Amendment 9's larger test split: per-epoch validation reads its first ``val_curve_videos``, the test every
    one, the same videos in the same order."""
    dm = _datamodule(wide_root, tmp_path, val_curve_videos=1)
    dm.setup("fit")
    val, test = dm.val_dataloader().dataset, dm.test_dataloader().dataset
    assert len(val) == 1 and len(test) == 2 and dm.describe()["num_val_videos"] == 2
    torch.testing.assert_close(val[0]["video"], test[0]["video"][0], rtol=0, atol=0)  # the test: (crops, C, T, H, W)


def test_validation_resizes_to_the_test_short_side_before_its_centre_crop(wide_root, tmp_path):
    """Per-epoch validation is the test's centre crop of the centred clip, at the same resize (40, not 32)."""
    dm = _datamodule(wide_root, tmp_path, test_crops=3, test_short_side=40)
    dm.setup("fit")
    val = dm.val_dataloader().dataset[0]["video"]  # (C, T, H, W)
    test = dm.test_dataloader().dataset[0]["video"]  # (3 crops, C, T, H, W)
    assert val.shape == (3, 2, 32, 32) and test.shape == (3, 3, 2, 32, 32)
    torch.testing.assert_close(val, test[1], rtol=0, atol=0)
    other = _datamodule(wide_root, tmp_path, test_crops=3)
    other.setup("fit")
    assert not torch.equal(other.val_dataloader().dataset[0]["video"], val)  # the short side does change pixels


def test_making_a_loaders_iterator_leaves_the_global_generator_alone(wide_root, tmp_path, monkeypatch):
    """Each loader draws its iterators' worker seeds from its own generator seeded by Lightning's seed, not from the
    global one whose state a resumed run restores (lightning_modules.resume): a new epoch must not shift it."""
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    dm = _datamodule(wide_root, tmp_path)
    dm.setup("fit")
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        torch.manual_seed(0)
        before = torch.get_rng_state()
        next(iter(loader))
        assert torch.equal(torch.get_rng_state(), before)
        assert loader.generator.initial_seed() == 3


# --- classes ----------------------------------------------------------------------------------------------------------


def test_synthetic_class_counts_follow_the_num_classes_parameter(tmp_path):
    # the specs' class counts (data.synthetic): synth_appearance 8 colours x shapes, synth_pose 6 actions
    assert synthetic_num_classes("synth_appearance") == 8
    assert synthetic_num_classes("synth_appearance", {"num_classes": 3}) == 3
    # a synthetic PennAction-format set counts its own actions, not PennAction's 15
    assert dataset_num_classes("synth_pose", "pennaction", tmp_path) == 6
    assert dataset_num_classes("synth_pose", "pennaction", tmp_path, {"num_classes": 4}) == 4


# --- failure accounting -----------------------------------------------------------------------------------------------


def test_the_report_counts_samples_files_and_skips_by_hand(tmp_path):
    """Five samples: a video with two annotated segments that is corrupt, a present video whose pose file is
    missing, a missing video, a good one. Counted by hand: 4 distinct videos, 3 present (the corrupt one is present),
    4 unusable samples (2 segments of the corrupt video, the one without pose, the missing video)."""
    good, corrupt, posed = (tmp_path / name for name in ("good.mp4", "corrupt.mp4", "posed.mp4"))
    for path in (good, posed):
        path.write_bytes(b"x")
    corrupt.write_bytes(b"")  # zero bytes: corrupt by the stat scan
    gone, gone_pose, good_pose = tmp_path / "gone.mp4", tmp_path / "gone.skeleton", tmp_path / "good.skeleton"
    good_pose.write_text("1")
    samples = [Sample(corrupt, 0, "c", 1, segment=(0.0, 1.0), pose=good_pose),
               Sample(corrupt, 1, "c", 2, segment=(1.0, 2.0), pose=good_pose),
               Sample(posed, 0, "p", 3, pose=gone_pose), Sample(gone, 0, "g", 4, pose=good_pose),
               Sample(good, 2, "ok", 5, pose=good_pose)]
    # the two segments of the corrupt video skipped at test (two samples of one file), one of them twice
    records = [{"mode": "test", "path": str(corrupt), "index": i, "kind": "corrupt", "reason": "zero-byte file",
                "line": i + 1} for i in (0, 1, 1)]
    records.append({"mode": "test", "path": str(gone_pose), "index": 2, "kind": "missing", "reason": "missing file",
                    "line": 3})
    bad = [BadAnnotation("a.csv", 7, "junk", "no label")]
    report = build_report("d", "val", samples, bad, [records])
    assert (report["expected"], report["found"], report["samples"], report["unusable_samples"]) == (4, 3, 5, 4)
    assert report["missing"] == sorted([str(gone), str(gone_pose)])
    assert report["corrupt"] == [{"path": str(corrupt), "reason": "zero-byte file"}]
    assert (report["skipped_at_test"], report["skipped_at_train"]) == (3, 0)
    assert (report["pose_expected"], report["pose_found"]) == (2, 1)
    assert report["bad_annotation_lines"] == [{"file": "a.csv", "line": 7, "reason": "no label"}]
