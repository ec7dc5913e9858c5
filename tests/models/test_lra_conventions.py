"""Long Range Arena conventions the first LRA tests leave open, each checked against the official code it follows.

- ListOps generation against a transcription of google-research/long-range-arena ``lra_benchmarks/data/listops.py``
  (its draws in their order: leaf test, argument count, arguments, then the operator; depth 1 at the root; the
  train / val / test cut of the distinct samples in that order).
- The readers' split files and cuts: IMDB validation is its test set, AAN validation is ``new_aan_pairs.eval.tsv``
  and each text is cut at 10,000 bytes (``matching/input_pipeline.py``), CIFAR-10 validation is the last 10% of the
  training batches in their order (tfds ``train[90%:]``), grayscale as ``tf.image.rgb_to_grayscale`` (weights
  0.2989 / 0.5870 / 0.1140, then ``convert_image_dtype``: times 255.5, truncated), Pathfinder labels in metadata
  column 3 and an 80/10/10 cut of a seeded shuffle (mlpen/Nystromformer ``LRA/datasets/pathfinder.py``).
- The datamodule: the Nystromformer pipeline's lengths (``LRA/datasets/*.py``: ListOps 2000, Text 1000, Retrieval
  4000), truncation keeping the first tokens (``[:max_length]``), its options reaching the readers, validation in
  file order.
- The model against a written-out pre-norm transformer (Nystromformer ``LRA/code/model.py``, ``model_wrapper.py``:
  learned positions, LayerNorm before attention and MLP, final LayerNorm, mean over real tokens, Linear-ReLU-Linear
  head) and the retrieval head's input ``[u, v, u * v, u - v]`` (``SCHeadDual``); the registered task configurations
  (``lra_config.py``).
- Motionformer Table 5's rows and paper-scale optimisation (Nystromformer ``lra_config.py`` "listops" training).
"""

import pickle
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from data.lra import LISTOPS_TOKEN_ID, generate_listops, generate_tree, read_lra, rgb_to_gray
from data.lra_datamodule import DEFAULT_MAX_LENGTH, LRADataModule
from models import create_model
from models.lra_transformer import LRATransformer
from tests.models.test_lra import SMALL, reference_masked_attention, reference_value, write_fixtures

# --- ListOps generation: the official generator, transcribed -------------------------------------------------------

OFFICIAL_OPERATORS = ["[MIN", "[MAX", "[MED", "[SM"]


def official_generate_tree(rng, depth, max_depth, max_args):
    """lra_benchmarks/data/listops.py ``generate_tree`` with ``random`` replaced by ``rng`` (same calls, same order)."""
    r = rng.random() if depth < max_depth else 1
    if r > 0.25:  # VALUE_P: the probability of an operator node
        return rng.choice(range(10)), 1
    length = 2
    num_values = rng.randint(2, max_args)
    values = []
    for _ in range(num_values):
        sub_tree, sub_length = official_generate_tree(rng, depth + 1, max_depth, max_args)
        values.append(sub_tree)
        length += sub_length
    tree = (rng.choice(OFFICIAL_OPERATORS), values[0])
    for value in values[1:]:
        tree = (tree, value)
    return (tree, "]"), length


def official_string(tree):
    """lra_benchmarks/data/listops.py ``to_string``."""
    if isinstance(tree, (str, int)):
        return str(tree)
    return "( " + official_string(tree[0]) + " " + official_string(tree[1]) + " )"


@pytest.mark.parametrize("max_depth, max_args", [(5, 6), (10, 10)])
def test_generator_makes_the_official_generators_draws(max_depth, max_args):
    for seed in range(3):
        ours, official = random.Random(seed), random.Random(seed)
        for _ in range(200):
            assert generate_tree(ours, 1, max_depth, max_args) == official_generate_tree(official, 1, max_depth,
                                                                                          max_args)


def test_generated_splits_are_the_official_scripts_distinct_samples_cut_train_val_test():
    """The official main(): trees drawn from depth 1 until enough distinct ones have min < length < max, then
    train = the first num_train, val = the next num_val, test = the rest (here in draw order)."""
    rng = random.Random(SMALL["seed"])
    kept = []
    wanted = SMALL["num_train"] + SMALL["num_val"] + SMALL["num_test"]
    while len(kept) < wanted:
        tree, length = official_generate_tree(rng, 1, SMALL["max_depth"], SMALL["max_args"])
        if SMALL["min_length"] < length < SMALL["max_length"] and tree not in kept:
            kept.append(tree)
    rows = [(official_string(t), reference_value(t)) for t in kept]
    a, b = SMALL["num_train"], SMALL["num_train"] + SMALL["num_val"]
    assert generate_listops(**SMALL) == {"train": rows[:a], "val": rows[a:b], "test": rows[b:]}


