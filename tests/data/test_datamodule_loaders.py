"""``VideoDataModule``'s loaders against plain loops and literal frame numbers, on tiny index videos written here.

Checked: the val and test loaders yield every val video exactly once, in annotation order, with no batch dropped
(a shuffled or truncated test set changes what the reported top-1 averages over); the training loader drops its
last partial batch (PySlowFast's ``construct_loader``); on two ranks each rank's training sampler yields its own
shard of ``randperm(n, seed + epoch)`` padded as ``DistributedSampler`` pads, with ``epoch * n + index`` positions
(a plain loop here), a per-device batch size, and the seed Lightning's ``seed_everything`` exports; the per-epoch
validation item is the centred clip's centre crop (literal frame numbers; the middle of the test's three crops);
the test item holds ``test_clips`` x ``test_crops`` views of the val video, not of a training one, at the literal
frames of the "frame_stride" convention, and segments over a window (``segment_span``) at literal frames too;
``describe()`` records a stride only where the sampling uses one.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import SequentialSampler

import data  # noqa: F401  (repairs torchvision before lightning/torchvision are imported)
from data.datamodule import VideoDataModule
from tests.data.test_loading import frame_ids, index_video

NUM_VAL = 7  # odd, and not a multiple of the batch size: a dropped or padded batch shows
NUM_TRAIN = 7
BATCH = 3
VAL_FRAMES, TRAIN_FRAMES = 30, 40  # different lengths: a test view read from a training video shows in its frames
UNIT = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # items stay in [0, 1], as frame_ids reads them


def write_split(root: Path, split: str, count: int, num_frames: int, height: int, width: int) -> None:
    """``count`` index videos under ``root/split`` and their ``path label`` list (label = position % 3)."""
    lines = []
    for i in range(count):
        path = index_video(root / split / f"{split}{i}.mp4", num_frames=num_frames, height=height, width=width)
        lines.append(f"{path.relative_to(root)} {i % 3}\n")
    (root / f"{split}.csv").write_text("".join(lines))


@pytest.fixture(scope="module")
def square_root(tmp_path_factory) -> Path:
    """32 x 32 videos, the crop size: no resize or crop moves a stripe, so every frame's index reads back."""
    root = tmp_path_factory.mktemp("square")
    write_split(root, "train", NUM_TRAIN, TRAIN_FRAMES, 32, 32)
    write_split(root, "val", NUM_VAL, VAL_FRAMES, 32, 32)
    return root


@pytest.fixture(scope="module")
def wide_root(tmp_path_factory) -> Path:
    """32 x 48 videos: the left, centre and right 32-pixel crops differ."""
    root = tmp_path_factory.mktemp("wide")
    write_split(root, "train", 2, 20, 32, 48)
    write_split(root, "val", 2, 20, 32, 48)
    return root


def _datamodule(root: Path, tmp_path: Path, **overrides) -> VideoDataModule:
    options = dict(num_frames=4, frame_stride=2, batch_size=BATCH, num_workers=0, test_clips=2, test_crops=1,
                   failures_dir=tmp_path / "failures", **UNIT)
    dm = VideoDataModule("kinetics400", root=root, **{**options, **overrides})
    dm.setup("fit")
    return dm


# --- val / test: every video once, in order ----------------------------------------------------------------------


def test_val_and_test_loaders_yield_every_val_video_once_in_order(square_root, tmp_path):
    dm = _datamodule(square_root, tmp_path)
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        # Lightning keeps a SequentialSampler and replaces it by an unshuffled DistributedSampler on several ranks
        assert isinstance(loader.sampler, SequentialSampler)
        batches = list(loader)
        assert [len(b["index"]) for b in batches] == [3, 3, 1]  # the last, partial batch is kept
        assert [i for b in batches for i in b["index"].tolist()] == list(range(NUM_VAL))
        assert [y for b in batches for y in b["label"].tolist()] == [i % 3 for i in range(NUM_VAL)]


