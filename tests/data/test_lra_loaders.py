"""LRA loaders: what the first LRA test files leave open, checked against literal values.

- ``LRADataModule`` loaders on a hand-written ListOps release (token ids written out from ``LISTOPS_VOCAB``'s order:
  pad 0, digit d = d + 1, [MIN 11, [MAX 12, [MED 13, [SM 14, ] 15): a single sequence keeps its first ``max_length``
  tokens, also when the batch is padded to the pipeline's power-of-two length; the training loader shuffles and drops
  its last incomplete batch; the Pathfinder split seed defaults to 0; ``describe`` records the length used.
- Generated ListOps sets: the cache directory is a content hash of every parameter (the literal name below), so two
  processes (DataLoader workers, DDP ranks, a later run) find the same set and sets of other sizes never share one.
"""

from __future__ import annotations

import random

import pytest
import torch

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
