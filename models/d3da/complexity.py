"""Measured cost of full vs joint stride attention (Table A1) and full vs temporal stride attention (Table A2).

The real modules are counted and timed for given sizes: "full" rows run ``models.attention.JointSpaceTimeAttention``
on the same tokens, "stride" rows ``JointStrideAttention`` / ``TemporalStrideAttention``. FLOPs are counted on the
``meta`` device with the attention explicit, one multiply-add = one FLOP (as ``models.flops``), split into
``attention`` (QK^T and AV: what the O(.) expressions describe) and ``projections``; timings run the module with
SDPA, batch 1, median of ``repeats``. ``fit_exponent`` fits a series' growth exponent (log-log least squares).
Why the totals grow linearly in R or T: docs/d3da_measurements.md#tables-a1a2-measured-not-only-big-o.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ..attention.joint import JointSpaceTimeAttention
from ..registry import create_model
from .stride_attention import Cover, JointStrideAttention, TemporalStrideAttention

NUM_POSE_MODAL = 2  # M_pose and M'_CLS appended to every joint window (Algorithm A1)
NUM_MODAL = 3  # M_RGB, M_pose, M_CLS in every frame of N (Algorithm A2)
Which = Literal["full", "stride"]


def tokens_per_frame(img_size: int, num_joints: int, num_people: int = 1) -> int:
    """D_n = H/8 * W/8 + R + 3 (Algorithm A2), R = people x joints."""
    return (img_size // 8) ** 2 + num_joints * num_people + NUM_MODAL


class _FlatFull(nn.Module):
    """Full attention over (B, T, n, C) tokens flattened to (B, T * n, C)."""

    def __init__(self, dim: int, num_heads: int, fused_attn: bool) -> None:
        super().__init__()
        self.attn = JointSpaceTimeAttention(dim, num_heads, qkv_bias=True, fused_attn=fused_attn)

    def forward(self, x: Tensor, extra: Tensor | None = None) -> Tensor:
        if extra is not None:
            x = torch.cat([x, extra], dim=2)
        b, t, n, c = x.shape
        return self.attn(x.reshape(b, t * n, c), (t, n, 1)).view(b, t, n, c)


def _joint_case(which: Which, num_joints: int, num_frames: int, wnd: int | None, num_people: int, dim: int,
                num_heads: int, cover: Cover, fused: bool) -> tuple[nn.Module, tuple[Tensor, ...]]:
    r = num_joints * num_people
    if which == "full":
        module: nn.Module = _FlatFull(dim, num_heads, fused)
    else:
        if wnd is None:
            raise ValueError("joint stride attention needs wnd")
        module = JointStrideAttention(dim, num_heads, qkv_bias=True, fused_attn=fused, wnd=wnd, cover=cover)
    inputs = (torch.randn(1, num_frames, r, dim), torch.randn(1, num_frames, NUM_POSE_MODAL, dim))
    return module, inputs


def _temporal_case(which: Which, num_frames: int, num_tokens: int, wnd: int | None, dim: int, num_heads: int,
                   cover: Cover, fused: bool) -> tuple[nn.Module, tuple[Tensor, ...]]:
    if which == "full":
        module: nn.Module = _FlatFull(dim, num_heads, fused)
    else:
        if wnd is None:
            raise ValueError("temporal stride attention needs wnd")
        module = TemporalStrideAttention(dim, num_heads, qkv_bias=True, fused_attn=fused, wnd=wnd, cover=cover)
    return module, (torch.randn(1, num_frames, num_tokens, dim),)


def _count(build) -> dict[str, float]:
    """FLOPs (multiply-adds) of one forward of the module ``build()`` makes on the meta device, by kind of op."""
    with torch.device("meta"):
        module, inputs = build()
    module.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*inputs)
    ops = {str(op): n / 2 for op, n in counter.get_flop_counts()["Global"].items()}
    attention = sum(n for op, n in ops.items() if op.endswith(("bmm", "baddbmm")))
    total = counter.get_total_flops() / 2
    return {"attention": attention, "projections": total - attention, "total": total}


def joint_attention_flops(num_joints: int, num_frames: int, wnd: int | None = None, which: Which = "stride",
                          num_people: int = 1, dim: int = 64, num_heads: int = 4,
                          cover: Cover = "full") -> dict[str, float]:
    """Table A1: FLOPs of one forward of full ("full") or joint stride ("stride", window ``wnd``) attention over
    the pose tokens of T frames, R = people x joints, with M_pose and M'_CLS per frame; batch 1."""
    return _count(lambda: _joint_case(which, num_joints, num_frames, wnd, num_people, dim, num_heads, cover, False))


