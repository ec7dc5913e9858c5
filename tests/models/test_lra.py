"""Long Range Arena: the ListOps generator and evaluator, the public-file readers, the datamodule, the LRA
transformer with every attention, its FLOP count and the sequence classifier."""

import csv
import json
import pickle
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data.lra import (
    LISTOPS_VOCAB,
    LRA_TASKS,
    DataNotFoundError,
    evaluate_listops,
    generate_listops,
    generate_tree,
    lra_available,
    read_lra,
    rgb_to_gray,
    tokenize_listops,
    tree_to_string,
    write_listops,
)
from data.lra_datamodule import LRADataModule
from models import create_model, list_models
from models.lra_transformer import ATTENTION_NAMES, LRAAttention, lra_gflops

SMALL = dict(num_train=40, num_val=8, num_test=8, min_length=10, max_length=60, max_depth=4, max_args=4, seed=3)


# --- ListOps generator and evaluator --------------------------------------------------------------------------------


def reference_value(tree):
    """The label of a generated tree, from the official semantics: MED is numpy's median truncated to int."""
    def flatten(t):  # ((..((op, a1), a2)..), "]") -> op, [a1, a2, ...]
        node, args = t[0], []
        while isinstance(node, tuple) and not isinstance(node[0], str):
            args.append(node[1])
            node = node[0]
        return node[0], [node[1], *reversed(args)]

    if isinstance(tree, int):
        return tree
    op, args = flatten(tree)
    values = [reference_value(a) for a in args]
    return {"[MIN": min, "[MAX": max, "[MED": lambda v: int(np.median(v)), "[SM": lambda v: sum(v) % 10}[op](values)


@pytest.mark.parametrize("expression, label", [
    ("( ( ( ( [MAX 1 ) 7 ) 2 ) ] )", 7),  # a line of the released files
    ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
    ("[MIN 4 [MAX 1 2 ] 3 ]", 2),
    ("[MED 3 1 4 1 5 ]", 3),
    ("[MED 1 2 ]", 1),  # median 1.5, truncated
    ("[MED 2 5 9 8 ]", 6),  # median 6.5
    ("[SM 5 7 9 ]", 1),
    ("[SM [MED 9 8 1 ] [MAX 3 4 ] 6 ]", 8),  # 8 + 4 + 6 = 18
    ("[MIN [SM 9 9 ] [MED 7 7 2 9 ] ]", 7),  # min(8, 7)
    ("( ( ( [MED ( ( ( [SM 9 ) 9 ) ] ) ) ( ( ( [MED 0 ) 5 ) ] ) ) ] )", 5),  # MED(SM(9, 9)=8, MED(0, 5)=2) = 5
    ("4", 4),
])
def test_evaluator_on_hand_written_expressions(expression, label):
    assert evaluate_listops(expression) == label


@pytest.mark.parametrize("bad", ["[MAX 1 2", "1 2", "[FOO 1 ]", "]", "[SM ]", "[MAX 1 ] ]", "12"])
def test_evaluator_rejects_malformed_expressions(bad):
    with pytest.raises(ValueError, match="ListOps"):
        evaluate_listops(bad)


def test_tree_string_is_the_released_form_and_evaluator_matches_reference():
    tree = (((("[MAX", 1), 7), 2), "]")
    assert tree_to_string(tree) == "( ( ( ( [MAX 1 ) 7 ) 2 ) ] )"
    rng = random.Random(0)
    for _ in range(300):
        tree, length = generate_tree(rng, 1, 5, 6)
        source = tree_to_string(tree)
        assert len([t for t in source.split() if t not in "()"]) == length
        assert evaluate_listops(source) == reference_value(tree)


def test_generator_is_deterministic_and_respects_its_parameters():
    a, b = generate_listops(**SMALL), generate_listops(**SMALL)
    assert a == b
    assert a != generate_listops(**{**SMALL, "seed": 4})
    assert [len(a[s]) for s in ("train", "val", "test")] == [40, 8, 8]
    sources = [src for split in a.values() for src, _ in split]
    assert len(set(sources)) == len(sources)  # all distinct, across splits too
    for split in a.values():
        for source, label in split:
            assert 10 < len(tokenize_listops(source)) < 60  # strict bounds, as in the official script
            assert label == evaluate_listops(source)
    with pytest.raises(ValueError, match="min_length"):
        generate_listops(**{**SMALL, "min_length": 59})


