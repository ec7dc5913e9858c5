"""Where each pretrained weight lands, checked against formulas written here rather than the loader's own output.

- The image position table on a VideoViT grid: bicubic resampling of the (H, W) grid in row-major order (the
  official Motionformer forward's: plain ``F.interpolate`` bicubic, ``align_corners=False``, no antialiasing), the
  CLS slot left out of it, and for a joint table every frame a copy of the spatial table (official Motionformer
  ``slowfast/models/build.py``: ``st_embed[:, 1:] = pos_embed[:, 1:].repeat(1, T, 1)``,
  ``st_embed[:, 0] = pos_embed[:, 0]``).
- A patch kernel resampled to another patch size (timm's pseudo-inverse resize, FlexiViT): the new kernel embeds an
  upsampled patch as the old kernel embeds the original patch.
- ``strict_backbone``: every image-ViT weight family, removed from a checkpoint, stops the load naming it.
- An official Motionformer checkpoint saved from a DDP-wrapped model (``module.`` prefix) maps as the bare one.
- CAST's CLIP expert: a CLIP checkpoint lacking a block or pre-norm LayerNorm stops the load; a CLIP position table
  of another grid is resampled bicubically (timm's antialiased default), CLS slot kept.
"""

import re

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

import models  # noqa: F401  (repairs torchvision before timm is imported)
from models import checkpoint_filter_fn, create_model, load_pretrained
from tests.experiments.mformer.test_official import (
    F64,
    official_forward,
    official_state_dict,
    our_model,
    write_official,
)
from tests.models.cast.test_pretrained import DIM as CAST_DIM
from tests.models.cast.test_pretrained import PATCH as CAST_PATCH
from tests.models.cast.test_pretrained import SIZE as CAST_SIZE
from tests.models.cast.test_pretrained import clip_checkpoint, tiny_cast_model

EMBED, IMAGE_PATCH, IMAGE_SIZE = 64, 8, 32  # the image ViT: a 4 x 4 grid of 8 x 8 patches, as vit_tiny_video


def _image_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A timm image ViT's state dict with every tensor random (timm zero-inits biases and the head)."""
    torch.manual_seed(seed)
    vit = VisionTransformer(img_size=IMAGE_SIZE, patch_size=IMAGE_PATCH, embed_dim=EMBED, depth=2, num_heads=4,
                            num_classes=10)
    return {k: torch.randn_like(v) for k, v in vit.state_dict().items()}


def _bicubic_grid(table: torch.Tensor, old_side: int, new_side: int, antialias: bool) -> torch.Tensor:
    """(old_side**2, D) row-major grid -> (new_side**2, D) row-major grid, bicubic, in float64; PyTorch's antialiased
    cubic kernel differs from plain bicubic even when upsampling."""
    grid = table.double().reshape(old_side, old_side, -1).permute(2, 0, 1).unsqueeze(0)
    resized = F.interpolate(grid, size=(new_side, new_side), mode="bicubic", align_corners=False, antialias=antialias)
    return resized[0].permute(1, 2, 0).reshape(new_side * new_side, -1)


@pytest.mark.parametrize("pos_embed, img_size", [("joint", 32), ("separate", 48), ("joint", 48)],
                         ids=["joint_same_grid", "separate_resampled_4_to_6", "joint_resampled_4_to_6"])
