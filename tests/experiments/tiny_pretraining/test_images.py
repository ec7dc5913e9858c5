"""The tiny scale's image pretraining (docs/tiny_regime_design.md): its backbones load into the video models
through the paper-scale loader, its sources name the shipped file by digest, and the shipped weights are what their
records say, trained to the end of their decay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from experiments.harness.tasks import check_source_early
from experiments.tiny_pretraining.images import (
    ARCHITECTURES,
    CAST_EXPERT_STRUCTURES,
    TINY_PRETRAINED,
    file_digest,
    image_backbone,
    image_part,
    pretrain_image_backbone,
    resolve_tiny_image_source,
    tiny_image_source,
    weights_path,
)
from models import create_model, load_pretrained
from models.pretrained import inflate_patch_embed

MAX_SHIPPED_BYTES = 3_000_000  # the design's bound (amendment 1)
CONVERGED = 0.01  # the last epoch's validation loss within this of the best (the design's check)


VIDEO_ARCHITECTURES = [arch for arch in ARCHITECTURES if arch not in CAST_EXPERT_STRUCTURES]


@pytest.mark.parametrize("arch", VIDEO_ARCHITECTURES)
def test_a_backbone_in_timms_layout_loads_into_its_video_model(arch, tmp_path):
    torch.manual_seed(0)
    backbone = image_backbone(arch, num_classes=64)
    path = tmp_path / f"{arch}.safetensors"
    save_file(backbone.state_dict(), str(path))
    video = create_model(arch, num_classes=12)
    loaded = load_pretrained(video, str(path))  # strict_backbone: every backbone weight must be there
    assert loaded["unexpected"] == [] and {"head.weight", "head.bias"} <= set(loaded["missing"])
    image, ours = backbone.state_dict(), video.state_dict()
    for key in ("cls_token", "blocks.0.attn.qkv.weight", f"blocks.{len(video.blocks) - 1}.mlp.fc2.bias",
                "norm.weight"):
        assert torch.equal(ours[key], image[key]), key
    kernel = image["patch_embed.proj.weight"]
    assert torch.equal(ours["patch_embed.proj.weight"], inflate_patch_embed(kernel, video.patch_embed.tubelet_size))


@pytest.mark.parametrize("arch", sorted(CAST_EXPERT_STRUCTURES))
def test_each_spatial_stand_in_is_cast_spatial_expert_frame_by_frame(arch, tmp_path):
    """CAST's tiny spatial experts, in CLIP's structure (LayerNorm before the blocks, QuickGELU, epsilon 1e-5, no
    patch bias) and in the ImageNet-21K ViT's (none before the blocks, GELU, 1e-6, a patch bias): the timm backbone's
    weights load into each with nothing missing, and in float64 its class token after the last LayerNorm equals the
    backbone's on each frame the expert reads (frames 1, 3, 5, 7)."""
    torch.manual_seed(0)
    backbone = image_backbone(arch, num_classes=64).double().eval()
    path = tmp_path / f"{arch}.safetensors"
    save_file(backbone.state_dict(), str(path))
    expert = image_part(arch).double().eval()
    loaded = load_pretrained(expert, f"vit:{path}")
    assert loaded == {"missing": [], "unexpected": []}
    video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        ours = expert.norm(expert.forward_features(video)[:, 0]).reshape(2, 4, -1)
        theirs = torch.stack([backbone.forward_features(video[:, :, t])[:, 0] for t in (1, 3, 5, 7)], dim=1)
    assert (ours - theirs).abs().max() / theirs.abs().max() < 1e-12


