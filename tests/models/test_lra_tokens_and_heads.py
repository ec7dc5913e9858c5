"""Long Range Arena details the first two LRA test files leave open, each checked against literal values.

- Token ids at the top of the byte range: byte / pixel 255 is id 256 (never wrapped to 0, the padding id) in the
  Text, Image and Pathfinder readers, and the byte tasks' vocabulary (257) holds it; the classes per task
  (Tay et al., Table 1: ListOps 10, Text 2, Retrieval 2, Image 10, Pathfinder 2).
- ListOps files without the ``Source\\tTarget`` header keep their first row.
- Pathfinder metadata files are read in numeric order (``2.npy`` before ``10.npy``) before the seeded 80/10/10 shuffle.
- Validation and test loaders keep every item: a last, incomplete batch is not dropped (accuracy over the whole split).
- The model: std-0.02 embeddings (Nystromformer ``model.py``), a position row for [CLS] on top of ``max_len`` tokens,
  ``pad_id`` as the masked token, [CLS] kept out of weight decay, the tiny variant's scaled budgets.
- ``SequenceClassifier``'s optimiser: AdamW eps 1e-6, no weight decay, no label smoothing (Nystromformer
  ``LRA/code/run_tasks.py``: ``AdamW(..., eps=1e-6, weight_decay=0)``).
"""

import pickle
import random

import numpy as np
import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from data.lra import read_lra
from data.lra_datamodule import LRADataModule
from models import create_model
from models.lra_transformer import LRATransformer
from tests.lightning_modules.test_optim_schedule_reference import Tiny, stub_trainer
from tests.models.test_lra import SMALL

# --- token ids at the top of the byte range --------------------------------------------------------------------------


def test_text_byte_255_is_token_256_and_inside_the_vocabulary(tmp_path):
    for split in ("train", "test"):
        for cls in ("pos", "neg"):
            d = tmp_path / "aclImdb" / split / cls
            d.mkdir(parents=True)
            (d / "0_1.txt").write_bytes(bytes([0x00, 0x41, 0xFF]))  # the lowest, an ASCII and the highest byte
    tokens, _ = read_lra("text", tmp_path, "train")[0]
    assert tokens.tolist() == [1, 66, 256]  # byte + 1: a 0xFF byte wrapped to 0 would be read as padding
    assert LRADataModule("text", root=tmp_path).vocab_size == 257


def test_image_white_pixel_is_token_256(tmp_path):
    """A white image (R = G = B = 255, grayscale 255) and a black one in every CIFAR batch."""
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.array([[255] * 3072, [0] * 3072], dtype=np.uint8), b"labels": [3, 4]}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    split = read_lra("image", tmp_path, "test")
    (white, white_label), (black, black_label) = split[0], split[1]
    assert white.dtype == np.int64 and set(white.tolist()) == {256} and white_label == 3
    assert set(black.tolist()) == {1} and black_label == 4
    assert LRADataModule("image", root=tmp_path).vocab_size == 257


def test_pathfinder_white_pixel_is_token_256(tmp_path):
    from PIL import Image

    d = tmp_path / "pathfinder32" / "curv_baseline"
    (d / "imgs" / "0").mkdir(parents=True)
    (d / "metadata").mkdir()
    Image.fromarray(np.full((32, 32), 255, dtype=np.uint8)).save(d / "imgs" / "0" / "sample_0.png")
    (d / "metadata" / "0.npy").write_text("imgs/0 sample_0.png 0 1 0 0\n")
    tokens, label = read_lra("pathfinder", tmp_path, "test")[0]  # one record: the 90%-100% cut holds it
    assert tokens.shape == (1024,) and set(tokens.tolist()) == {256} and label == 1


def test_classes_and_vocabularies_per_task():
    """Tay et al. (2021) Table 1's classes; ListOps' 16 tokens (pad, 10 digits, 4 operators, ']'), bytes + pad."""
    classes = {task: LRADataModule(task, root="unused").num_classes for task in
               ("listops", "text", "retrieval", "image", "pathfinder")}
    assert classes == {"listops": 10, "text": 2, "retrieval": 2, "image": 10, "pathfinder": 2}
    vocab = {task: LRADataModule(task, root="unused").vocab_size for task in ("listops", "retrieval", "pathfinder")}
    assert vocab == {"listops": 16, "retrieval": 257, "pathfinder": 257}


# --- readers ---------------------------------------------------------------------------------------------------------


def test_listops_file_without_header_keeps_its_first_row(tmp_path):
    d = tmp_path / "listops-1000"
    d.mkdir()
    for split in ("train", "val", "test"):
        (d / f"basic_{split}.tsv").write_text("( ( ( [MAX 1 ) 7 ) ] )\t7\n( ( [SM 4 ) ] )\t4\n")
    split = read_lra("listops", tmp_path, "test")
    assert split.labels == [7, 4] and split.bad_lines == []
    assert split[0][0].tolist() == [12, 2, 8, 15]  # [MAX = 12, digit d = d + 1, ] = 15 (LISTOPS_VOCAB's order)