def test_position_table_is_the_image_table_resampled_then_copied_to_every_frame(pos_embed, img_size):
    image = _image_state_dict()
    model = create_model("vit_tiny_video", img_size=img_size, pos_embed=pos_embed, depth=2, num_classes=10)
    pos = checkpoint_filter_fn(image, model)["pos_embed"][0].double()
    num_t, side = model.grid_size[0], img_size // IMAGE_PATCH
    spatial = _bicubic_grid(image["pos_embed"][0, 1:], IMAGE_SIZE // IMAGE_PATCH, side, antialias=False)
    frames = num_t if pos_embed == "joint" else 1
    assert pos.shape == (1 + frames * side * side, EMBED)
    torch.testing.assert_close(pos[0], image["pos_embed"][0, 0].double(), rtol=0, atol=0)  # CLS slot untouched
    for t in range(frames):  # token 1 + t * H*W + (row * W + col): frame t, row-major grid
        for n in range(side * side):
            torch.testing.assert_close(pos[1 + t * side * side + n], spatial[n], rtol=0, atol=1e-5,
                                       msg=f"frame {t}, patch {n}")


def test_patch_kernel_resampled_to_a_larger_patch_embeds_upsampled_patches_as_the_image_kernel():
    """Patch 8 -> 16 (timm's pseudo-inverse resize): <upsample(x), W16> = <x, W8> for any 8 x 8 patch x, where
    upsample is the resize the kernel was resampled for (bicubic, antialiased, as timm's default); the kernel then
    sits in the central temporal slice (1 of 2)."""
    image = _image_state_dict()
    model = create_model("vit_tiny_video", patch_size=16, depth=2, num_classes=10)
    kernel = checkpoint_filter_fn(image, model)["patch_embed.proj.weight"].double()
    assert kernel.shape == (EMBED, 3, 2, 16, 16) and not kernel[:, :, 0].any()
    patches = torch.randn(5, 3, 8, 8, dtype=F64, generator=torch.Generator().manual_seed(1))
    upsampled = F.interpolate(patches, size=(16, 16), mode="bicubic", align_corners=False, antialias=True)
    tokens_image = torch.einsum("bchw,dchw->bd", patches, image["patch_embed.proj.weight"].double())
    tokens_video = torch.einsum("bchw,dchw->bd", upsampled, kernel[:, :, 1])
    assert ((tokens_video - tokens_image).norm() / tokens_image.norm()).item() < 1e-3


BACKBONE_KEYS = ["patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed", "norm.weight",
                 "norm.bias", "blocks.1.norm1.weight", "blocks.1.norm2.bias", "blocks.1.attn.qkv.weight",
                 "blocks.1.attn.qkv.bias", "blocks.1.attn.proj.weight", "blocks.1.mlp.fc1.bias",
                 "blocks.1.mlp.fc2.weight"]


def test_every_image_backbone_weight_is_required(tmp_path):
    """A checkpoint lacking any backbone weight is not this architecture: the load stops naming the key, instead of
    leaving it at its random init (strict_backbone=False loads it and reports it missing)."""
    image = _image_state_dict()
    model = create_model("vit_tiny_video", depth=2, num_classes=10)
    for key in BACKBONE_KEYS:
        path = tmp_path / f"without_{key}.pth"
        torch.save({k: v for k, v in image.items() if k != key}, path)
        with pytest.raises(KeyError, match=f"lacks backbone weights .*{re.escape(key)}"):
            load_pretrained(model, path)
        assert key in load_pretrained(model, path, strict_backbone=False)["missing"]


def test_official_checkpoint_of_a_ddp_wrapped_model_computes_the_official_function(tmp_path):
    sd = official_state_dict(4, 2, 16, 5)
    path = write_official(tmp_path / "ddp.pyth", {f"module.{k}": v for k, v in sd.items()})
    model = our_model(4, 2, 16, 5)
    assert load_pretrained(model, f"official:{path}") == {"missing": [], "unexpected": []}
    video = torch.randn(2, 3, 4, 16, 16, dtype=F64, generator=torch.Generator().manual_seed(1))
    official = official_forward(sd, video, 2)
    assert ((model(video) - official).norm() / official.norm()).item() < 1e-10


@pytest.mark.parametrize("clip_key, expert_key", [
    ("visual.transformer.resblocks.0.ln_1.weight", "blocks.0.norm1.weight"),
    ("visual.transformer.resblocks.1.ln_2.bias", "blocks.1.norm2.bias"),
    ("visual.ln_pre.weight", "norm_pre.weight")])
def test_clip_checkpoint_lacking_a_layernorm_of_the_frozen_expert_stops(tmp_path, clip_key, expert_key):
    """Only adapters, AIM's time embedding and the pooled ``norm`` may stay at init; a block LayerNorm may not."""
    sd = clip_checkpoint()
    del sd[clip_key]
    torch.save(sd, tmp_path / "clip.pt")
    with pytest.raises(KeyError, match=rf"lacks expert weights, first: \['{re.escape(expert_key)}'"):
        load_pretrained(tiny_cast_model().spatial, f"clip:{tmp_path / 'clip.pt'}")


def test_clip_position_table_of_another_grid_is_resampled_bicubically(tmp_path):
    """A 2 x 2 CLIP table into a 3 x 3 expert (img 24): the grid resampled bicubically in row-major order, CLS kept."""
    sd = clip_checkpoint()
    torch.save(sd, tmp_path / "clip.pt")
    expert = tiny_cast_model(img_size=24).spatial
    load_pretrained(expert, f"clip:{tmp_path / 'clip.pt'}")
    pos = expert.pos_embed.detach()[0].double()
    table = sd["visual.positional_embedding"]
    assert pos.shape == (1 + 9, CAST_DIM)
    torch.testing.assert_close(pos[0], table[0].double(), rtol=0, atol=0)
    expected = _bicubic_grid(table[1:], CAST_SIZE // CAST_PATCH, 3, antialias=True)
    torch.testing.assert_close(pos[1:], expected, rtol=0, atol=1e-5)