def test_the_training_loader_drops_its_last_partial_batch(square_root, tmp_path):
    batches = list(_datamodule(square_root, tmp_path).train_dataloader())
    assert [len(b["index"]) for b in batches] == [BATCH] * (NUM_TRAIN // BATCH)


# --- training on several ranks ------------------------------------------------------------------------------------


def _expected_shard(size: int, seed: int, epoch: int, world: int, rank: int) -> list[int]:
    """DistributedSampler's shard, by hand: randperm seeded by seed + epoch, padded with its own head to a multiple
    of ``world``, every ``world``-th index from ``rank``; as positions ``epoch * size + index``."""
    generator = torch.Generator()
    generator.manual_seed(seed + epoch)
    order = torch.randperm(size, generator=generator).tolist()
    total = -(-size // world) * world
    order = (order * world)[:total]
    return [epoch * size + index for index in order[rank::world]]


@pytest.mark.parametrize("global_rank", [0, 1])
def test_each_rank_trains_on_its_own_shard_with_a_per_device_batch(square_root, tmp_path, monkeypatch, global_rank):
    """Two nodes of one device each: rank 1 is local rank 0 on its node, so the shard must follow the global rank."""
    seed, epoch, world = 4, 2, 2
    monkeypatch.setenv("PL_GLOBAL_SEED", str(seed))
    dm = _datamodule(square_root, tmp_path)
    dm.trainer = SimpleNamespace(world_size=world, global_rank=global_rank, local_rank=0)
    loader = dm.train_dataloader()
    assert loader.batch_size == BATCH  # batch_size is per device; the global batch is BATCH x world
    loader.sampler.set_epoch(epoch)
    expected = _expected_shard(NUM_TRAIN, seed, epoch, world, global_rank)
    assert list(loader.sampler) == expected and len(expected) == 4  # 7 videos padded to 8, 4 per rank
    batches = list(loader)
    assert [len(b["index"]) for b in batches] == [BATCH]  # 4 items: one whole batch
    # the items are the shard's videos (position modulo the dataset's size), not another epoch's or rank's
    assert batches[0]["index"].tolist() == [p % NUM_TRAIN for p in expected[:BATCH]]


def test_the_two_ranks_shards_cover_every_training_video(square_root, tmp_path, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")
    dm = _datamodule(square_root, tmp_path)
    seen = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank, local_rank=rank)
        sampler = dm.train_dataloader().sampler
        sampler.set_epoch(1)
        seen += [divmod(position, NUM_TRAIN) for position in sampler]
    assert {epoch for epoch, _ in seen} == {1}
    assert sorted({index for _, index in seen}) == list(range(NUM_TRAIN)) and len(seen) == 8  # one padded repeat


def test_the_training_order_follows_the_seed_lightning_exports(square_root, tmp_path, monkeypatch):
    orders = {}
    for seed in (5, 6):
        monkeypatch.setenv("PL_GLOBAL_SEED", str(seed))  # what seed_everything(seed) sets
        loader = _datamodule(square_root, tmp_path).train_dataloader()
        loader.sampler.set_epoch(3)
        orders[seed] = list(loader.sampler)
        assert orders[seed] == _expected_shard(NUM_TRAIN, seed, 3, 1, 0)
        assert loader.dataset.seed == seed  # the augmentations' seed too
    assert orders[5] != orders[6]


# --- which clip and crop each item holds --------------------------------------------------------------------------


def test_a_validation_item_is_the_centred_clip(square_root, tmp_path):
    dm = _datamodule(square_root, tmp_path, test_clips=3)
    item = dm.val_dataloader().dataset[0]
    assert item["video"].shape == (3, 4, 32, 32)  # the view axis dropped
    # dense "frame_stride" centre: start (30 - 7) // 2 = 11, 4 frames 2 apart; not test view 0 (frames 0..6)
    assert frame_ids(item["video"]) == [11, 13, 15, 17]


def test_segments_over_half_the_video_reach_the_validation_and_test_items(square_root, tmp_path):
    dm = _datamodule(square_root, tmp_path, sampling="segments", segment_span=0.5)
    # val: the 30-frame video's middle 15 frames, from round(0.5 x 15) = 8, in 4 segments of 3.75: 8 + 1, 5, 9, 13
    assert frame_ids(dm.val_dataloader().dataset[0]["video"]) == [9, 13, 17, 21]
    # test view i of 2 at (i + 0.5) / 2 of the free span and of each segment: from 4 (offsets 0, 4, 8, 12) and 11
    # (offsets 2, 6, 10, 14)
    views = dm.test_dataloader().dataset[0]["video"]
    assert [frame_ids(view) for view in views] == [[4, 8, 12, 16], [13, 17, 21, 25]]


def test_pyslowfast_segments_reach_the_validation_and_test_items(square_root, tmp_path):
    dm = _datamodule(square_root, tmp_path, sampling="segments", segment_convention="pyslowfast")
    # 30 frames in 4 segments of s = 29 / 4 = 7.25: [0, 7], [7, 14] (14.5 halves to even), [14, 22], [22, 29];
    # val: each one's (start + end) // 2; test view i of 2: start + floor((i + 0.5) / 2 x (end - start))
    assert frame_ids(dm.val_dataloader().dataset[0]["video"]) == [3, 10, 18, 25]
    views = dm.test_dataloader().dataset[0]["video"]
    assert [frame_ids(view) for view in views] == [[1, 8, 16, 23], [5, 12, 20, 27]]
    assert dm.describe()["segment_convention"] == "pyslowfast"
    assert "segment_convention" not in _datamodule(square_root, tmp_path, sampling="segments").describe()
    with pytest.raises(ValueError, match="segment_convention 'pyslowfast' needs segment sampling"):
        _datamodule(square_root, tmp_path, segment_convention="pyslowfast")


def test_a_test_item_holds_every_view_of_the_val_video(square_root, tmp_path):
    dm = _datamodule(square_root, tmp_path, test_clips=2)
    loader = dm.test_dataloader()
    assert len(loader.dataset) == NUM_VAL
    item = loader.dataset[4]
    assert item["video"].shape == (2, 3, 4, 32, 32) and item["label"] == 4 % 3
    # two views from the 30-frame val video's start to its end (a 40-frame training video would end at 39)
    assert [frame_ids(view) for view in item["video"]] == [[0, 2, 4, 6], [23, 25, 27, 29]]


def test_validation_takes_the_centre_crop_of_the_tests_three(wide_root, tmp_path):
    dm = _datamodule(wide_root, tmp_path, test_clips=1, test_crops=3, batch_size=2)
    val = next(iter(dm.val_dataloader()))["video"]  # (B, C, T, H, W)
    test = next(iter(dm.test_dataloader()))["video"]  # (B, V = 3 crops: left, centre, right, C, T, H, W)
    assert val.shape == (2, 3, 4, 32, 32) and test.shape == (2, 3, 3, 4, 32, 32)
    assert torch.equal(val, test[:, 1])
    assert not torch.equal(val, test[:, 0])  # the crops do differ on these videos: the check above can fail


# --- describe() -------------------------------------------------------------------------------------------------


def test_describe_records_a_stride_only_for_dense_sampling(square_root, tmp_path):
    dense = _datamodule(square_root, tmp_path, frame_stride=3).describe()
    segments = _datamodule(square_root, tmp_path, frame_stride=3, sampling="segments").describe()
    assert (dense["sampling"], dense["frame_stride"]) == ("dense", 3)
    assert (segments["sampling"], segments["frame_stride"]) == ("segments", None)  # segments ignore the stride
    assert "segment_span" not in segments  # the whole video, as every record before the option existed
    window = _datamodule(square_root, tmp_path, sampling="segments", segment_span=0.5).describe()
    assert window["segment_span"] == 0.5
    assert (dense["num_train_videos"], dense["num_val_videos"]) == (NUM_TRAIN, NUM_VAL)
