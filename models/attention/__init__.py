"""Space-time attention layers, all with the interface ``Attn(dim, num_heads, qkv_bias, attn_drop, proj_drop,
fused_attn, **variant_kwargs)`` and ``forward(x, thw) -> x``; looked up by name through ``get_attention``.

Two token layouts, two registries: ``ATTENTION_LAYERS`` attend over one class token followed by the T*H*W
patches (Motionformer's models); ``FRAME_ATTENTION_LAYERS`` over per-frame class tokens, T*(1 + H*W) tokens
(the frame-wise ViT and the shift family: MSCA, X-ViT), and only with ``VideoViT(cls_layout="per_frame")``.
"""

from __future__ import annotations

from torch import nn

from .approximate import APPROXIMATIONS, get_approximation
from .approximate_trajectory import ApproximateTrajectoryAttention
from .divided import DividedSpaceTimeAttention, OfficialDividedSpaceTimeAttention
from .frame import FrameAttention, MultiHeadSelfCrossAttention, SpaceTimeMixingAttention
from .joint import JointSpaceTimeAttention, attend
from .temporal_shift import TemporalShift, shift_frames
from .trajectory import TrajectoryAttention

ATTENTION_LAYERS: dict[str, type[nn.Module]] = {
    "joint": JointSpaceTimeAttention,
    "divided": DividedSpaceTimeAttention,
    "divided_official": OfficialDividedSpaceTimeAttention,
    "trajectory": TrajectoryAttention,
    "trajectory_approx": ApproximateTrajectoryAttention,
}
FRAME_ATTENTION_LAYERS: dict[str, type[nn.Module]] = {
    "frame": FrameAttention,
    "msca": MultiHeadSelfCrossAttention,
    "xvit": SpaceTimeMixingAttention,
}


def get_attention(name: str) -> type[nn.Module]:
    """The attention class registered under ``name`` ("joint", "divided", "trajectory", "frame", "msca"...)."""
    registered = {**ATTENTION_LAYERS, **FRAME_ATTENTION_LAYERS}
    try:
        return registered[name]
    except KeyError:
        raise ValueError(f"unknown attention {name!r}; valid names: {sorted(registered)}") from None


__all__ = [
    "APPROXIMATIONS",
    "ATTENTION_LAYERS",
    "ApproximateTrajectoryAttention",
    "DividedSpaceTimeAttention",
    "FRAME_ATTENTION_LAYERS",
    "FrameAttention",
    "JointSpaceTimeAttention",
    "MultiHeadSelfCrossAttention",
    "OfficialDividedSpaceTimeAttention",
    "SpaceTimeMixingAttention",
    "TemporalShift",
    "TrajectoryAttention",
    "attend",
    "get_approximation",
    "get_attention",
    "shift_frames",
]