def test_written_files_have_the_official_layout(tmp_path):
    write_listops(tmp_path, **SMALL)
    generated = generate_listops(**SMALL)
    allowed = {"(", ")", *LISTOPS_VOCAB[1:]}
    for split in ("train", "val", "test"):
        with open(tmp_path / f"basic_{split}.tsv", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
        assert rows[0] == ["Source", "Target"]
        assert [(s, int(t)) for s, t in rows[1:]] == generated[split]
        for source, _ in rows[1:]:
            assert set(source.split()) <= allowed
            assert source.startswith("( ") and source.count("(") == source.count(")")


def test_tokenizers():
    source = "( ( ( [MAX 1 ) ( ( [MIN 3 ) ] ) ) ] )"
    ids = tokenize_listops(source)
    assert [LISTOPS_VOCAB[i] for i in ids] == ["[MAX", "1", "[MIN", "3", "]", "]"]
    assert [LISTOPS_VOCAB[i] for i in tokenize_listops(source, "alnum")] == ["[MAX", "1", "[MIN", "3"]
    with pytest.raises(KeyError):
        tokenize_listops("[MAX 1 X ]")


# --- readers of the public layouts ---------------------------------------------------------------------------------


def write_fixtures(root):
    """Tiny files in every released layout under ``root``."""
    lo = root / "listops-1000"
    lo.mkdir(parents=True)
    for split in ("train", "val", "test"):
        (lo / f"basic_{split}.tsv").write_text(
            "Source\tTarget\n"
            "( ( ( [MAX 1 ) 7 ) ] )\t7\n"
            "( ( [SM 4 ) ] )\t4\n"
            "( ( [MIN 3 ) ] )\t3\textra\n"  # bad: 3 fields
            "( ( [MIN 3 ) ] )\tx\n"  # bad: target
            "( ( [AVG 3 ) ] )\t3\n")  # bad: token
    for split in ("train", "test"):
        for cls, text in (("pos", "Great film!"), ("neg", "Dull.")):
            d = root / "aclImdb" / split / cls
            d.mkdir(parents=True)
            (d / "0_7.txt").write_text(text)
    tsv = root / "tsv_data"
    tsv.mkdir()
    for split in ("train", "eval", "test"):
        (tsv / f"new_aan_pairs.{split}.tsv").write_text(
            "1\tP1\tP2\tabc\tde\n0.0\tP3\tP4\tx\tyz\nnot-a-label\tP5\tP6\ta\tb\n1\tonly\tfour\tfields\n")
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2]}
        with open(cifar / name, "wb") as f:
            pickle.dump(batch, f)
    from PIL import Image

    pf = root / "pathfinder32" / "curv_baseline"
    (pf / "imgs" / "0").mkdir(parents=True)
    (pf / "metadata").mkdir()
    lines = []
    for i in range(10):
        Image.fromarray(np.full((32, 32), 10 * i, dtype=np.uint8)).save(pf / "imgs" / "0" / f"sample_{i}.png")
        lines.append(f"imgs/0 sample_{i}.png 0 {i % 2} 0 0")
    (pf / "metadata" / "0.npy").write_text("\n".join(lines + ["garbage line"]) + "\n")
    return root


@pytest.fixture(scope="module")
def lra_root(tmp_path_factory):
    return write_fixtures(tmp_path_factory.mktemp("lra_release"))


def test_listops_reader(lra_root):
    s = read_lra("listops", lra_root, "val")
    assert len(s) == 2 and s.labels == [7, 4]
    tokens, label = s[0]
    assert [LISTOPS_VOCAB[i] for i in tokens] == ["[MAX", "1", "7", "]"] and label == 7
    reasons = [b.reason for b in s.bad_lines]
    assert [b.line_number for b in s.bad_lines] == [4, 5, 6]
    assert "2 tab-separated" in reasons[0] and "Target" in reasons[1] and "[AVG" in reasons[2]
    assert all(b.file.endswith("basic_val.tsv") for b in s.bad_lines)


def test_text_reader(lra_root):
    s = read_lra("text", lra_root, "train")
    assert s.labels == [0, 1]
    tokens, _ = s[1]
    assert bytes((tokens - 1).astype(np.uint8).tolist()) == b"Great film!"
    assert len(read_lra("text", lra_root, "val")) == 2  # validation reads the test reviews, as in LRA


def test_retrieval_reader(lra_root):
    s = read_lra("retrieval", lra_root, "val")  # new_aan_pairs.eval.tsv
    assert s.labels == [1, 0] and [b.line_number for b in s.bad_lines] == [3, 4]
    (a, b), label = s[1]
    assert (a - 1).tolist() == list(b"x") and (b - 1).tolist() == list(b"yz") and label == 0


