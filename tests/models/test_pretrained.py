"""Loading a timm image ViT into VideoViT: names, inflation, resampling, and end-to-end equivalence."""

import logging

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

import models  # noqa: F401  (repairs torchvision before timm is imported)
from models import checkpoint_filter_fn, create_model, load_pretrained
from models.pretrained import inflate_patch_embed


@pytest.fixture(scope="module")
def image_vit() -> VisionTransformer:
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=4, num_classes=10)
    with torch.no_grad():  # timm zero-inits biases and the head; randomise so equalities are not vacuous
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.fixture
def checkpoint(image_vit, tmp_path):
    path = tmp_path / "image_vit.pth"
    torch.save(image_vit.state_dict(), path)
    return path


@pytest.mark.parametrize("attn_layer", ["trajectory", "divided"])
def test_backbone_weights_load(image_vit, checkpoint, attn_layer):
    model = create_model("vit_tiny_video", attn_layer=attn_layer, num_classes=10)
    result = load_pretrained(model, checkpoint)
    image, video = image_vit.state_dict(), model.state_dict()
    for key in ["blocks.0.attn.qkv.weight", "blocks.3.attn.qkv.bias", "blocks.2.attn.proj.weight",
                "blocks.1.norm1.weight", "blocks.1.mlp.fc1.weight", "blocks.3.mlp.fc2.bias", "norm.bias",
                "cls_token", "pos_embed", "head.weight"]:
        torch.testing.assert_close(video[key], image[key], rtol=0, atol=0, msg=key)

    # Central-frame inflation: the 2-D kernel in slice tubelet_size // 2 = 1, zeros in slice 0.
    kernel = video["patch_embed.proj.weight"]
    assert kernel.shape == (64, 3, 2, 8, 8)
    torch.testing.assert_close(kernel[:, :, 1], image["patch_embed.proj.weight"], rtol=0, atol=0)
    assert not kernel[:, :, 0].any()

    # Exactly the parameters an image ViT lacks are left at init; nothing of the checkpoint is unused.
    new = {"attn.proj_q", "attn.proj_kv"} if attn_layer == "trajectory" else {"attn.temporal_qkv", "attn.temporal_proj"}
    assert set(result["missing"]) == {"time_embed"} | {f"blocks.{i}.{n}.{w}" for i in range(4) for n in new
                                                        for w in ("weight", "bias")}
    assert result["unexpected"] == []


@pytest.mark.parametrize("tubelet_init", ["central", "official", "average"])
def test_inflated_patch_embedding(image_vit, checkpoint, tubelet_init):
    """"average": a tubelet of identical frames embeds like one frame; "central" and "official": any tubelet
    embeds like its second frame (index 1 of 2)."""
    model = create_model("vit_tiny_video", num_classes=10)
    load_pretrained(model, checkpoint, tubelet_init=tubelet_init)
    frames = torch.randn(1, 3, 8, 32, 32)
    if tubelet_init == "average":
        frames = frames[:, :, :1].expand(-1, -1, 8, -1, -1)
    tokens, thw = model.patch_embed(frames)
    assert thw == (4, 4, 4)
    for t in range(4):
        expected = image_vit.patch_embed(frames[:, :, 2 * t + 1])  # (1, 16, 64) tokens of the central frame
        torch.testing.assert_close(tokens[:, 16 * t:16 * (t + 1)], expected, rtol=1e-5, atol=1e-5)