# --- readers: which file each split reads, and how ------------------------------------------------------------------


def _write_imdb(root):
    for split in ("train", "test"):
        for cls in ("pos", "neg"):
            d = root / "aclImdb" / split / cls
            d.mkdir(parents=True)
            (d / "0_7.txt").write_text(f"{split} {cls}")


def test_text_validation_reads_the_imdb_test_reviews(tmp_path):
    _write_imdb(tmp_path)
    decode = lambda split: [bytes((split[i][0] - 1).tolist()).decode() for i in range(len(split))]  # noqa: E731
    assert decode(read_lra("text", tmp_path, "train")) == ["train neg", "train pos"]
    assert decode(read_lra("text", tmp_path, "val")) == ["test neg", "test pos"]  # LRA validates on the test set
    assert decode(read_lra("text", tmp_path, "test")) == ["test neg", "test pos"]


def test_retrieval_splits_read_train_eval_test_and_cut_each_text_at_10000_bytes(tmp_path):
    d = tmp_path / "tsv_data"
    d.mkdir()
    for name in ("train", "eval", "test"):
        (d / f"new_aan_pairs.{name}.tsv").write_text(f"1\tA\tB\t{name}\t{'z' * 10_005}\n")
    for split, name in (("train", "train"), ("val", "eval"), ("test", "test")):
        (first, second), label = read_lra("retrieval", tmp_path, split)[0]
        assert bytes((first - 1).tolist()).decode() == name and label == 1
        assert len(second) == 10_000 and (second == ord("z") + 1).all()  # matching/input_pipeline.py: [:10000]


# Pixels whose gray value is at least 0.02 from an integer: tf.image.rgb_to_grayscale gives
# int((0.2989 R + 0.5870 G + 0.1140 B) / 255 * 255.5), e.g. (69, 78, 10) -> 67.68 -> 67, (0, 255, 0) -> 149.98 -> 149.
TF_GRAY = [((0, 0, 0), 0), ((255, 255, 255), 255), ((255, 0, 0), 76), ((0, 255, 0), 149), ((0, 0, 255), 29),
           ((69, 78, 10), 67), ((254, 118, 92), 155), ((254, 168, 211), 198), ((128, 155, 248), 157)]


def test_grayscale_is_tf_rgb_to_grayscale():
    pixels = np.array([rgb for rgb, _ in TF_GRAY], dtype=np.uint8)
    assert rgb_to_gray(pixels).tolist() == [gray for _, gray in TF_GRAY]


def _write_cifar(root):
    """Five training batches of two images and a test batch of two; image k is uniform gray level 10 k + 5 (R = G = B,
    so its grayscale is 10 k + 5 too: 0.9999 * 255.5 / 255 < 1.002) with label k % 10."""
    d = root / "cifar-10-batches-py"
    d.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        levels = [10 * (2 * b + j) + 5 for j in range(2)]
        batch = {b"data": np.array([[v] * 3072 for v in levels], dtype=np.uint8),
                 b"labels": [(2 * b + j) % 10 for j in range(2)]}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)


def test_image_validation_is_the_last_tenth_of_the_training_batches_in_order(tmp_path):
    _write_cifar(tmp_path)
    expected = {"train": range(0, 9), "val": range(9, 10), "test": range(10, 12)}  # tfds train[:90%] / train[90%:]
    for split, images in expected.items():
        s = read_lra("image", tmp_path, split)
        assert [int(s[i][0][0]) - 1 for i in range(len(s))] == [10 * k + 5 for k in images]
        assert s.labels == [k % 10 for k in images]


def write_pathfinder(root, n=20):
    """``n`` uniform images over two metadata files; column 2 holds 7 (never a label), column 3 the label."""
    from PIL import Image

    d = root / "pathfinder32" / "curv_baseline"
    (d / "imgs" / "0").mkdir(parents=True)
    (d / "metadata").mkdir()
    records = []
    for i in range(n):
        Image.fromarray(np.full((32, 32), 10 * i, dtype=np.uint8)).save(d / "imgs" / "0" / f"sample_{i}.png")
        records.append((f"imgs/0 sample_{i}.png 7 {int(i % 3 == 0)} 0 0", i, int(i % 3 == 0)))
    half = n // 2
    (d / "metadata" / "0.npy").write_text("\n".join(r[0] for r in records[:half]) + "\n")
    (d / "metadata" / "1.npy").write_text("\n".join(r[0] for r in records[half:]) + "\n")
    return [(i, label) for _, i, label in records]