def test_image_reader(lra_root):
    train, val, test = (read_lra("image", lra_root, split) for split in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (9, 1, 2)  # first 90% / last 10% of the training images
    with open(lra_root / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"][1].reshape(3, 32, 32).transpose(1, 2, 0)
    tokens, label = test[1]
    expected = 0.2989 * raw[..., 0] + 0.5870 * raw[..., 1] + 0.1140 * raw[..., 2]
    assert tokens.shape == (1024,) and label == 2
    assert np.abs(tokens.reshape(32, 32) - 1 - expected).max() <= 1.0
    assert rgb_to_gray(np.array([[255, 255, 255], [0, 0, 0]], dtype=np.uint8)).tolist() == [255, 0]


def test_pathfinder_reader(lra_root):
    splits = {s: read_lra("pathfinder", lra_root, s) for s in ("train", "val", "test")}
    assert [len(s) for s in splits.values()] == [8, 1, 1]
    assert splits["train"].bad_lines[0].reason.startswith("expected")
    files = {p for s in splits.values() for p in s.files}
    assert len(files) == 10
    tokens, label = splits["test"][0]
    index = int(splits["test"].files[0].stem.split("_")[1])
    assert tokens.shape == (1024,) and (tokens == 10 * index + 1).all() and label == index % 2


@pytest.mark.parametrize("task", LRA_TASKS)
def test_missing_files_name_the_path(task, lra_root, tmp_path):
    assert lra_available(task, lra_root)
    assert not lra_available(task, tmp_path) and not lra_available(task, None)
    with pytest.raises(DataNotFoundError) as err:
        read_lra(task, tmp_path, "train")
    assert str(tmp_path) in str(err.value) and task in str(err.value)


# --- datamodule ----------------------------------------------------------------------------------------------------


def test_datamodule_generates_listops_and_pads_batches(tmp_path):
    dm = LRADataModule("listops", cache_dir=tmp_path, synthetic_params=SMALL, batch_size=8)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].dtype == torch.long and batch["input"].shape[0] == 8 and batch["label"].shape == (8,)
    lengths = (batch["input"] != 0).sum(1)
    assert lengths.max() == batch["input"].shape[1]  # padded to the batch's longest
    assert (batch["input"] < dm.vocab_size).all() and dm.num_classes == 10
    info = dm.describe()
    assert info["synthetic"] and info["num_train"] == 40 and info["synthetic_params"]["seed"] == 3
    assert dm.data_report()["train"]["bad_annotation_lines"] == []
    # the Nystromformer pipeline's fixed length: max_length rounded up to a power of two (2000 + 48 = 2048 for ListOps)
    fixed = LRADataModule("listops", cache_dir=tmp_path, synthetic_params=SMALL, batch_size=4, max_length=50,
                          pipeline_padding=True)
    fixed.setup("test")
    assert next(iter(fixed.test_dataloader()))["input"].shape == (4, 64) and fixed.describe()["padded_length"] == 64
    assert [LRADataModule(task, root="unused", pipeline_padding=True).padded_length
            for task in ("listops", "text", "retrieval", "image", "pathfinder")] == [2048, 1024, 4096, 1024, 1024]
    with pytest.raises(ValueError, match="root"):
        LRADataModule("text")
    with pytest.raises(TypeError):
        LRADataModule("listops", synthetic_params={"num_trian": 3})


def test_datamodule_reads_public_files(lra_root):
    dm = LRADataModule("retrieval", root=lra_root, batch_size=2, max_length=2)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch["input"].shape == (2, 2, 2) and batch["label"].tolist() == [1, 0]
    assert batch["input"][1].tolist() == [[ord("x") + 1, 0], [ord("y") + 1, ord("z") + 1]]
    report = dm.data_report()
    assert [b["line"] for b in report["train"]["bad_annotation_lines"]] == [3, 4]
    dm = LRADataModule("listops", root=lra_root, batch_size=2)
    dm.setup("test")
    assert len(dm.data_report()["test"]["bad_annotation_lines"]) == 3


# --- model ---------------------------------------------------------------------------------------------------------


def tiny_model(attention, **kw):
    return create_model("lra_listops_tiny", attention=attention, **{"embed_dim": 32, "head_dim": 16,
                                                                      "mlp_hidden_dim": 32, **kw})


@pytest.mark.parametrize("attention", ATTENTION_NAMES)
def test_forward_backward_every_attention(attention):
    torch.manual_seed(0)
    model = tiny_model(attention)
    tokens = torch.randint(1, 16, (3, 40))
    tokens[0, 30:] = 0  # padding
    logits = model(tokens)
    assert logits.shape == (3, 10) and torch.isfinite(logits).all()
    logits.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} received no gradient"


