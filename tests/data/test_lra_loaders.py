"""LRA loaders and the decoding benchmark: what the first LRA test files leave open, checked against literal values.

- ``LRADataModule`` loaders on a hand-written ListOps release (token ids written out from ``LISTOPS_VOCAB``'s order:
  pad 0, digit d = d + 1, [MIN 11, [MAX 12, [MED 13, [SM 14, ] 15): a single sequence keeps its first ``max_length``
  tokens, also when the batch is padded to the pipeline's power-of-two length; the training loader shuffles and drops
  its last incomplete batch; the Pathfinder split seed defaults to 0; ``describe`` records the length used.
- Generated ListOps sets: the cache directory is a content hash of every parameter (the literal name below), so two
  processes (DataLoader workers, DDP ranks, a later run) find the same set and sets of other sizes never share one.
- ``tools.decoding`` under a fake clock that advances only while a (fake) decoder decodes: each rate is the
  clips decoded over the decoding time, each decoder gets the clip's own span and frames, the test path decodes each
  video once (ours) or once per view (pytorchvideo), and ``main`` reports each decoder under its own name.
"""

from __future__ import annotations

import random
import types
from pathlib import Path

import pytest
import torch

import tools.decoding as bench
from data.clip_sampling import ClipInfo
from data.lra_datamodule import LRADataModule
from tests.models.test_lra import SMALL
from tests.models.test_lra_conventions import write_pathfinder

MAX, SM, END = 12, 14, 15  # LISTOPS_VOCAB ids, written out


def _digit(d):
    return d + 1


# --- LRA datamodule --------------------------------------------------------------------------------------------------


