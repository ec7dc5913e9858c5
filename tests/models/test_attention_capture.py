"""models.attention.capture: taking the attention leaves the logits identical, and each record's weights, applied
to the module's values, give the module's output (float64)."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from models.attention import (
    ApproximateTrajectoryAttention,
    DividedSpaceTimeAttention,
    JointSpaceTimeAttention,
    TrajectoryAttention,
)
from models.attention.capture import attention_modules, capture_attention
from models.cast.layers import WindowedCrossAttention, from_windows, to_windows
from models.cast.model import cast_base, cast_tiny
from models.d3da.deformable import DeformableAttention3D
from models.d3da.model import d3da_base, d3da_tiny
from models.d3da.stride_attention import JointStrideAttention
from models.video_vit import vit_base_patch16_video, vit_tiny_video

MFORMER_ATTENTIONS = ("joint", "divided", "divided_official", "trajectory")


def _pose_batch(b: int, t: int, size: int, joints: int = 13) -> dict[str, torch.Tensor]:
    return {"video": torch.randn(b, 3, t, size, size), "pose": torch.rand(b, t, joints, 2) * (size - 1) + 1}


def _logits_with_and_without(model: torch.nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor, list]:
    model.eval()
    with torch.no_grad():
        plain = model(batch)
        with capture_attention(model) as records:
            captured = model(batch)
    return plain, captured, records


@pytest.mark.parametrize("attention", MFORMER_ATTENTIONS)
def test_motionformer_logits_are_identical_with_capture(attention):
    torch.manual_seed(0)
    model = vit_tiny_video(attn_layer=attention, num_classes=5)
    plain, captured, records = _logits_with_and_without(model, torch.randn(2, 3, 8, 32, 32))
    assert torch.equal(plain, captured)
    assert [r.name for r in records] == [f"blocks.{i}.attn" for i in range(4)]
    assert {r.kind for r in records} == {attention.removesuffix("_official")}
    assert not any(block.pre_attn._forward_pre_hooks for block in model.blocks if block.pre_attn is not None)


def test_cast_and_d3da_logits_are_identical_with_capture():
    torch.manual_seed(0)
    model = cast_tiny(num_classes=5)
    for module in model.modules():  # B-CAST starts as its experts; non-zero up projections make the exchange count
        if isinstance(module, torch.nn.Linear) and not module.weight.any():
            torch.nn.init.normal_(module.weight, std=0.02)
    plain, captured, records = _logits_with_and_without(model, torch.randn(2, 3, 8, 32, 32))
    assert torch.equal(plain, captured)
    assert {r.name for r in records} == {f"exchange.{i}.{d}" for i in range(4) for d in ("t2s", "s2t")}
    model = d3da_tiny()
    plain, captured, records = _logits_with_and_without(model, _pose_batch(2, 12, 32))
    assert torch.equal(plain, captured)
    assert {r.kind for r in records} == {"d3da_deformable", "d3da_joint_stride"}


def _float64(module: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(1)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return module.double().eval()


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm()).item()


def _captured(module, *inputs):
    with torch.no_grad(), capture_attention(module) as records:
        out = module(*inputs)
    assert len(records) == 1
    return out, records[0].weights


def test_joint_weights_applied_to_values_give_the_output():
    module = _float64(JointSpaceTimeAttention(32, num_heads=4, qkv_bias=True))
    x = torch.randn(2, 1 + 2 * 3 * 3, 32, dtype=torch.float64)
    out, weights = _captured(module, x, (2, 3, 3))
    _, _, v = rearrange(module.qkv(x), "b n (three nh d) -> three b nh n d", three=3, nh=4)
    assert _relative_error(module.proj(rearrange(weights["all"] @ v, "b nh n d -> b n (nh d)")), out) < 1e-10


def test_divided_weights_applied_to_values_give_the_output():
    module = _float64(DividedSpaceTimeAttention(32, num_heads=4, qkv_bias=True))
    x = torch.randn(2, 1 + 3 * 4, 32, dtype=torch.float64)
    out, weights = _captured(module, x, (3, 2, 2))
    _, _, v = rearrange(module.temporal_qkv(x[:, 1:]), "b (t n) (three nh d) -> three b nh n t d", t=3, three=3, nh=4)
    temporal = module.temporal_proj(rearrange(weights["temporal"] @ v, "b nh n t d -> b (t n) (nh d)"))
    t = torch.cat([torch.zeros_like(x[:, :1]), temporal], dim=1)
    _, _, v = rearrange(module.qkv(x + t), "b n (three nh d) -> three b nh n d", three=3, nh=4)
    cls = weights["cls"] @ v
    v_frames = rearrange(v[:, :, 1:], "b nh (t n) d -> b nh t n d", t=3)
    v_frames = torch.cat([v[:, :, None, :1].expand(-1, -1, 3, -1, -1), v_frames], dim=3)
    patches = rearrange(weights["spatial"] @ v_frames, "b nh t n d -> b nh (t n) d")
    spatial = module.proj(rearrange(torch.cat([cls, patches], dim=2), "b nh n d -> b n (nh d)"))
    assert _relative_error(t + spatial, out) < 1e-10


def test_official_divided_weights_applied_to_values_give_both_stages_outputs():
    """The official divided block (``divided_official``): its temporal stage is the block's ``pre_attn``, run before
    the attention on the block's input; the one record of ``blocks.0.attn`` holds both stages' weights."""
    torch.manual_seed(1)
    model = vit_tiny_video(attn_layer="divided_official", depth=1, num_classes=3)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    model = model.double().eval()
    block, stage_in, attn_in = model.blocks[0], [], []
    block.pre_attn.register_forward_hook(lambda m, args, out: stage_in.append((args[0], out)))
    block.attn.register_forward_hook(lambda m, args, out: attn_in.append((args[0], out)))
    with torch.no_grad(), capture_attention(model, ["blocks.0.attn"]) as records:
        model(torch.randn(2, 3, 8, 32, 32, dtype=torch.float64))
    (record,), ((x, stage_out),), ((u, out),) = records, stage_in, attn_in
    w = record.weights
    t, h, wd = record.layout["thw"]
    assert record.layout["temporal_keys"] == "cls+steps" and w["temporal"].shape == (2, 4, h * wd, t, 1 + t)
    stage, nh = block.pre_attn, 4
    _, _, v = rearrange(stage.qkv(stage.norm(x)), "b n (three nh d) -> three b nh n d", three=3, nh=nh)
    v_steps = rearrange(v[:, :, 1:], "b nh (t n) d -> b nh n t d", t=t)
    v_steps = torch.cat([v[:, :, None, :1].expand(-1, -1, h * wd, -1, -1), v_steps], dim=3)
    patches = rearrange(w["temporal"] @ v_steps, "b nh n t d -> b nh (t n) d")
    temporal = torch.cat([w["temporal_cls"] @ v, patches], dim=2)
    assert _relative_error(x + stage.proj(rearrange(temporal, "b nh n d -> b n (nh d)")), stage_out) < 1e-10
    _, _, v = rearrange(block.attn.qkv(u), "b n (three nh d) -> three b nh n d", three=3, nh=nh)
    v_frames = rearrange(v[:, :, 1:], "b nh (t n) d -> b nh t n d", t=t)
    v_frames = torch.cat([v[:, :, None, :1].expand(-1, -1, t, -1, -1), v_frames], dim=3)
    patches = rearrange(w["spatial"] @ v_frames, "b nh t n d -> b nh (t n) d")
    spatial = torch.cat([w["cls"] @ v, patches], dim=2)
    assert _relative_error(block.attn.proj(rearrange(spatial, "b nh n d -> b n (nh d)")), out) < 1e-10


@pytest.mark.parametrize("normalize", ["space", "spacetime"])
def test_trajectory_stage_one_applied_to_values_gives_the_output(normalize):
    module = _float64(TrajectoryAttention(32, num_heads=4, qkv_bias=True, normalize=normalize))
    x = torch.randn(2, 1 + 3 * 4, 32, dtype=torch.float64)
    out, weights = _captured(module, x, (3, 2, 2))
    assert weights["stage_one"].shape == (2, 4, 12, 3, 4)
    _, _, v = rearrange(module.qkv(x), "b n (three nh d) -> three b nh n d", three=3, nh=4)
    traj = torch.einsum("bhqtn,bhtnd->bhtqd", weights["stage_one"],
                        rearrange(v[:, :, 1:], "b nh (tp n) d -> b nh tp n d", tp=3))
    pooled = module._temporal_attention(traj, 3, 0.0)  # stage two is the module's own
    cls = weights["cls"] @ v
    want = module.proj(rearrange(torch.cat([cls, pooled], dim=2), "b nh n d -> b n (nh d)"))
    assert _relative_error(want, out) < 1e-10


@pytest.mark.parametrize("window", ["time", "space"])
def test_cast_window_weights_applied_to_values_give_the_output(window):
    module = _float64(WindowedCrossAttention(24, 4, window, num_steps=3, num_patches=4))
    q_grid, k_grid = torch.randn(2, 2, 3, 4, 24, dtype=torch.float64)
    out, weights = _captured(module, q_grid, k_grid)
    kv_tokens = to_windows(k_grid, window) + module.key_pos
    _, v = rearrange(module.kv(kv_tokens), "w l (two nh d) -> two w nh l d", two=2, nh=4)
    mixed = module.proj(rearrange(weights["windows"] @ v, "w nh l d -> w l (nh d)"))
    assert _relative_error(from_windows(mixed, window, 2, 3, 4), out) < 1e-10


def test_d3da_deformable_weights_applied_to_values_give_the_output():
    module = _float64(DeformableAttention3D(16, num_heads=2))
    z, modal = torch.randn(2, 3, 4, 4, 16, dtype=torch.float64), torch.randn(2, 3, 2, 16, dtype=torch.float64)
    (z_out, m_out), weights = _captured(module, z, modal)
    grid = rearrange(z, "b t h w c -> b c t h w")
    points = weights["sampling_points"]
    assert points.shape == (2, 3, 4, 4, 3)
    deformed = torch.nn.functional.grid_sample(grid, points, mode="bilinear", padding_mode="zeros",
                                               align_corners=False)  # the points are where 3DTS sampled
    x_def = torch.cat([rearrange(deformed, "b c t h w -> b (t h w) c"), rearrange(modal, "b t m c -> b (t m) c")], 1)
    _, v = rearrange(module.kv(x_def), "b n (two nh d) -> two b nh n d", two=2, nh=2)
    out = module.proj(rearrange(weights["all"] @ v, "b nh n d -> b n (nh d)"))
    want = torch.cat([rearrange(z_out, "b t h w c -> b (t h w) c"), rearrange(m_out, "b t m c -> b (t m) c")], 1)
    assert _relative_error(out, want) < 1e-10


def test_d3da_joint_stride_weights_applied_to_values_give_the_output():
    module = _float64(JointStrideAttention(16, num_heads=2, wnd=4))
    pose, modal = torch.randn(2, 3, 7, 16, dtype=torch.float64), torch.randn(2, 3, 2, 16, dtype=torch.float64)
    (update, modal_update), weights = _captured(module, pose, modal)
    record_windows = weights["windows"]  # (B, D, nh, Lq, Lk)
    x = torch.cat([pose, modal], dim=2).transpose(1, 2)  # (B, R + m, T, C)
    v = module.qkv(x).chunk(3, dim=-1)[2]
    q_idx, kv_idx, coverage = module._windows(7, x.device)
    v_win = torch.cat([v[:, kv_idx], v[:, 7:].unsqueeze(1).expand(-1, q_idx.shape[0], -1, -1, -1)], dim=2)
    out = record_windows @ rearrange(v_win, "b dw l a (nh d) -> b dw nh (l a) d", nh=2)
    out = rearrange(out, "b dw nh (l a) d -> b dw l a (nh d)", a=3)
    merged = out.new_zeros(2, 7, 3, 16).index_add(1, q_idx.reshape(-1), out[:, :, :4].reshape(2, -1, 3, 16))
    merged = merged / torch.tensor(coverage, dtype=merged.dtype).view(1, 7, 1, 1)
    assert _relative_error(module.proj(merged).transpose(1, 2), update) < 1e-10
    assert _relative_error(module.proj(out[:, :, 4:].mean(dim=1)).transpose(1, 2), modal_update) < 1e-10


def test_paper_shape_models_are_captured_on_the_meta_device():
    """At paper shape (ViT-B Motionformer, CAST-B, 3D-Deformable base) on the meta device: every capturable module
    is found and the records have the paper's token counts, without materialising a weight."""
    with torch.device("meta"):
        mformer = vit_base_patch16_video(attn_layer="trajectory").eval()
        cast = cast_base().eval()
        d3da = d3da_base().eval()
        with capture_attention(mformer, ["blocks.11.attn"]) as records:
            logits = mformer(torch.empty(1, 3, 16, 224, 224))
        assert logits.shape == (1, 400)
        assert records[0].weights["stage_one"].shape == (1, 12, 8 * 14 * 14, 8, 14 * 14)
        with capture_attention(cast, ["exchange.11.t2s", "exchange.11.s2t"]) as records:
            cast(torch.empty(1, 3, 16, 224, 224))
        assert [r.weights["windows"].shape for r in records] == [(196, 12, 8, 8), (8, 12, 196, 196)]
        with capture_attention(d3da, ["blocks.3.rgb.attn", "blocks.3.pose.attn"]) as records:
            logits = d3da({"video": torch.empty(1, 3, 12, 224, 224), "pose": torch.empty(1, 12, 13, 2)})
        assert logits.shape == (1, 15)
        deformable, stride = records
        assert deformable.weights["sampling_points"].shape == (1, 12, 28, 28, 3)
        assert stride.weights["windows"].shape == (1, 6, 8, (4 + 2) * 12, (4 + 2) * 12)  # 6 windows of 4 joints + 2
        assert stride.layout["query_windows"][-1] == [9, 10, 11, 12]
    assert len(attention_modules(d3da)) == 8 and "blocks.3.pose.attn" in attention_modules(d3da)


def test_bad_requests_are_refused_by_name():
    model = vit_tiny_video(attn_layer="trajectory")
    with pytest.raises(ValueError, match="'blocks.9.attn'"):
        with capture_attention(model, ["blocks.9.attn"]):
            pass
    model = vit_tiny_video(attn_layer="joint", attn_drop_rate=0.1).train()
    with pytest.raises(ValueError, match="blocks.0.attn.*training mode"):
        with capture_attention(model, ["blocks.0.attn"]):
            model(torch.randn(1, 3, 8, 32, 32))
    approximate = vit_tiny_video(attn_layer="trajectory_approx")
    assert isinstance(approximate.blocks[0].attn, ApproximateTrajectoryAttention)
    with pytest.raises(ValueError, match="'blocks.0.attn' is approximate trajectory attention"):
        with capture_attention(approximate):
            pass
    with capture_attention(model, ["blocks.0.attn"]):
        pass
    assert not model.blocks[0].attn._forward_hooks  # the hooks leave with the context
