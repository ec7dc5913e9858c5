"""Unreadable videos and malformed annotations: each is counted, reported by file (and line), skipped at training
with a warning, skipped (never replaced) at test, and listed in data_report(), also across DataLoader workers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.annotations import read_annotations
from data.datamodule import VideoDataModule
from data.datasets import VideoClipDataset, collate_skip_none
from data.transforms import TestTransform, TrainTransform
from data.video_io import Video, VideoDecodeError, write_video

GOOD = 4


def _video(path: Path, num_frames: int = 30, seed: int = 0) -> Path:
    frames = np.random.default_rng(seed).integers(0, 256, (num_frames, 32, 40, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames, fps=10)


def _break_videos(root: Path, split: str) -> dict[str, Path]:
    """One of each kind of broken file under root/split; returns kind -> path."""
    d = root / split
    full = _video(d / "full_copy.mp4").read_bytes()
    broken = {"missing": d / "missing.mp4", "zero-byte": d / "empty.mp4", "truncated": d / "truncated.mp4",
              "garbage": d / "garbage.mp4"}
    broken["zero-byte"].write_bytes(b"")
    broken["truncated"].write_bytes(full[: len(full) // 2])  # an mp4 cut in half: its index (moov) is gone
    broken["garbage"].write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (d / "full_copy.mp4").unlink()
    return broken


@pytest.fixture
def broken_dataset(tmp_path) -> tuple[Path, dict[str, dict[str, Path]]]:
    """A Kinetics "path label" dataset whose train and val lists mix good videos, broken files and bad lines."""
    broken = {}
    for split in ("train", "val"):
        good = [_video(tmp_path / split / f"good{i}.mp4", seed=i) for i in range(GOOD)]
        broken[split] = _break_videos(tmp_path, split)
        lines = [f"{p.relative_to(tmp_path)} {i % 2}" for i, p in enumerate(good)]
        lines += [f"{p.relative_to(tmp_path)} 1" for p in broken[split].values()]
        lines += ["no_label_here.mp4", "x.mp4 notanumber", "y.mp4 -3"]  # lines 9, 10, 11
        (tmp_path / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return tmp_path, broken


def test_video_raises_a_decode_error_naming_the_file(broken_dataset):
    _, broken = broken_dataset
    for path in broken["train"].values():
        with pytest.raises(VideoDecodeError) as info:
            Video(path).get_clip(0, 1)
        assert str(path) in str(info.value) and info.value.path == str(path)
        assert isinstance(info.value, RuntimeError)
    with pytest.raises(VideoDecodeError, match="missing"):
        Video(broken["train"]["missing"])
    with pytest.raises(VideoDecodeError, match="zero-byte"):
        Video(broken["train"]["zero-byte"])


def test_truncated_webm_is_detected_when_a_clip_needs_the_lost_part(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (40, 32, 40, 3), dtype=np.uint8)
    full = write_video(tmp_path / "full.webm", frames, fps=10).read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(full[: len(full) // 2])  # WebM headers come first: it opens, then ends early
    with pytest.raises(VideoDecodeError, match="truncated"):
        Video(cut).get_clip(0, 4.0)


def test_malformed_annotation_lines_are_collected_not_raised(broken_dataset):
    root, _ = broken_dataset
    samples, bad = read_annotations("kinetics_list", root, "train")
    assert len(samples) == GOOD + 4
    assert [(Path(b.file).name, b.line_number) for b in bad] == [("train.csv", 9), ("train.csv", 10), ("train.csv", 11)]
    assert all(b.reason for b in bad) and bad[1].text == "x.mp4 notanumber"


def test_malformed_ssv2_and_kinetics_entries(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"Moving something up": "0"}))
    good = {"id": "1", "label": "Moving a cup up", "template": "Moving [something] up", "placeholders": ["a cup"]}
    entries = [good, {"id": "2", "label": "x"}, {**good, "id": "3", "template": "Unknown [something]"}, "junk"]
    (tmp_path / "train.json").write_text(json.dumps(entries))
    (tmp_path / "validation.json").write_text("[{\"id\": \"4\",")  # cut-off JSON
    samples, bad = read_annotations("ssv2", tmp_path, "train")
    assert [s.video_id for s in samples] == ["1"] and [b.line_number for b in bad] == [2, 3, 4]
    assert "template" in bad[0].reason and "labels.json" in bad[1].reason
    samples, bad = read_annotations("ssv2", tmp_path, "val")
    assert not samples and len(bad) == 1 and "invalid JSON" in bad[0].reason

    kinetics = tmp_path / "k"
    (kinetics / "annotations").mkdir(parents=True)
    (kinetics / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nbowling,a,0,10,train\n"
        "bowling,b,zero,10,train\nbowling,,0,10,train\nbowling,c\n")
    samples, bad = read_annotations("kinetics", kinetics, "train")
    assert [s.video_id for s in samples] == ["a_000000_000010"] and [b.line_number for b in bad] == [3, 4, 5]


def test_train_mode_skips_with_a_warning(broken_dataset, caplog, tmp_path):
    root, broken = broken_dataset
    samples, bad = read_annotations("kinetics_list", root, "train")
    failures = tmp_path / "failures" / "failures.jsonl"
    dataset = VideoClipDataset(samples, "train", TrainTransform(32, (32, 40), True), num_frames=4,
                               failures_path=failures, dataset_name="demo", split="train", bad_annotations=bad)
    with caplog.at_level(logging.WARNING, logger="data.datasets"):
        items = [dataset[i] for i in range(len(dataset))]
    assert sum(item is None for item in items) == 4 and all(items[i] is not None for i in range(GOOD))
    for path in broken["train"].values():
        assert any(str(path) in record.getMessage() for record in caplog.records)
    batch = collate_skip_none(items[GOOD - 2:])  # two good videos, four broken ones
    assert batch["video"].shape[0] == 2 and batch["index"].tolist() == [GOOD - 2, GOOD - 1]
    assert collate_skip_none([None, None]) is None

    report = dataset.data_report()
    assert report["expected"] == GOOD + 4 and report["found"] == GOOD + 3
    assert report["missing"] == [str(broken["train"]["missing"])]
    reasons = {Path(c["path"]).name: c["reason"] for c in report["corrupt"]}
    assert set(reasons) == {"empty.mp4", "truncated.mp4", "garbage.mp4"} and reasons["empty.mp4"] == "zero-byte file"
    assert [b["line"] for b in report["bad_annotation_lines"]] == [9, 10, 11]
    assert (report["skipped_at_train"], report["skipped_at_test"]) == (4, 0)


def test_test_mode_skips_and_never_replaces(broken_dataset, tmp_path):
    root, _ = broken_dataset
    samples, _ = read_annotations("kinetics_list", root, "val")
    dataset = VideoClipDataset(samples, "test", TestTransform(32, 3), num_frames=4, num_clips=2,
                               failures_path=tmp_path / "f.jsonl", dataset_name="demo", split="val")
    batch = collate_skip_none([dataset[i] for i in range(len(dataset))])
    assert batch["index"].tolist() == list(range(GOOD))  # exactly the readable videos, each once
    assert batch["video"].shape == (GOOD, 6, 3, 4, 32, 32)
    assert dataset.data_report()["skipped_at_test"] == 4


@pytest.mark.slow  # two loader worker processes (fresh processes); the in-process case stays in the fast part
def test_datamodule_reports_failures_from_worker_processes(broken_dataset, tmp_path):
    root, broken = broken_dataset
    dm = VideoDataModule("kinetics400", root=root, num_frames=4, batch_size=2, num_workers=2, test_clips=2,
                         failures_dir=tmp_path / "failures")
    dm.setup("fit")
    train_items = sum(len(b["label"]) for b in dm.train_dataloader())  # all-broken batches are not yielded
    assert train_items == GOOD  # broken videos never reach a batch (8 items, batch 2: drop_last drops none)
    dm.setup("test")
    tested = sorted(i for b in dm.test_dataloader() for i in b["index"].tolist())
    assert tested == list(range(GOOD))

    report = dm.data_report()
    assert set(report) == {"train", "val"}
    for split in ("train", "val"):
        r = report[split]
        assert (r["dataset"], r["split"], r["expected"], r["found"]) == ("kinetics400", split, GOOD + 4, GOOD + 3)
        assert r["missing"] == [str(broken[split]["missing"])]
        assert sorted(Path(c["path"]).name for c in r["corrupt"]) == ["empty.mp4", "garbage.mp4", "truncated.mp4"]
        assert [(Path(b["file"]).name, b["line"]) for b in r["bad_annotation_lines"]] == [
            (f"{split}.csv", 9), (f"{split}.csv", 10), (f"{split}.csv", 11)]
    assert report["train"]["skipped_at_train"] == 4 and report["val"]["skipped_at_test"] == 4
    json.dumps(report)  # goes into the run record as is


def test_workers_survive_a_leaked_threaded_decoder_in_the_parent(tmp_path):
    """An unclosed Video in a reference cycle must not deadlock fork()ed workers that inherit it."""
    from data.datamodule import SkipNoneDataLoader

    frames = np.random.default_rng(0).integers(0, 256, (8, 128, 128, 3), dtype=np.uint8)
    big = write_video(tmp_path / "big.mp4", frames, fps=10)
    leaked = Video(big)  # 128x128: frame threads running
    leaked.get_clip(0, 0.3)
    leaked.cycle = leaked  # only the garbage collector could free it
    del leaked
    samples = [read_annotations_sample(big)]
    dataset = VideoClipDataset(samples * 4, "train", None, num_frames=2)
    loader = SkipNoneDataLoader(dataset, batch_size=2, num_workers=2, collate_fn=collate_skip_none, timeout=30)
    assert sum(len(b["label"]) for b in loader) == 4


def read_annotations_sample(path: Path):
    from data.annotations import Sample

    return Sample(path, 0, path.stem, None)


# --- a validation split without samples fails before training, naming its file ---------------------------------


@pytest.mark.parametrize("val_text, named", [("", "val.csv holds no annotation"),
                                             ("no_label_here.mp4\n", "val.csv:1: expected '<path> <label index>'")])
def test_an_empty_or_unreadable_val_split_fails_in_setup(tmp_path, val_text, named):
    from data.datamodule import EmptySplitError

    good = [_video(tmp_path / "train" / f"good{i}.mp4", seed=i) for i in range(2)]
    (tmp_path / "train.csv").write_text("".join(f"{p.relative_to(tmp_path)} {i}\n" for i, p in enumerate(good)))
    (tmp_path / "val.csv").write_text(val_text)
    for stage in ("fit", "test"):
        dm = VideoDataModule("kinetics400", root=tmp_path, num_frames=4, num_workers=0,
                             failures_dir=tmp_path / "failures")
        with pytest.raises(EmptySplitError) as caught:
            dm.setup(stage)
        message = str(caught.value)
        assert "its val split" in message and named in message and str(tmp_path) in message
        assert f"python -m data check kinetics400 --root {tmp_path} --split val" in message


def test_an_empty_training_split_is_left_to_the_caller_but_an_empty_val_split_still_stops_testing(tmp_path):
    """A run that trains names an empty training split itself (it alone knows whether it trains); one that does not
    train must still not test on nothing."""
    from data.datamodule import EmptySplitError

    (tmp_path / "train.csv").write_text("")
    (tmp_path / "val.csv").write_text("")
    dm = VideoDataModule("kinetics400", root=tmp_path, num_frames=4, num_workers=0, failures_dir=tmp_path / "f")
    dm.setup("fit")
    assert dm.describe()["num_train_videos"] == 0
    for loader in (dm.val_dataloader, dm.test_dataloader):
        with pytest.raises(EmptySplitError, match="its val split, which validation and testing read, has no samples"):
            loader()
