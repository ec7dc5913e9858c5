"""Space-time attention layers, all with the interface ``Attn(dim, num_heads, qkv_bias, attn_drop, proj_drop,
fused_attn, **variant_kwargs)`` and ``forward(x, thw) -> x``; looked up by name through ``get_attention``."""

from __future__ import annotations

from torch import nn

from .approximate import APPROXIMATIONS, get_approximation
from .approximate_trajectory import ApproximateTrajectoryAttention
from .divided import DividedSpaceTimeAttention
from .joint import JointSpaceTimeAttention, attend
from .trajectory import TrajectoryAttention

ATTENTION_LAYERS: dict[str, type[nn.Module]] = {
    "joint": JointSpaceTimeAttention,
    "divided": DividedSpaceTimeAttention,
    "trajectory": TrajectoryAttention,
    "trajectory_approx": ApproximateTrajectoryAttention,
}


def get_attention(name: str) -> type[nn.Module]:
    """The attention class registered under ``name`` ("joint", "divided", "trajectory")."""
    try:
        return ATTENTION_LAYERS[name]
    except KeyError:
        raise ValueError(f"unknown attention {name!r}; valid names: {sorted(ATTENTION_LAYERS)}") from None


__all__ = [
    "APPROXIMATIONS",
    "ATTENTION_LAYERS",
    "ApproximateTrajectoryAttention",
    "DividedSpaceTimeAttention",
    "JointSpaceTimeAttention",
    "TrajectoryAttention",
    "attend",
    "get_approximation",
    "get_attention",
]
