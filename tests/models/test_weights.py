"""Checkpoints from strangers: a pickle that would run code is refused by name, and weights of another model or
shape stop the load, naming the first mismatching keys, instead of leaving parameters at their random init."""

import pickle

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before timm is imported)
from experiments.harness.run_dir import RunDir
from models import create_model, load_pretrained
from models.weights import CheckpointError, UnsafeCheckpointError, load_weights_file


class _RunsCode:
    """Unpickling this calls ``open(marker, "w")``: the file appearing proves the pickle ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _malicious_files(tmp_path):
    """The same attack as a raw pickle and as a torch.save file (zip format), both with a plausible layout."""
    marker = tmp_path / "code_ran"
    raw = tmp_path / "raw_pickle.pth"
    with open(raw, "wb") as f:
        pickle.dump({"state_dict": {"cls_token": _RunsCode(marker)}}, f)
    zipped = tmp_path / "torch_save.ckpt"
    torch.save({"state_dict": {"cls_token": _RunsCode(marker)}, "pytorch-lightning_version": "2.6"}, zipped)
    return marker, [raw, zipped]


def test_a_pickle_that_would_run_code_is_refused_by_name(tmp_path):
    marker, files = _malicious_files(tmp_path)
    model = create_model("vit_tiny_video", num_classes=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for path in files:
        with pytest.raises(UnsafeCheckpointError, match=str(path)):
            load_pretrained(model, path)
        with pytest.raises(UnsafeCheckpointError, match="refused"):
            load_weights_file(path)
    assert not marker.exists(), "unpickling ran the checkpoint's code"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("kind", ["clip:", "videomae:", "vit:", ""])
def test_a_cast_expert_source_refuses_a_pickle_that_would_run_code(tmp_path, kind):
    """CAST's experts read their files through the same loader as every other model."""
    marker, files = _malicious_files(tmp_path)
    expert = create_model("cast_tiny", num_classes={"verb": 3, "noun": 4}).get_submodule("temporal")
    for path in files:
        with pytest.raises(UnsafeCheckpointError, match=str(path)):
            load_pretrained(expert, f"{kind}{path}")
    assert not marker.exists(), "unpickling ran the checkpoint's code"


def test_a_resumed_run_refuses_a_malicious_last_checkpoint(tmp_path):
    """The runner resumes from ``last.ckpt`` through Lightning with ``weights_only=True``: a planted checkpoint
    stops the run with the file's name and never runs its code."""
    from experiments.harness.plan import resolve_runs
    from experiments.harness.runner import execute

    micro = {"optim": {"epochs": 1, "warmup_epochs": 0},
             "data": {"synthetic_params": {"num_train": 16, "num_val": 8, "seed": 0}, "num_workers": 0,
                      "batch_size": 8}}
    cfg = resolve_runs("mformer_table4", rows=["joint"], overrides=micro)[0]
    runs = tmp_path / "runs"
    last = RunDir.of(cfg, runs).path / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    marker = tmp_path / "code_ran"
    torch.save({"state_dict": {}, "loops": _RunsCode(marker)}, last)
    with pytest.raises(UnsafeCheckpointError, match=str(last)):
        execute(cfg, runs, progress_bar=False, echo=lambda _: None)
    assert not marker.exists()
    assert not (RunDir.of(cfg, runs).path / "metrics.json").exists()


def test_plain_tensors_still_load(tmp_path):
    source = create_model("vit_tiny_video", num_classes=4)
    path = tmp_path / "weights.pth"
    torch.save({"model": source.state_dict(), "epoch": 3, "note": "plain containers are fine"}, path)
    model = create_model("vit_tiny_video", num_classes=4)
    load_pretrained(model, path)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in model.state_dict().items())