@pytest.mark.parametrize("seed", [0, 5])
def test_pathfinder_split_is_an_80_10_10_cut_of_the_seeded_shuffle(tmp_path, seed):
    records = write_pathfinder(tmp_path)
    random.Random(seed).shuffle(records)  # the metadata lines in file order, shuffled with the split seed
    expected = {"train": records[:16], "val": records[16:18], "test": records[18:]}
    dm = LRADataModule("pathfinder", root=tmp_path, split_seed=seed, batch_size=20)
    dm.setup()
    for split, want in expected.items():
        s = dm._splits[split]
        got = [(int(s.files[i].stem.split("_")[1]), s.labels[i]) for i in range(len(s))]
        assert got == want
        assert [int(s[i][0][0]) - 1 for i in range(len(s))] == [10 * i for i, _ in want]


# --- datamodule ------------------------------------------------------------------------------------------------------


def test_default_lengths_are_the_nystromformer_pipelines():
    """LRA/datasets/{listops,text,retrieval}.py call the LRA pipelines with max_length 2000, 1000 and 4000;
    images are 32 x 32."""
    assert DEFAULT_MAX_LENGTH == {"listops": 2000, "text": 1000, "retrieval": 4000, "image": 1024, "pathfinder": 1024}
    assert LRADataModule("text", root="unused").max_length == 1000


def test_truncation_keeps_the_first_tokens(tmp_path):
    d = tmp_path / "tsv_data"
    d.mkdir()
    for name in ("train", "eval", "test"):
        (d / f"new_aan_pairs.{name}.tsv").write_text("0\tA\tB\tabcdef\tuvwxyz\n")
    dm = LRADataModule("retrieval", root=tmp_path, batch_size=1, max_length=3)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert batch["input"].tolist() == [[[ord(c) + 1 for c in "abc"], [ord(c) + 1 for c in "uvw"]]]


def test_the_alnum_listops_tokenizer_reaches_the_reader(tmp_path):
    write_fixtures(tmp_path)
    end = LISTOPS_TOKEN_ID["]"]
    dm = LRADataModule("listops", root=tmp_path, batch_size=2, listops_tokenizer="alnum")
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert (batch["input"] != end).all()
    assert batch["input"][0].tolist() == [LISTOPS_TOKEN_ID[t] for t in ("[MAX", "1", "7")]
    assert end in read_lra("listops", tmp_path, "test", tokenizer="lra")[0][0].tolist()


def test_validation_batches_keep_the_file_order(tmp_path):
    dm = LRADataModule("listops", cache_dir=tmp_path, synthetic_params=SMALL, batch_size=4)
    dm.setup("fit")
    torch.manual_seed(0)
    labels = torch.cat([batch["label"] for batch in dm.val_dataloader()]).tolist()
    assert labels == [label for _, label in generate_listops(**SMALL)["val"]]


# --- model -----------------------------------------------------------------------------------------------------------


def reference_forward(model, tokens):
    """The Nystromformer LRA encoder and head written out: token + learned position embeddings ([CLS] first when
    pooling is "cls"), per block x += Attn(LN1(x)), x += W2 GELU(W1 LN2(x)), a final LayerNorm, the mean over the
    real tokens (or the [CLS] output), then Linear-ReLU-Linear."""
    layer_norm = lambda x, ln: F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)  # noqa: E731
    x = model.token_embed.weight[tokens]
    mask = tokens != 0
    if model.pooling == "cls":
        x = torch.cat([model.cls_token.expand(len(x), 1, -1), x], dim=1)
        mask = torch.cat([torch.ones(len(x), 1, dtype=torch.bool), mask], dim=1)
    x = x + model.pos_embed[0, : x.shape[1]]
    for block in model.blocks:
        x = x + reference_masked_attention(block.attn, layer_norm(x, block.norm1), mask)
        hidden = F.gelu(F.linear(layer_norm(x, block.norm2), block.mlp.fc1.weight, block.mlp.fc1.bias))
        x = x + F.linear(hidden, block.mlp.fc2.weight, block.mlp.fc2.bias)
    x = layer_norm(x, model.norm)
    if model.pooling == "cls":
        pooled = x[:, 0]
    else:
        pooled = torch.stack([x[b][mask[b]].mean(0) for b in range(len(x))])
    first, last = model.head[0], model.head[2]
    return F.linear(torch.relu(F.linear(pooled, first.weight, first.bias)), last.weight, last.bias)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_forward_is_the_written_out_pre_norm_transformer(pooling):
    torch.manual_seed(0)
    model = LRATransformer(vocab_size=16, num_classes=10, max_len=32, embed_dim=16, depth=2, num_heads=2, head_dim=8,
                           mlp_hidden_dim=24, pooling=pooling).double().eval()
    with torch.no_grad():
        for p in model.parameters():  # every weight and bias away from its initial 0 / 1
            p.add_(0.3 * torch.randn_like(p))
    tokens = torch.randint(1, 16, (3, 20))
    tokens[1, 12:] = 0
    tokens[2, 5:] = 0
    torch.testing.assert_close(model(tokens), reference_forward(model, tokens), rtol=1e-10, atol=1e-12)