@pytest.mark.parametrize("name", list_models("lra_*"))
def test_every_registered_lra_model_builds(name):
    """Paper-size LRA models on the meta device (shapes only), fed the input their task gives."""
    with torch.device("meta"):
        model = create_model(name, num_classes=7)
        shape = (2, 2, model.max_len) if model.dual else (2, model.max_len)
        tokens = torch.ones(shape, dtype=torch.long)
        assert model(tokens).shape == (2, 7)
    assert {"pos_embed"} <= model.no_weight_decay()


def test_paper_listops_configuration():
    """mlpen/Nystromformer LRA/code/lra_config.py, "listops" (max_seq_len 2000 rounded up to 2048 by run_tasks.py)."""
    model = create_model("lra_listops")
    block = model.blocks[0]
    assert (model.embed_dim, len(model.blocks), block.attn.num_heads, block.attn.head_dim) == (64, 2, 2, 32)
    assert block.mlp.fc1.out_features == 128 and model.token_embed.num_embeddings == 32
    assert model.pos_embed.shape == (1, 2048, 64) and model.pooling == "mean" and model.head[-1].out_features == 10


def test_performer_keeps_its_random_features():
    torch.manual_seed(0)
    model = tiny_model("performer").eval()
    tokens = torch.randint(1, 16, (2, 40))
    torch.testing.assert_close(model(tokens), model(tokens))  # no redraw between calls
    assert model.blocks[0].attn.projection.shape == (64, 16) and "blocks.0.attn.projection" in model.state_dict()


def test_unknown_attention_and_missing_budget():
    with pytest.raises(ValueError, match="orthoformer"):
        tiny_model("linformer")
    with pytest.raises(ValueError, match="budget"):
        LRAAttention(32, 2, attention="nystrom")


def reference_masked_attention(attn, x, mask):
    """Eq. softmax(q k^T / sqrt(d) + log(mask)) v per head, written out with loops over batch and heads."""
    qkv = attn.qkv(x)
    inner = attn.num_heads * attn.head_dim
    out = torch.zeros(*x.shape[:2], inner, dtype=x.dtype)
    for b in range(x.shape[0]):
        keys = mask[b].nonzero().squeeze(1)
        for h in range(attn.num_heads):
            cols = slice(h * attn.head_dim, (h + 1) * attn.head_dim)
            q, k, v = (qkv[b, :, i * inner:(i + 1) * inner][:, cols] for i in range(3))
            weights = torch.softmax(q @ k[keys].T / attn.head_dim ** 0.5, dim=-1)
            out[b, :, cols] = weights @ v[keys]
    return attn.proj(out)


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_exact_attention_matches_reference_with_padding(fused):
    torch.manual_seed(0)
    attn = LRAAttention(24, num_heads=3, head_dim=8, fused_attn=fused).double().eval()
    x = torch.randn(2, 9, 24, dtype=torch.float64)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 5:] = False
    torch.testing.assert_close(attn(x, mask), reference_masked_attention(attn, x, mask), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_padding_does_not_change_real_tokens_under_exact_attention(fused):
    torch.manual_seed(0)
    model = tiny_model("exact").double().eval()
    model.set_fused_attn(fused)
    tokens = torch.randint(1, 16, (2, 20))
    padded = F.pad(tokens, (0, 13))
    feats, mask = model.forward_features(tokens)
    feats_padded, mask_padded = model.forward_features(padded)
    torch.testing.assert_close(feats_padded[:, :20], feats, rtol=1e-10, atol=1e-12)
    assert mask_padded[:, 20:].sum() == 0
    torch.testing.assert_close(model(padded), model(tokens), rtol=1e-10, atol=1e-12)


def test_fused_and_explicit_exact_attention_agree():
    torch.manual_seed(0)
    model = tiny_model("exact").double().eval()
    tokens = torch.randint(0, 16, (2, 30))
    tokens[:, 0] = 1
    out = model(tokens)
    assert all(model.set_fused_attn(False).values())
    torch.testing.assert_close(model(tokens), out, rtol=1e-10, atol=1e-12)


def test_dual_encoder_for_retrieval():
    model = create_model("lra_retrieval", embed_dim=16, head_dim=8, mlp_hidden_dim=16, max_len=32)
    logits = model(torch.randint(1, 257, (3, 2, 32)))
    assert logits.shape == (3, 2) and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="pairs"):
        model(torch.randint(1, 257, (3, 32)))


