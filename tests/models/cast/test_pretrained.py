"""CAST's experts from checkpoints the tests write in each source's own key layout (OpenAI CLIP, official
VideoMAE fine-tuned and pretraining, our own), checked against literal re-implementations of the source models'
forward passes written from their released code."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models import create_model, load_pretrained
from models.cast import build_expert
from models.weights import UnsafeCheckpointError

DIM, HEADS, DEPTH, PATCH, SIZE, FRAMES = 16, 2, 2, 8, 16, 4  # 2 x 2 patches, 2 time steps
TINY = dict(img_size=SIZE, num_frames=FRAMES, patch_size=PATCH, embed_dim=DIM, depth=DEPTH, num_heads=HEADS)


def _rand(*shape: int) -> Tensor:
    return torch.randn(*shape) * 0.2


def clip_checkpoint() -> dict[str, Tensor]:
    """A tiny OpenAI CLIP state dict: the visual tower under ``visual.``, plus text-tower keys to be ignored."""
    sd = {"visual.conv1.weight": _rand(DIM, 3, PATCH, PATCH), "visual.class_embedding": _rand(DIM),
          "visual.positional_embedding": _rand(1 + (SIZE // PATCH) ** 2, DIM),
          "visual.ln_pre.weight": 1 + _rand(DIM), "visual.ln_pre.bias": _rand(DIM),
          "visual.ln_post.weight": 1 + _rand(DIM), "visual.ln_post.bias": _rand(DIM), "visual.proj": _rand(DIM, 8),
          "token_embedding.weight": _rand(10, 8), "logit_scale": torch.tensor(4.6)}
    for i in range(DEPTH):
        p = f"visual.transformer.resblocks.{i}."
        sd |= {p + "ln_1.weight": 1 + _rand(DIM), p + "ln_1.bias": _rand(DIM),
               p + "attn.in_proj_weight": _rand(3 * DIM, DIM), p + "attn.in_proj_bias": _rand(3 * DIM),
               p + "attn.out_proj.weight": _rand(DIM, DIM), p + "attn.out_proj.bias": _rand(DIM),
               p + "ln_2.weight": 1 + _rand(DIM), p + "ln_2.bias": _rand(DIM),
               p + "mlp.c_fc.weight": _rand(4 * DIM, DIM), p + "mlp.c_fc.bias": _rand(4 * DIM),
               p + "mlp.c_proj.weight": _rand(DIM, 4 * DIM), p + "mlp.c_proj.bias": _rand(DIM)}
    return sd


def _clip_reference(sd: dict[str, Tensor], video: Tensor) -> tuple[Tensor, Tensor]:
    """OpenAI's ``VisionTransformer.forward`` (LND layout, ``nn.MultiheadAttention``, QuickGELU, eps 1e-5) on frames
    1, 3, ... of ``video``: all tokens before ``ln_post`` (B*T, 1 + N, D), and ln_post of the mean class token."""
    sd = {k: v.double() for k, v in sd.items()}
    b = video.shape[0]
    frames = video[:, :, 1::2].transpose(1, 2).reshape(-1, 3, SIZE, SIZE)
    x = F.conv2d(frames, sd["visual.conv1.weight"], stride=PATCH).flatten(2).permute(0, 2, 1)
    x = torch.cat([sd["visual.class_embedding"] + torch.zeros(x.shape[0], 1, DIM, dtype=x.dtype), x], dim=1)
    x = F.layer_norm(x + sd["visual.positional_embedding"], (DIM,), sd["visual.ln_pre.weight"],
                     sd["visual.ln_pre.bias"], 1e-5).permute(1, 0, 2)
    for i in range(DEPTH):
        p = f"visual.transformer.resblocks.{i}."
        mha = nn.MultiheadAttention(DIM, HEADS).double()
        mha.in_proj_weight.data, mha.in_proj_bias.data = sd[p + "attn.in_proj_weight"], sd[p + "attn.in_proj_bias"]
        mha.out_proj.weight.data, mha.out_proj.bias.data = sd[p + "attn.out_proj.weight"], sd[p + "attn.out_proj.bias"]
        h = F.layer_norm(x, (DIM,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"], 1e-5)
        x = x + mha(h, h, h, need_weights=False)[0]
        h = F.layer_norm(x, (DIM,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"], 1e-5)
        h = F.linear(h, sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"])
        x = x + F.linear(h * torch.sigmoid(1.702 * h), sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"])
    x = x.permute(1, 0, 2)
    cls = x[:, 0].reshape(b, -1, DIM).mean(dim=1)
    return x, F.layer_norm(cls, (DIM,), sd["visual.ln_post.weight"], sd["visual.ln_post.bias"], 1e-5)


def _videomae_checkpoint(pretraining: bool) -> dict:
    """A tiny official VideoMAE checkpoint: fine-tuned (``fc_norm``, ``head``) or pretraining (``encoder.``
    prefix, final ``norm``, a decoder), nested under ``model`` as the official scripts save it."""
    grid = (FRAMES // 2) * (SIZE // PATCH) ** 2
    sd = {"patch_embed.proj.weight": _rand(DIM, 3, 2, PATCH, PATCH), "patch_embed.proj.bias": _rand(DIM)}
    for i in range(DEPTH):
        p = f"blocks.{i}."
        sd |= {p + "norm1.weight": 1 + _rand(DIM), p + "norm1.bias": _rand(DIM),
               p + "attn.qkv.weight": _rand(3 * DIM, DIM), p + "attn.q_bias": _rand(DIM), p + "attn.v_bias": _rand(DIM),
               p + "attn.proj.weight": _rand(DIM, DIM), p + "attn.proj.bias": _rand(DIM),
               p + "norm2.weight": 1 + _rand(DIM), p + "norm2.bias": _rand(DIM),
               p + "mlp.fc1.weight": _rand(4 * DIM, DIM), p + "mlp.fc1.bias": _rand(4 * DIM),
               p + "mlp.fc2.weight": _rand(DIM, 4 * DIM), p + "mlp.fc2.bias": _rand(DIM)}
    if pretraining:
        sd |= {"norm.weight": 1 + _rand(DIM), "norm.bias": _rand(DIM)}
        sd = {"encoder." + k: v for k, v in sd.items()}
        sd |= {"decoder.blocks.0.norm1.weight": _rand(8), "mask_token": _rand(1, 1, 8),
               "encoder_to_decoder.weight": _rand(8, DIM), "decoder.pos_embed": _rand(1, grid, 8)}
    else:
        sd |= {"fc_norm.weight": 1 + _rand(DIM), "fc_norm.bias": _rand(DIM), "norm.weight": torch.ones(DIM),
               "head.weight": _rand(5, DIM), "head.bias": _rand(5)}
    return {"model": sd, "epoch": 3}


def official_sinusoid(n_position: int, d_hid: int) -> Tensor:
    """VideoMAE's ``get_sinusoid_encoding_table``, transcribed."""
    table = torch.tensor([[pos / math.pow(10000, 2 * (j // 2) / d_hid) for j in range(d_hid)]
                          for pos in range(n_position)], dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = torch.sin(table[:, 0::2]), torch.cos(table[:, 1::2])
    return table.unsqueeze(0)


def _videomae_reference(sd: dict[str, Tensor], video: Tensor) -> tuple[Tensor, Tensor]:
    """Official VideoMAE ``VisionTransformer.forward_features`` (q/v biases, GELU, eps 1e-6): all tokens (B, T*N, D),
    and the official CAST's pooled feature ``vmae_fc_norm(t_x.mean(1))``, whose LayerNorm no checkpoint key fills
    (``load_bidir_weights``): the identity affine at the start."""
    prefix = "encoder." if "encoder.patch_embed.proj.weight" in sd else ""
    sd = {k.removeprefix(prefix): v.double() for k, v in sd.items()}
    x = F.conv3d(video, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=(2, PATCH, PATCH))
    x = x.flatten(2).transpose(1, 2)
    x = x + official_sinusoid(x.shape[1], DIM)
    b, n, _ = x.shape
    for i in range(DEPTH):
        p = f"blocks.{i}."
        h = F.layer_norm(x, (DIM,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], 1e-6)
        bias = torch.cat([sd[p + "attn.q_bias"], torch.zeros_like(sd[p + "attn.v_bias"]), sd[p + "attn.v_bias"]])
        qkv = F.linear(h, sd[p + "attn.qkv.weight"], bias).reshape(b, n, 3, HEADS, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * (DIM // HEADS) ** -0.5, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, DIM)
        x = x + F.linear(out, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        h = F.layer_norm(x, (DIM,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], 1e-6)
        h = F.linear(F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                     sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        x = x + h
    return x, F.layer_norm(x.mean(1), (DIM,), eps=1e-6)


def _rel_err(a: Tensor, b: Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def tiny_cast_model(**overrides):
    torch.manual_seed(0)
    return create_model("cast_tiny", num_classes={"verb": 3, "noun": 4}, **{**TINY, **overrides})


def test_clip_checkpoint_in_openai_layout(tmp_path) -> None:
    sd = clip_checkpoint()
    path = tmp_path / "ViT-tiny.pt"
    torch.save(sd, path)
    model = tiny_cast_model()
    result = load_pretrained(model.get_submodule("spatial"), f"clip:{path}")  # what build_model does
    assert all("adapter" in k for k in result["missing"])
    expert = model.spatial.double()
    video = torch.randn(2, 3, FRAMES, SIZE, SIZE, dtype=torch.float64)
    tokens, pooled = _clip_reference(sd, video)
    with torch.no_grad():
        ours = expert.forward_features(video)
        assert _rel_err(ours, tokens) < 1e-10
        assert _rel_err(expert.pool(ours, 2), pooled) < 1e-10


def test_clip_torchscript_archive(tmp_path) -> None:
    """OpenAI releases CLIP as a TorchScript archive: refused unless the source opts in, and then its state dict is
    read without running its code."""
    sd = clip_checkpoint()

    class Holder(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x

    root = Holder()
    for key, value in sd.items():
        *path, leaf = key.split(".")
        module = root
        for part in path:
            if not hasattr(module, part):
                module.add_module(part, nn.Module())
            module = getattr(module, part)
        module.register_parameter(leaf, nn.Parameter(value, requires_grad=False))
    path = tmp_path / "ViT-tiny-jit.pt"
    torch.jit.save(torch.jit.script(root), str(path))
    model = tiny_cast_model()
    with pytest.raises(UnsafeCheckpointError, match=f"{path}: refused: a TorchScript archive.*torchscript:{path}"):
        load_pretrained(model.spatial, f"clip:{path}")
    load_pretrained(model.spatial, f"clip:torchscript:{path}")
    qkv = sd["visual.transformer.resblocks.1.attn.in_proj_weight"]
    assert torch.equal(model.spatial.blocks[1].attn.qkv.weight, qkv)


@pytest.mark.parametrize("pretraining", [False, True], ids=["finetuned", "pretraining"])
def test_videomae_checkpoint_in_official_layout(tmp_path, pretraining: bool) -> None:
    checkpoint = _videomae_checkpoint(pretraining)
    path = tmp_path / "videomae.pth"
    torch.save(checkpoint, path)
    model = tiny_cast_model()
    result = load_pretrained(model.get_submodule("temporal"), f"videomae:{path}")
    assert {"norm.weight", "norm.bias"} <= set(result["missing"])  # neither fc_norm nor the encoder's norm
    expert = model.temporal.double()
    video = torch.randn(2, 3, FRAMES, SIZE, SIZE, dtype=torch.float64)
    tokens, pooled = _videomae_reference(checkpoint["model"], video)
    with torch.no_grad():
        ours = expert.forward_features(video)
        assert _rel_err(ours, tokens) < 1e-10
        assert _rel_err(expert.pool(ours, 2), pooled) < 1e-10


def test_own_layout_expert_loads_into_cast(tmp_path) -> None:
    """A standalone expert (the tiny pretraining's) saved as a plain file fills CAST's expert; with zero-initialised
    adapters and exchange the whole model then computes the standalone expert's features."""
    torch.manual_seed(1)
    spatial, temporal = build_expert("clip", **TINY), build_expert("videomae", **TINY)
    torch.save({"state_dict": {"model." + k: v for k, v in spatial.state_dict().items()}}, tmp_path / "s.ckpt")
    torch.save(temporal.state_dict(), tmp_path / "t.pth")
    model = tiny_cast_model()
    load_pretrained(model.spatial, str(tmp_path / "s.ckpt"))
    load_pretrained(model.temporal, str(tmp_path / "t.pth"))
    video = torch.randn(2, 3, FRAMES, SIZE, SIZE)
    with torch.no_grad():
        f_s, f_t = model.forward_features(video)
        assert torch.allclose(f_s, spatial(video), atol=1e-5) and torch.allclose(f_t, temporal(video), atol=1e-5)


def test_wrong_shape_names_the_first_mismatching_keys(tmp_path) -> None:
    sd = clip_checkpoint()
    sd["visual.transformer.resblocks.0.mlp.c_fc.weight"] = _rand(3 * DIM, DIM)
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"blocks\.0\.mlp\.fc1\.weight: checkpoint \(48, 16\) vs model \(64, 16\)"):
        load_pretrained(tiny_cast_model().spatial, f"clip:{tmp_path / 'bad.pt'}")


def test_missing_expert_weights_stop(tmp_path) -> None:
    checkpoint = _videomae_checkpoint(pretraining=False)
    del checkpoint["model"]["blocks.1.attn.q_bias"], checkpoint["model"]["blocks.1.attn.v_bias"]
    del checkpoint["model"]["blocks.1.mlp.fc2.weight"]
    torch.save(checkpoint, tmp_path / "partial.pth")
    with pytest.raises(KeyError, match=r"blocks\.1\.attn\.qkv\.bias"):
        load_pretrained(tiny_cast_model().temporal, f"videomae:{tmp_path / 'partial.pth'}")


def test_a_clip_checkpoint_is_not_a_videomae_one(tmp_path) -> None:
    torch.save(clip_checkpoint(), tmp_path / "clip.pt")
    with pytest.raises(KeyError, match="lacks expert weights"):
        load_pretrained(tiny_cast_model().temporal, f"videomae:{tmp_path / 'clip.pt'}")


def test_videomae_position_table_must_be_the_fixed_one(tmp_path) -> None:
    checkpoint = _videomae_checkpoint(pretraining=False)
    tokens = (FRAMES // 2) * (SIZE // PATCH) ** 2
    checkpoint["model"]["pos_embed"] = official_sinusoid(tokens, DIM).float()  # a stored copy of the fixed table
    torch.save(checkpoint, tmp_path / "fixed.pth")
    load_pretrained(tiny_cast_model().temporal, f"videomae:{tmp_path / 'fixed.pth'}")
    checkpoint["model"]["pos_embed"] = _rand(1, tokens, DIM)  # learned
    torch.save(checkpoint, tmp_path / "learned.pth")
    with pytest.raises(ValueError, match="not the fixed sinusoidal"):
        load_pretrained(tiny_cast_model().temporal, f"videomae:{tmp_path / 'learned.pth'}")


def test_timm_vit_checkpoint_as_spatial_expert(tmp_path) -> None:
    """ImageNet-21K experts (Tables 5, 6) are timm ViTs: the frame expert equals timm's model on every frame."""
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(3)
    vit = VisionTransformer(img_size=SIZE, patch_size=PATCH, embed_dim=DIM, depth=DEPTH, num_heads=HEADS,
                            num_classes=5).eval()
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # off timm's init (zero biases, unit norms)
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    vit.double()
    model = tiny_cast_model(spatial_expert="vit_in21k")
    load_pretrained(model.spatial, f"vit:{tmp_path / 'vit.pth'}")
    expert = model.spatial.double()
    video = torch.randn(2, 3, FRAMES, SIZE, SIZE, dtype=torch.float64)
    frames = video[:, :, 1::2].transpose(1, 2).reshape(-1, 3, SIZE, SIZE)
    with torch.no_grad():
        assert _rel_err(expert.norm(expert.forward_features(video)), vit.forward_features(frames)) < 1e-10