def test_official_tubelet_init_is_the_papers_central_frame():
    """The official code (slowfast/models/build.py) zero-fills the tubelet kernel and writes the 2-D kernel to
    slice math.floor(depth / 2); the paper's "central frame" is ViViT's floor(depth / 2): the same slice at every
    depth, the second one for 2-frame tubelets."""
    weight = torch.randn(8, 3, 4, 4)
    for depth in range(1, 5):
        official = inflate_patch_embed(weight, depth, "official")
        torch.testing.assert_close(official, inflate_patch_embed(weight, depth, "central"), rtol=0, atol=0)
        nonzero = [t for t in range(depth) if official[:, :, t].any()]
        assert nonzero == [depth // 2], depth
        torch.testing.assert_close(official[:, :, depth // 2], weight, rtol=0, atol=0)
    assert inflate_patch_embed(weight, 2, "official")[:, :, 1].equal(weight)  # the second temporal slice
    model = create_model("vit_tiny_video", num_classes=10)
    with pytest.raises(ValueError, match="tubelet_init must be one of"):
        checkpoint_filter_fn({}, model, tubelet_init="second")


def test_single_tubelet_joint_model_equals_image_model(image_vit, checkpoint):
    """With one tubelet (T = 1) joint attention is the image ViT: loaded weights must give the same logits."""
    model = create_model("vit_tiny_video", attn_layer="joint", num_frames=2, num_classes=10).eval()
    load_pretrained(model, checkpoint)
    video = torch.randn(2, 3, 2, 32, 32)
    torch.testing.assert_close(model(video), image_vit(video[:, :, 1]), rtol=1e-5, atol=1e-5)


def test_resample_tile_and_drop_head(image_vit, checkpoint, caplog):
    model = create_model("vit_tiny_video", img_size=48, pos_embed="joint", num_classes=5)
    with caplog.at_level(logging.INFO, logger="models.pretrained"):
        result = load_pretrained(model, checkpoint)
    assert "resampling pos_embed grid (4, 4) -> (6, 6)" in caplog.text
    assert "tiling" in caplog.text and "dropping head.weight" in caplog.text
    assert {"head.weight", "head.bias"} <= set(result["missing"])
    pos = model.pos_embed.detach()
    assert pos.shape == (1, 1 + 4 * 36, 64)
    torch.testing.assert_close(pos[:, :1], image_vit.pos_embed[:, :1].detach())
    for t in range(1, 4):  # every frame starts from the same (resampled) spatial table
        torch.testing.assert_close(pos[:, 1 + 36 * t:1 + 36 * (t + 1)], pos[:, 1:37], rtol=0, atol=0)


def test_a_joint_video_table_is_never_read_as_a_square_image_grid(tmp_path, caplog):
    """A joint table of 4 frames of 4x4 patches has 1 + 64 = 1 + 8*8 rows: read as one image's 8x8 grid it would be
    resampled to 4x4 (and tiled over time for a joint model) without any error. Only a table of the model's shape
    loads from a video checkpoint without time_embed; a separate-layout video checkpoint's table is an image's."""
    torch.manual_seed(0)
    joint = create_model("vit_tiny_video", pos_embed="joint", num_classes=4)
    assert joint.pos_embed.shape == (1, 1 + 4 * 4 * 4, 64)
    path = tmp_path / "joint.pth"
    torch.save(joint.state_dict(), path)
    for other in (dict(pos_embed="separate"), dict(pos_embed="joint", num_frames=16)):
        with pytest.raises(ValueError, match=rf"checkpoint {path}: pos_embed \(1, 65, 64\) of a video checkpoint "
                                             r"without time_embed .* differs from the model's"):
            load_pretrained(create_model("vit_tiny_video", num_classes=4, **other), path)
    same = create_model("vit_tiny_video", pos_embed="joint", num_classes=4)
    load_pretrained(same, path)
    torch.testing.assert_close(same.pos_embed, joint.pos_embed, rtol=0, atol=0)

    separate = create_model("vit_tiny_video", pos_embed="separate", num_classes=4)
    with torch.no_grad():
        separate.pos_embed.normal_()
    torch.save(separate.state_dict(), path)
    larger = create_model("vit_tiny_video", pos_embed="separate", img_size=48, num_classes=4)
    with caplog.at_level(logging.INFO, logger="models.pretrained"):
        load_pretrained(larger, path)
    assert "resampling pos_embed grid (4, 4) -> (6, 6)" in caplog.text
    torch.testing.assert_close(larger.pos_embed[:, :1], separate.pos_embed[:, :1], rtol=0, atol=0)


def test_filter_is_pure(image_vit):
    state_dict = image_vit.state_dict()
    snapshot = {k: v.clone() for k, v in state_dict.items()}
    model = create_model("vit_tiny_video", num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = checkpoint_filter_fn(state_dict, model)
    assert out is not state_dict and out["patch_embed.proj.weight"].ndim == 5
    assert all(torch.equal(v, snapshot[k]) for k, v in state_dict.items())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_nested_safetensors_and_missing_backbone(image_vit, tmp_path):
    from safetensors.torch import save_file

    model = create_model("vit_tiny_video", num_classes=10)
    nested = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in image_vit.state_dict().items()}, "epoch": 3}, nested)
    load_pretrained(model, nested)
    torch.testing.assert_close(model.blocks[0].attn.qkv.weight, image_vit.blocks[0].attn.qkv.weight)

    partial = {k: v.contiguous() for k, v in image_vit.state_dict().items() if "blocks.2.mlp.fc1" not in k}
    save_file(partial, tmp_path / "partial.safetensors")
    with pytest.raises(KeyError, match="blocks.2.mlp.fc1.weight"):
        load_pretrained(model, tmp_path / "partial.safetensors")
    result = load_pretrained(model, tmp_path / "partial.safetensors", strict_backbone=False)
    assert "blocks.2.mlp.fc1.weight" in result["missing"]


def test_timm_source_fetches_pretrained_weights(image_vit, monkeypatch):
    """``"timm:<name>"`` asks timm for pretrained weights (stubbed here: tests never reach a hub)."""
    import timm

    calls = []

    def fake_create_model(name, pretrained=False, **kwargs):
        calls.append((name, pretrained))
        return image_vit

    monkeypatch.setattr(timm, "create_model", fake_create_model)
    model = create_model("vit_tiny_video", num_classes=10)
    load_pretrained(model, "timm:vit_tiny_patch16_224")
    assert calls == [("vit_tiny_patch16_224", True)]
    torch.testing.assert_close(model.norm.weight, image_vit.norm.weight)