def temporal_attention_flops(num_frames: int, num_tokens: int, wnd: int | None = None, which: Which = "stride",
                             dim: int = 64, num_heads: int = 4, cover: Cover = "full") -> dict[str, float]:
    """Table A2: FLOPs of one forward of full or temporal stride attention over T frames of ``num_tokens`` = D_n
    tokens each (``tokens_per_frame``); batch 1."""
    return _count(lambda: _temporal_case(which, num_frames, num_tokens, wnd, dim, num_heads, cover, False))


def _time(module: nn.Module, inputs: Sequence[Tensor], repeats: int, backward: bool, device: str) -> float:
    module = module.to(device)
    inputs = [x.to(device).requires_grad_(backward) for x in inputs]

    def step() -> None:
        out = module(*inputs)
        out = out[0] if isinstance(out, tuple) else out
        if backward:
            out.sum().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    times = []
    with torch.set_grad_enabled(backward):
        step()  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def joint_attention_time(num_joints: int, num_frames: int, wnd: int | None = None, which: Which = "stride",
                         num_people: int = 1, dim: int = 64, num_heads: int = 4, cover: Cover = "full",
                         repeats: int = 5, backward: bool = False, device: str = "cpu") -> float:
    """Median seconds of one forward (``backward``: forward + backward) of the Table A1 case, with SDPA."""
    torch.manual_seed(0)
    module, inputs = _joint_case(which, num_joints, num_frames, wnd, num_people, dim, num_heads, cover, True)
    return _time(module, inputs, repeats, backward, device)


def temporal_attention_time(num_frames: int, num_tokens: int, wnd: int | None = None, which: Which = "stride",
                            dim: int = 64, num_heads: int = 4, cover: Cover = "full", repeats: int = 5,
                            backward: bool = False, device: str = "cpu") -> float:
    """Median seconds of one forward (``backward``: forward + backward) of the Table A2 case, with SDPA."""
    torch.manual_seed(0)
    module, inputs = _temporal_case(which, num_frames, num_tokens, wnd, dim, num_heads, cover, True)
    return _time(module, inputs, repeats, backward, device)


def _trilinear_sampling_flops(input_shape, grid_shape, *args, **kwargs) -> int:
    """FLOPs (torch's convention, 2 per multiply-add) of ``grid_sample`` on 5-D input: 8 weighted taps per sampled
    point and channel (A3's sum over r of the g-product), which torch's counter has no formula for."""
    return 2 * 8 * input_shape[0] * input_shape[1] * math.prod(grid_shape[1:4])


def model_gflops(name: str = "d3da_base", num_frames: int | None = None, **overrides) -> float:
    """GFLOPs (multiply-adds / 1e9) of one forward of the registered RGB+pose model ``name`` on one clip of
    ``num_frames`` (default: the model's) frames, counted on ``meta`` with every attention explicit and the trilinear
    sampling counted (8 multiply-adds per sampled point and channel). The model takes a dict, which
    ``models.flops.count_flops`` does not."""
    with torch.device("meta"):
        model = create_model(name, **{**overrides, "fused_attn": False})
        t = num_frames or model.num_frames
        batch = {}
        if model.stem is not None:
            batch["video"] = torch.empty(1, 3, t, model.img_size, model.img_size)
        if model.pose_embed is not None:
            embed = model.pose_embed
            batch["pose"] = torch.empty(1, t, embed.num_people, embed.num_joints, embed.pose_dim)
    model.eval()
    sampling = {torch.ops.aten.grid_sampler_3d: _trilinear_sampling_flops}
    with FlopCounterMode(display=False, custom_mapping=sampling) as counter, torch.no_grad():
        model(batch)
    return counter.get_total_flops() / 2 / 1e9


def fit_exponent(sizes: Sequence[float], costs: Sequence[float]) -> float:
    """Slope of the least-squares line through (log size, log cost): cost ~ size ** slope."""
    if len(sizes) != len(costs) or len(sizes) < 2:
        raise ValueError("fit_exponent needs at least two (size, cost) pairs of equal length")
    xs, ys = [math.log(s) for s in sizes], [math.log(c) for c in costs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


__all__ = [
    "fit_exponent",
    "joint_attention_flops",
    "joint_attention_time",
    "model_gflops",
    "temporal_attention_flops",
    "temporal_attention_time",
    "tokens_per_frame",
]