def test_retrieval_head_takes_u_v_product_difference_of_each_pair():
    """SCHeadDual: head(cat([X_0, X_1, X_0 * X_1, X_0 - X_1])) with X_i the pooled encoding of document i alone."""
    torch.manual_seed(0)
    model = create_model("lra_retrieval", embed_dim=16, head_dim=8, mlp_hidden_dim=16, max_len=32).double().eval()
    pairs = torch.randint(1, 257, (3, 2, 32))
    pairs[0, 1, 20:] = 0
    pairs[2, 0, 9:] = 0
    seen = []
    model.head.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    model(pairs)
    u, v = (model.pool(*model.forward_features(pairs[:, i])) for i in range(2))  # each document on its own
    torch.testing.assert_close(seen[0], torch.cat([u, v, u * v, u - v], dim=-1), rtol=1e-10, atol=1e-12)


# lra_config.py: vocab_size, num_classes; position tables: max_seq_len rounded up to the padded pipeline length
REGISTERED = {"lra_listops": (32, 10, 2048, False), "lra_text": (512, 2, 4096, False),
              "lra_retrieval": (512, 2, 4096, True), "lra_image": (512, 10, 1024, False),
              "lra_pathfinder": (512, 2, 1024, False)}


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_registered_task_configurations(name):
    with torch.device("meta"):
        model = create_model(name)
    got = (model.token_embed.num_embeddings, model.head[-1].out_features, model.pos_embed.shape[1], model.dual)
    assert got == REGISTERED[name]
    assert model.head[0].in_features == (4 if model.dual else 1) * 64 and isinstance(model.head[1], torch.nn.ReLU)


# --- Motionformer Table 5 --------------------------------------------------------------------------------------------


# lra_config.py "training" per task: batch, optimiser steps, warm-up steps; every run in run_tasks.py: AdamW lr 1e-4,
# no weight decay, OneCycleLR with linear annealing, mixed precision; the datasets/*.py scripts pad to a fixed length
NYSTROMFORMER_TRAINING = {"ListOps": (32, 5000, 1000), "Text": (32, 20000, 8000), "Retrieval": (32, 30000, 800),
                          "Image": (256, 35000, 175), "Pathfinder": (256, 62400, 312)}
# its training sets: 96k ListOps, 25k IMDB, 147,086 AAN pairs, 45k CIFAR-10 (90% of 50k), 80% of 200k Pathfinder
TRAIN_ITEMS = {"ListOps": 96_000, "Text": 25_000, "Retrieval": 147_086, "Image": 45_000, "Pathfinder": 160_000}


def test_table5_budgets_and_paper_training_configuration_per_task():
    from experiments.harness.spec import table_spec

    spec = table_spec("mformer_table5")
    paper = {"exact": None, "performer": 256, "nystrom": 128, "orthoformer": 64}  # Table 5's rows
    tiny = {"exact": None, "performer": 16, "nystrom": 8, "orthoformer": 4}  # scaled by 128 / 2000, at least 4
    for scale, budgets in (("paper", paper), ("tiny", tiny)):
        for row, budget in budgets.items():
            cfg = spec.resolve(spec.row(row), "ListOps", scale, 0, None)
            assert cfg.model.overrides == {"attention": row, "budget": budget}
    for column, (batch, steps, warmup) in NYSTROMFORMER_TRAINING.items():
        cfg = spec.resolve(spec.row("nystrom"), column, "paper", 0, None)
        assert (cfg.data.batch_size, cfg.trainer.max_steps, cfg.optim.warmup_steps) == (batch, steps, warmup), column
        assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.schedule) == (1e-4, 0.0, "linear")
        assert cfg.trainer.precision == "16-mixed" and cfg.data.options["pipeline_padding"]
        # enough epochs for every step at that batch (the last epoch's batches dropped when incomplete)
        assert (cfg.optim.epochs - 1) * (TRAIN_ITEMS[column] // batch) < steps <= cfg.optim.epochs * (
            TRAIN_ITEMS[column] // batch)