def test_a_source_names_the_file_by_digest_and_refuses_another(tmp_path):
    arch = "vit_tiny_video"
    assert tiny_image_source(arch, tmp_path) == f"tiny_image:{arch}"
    with pytest.raises(FileNotFoundError, match=f"python -m experiments pretrain-images {arch}"):
        resolve_tiny_image_source(arch, tmp_path)
    path = weights_path(arch, tmp_path)
    save_file({"cls_token": torch.zeros(1, 1, 64)}, str(path))
    source = tiny_image_source(arch, tmp_path)
    assert source == f"tiny_image:{arch}@{file_digest(path)[:12]}"
    assert resolve_tiny_image_source(source.split(":", 1)[1], tmp_path) == str(path)
    save_file({"cls_token": torch.ones(1, 1, 64)}, str(path))
    with pytest.raises(ValueError, match="has changed since this run was configured"):
        resolve_tiny_image_source(source.split(":", 1)[1], tmp_path)
    with pytest.raises(ValueError, match="no tiny image backbone 'vit_base'"):
        resolve_tiny_image_source("vit_base", tmp_path)


@pytest.mark.slow
def test_pretraining_writes_loadable_weights_and_a_record_of_every_epoch(tmp_path):
    path = pretrain_image_backbone("vit_tiny_video", tmp_path / "out", epochs=2, num_train=256, num_val=128,
                                   batch_size=64, cache_dir=tmp_path / "cache")
    record = json.loads(path.with_suffix(".json").read_text())
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and record["epochs_trained"] == 2
    assert record["sha256"] == file_digest(path) and record["schedule"]["cosine_over_epochs"] == 2
    video = create_model("vit_tiny_video", num_classes=6)
    load_pretrained(video, str(path))
    assert torch.equal(video.state_dict()["cls_token"], load_file(str(path))["cls_token"])


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_shipped_weights_are_what_their_record_says(arch):
    path = weights_path(arch, TINY_PRETRAINED)
    record = json.loads(path.with_suffix(".json").read_text())
    assert path.stat().st_size < MAX_SHIPPED_BYTES
    assert record["sha256"] == file_digest(path) and record["arch"] == arch
    losses = [epoch["val_loss"] for epoch in record["epochs"]]
    assert len(losses) == record["schedule"]["cosine_over_epochs"] == record["epochs_trained"]
    assert losses[-1] <= min(losses) + CONVERGED  # trained to the end of a decay that has flattened
    assert record["git_commit"] and not record["git_commit"].endswith("-dirty")
    load_pretrained(image_part(arch) if arch in CAST_EXPERT_STRUCTURES else create_model(arch, num_classes=12),
                    str(path))


def test_every_shipped_file_has_its_record_and_nothing_else_lies_there():
    """The image stand-ins and CAST's temporal experts (tests/experiments/cast/test_shipped_experts.py)."""
    from experiments.cast.shipped import SHIPPED, shipped_path

    names = {p.name for p in Path(TINY_PRETRAINED).iterdir()}
    stems = [*ARCHITECTURES, *(shipped_path(name).stem for name in SHIPPED)]
    assert names == {f"{stem}{suffix}" for stem in stems for suffix in (".safetensors", ".json")}


def test_a_tiny_image_source_is_checked_before_anything_trains():
    assert check_source_early("timm:vit_base_patch16_224") is False  # left to models.sources.check_source
    with pytest.raises(ValueError, match="no tiny image backbone 'vit_base'"):
        check_source_early("tiny_image:vit_base")
    assert check_source_early(tiny_image_source("vit_tiny_video")) is True  # the shipped file is there


def test_every_tiny_run_that_starts_from_an_image_backbone_starts_from_its_own():
    """A row that changes the tiny model (Table 7's ViT-L stand-in) must name that model's backbone too: another
    architecture's file fails only when its weights load, after the table's other runs have trained."""
    from experiments.harness.plan import resolve_runs
    from experiments.harness.spec import registered_specs, table_spec

    checked = 0
    for table in registered_specs():
        if "tiny" not in table_spec(table).scales:  # paper scale only (msca_tokshift_sizes)
            continue
        for cfg in resolve_runs(table, "tiny"):
            source = cfg.model.pretrained
            if isinstance(source, str) and source.startswith("tiny_image:"):
                assert source.split(":", 1)[1].partition("@")[0] == cfg.model.name, (table, cfg.row, source)
                checked += 1
    assert checked  # the tables at tiny scale start from these backbones