def _write_listops_release(root):
    """train: twelve distinct ``[MAX a b ]`` rows (a = i % 10, b = i // 10); val and test: two rows each."""
    d = root / "listops-1000"
    d.mkdir(parents=True)
    train = [(i % 10, i // 10) for i in range(12)]
    (d / "basic_train.tsv").write_text("Source\tTarget\n" + "".join(
        f"( ( ( [MAX {a} ) {b} ) ] )\t{max(a, b)}\n" for a, b in train))
    rows = "Source\tTarget\n( ( ( ( [MAX 1 ) 7 ) 2 ) ] )\t7\n( ( [SM 4 ) ] )\t4\n"
    (d / "basic_val.tsv").write_text(rows)
    (d / "basic_test.tsv").write_text(rows)
    return [[MAX, _digit(a), _digit(b), END] for a, b in train]


@pytest.mark.parametrize("pipeline_padding, width", [(False, 3), (True, 4)])
def test_a_sequence_keeps_its_first_max_length_tokens(tmp_path, pipeline_padding, width):
    """max_length 3 of [MAX 1 7 2 ] and [SM 4 ]: the first three tokens; the pipeline pads them to 4 (3 rounded up
    to a power of two) with zeros, never with a fourth real token."""
    _write_listops_release(tmp_path)
    dm = LRADataModule("listops", root=tmp_path, batch_size=2, max_length=3, pipeline_padding=pipeline_padding)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    expected = [[MAX, _digit(1), _digit(7)], [SM, _digit(4), END]]
    assert batch["input"].tolist() == [row + [0] * (width - 3) for row in expected]
    assert batch["label"].tolist() == [7, 4]


def test_training_loader_shuffles_and_drops_the_incomplete_last_batch(tmp_path):
    """12 rows in batches of 5: two batches of 10 distinct rows, not in file order; a batch larger than the set
    still gives one batch of all 12."""
    rows = _write_listops_release(tmp_path)
    dm = LRADataModule("listops", root=tmp_path, batch_size=5)
    dm.setup("fit")
    torch.manual_seed(0)  # the order is the sampler's: fixed here so the test cannot pass or fail by chance
    batches = list(dm.train_dataloader())
    assert [len(b["label"]) for b in batches] == [5, 5]
    seen = [row for b in batches for row in b["input"].tolist()]
    assert len({tuple(r) for r in seen}) == 10 and all(r in rows for r in seen)
    assert seen != rows[:10]  # shuffled (a 1 in 12!/2 chance of the identity order with this seed: it is not)
    whole = LRADataModule("listops", root=tmp_path, batch_size=20)
    whole.setup("fit")
    assert [len(b["label"]) for b in whole.train_dataloader()] == [12]


def test_pathfinder_split_seed_defaults_to_0(tmp_path):
    records = write_pathfinder(tmp_path)
    random.Random(0).shuffle(records)
    dm = LRADataModule("pathfinder", root=tmp_path, batch_size=4)
    dm.setup("test")
    split = dm._splits["test"]
    assert [(int(p.stem.split("_")[1]), label) for p, label in zip(split.files, split.labels)] == records[18:]


def test_describe_records_the_length_used(tmp_path):
    dm = LRADataModule("listops", cache_dir=tmp_path, synthetic_params=SMALL, max_length=50)
    info = dm.describe()
    assert (info["max_length"], info["padded_length"]) == (50, None)


def test_generated_listops_cache_name_is_a_content_hash_of_every_parameter(tmp_path):
    """sha1 of the sorted JSON spec, first 10 hex digits: the same name in every process (a salted ``hash()`` would
    give every worker or rank a set of its own)."""
    dm = LRADataModule("listops", cache_dir=tmp_path, synthetic_params=SMALL)
    assert dm.data_root == tmp_path / "listops_10-60_seed3_7ef00a743a"


def test_generated_sets_of_other_sizes_do_not_share_a_cache(tmp_path):
    small = LRADataModule("listops", cache_dir=tmp_path, synthetic_params=SMALL)
    larger = LRADataModule("listops", cache_dir=tmp_path, synthetic_params={**SMALL, "num_train": 48})
    for dm in (small, larger):
        dm.prepare_data()
        dm.setup("fit")
    assert small.data_root != larger.data_root
    assert (small.describe()["num_train"], larger.describe()["num_train"]) == (40, 48)


# --- decoding benchmark ----------------------------------------------------------------------------------------------

OURS_COST, PYTORCHVIDEO_COST = 1.0, 2.0  # fake seconds per get_clip call


class _Clock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.fixture
def fake_decoders(monkeypatch):
    """Fake ``Video`` / ``EncodedVideo`` (300 frames at 30 fps) whose ``get_clip`` advances the benchmark's clock and
    logs its arguments; returns the log, a list of (decoder, path, start, end, frame_indices)."""
    from pytorchvideo.data import encoded_video

    clock, calls = _Clock(), []

    class FakeVideo:
        num_frames, fps = 300, 30.0

        def __init__(self, path):
            self.path = path

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def get_clip(self, start, end, frame_indices=None):
            clock.now += OURS_COST
            calls.append(("ours", Path(self.path), start, end, None if frame_indices is None else list(frame_indices)))

    class FakeEncodedVideo:
        @classmethod
        def from_path(cls, path, decoder="pyav"):
            video = cls()
            video.path = path
            return video

        def get_clip(self, start, end):
            clock.now += PYTORCHVIDEO_COST
            calls.append(("pytorchvideo", Path(self.path), start, end, None))
            return {"video": torch.zeros(3, max(1, round((end - start) * 30)), 1, 1)}

        def close(self):
            pass

    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    monkeypatch.setattr(bench, "Video", FakeVideo)
    monkeypatch.setattr(encoded_video, "EncodedVideo", FakeEncodedVideo)
    return calls


CLIP_A = ClipInfo(6.5, 6.9, (195, 198, 201, 204), 0, 1)
CLIP_B = ClipInfo(1.0, 1.4, (30, 33, 36, 39), 0, 1)
FIRST_VIEW = ClipInfo(0.0, 1 / 3, (0, 3, 6, 9), 0, 2)
LAST_VIEW = ClipInfo(29 / 3, 10.0, (290, 293, 296, 299), 1, 2)


def test_training_path_rates_are_clips_over_decoding_time(fake_decoders):
    clips = [(Path("a.mp4"), CLIP_A), (Path("b.mp4"), CLIP_B), (Path("a.mp4"), CLIP_B)]
    assert bench.bench_ours(clips) == pytest.approx(3 / (3 * OURS_COST), rel=1e-12)
    assert bench.bench_pytorchvideo(clips) == pytest.approx(3 / (3 * PYTORCHVIDEO_COST), rel=1e-12)
    expected = [(path, clip.clip_start_sec, clip.clip_end_sec) for path, clip in clips]
    assert [c[1:] for c in fake_decoders[:3]] == [(*e, list(clip.frame_indices)) for e, (_, clip) in
                                                 zip(expected, clips)]
    assert [c[1:4] for c in fake_decoders[3:]] == expected


def test_test_path_decodes_each_video_once_for_ours_and_once_per_view_for_pytorchvideo(fake_decoders):
    views = [(Path("a.mp4"), [FIRST_VIEW, LAST_VIEW]), (Path("b.mp4"), [FIRST_VIEW, LAST_VIEW])]
    assert bench.bench_ours_test(views) == pytest.approx(4 / (2 * OURS_COST), rel=1e-12)  # 4 clips, 2 decodes
    assert bench.bench_pytorchvideo_test(views) == pytest.approx(4 / (4 * PYTORCHVIDEO_COST), rel=1e-12)
    both = [0, 3, 6, 9, 290, 293, 296, 299]
    assert fake_decoders[:2] == [("ours", Path(p), 0.0, 10.0, both) for p in ("a.mp4", "b.mp4")]
    spans = [(FIRST_VIEW.clip_start_sec, FIRST_VIEW.clip_end_sec), (LAST_VIEW.clip_start_sec, LAST_VIEW.clip_end_sec)]
    assert [c[1:4] for c in fake_decoders[2:]] == [(Path(p), *s) for p in ("a.mp4", "b.mp4") for s in spans]


def test_clip_list_is_seeded(fake_decoders):
    paths = [Path(f"{i}.mp4") for i in range(4)]
    first = bench._clips(paths, 6, 4, 3, seed=0)
    assert first == bench._clips(paths, 6, 4, 3, seed=0)
    for _, clip in first:
        start = clip.frame_indices[0]
        assert list(clip.frame_indices) == [start, start + 3, start + 6, start + 9] and start + 9 < 300


def test_main_reports_each_decoder_under_its_own_name(fake_decoders, monkeypatch, tmp_path):
    """3 videos, 7 clips of 4 frames at stride 3 (plus 5 warm-up clips per decoder), 2 test views per video."""
    for i in range(3):
        (tmp_path / f"{i}.mp4").write_bytes(b"")
    monkeypatch.setattr(bench, "ensure_synthetic", lambda *args, **kwargs: tmp_path)
    result = bench.main(["--clips", "7", "--num-frames", "4", "--stride", "3", "--test-clips", "2"])
    expected = {"ours_clips_per_s": 1 / OURS_COST, "pytorchvideo_clips_per_s": 1 / PYTORCHVIDEO_COST,
                "ours_test_clips_per_s": 2 / OURS_COST, "pytorchvideo_test_clips_per_s": 1 / PYTORCHVIDEO_COST}
    assert result == pytest.approx(expected, rel=1e-12)
    ours = [c for c in fake_decoders if c[0] == "ours"]
    assert len(ours) == 5 + 7 + 3  # warm-up, timed training clips, one decode per test video
    assert [c[4] for c in ours[12:]] == [[0, 3, 6, 9, 290, 293, 296, 299]] * 3