def test_a_retrieval_pair_with_an_empty_text_is_a_bad_line(tmp_path):
    """An empty document is all padding: pooled to zeros on the fused path and NaN logits on the explicit one, so
    it is refused by line, as the Text reader refuses an empty review."""
    for split in ("train", "eval", "test"):
        (tmp_path / f"new_aan_pairs.{split}.tsv").write_text("1\tA\tB\tsome\ttext\n0\tA\tC\t\tmore\n1\tD\tE\tx\t\n")
    split = read_lra("retrieval", tmp_path, "test")
    assert split.labels == [1]
    assert [(b.line_number, b.reason) for b in split.bad_lines] == [(2, "text1 is empty"), (3, "text2 is empty")]


def test_pathfinder_metadata_files_are_read_in_numeric_order(tmp_path):
    """Twelve metadata files 0.npy .. 11.npy of one record each: the records in numeric file order (0, 1, 2, .., 11,
    not the string order 0, 1, 10, 11, 2, ..) are what the seeded shuffle permutes."""
    from PIL import Image

    d = tmp_path / "pathfinder32" / "curv_baseline"
    (d / "imgs" / "0").mkdir(parents=True)
    (d / "metadata").mkdir()
    for i in range(12):
        Image.fromarray(np.full((32, 32), 10 * i, dtype=np.uint8)).save(d / "imgs" / "0" / f"sample_{i}.png")
        (d / "metadata" / f"{i}.npy").write_text(f"imgs/0 sample_{i}.png 0 {i % 2} 0 0\n")
    numeric = list(range(12))
    random.Random(0).shuffle(numeric)
    expected = {"train": numeric[:9], "val": numeric[9:10], "test": numeric[10:]}  # int(12 * 0.8) = 9, int(10.8) = 10
    for split, want in expected.items():
        s = read_lra("pathfinder", tmp_path, split, seed=0)
        assert [int(p.stem.split("_")[1]) for p in s.files] == want, split
        assert s.labels == [i % 2 for i in want]


# --- datamodule -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage, loader", [("validate", "val_dataloader"), ("test", "test_dataloader")])
def test_evaluation_loaders_keep_the_last_incomplete_batch(tmp_path, stage, loader):
    """8 validation and 8 test items in batches of 3: 3 + 3 + 2, every item scored once, in file order."""
    dm = LRADataModule("listops", cache_dir=tmp_path, synthetic_params=SMALL, batch_size=3)
    dm.setup(stage)
    sizes = [len(batch["label"]) for batch in getattr(dm, loader)()]
    assert sizes == [3, 3, 2]


# --- model ------------------------------------------------------------------------------------------------------------


def test_embeddings_start_with_std_0_02():
    """Nystromformer model.py: token and position embeddings ``normal_(std=0.02)`` (nn.Embedding's default is 1)."""
    torch.manual_seed(0)
    model = LRATransformer(vocab_size=512, max_len=1024, embed_dim=64)
    for name, table in (("token", model.token_embed.weight), ("position", model.pos_embed)):
        assert abs(table.double().std().item() - 0.02) < 0.002, name  # 32k / 65k draws: sampling error ~1e-4


def test_cls_pooling_takes_max_len_tokens_plus_its_own_position():
    torch.manual_seed(0)
    model = LRATransformer(vocab_size=16, max_len=12, embed_dim=16, head_dim=8, mlp_hidden_dim=16, pooling="cls")
    assert model.pos_embed.shape == (1, 13, 16)  # row 0 for [CLS], rows 1..12 for the tokens
    assert model(torch.randint(1, 16, (2, 12))).shape == (2, 10)
    assert model.no_weight_decay() == {"pos_embed", "cls_token"}


def test_pad_id_is_the_token_masked_out():
    """With pad_id 5, appending 5s changes no output, while appending 0s (a real token then) does."""
    torch.manual_seed(0)
    model = LRATransformer(vocab_size=16, max_len=32, embed_dim=16, head_dim=8, mlp_hidden_dim=16,
                           pad_id=5).double().eval()
    tokens = torch.tensor([[1, 2, 3, 4, 6, 7], [9, 8, 7, 6, 4, 3]])
    padded = torch.cat([tokens, torch.full((2, 4), 5)], dim=1)
    zeros = torch.cat([tokens, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(padded), model(tokens), rtol=1e-10, atol=1e-12)
        assert (model(zeros) - model(tokens)).abs().max() > 1e-6


@pytest.mark.parametrize("attention, budget", [("orthoformer", 16), ("nystrom", 32), ("performer", 64)])
def test_tiny_listops_uses_the_scaled_budgets(attention, budget):
    """TINY_BUDGETS, not the paper's 64 / 128 / 256 (sized for 2000 tokens), when no budget is given."""
    model = create_model("lra_listops_tiny", attention=attention)
    assert model.budget == budget and model.blocks[0].attn.budget == budget


# --- sequence classifier ----------------------------------------------------------------------------------------------


def test_sequence_classifier_optimiser_is_the_nystromformer_adamw():
    """run_tasks.py: AdamW(lr 1e-4, betas (0.9, 0.999), eps 1e-6, weight_decay 0); CrossEntropyLoss, no smoothing."""
    from lightning_modules.sequence_classifier import SequenceClassifier

    module = SequenceClassifier(Tiny(), 3)
    module._trainer = stub_trainer(10, 1)
    optimizer = module.configure_optimizers()["optimizer"]
    assert type(optimizer) is torch.optim.AdamW
    assert {g["eps"] for g in optimizer.param_groups} == {1e-6}
    assert {g["weight_decay"] for g in optimizer.param_groups} == {0.0}
    assert module.hparams.label_smoothing == 0.0 and module.hparams.lr == 1e-4