def test_weights_of_another_model_stop_the_load_and_name_keys(tmp_path):
    model = create_model("vit_tiny_video", num_classes=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    other = tmp_path / "resnet.pth"  # no key in common with a ViT
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7), "bn1.weight": torch.ones(8), "fc.weight": torch.zeros(4, 8)},
               other)
    with pytest.raises(KeyError, match=r"none of the model's parameters.*conv1\.weight.*cls_token"):
        load_pretrained(model, other)
    with pytest.raises(KeyError, match="none of the model's parameters"):
        load_pretrained(model, other, strict_backbone=False)  # never "load" nothing and carry on

    wider = tmp_path / "wider.pth"  # same layout, another width: every tensor has the wrong shape
    torch.save(create_model("vit_tiny_video", num_classes=4, embed_dim=96).state_dict(), wider)
    with pytest.raises(ValueError, match=r"does not fit the model: cls_token: checkpoint \(1, 1, 96\) vs model "
                                         r"\(1, 1, 64\).* and \d+ more"):
        load_pretrained(model, wider)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_trained_run_of_another_variant_is_not_half_loaded(tmp_path):
    """A run's Lightning checkpoint is a whole model: loading a divided-attention run into a trajectory model would
    leave the trajectory projections random, so it stops and names them. Another class count (the head) is fine."""
    divided = create_model("vit_tiny_video", num_classes=4, attn_layer="divided")
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in divided.state_dict().items()},
                "pytorch-lightning_version": "2.6.6", "epoch": 0}, ckpt)
    trajectory = create_model("vit_tiny_video", num_classes=4, attn_layer="trajectory")
    with pytest.raises(KeyError, match=r"another model variant: it lacks blocks\.0\.attn\.proj_q\.weight"):
        load_pretrained(trajectory, ckpt)
    same_variant = create_model("vit_tiny_video", num_classes=7, attn_layer="divided")
    result = load_pretrained(same_variant, ckpt)
    assert set(result["missing"]) == {"head.weight", "head.bias"}


def test_every_load_in_the_repository_is_weights_only():
    """No module loads a checkpoint any other way: every torch.load and every Lightning call given a ``ckpt_path``
    passes weights_only=True, and nothing calls ``load_from_checkpoint`` or ``torch.jit.load``, which runs an
    archive's code (a grep, so a new unsafe call fails)."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    offenders = []
    for package in ("data", "models", "lightning_modules", "experiments", "reports"):
        for path in (repo / package).glob("**/*.py"):
            text = path.read_text()
            calls = re.findall(r"torch\.load\([^)]*\)|\w+\([^()]*ckpt_path=[^()]*\)|load_from_checkpoint\(|"
                               r"jit\.load\(", text)
            offenders += [f"{path.relative_to(repo)}: {c}" for c in calls if "weights_only=True" not in c]
    assert not offenders, offenders


def test_a_file_that_is_no_checkpoint_is_named_with_what_it_is(tmp_path):
    model = create_model("vit_tiny_video", num_classes=4)
    whole = tmp_path / "whole.pt"
    torch.save(model.state_dict(), whole)
    cases = {"notes.pt": b"hello", "config.json": b'{"lr": 0.1}', "truncated.pt": whole.read_bytes()[:1000]}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    expected = {"notes.pt": "not a readable PyTorch checkpoint",
                "config.json": r"not a PyTorch checkpoint \(Unsupported",
                "truncated.pt": "not a readable PyTorch checkpoint", "tensor.pt": r"holds no state dict \(Tensor\)",
                "absent.pt": "does not exist"}
    for name, message in expected.items():
        with pytest.raises(CheckpointError, match=rf"{tmp_path / name}.*{message}|{message}.*{tmp_path / name}"):
            load_pretrained(model, tmp_path / name)


def test_the_command_line_refuses_a_missing_checkpoint_or_a_timm_typo_before_anything_runs(tmp_path, capsys):
    from experiments.__main__ import main

    for source, message in [(str(tmp_path / "absent.pt"), f"pretrained checkpoint {tmp_path / 'absent.pt'} does not "
                                                          f"exist"),
                            ("timm:vit_bse_patch16_224", "timm:vit_bse_patch16_224: timm has no such model; did you "
                                                         "mean vit_base_patch16_224")]:
        for extra in (["--dry-run"], ["--runs-dir", str(tmp_path / "runs")]):
            assert main(["run", "mformer_table4", "--rows", "joint", "--seeds", "1", "--pretrained", source,
                         *extra]) == 2
            assert message in capsys.readouterr().err
    assert not (tmp_path / "runs" / "mformer_table4" / "joint").exists()  # no run started


def test_a_checkpoint_in_the_legacy_format_is_read_when_mapping_is_asked(tmp_path):
    """``mmap`` needs torch's zip format: a file saved in the older format is read whole instead of refused."""
    torch.save({"w": torch.ones(2)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert torch.equal(load_weights_file(tmp_path / "legacy.pt", mmap=True)["w"], torch.ones(2))