def test_a_few_steps_reduce_the_loss_on_tiny_listops():
    torch.manual_seed(0)
    rows = generate_listops(**{**SMALL, "num_train": 32})["train"]
    tokens = [torch.tensor(tokenize_listops(s)) for s, _ in rows]
    batch = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True)
    labels = torch.tensor([label for _, label in rows])
    model = tiny_model("exact")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(batch), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_gflops_of_exact_attention_match_the_formula():
    """fvcore convention at a short length: linear layers + QK^T and AV of every head + the head."""
    n, dim, hidden, depth, heads, head_dim = 256, 64, 128, 2, 2, 32
    per_layer = n * (3 * dim * dim + dim * dim + 2 * dim * hidden) + 2 * heads * n * n * head_dim
    expected = (depth * per_layer + dim * hidden + hidden * 10) / 1e9
    assert lra_gflops("exact", seq_len=n) == pytest.approx(expected, rel=1e-9)
    assert lra_gflops("orthoformer", budget=16, seq_len=n) < expected
    assert lra_gflops("nystrom", budget=32, seq_len=n) < expected


# --- sequence classifier -------------------------------------------------------------------------------------------


def test_sequence_classifier_fits_a_listops_batch(tmp_path):
    import lightning as L

    from lightning_modules.sequence_classifier import SequenceClassifier

    dm = LRADataModule("listops", cache_dir=tmp_path, synthetic_params=SMALL, batch_size=8)
    module = SequenceClassifier(tiny_model("exact"), dm.num_classes, warmup_epochs=0.5)
    assert module.input_key == "input" and module.hparams.schedule == "linear"
    trainer = L.Trainer(fast_dev_run=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module, datamodule=dm)
    result = trainer.test(module, datamodule=dm, verbose=False)[0]
    assert 0.0 <= result["test/top1"] <= 1.0 and np.isfinite(result["test/loss"])


# --- Motionformer Table 5's ListOps column -------------------------------------------------------------------------


def table5_listops(scale, data_root):
    from experiments.harness.plan import resolve_runs

    return next(c for c in resolve_runs("mformer_table5", scale, rows=["exact"], data_root=data_root)
                if c.column == "ListOps")


def test_listops_reads_the_release_under_the_data_root_and_is_generated_without_it(tmp_path):
    """Table 5 at paper scale with --data-root: ListOps reads ``lra_listops/`` when it is there, and is generated
    locally when it is not (its column runs everywhere); tiny scale always generates its own small set. An
    incomplete release is an error naming the file, never replaced by a generated set."""
    from experiments.harness.plan import missing_data
    from experiments.harness.tasks import get_task

    absent = tmp_path / "absent"
    absent.mkdir()
    generated = table5_listops("paper", absent)
    assert generated.data.root is None and missing_data(generated) is None
    release = tmp_path / "release"
    write_fixtures(release / "lra_listops")
    read = table5_listops("paper", release)
    assert read.data.root == str(release / "lra_listops") and missing_data(read) is None
    assert table5_listops("tiny", release).data.root is None  # the size in its spec: generated
    (release / "lra_listops" / "listops-1000" / "basic_test.tsv").unlink()
    dm = get_task(read.data.task).datamodule(read, tmp_path)
    with pytest.raises(DataNotFoundError, match="basic_test.tsv"):
        dm.setup("test")


def test_a_listops_run_on_the_release_records_and_reports_the_release(tmp_path, monkeypatch, capsys):
    """`run mformer_table5 --scale paper --data-root DIR` with the LRA release under DIR/lra_listops/ trains on
    it: the record says its data was not generated and the cell names `lra_listops` alone."""
    import experiments.harness.runner as runner
    from experiments.__main__ import main

    monkeypatch.setattr(runner, "compute_static", lambda *a, **k: None)  # not what this test is about
    release = tmp_path / "release"
    write_fixtures(release / "lra_listops")
    code = main(["run", "mformer_table5", "--scale", "paper", "--rows", "exact", "--data-root", str(release),
                 "--accelerator", "cpu", "--precision", "32-true",  # the recipe's fp16 AMP needs a GPU
                 "--num-workers", "0", "--threads", "1", "--jobs", "1", "--no-progress-bar",
                 "--set", "trainer.max_steps=1", "--epochs", "1", "--runs-dir", str(tmp_path / "runs"),
                 "--reports-dir", str(tmp_path / "reports")])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"data: lra_listops from {release / 'lra_listops'}" in out
    record = json.loads((tmp_path / "runs/mformer_table5/exact/seed0/paper-listops/metrics.json").read_text())
    assert record["data"]["synthetic"] is False and record["config"]["data"]["root"] == str(release / "lra_listops")
    report = (tmp_path / "reports" / "mformer_table5.md").read_text()
    assert "(n=1; paper, lra_listops, CPU)" in report
    assert "- **ListOps** results come from `lra_listops` (the real dataset)." in report
