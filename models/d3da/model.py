"""The cross-modal RGB+pose 3D deformable transformer (supplementary Algorithms A1-A3) and its entrypoints.

Input: a dict ``{"video": (B, 3, T, H, W), "pose": (B, T, J, k) or (B, T, people, J, k)}`` (the batches of
``data.datamodule`` with ``with_pose=True``; other keys are ignored) -> class logits (B, num_classes). One block
(``CrossModalBlock``): A3 on the RGB tokens, A1 on the pose tokens, the two CLS outputs averaged, then A2 over all
tokens of each frame. ``modalities`` builds the RGB-only or pose-only ablation. The block and the choices the
supplementary leaves open: docs/d3da_readings.md#readings-of-the-supplementary-where-it-leaves-room.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from timm.layers import Mlp, drop_path
from torch import Tensor, nn

from ..registry import register_model
from ..video_vit import LayerNorm, init_vit_weights
from .deformable import DeformableAttention3D
from .stride_attention import COVERS, Cover, JointStrideAttention, TemporalStrideAttention, check_window
from .tokens import POSE_SPACES, ConvStem, PoseEmbed, temporal_table

POOLS = ("cls", "modal")
Modalities = Literal["rgb+pose", "rgb", "pose"]
MODALITIES = ("rgb+pose", "rgb", "pose")


class _Residual(nn.Module):
    """x + attn(LN(x)) then x + FFN(LN(x)) around one of the three attentions, on a list of token groups."""

    def __init__(self, attn: nn.Module, dim: int, mlp_ratio: float, drop_path: float, drop: float) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = attn
        self.drop_prob = drop_path
        self.norm2 = LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)

    def drop_branch(self, *updates: Tensor) -> tuple[Tensor, ...]:
        """Stochastic depth of one residual branch that updates several token groups: a sample keeps or drops
        the branch in every group alike (a mask per group would keep on the modal tokens an update that their
        own tokens lost)."""
        if not (self.training and self.drop_prob > 0):
            return updates
        keep = drop_path(updates[0].new_ones(updates[0].shape[0]), self.drop_prob, True)  # (B,): 0 or 1/keep
        return tuple(u * keep.view(-1, *[1] * (u.ndim - 1)) for u in updates)

    def ffn(self, *groups: Tensor) -> tuple[Tensor, ...]:
        updates = self.drop_branch(*(self.mlp(self.norm2(g)) for g in groups))
        return tuple(g + u for g, u in zip(groups, updates, strict=True))


class BranchBlock(_Residual):
    """A3 or A1 with its FFN, on one modality's tokens and its modal tokens: the RGB branch (``attn`` a
    ``DeformableAttention3D``; tokens (B, T, H, W, C)) or the pose branch (a ``JointStrideAttention``; tokens
    (B, T, R, C)); modal tokens (B, T, m, C)."""

    def forward(self, tokens: Tensor, modal: Tensor) -> tuple[Tensor, Tensor]:
        d_tokens, d_modal = self.drop_branch(*self.attn(self.norm1(tokens), self.norm1(modal)))
        return self.ffn(tokens + d_tokens, modal + d_modal)


class TemporalStrideBlock(_Residual):
    """Algorithm A2 with its FFN: all tokens of every frame (B, T, D_n, C)."""

    def forward(self, tokens: Tensor) -> Tensor:
        (update,) = self.drop_branch(self.attn(self.norm1(tokens)))
        (out,) = self.ffn(tokens + update)
        return out


class CrossModalBlock(nn.Module):
    """One block: A3 on RGB, A1 on pose (with the memorised M'_CLS), CLS merge, A2 on everything (README)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, drop: float = 0.0, attn_drop: float = 0.0, fused_attn: bool = True,
                 joint_wnd: int = 4, temporal_wnd: int = 4, cover: Cover = "full", offset_kernel: int = 3,
                 offset_range: float | None = 2.0, offset_stride: int = 1,
                 modalities: Modalities = "rgb+pose") -> None:
        super().__init__()
        common = dict(num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop,
                      fused_attn=fused_attn)
        deformable = DeformableAttention3D(dim, **common, offset_kernel=offset_kernel, offset_range=offset_range,
                                           offset_stride=offset_stride)
        self.rgb = BranchBlock(deformable, dim, mlp_ratio, drop_path, drop) if "rgb" in modalities else None
        self.pose = (BranchBlock(JointStrideAttention(dim, **common, wnd=joint_wnd, cover=cover),
                                 dim, mlp_ratio, drop_path, drop) if "pose" in modalities else None)
        self.temporal = TemporalStrideBlock(TemporalStrideAttention(dim, **common, wnd=temporal_wnd, cover=cover),
                                            dim, mlp_ratio, drop_path, drop)

    def forward(self, z: Tensor, pose: Tensor, modal: Tensor, grid_hw: tuple[int, int]) -> tuple[Tensor, ...]:
        """z (B, T, S, C), pose (B, T, R, C), modal (B, T, 3, C) [M_RGB, M_pose, M_CLS] -> the same three.
        An ablated modality's tokens arrive empty (S = 0 or R = 0) and its branch is skipped."""
        b, t, s, c = z.shape
        m_rgb, m_pose, m_cls = modal.split(1, dim=2)  # each (B, T, 1, C)
        cls_outputs = []
        if self.rgb is not None:
            z_grid, rgb_modal = self.rgb(z.view(b, t, *grid_hw, c), torch.cat([m_rgb, m_cls], dim=2))
            z = z_grid.reshape(b, t, s, c)
            m_rgb, m_cls_rgb = rgb_modal.split(1, dim=2)
            cls_outputs.append(m_cls_rgb)
        if self.pose is not None:
            pose, pose_modal = self.pose(pose, torch.cat([m_pose, m_cls], dim=2))  # m_cls here is M'_CLS
            m_pose, m_cls_pose = pose_modal.split(1, dim=2)
            cls_outputs.append(m_cls_pose)
        m_cls = sum(cls_outputs) / len(cls_outputs)
        r = pose.shape[2]
        tokens = torch.cat([z, pose, m_rgb, m_pose, m_cls], dim=2)  # N: (B, T, D_n, C)
        z, pose, modal = self.temporal(tokens).split([s, r, 3], dim=2)
        return z, pose, modal


class CrossModalDeformableTransformer(nn.Module):
    """RGB + pose action recognition with 3D deformable, joint stride and temporal stride attention.

    Args:
        img_size: frame height and width (divisible by 8); RGB tokens on an img_size/8 square grid.
        num_frames: frames of a training clip (size of the temporal table; other T at test are interpolated).
        in_chans: video channels.
        num_joints: joints J per person (13 PennAction / synth_pose, 25 NTU).
        num_people: people per frame; pose (B, T, J, k) is one person, (B, T, people, J, k) several.
        pose_dim: coordinates per joint k (2: x, y; 3: x, y, z).
        pose_space: "pixel" (1-based pixel x, y of the clip's frames, normalised to [-1, 1] here) or "camera".
        num_classes: classifier outputs; 0 = no head (features).
        embed_dim: token width 4C (the stem's widths are C, 2C, 4C).
        depth, num_heads: blocks L and the heads of every attention.
        mlp_ratio, qkv_bias: FFN hidden width / embed_dim; bias on the q/k/v projections.
        joint_wnd, temporal_wnd: windows of A1 (in pose tokens) and A2 (in frames); stride floor(wnd / 2).
        cover: "full" (corrected windows, every token covered) or "as_printed" (the loops of A1/A2 literally).
        offset_kernel: kernel size k of the offset network of 3D deformable attention (A3).
        offset_range: largest 3-D offset in token cells; None = tanh in normalised coordinates as printed.
        offset_stride: stride of the offset network (1 = one deformed token per RGB token, as A3).
        pool: "cls" (frame mean of M_CLS) or "modal" (frame means of the three modal tokens, concatenated).
        modalities: "rgb+pose" (the paper's model), "rgb" (no pose tokens, no A1) or "pose" (no RGB, no A3).
        drop_rate: dropout after attention projections, in the FFNs and before the head.
        attn_drop_rate: dropout on attention weights.
        drop_path_rate: stochastic depth, rising linearly to this rate over the blocks.
        fused_attn: SDPA (True) or explicit softmax (False) in every attention.
    """

    def __init__(
        self,
        img_size: int = 224,
        num_frames: int = 12,
        in_chans: int = 3,
        num_joints: int = 13,
        num_people: int = 1,
        pose_dim: int = 2,
        pose_space: Literal["pixel", "camera"] = "pixel",
        num_classes: int = 15,
        embed_dim: int = 256,
        depth: int = 4,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        joint_wnd: int = 4,
        temporal_wnd: int = 4,
        cover: Cover = "full",
        offset_kernel: int = 3,
        offset_range: float | None = 2.0,
        offset_stride: int = 1,
        pool: Literal["cls", "modal"] = "cls",
        modalities: Modalities = "rgb+pose",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        _check_options(img_size, num_frames, num_joints, num_people, pose_dim, pose_space, embed_dim, depth,
                       num_heads, joint_wnd, temporal_wnd, cover, pool, modalities)
        self.modalities = modalities
        self.img_size, self.num_frames, self.num_classes = img_size, num_frames, num_classes
        self.num_features = self.embed_dim = embed_dim
        self.pool = pool
        grid = img_size // 8
        self.grid_size = (num_frames, grid, grid)

        self.stem = ConvStem(in_chans, embed_dim) if "rgb" in modalities else None
        self.pose_embed = (PoseEmbed(num_joints, num_people, pose_dim, embed_dim, pose_space)
                           if "pose" in modalities else None)
        # RGB spatial table (empty without RGB tokens)
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, grid * grid if self.stem else 0, embed_dim))
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, 1, embed_dim))  # shared by all tokens
        self.modal_tokens = nn.Parameter(torch.zeros(1, 1, 3, embed_dim))  # M_RGB, M_pose, M_CLS
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList([
            CrossModalBlock(embed_dim, num_heads, mlp_ratio, qkv_bias, dpr[i], drop_rate, attn_drop_rate,
                            fused_attn, joint_wnd, temporal_wnd, cover, offset_kernel, offset_range, offset_stride,
                            modalities)
            for i in range(depth)])
        self.norm = LayerNorm(embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        head_in = embed_dim * (3 if pool == "modal" else 1)
        self.head = nn.Linear(head_in, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        tables = [self.pos_embed, self.time_embed, self.modal_tokens]
        if self.pose_embed is not None:
            tables += [self.pose_embed.joint_embed, self.pose_embed.person_embed]
        init_vit_weights(self, tables)

    def no_weight_decay(self) -> set[str]:
        names = {"pos_embed", "time_embed", "modal_tokens"}
        return names | ({"pose_embed.joint_embed", "pose_embed.person_embed"} if self.pose_embed else set())

    def tokens(self, video: Tensor | None, pose: Tensor | None) -> tuple[Tensor, Tensor, Tensor, tuple[int, int]]:
        """Z (B, T, S, C), P (B, T, R, C), modal (B, T, 3, C) with positional tables, and the RGB grid (h, w).
        The ablated modality's input is not read (may be None) and its tokens are empty (S = 0 or R = 0)."""
        h = w = self.img_size  # pixel joints are normalised by the frame size (also without RGB input)
        if self.stem is not None:
            if video is None or video.ndim != 5:
                shape = None if video is None else tuple(video.shape)
                raise ValueError(f"video must be (B, C, T, H, W), got {shape}")
            b, _, t, h, w = video.shape
            if (h, w) != (self.img_size, self.img_size):
                raise ValueError(f"frames of {h}x{w} differ from the model's img_size {self.img_size}")
        if self.pose_embed is not None:
            if pose is None:
                raise ValueError("pose is missing: the model reads joints (B, T, J, k) or (B, T, people, J, k)")
            if self.stem is not None and pose.shape[:2] != (b, t):
                raise ValueError(f"pose {tuple(pose.shape)} must start with the video's (B, T) = {(b, t)}")
            b, t = pose.shape[:2]
        dtype = self.modal_tokens.dtype
        time = temporal_table(self.time_embed, t)  # (1, T, 1, C)
        empty = self.modal_tokens.new_zeros(b, t, 0, self.embed_dim)
        z = empty if self.stem is None else self.stem(video).flatten(2, 3) + self.pos_embed + time  # (B, T, S, C)
        p = empty if self.pose_embed is None else self.pose_embed(pose.to(dtype), (h, w)) + time  # (B, T, R, C)
        modal = (self.modal_tokens + time).expand(b, -1, -1, -1)  # (B, T, 3, C)
        return self.pos_drop(z), self.pos_drop(p), self.pos_drop(modal), (h // 8, w // 8)

    def forward_features(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        z, p, modal, grid_hw = self.tokens(batch.get("video"), batch.get("pose"))
        for block in self.blocks:
            z, p, modal = block(z, p, modal, grid_hw)
        return self.norm(z), self.norm(p), self.norm(modal)

    def forward_head(self, modal: Tensor, pre_logits: bool = False) -> Tensor:
        pooled = modal.mean(dim=1)  # (B, 3, C): frame means of M_RGB, M_pose, M_CLS
        x = pooled[:, 2] if self.pool == "cls" else pooled.flatten(1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        needed = [key for key, part in (("video", self.stem), ("pose", self.pose_embed)) if part is not None]
        if not isinstance(batch, dict) or any(key not in batch for key in needed):
            raise TypeError(f"the {self.modalities} model takes a dict with {' and '.join(map(repr, needed))} "
                            f"(video (B, C, T, H, W), pose (B, T, J, k))")
        return self.forward_head(self.forward_features(batch)[2])


def _check_options(img_size: int, num_frames: int, num_joints: int, num_people: int, pose_dim: int,
                   pose_space: str, embed_dim: int, depth: int, num_heads: int, joint_wnd: int, temporal_wnd: int,
                   cover: str, pool: str, modalities: str) -> None:
    """Raise ``ValueError`` naming the first option that cannot work."""
    if img_size % 8 or img_size < 8:
        raise ValueError(f"img_size must be a positive multiple of 8 (tokens on an H/8 x W/8 grid), got {img_size}")
    for name, value in (("num_frames", num_frames), ("num_joints", num_joints), ("num_people", num_people),
                        ("depth", depth), ("num_heads", num_heads)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if pose_dim not in (2, 3):
        raise ValueError(f"pose_dim must be 2 or 3, got {pose_dim!r}")
    if pose_space not in POSE_SPACES:
        raise ValueError(f"pose_space must be one of {POSE_SPACES}, got {pose_space!r}")
    if embed_dim % 4 or embed_dim % num_heads:
        raise ValueError(f"embed_dim ({embed_dim}) must be divisible by 4 (stem widths C, 2C, 4C) and by "
                         f"num_heads ({num_heads})")
    if cover not in COVERS:
        raise ValueError(f"cover must be one of {COVERS}, got {cover!r}")
    check_window(joint_wnd, cover, "joint_wnd")
    check_window(temporal_wnd, cover, "temporal_wnd")
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    if modalities not in MODALITIES:
        raise ValueError(f"modalities must be one of {MODALITIES}, got {modalities!r}")


# ---- registered entrypoints -----------------------------------------------------------------------------------


def _create(defaults: dict[str, Any], overrides: dict[str, Any]) -> CrossModalDeformableTransformer:
    return CrossModalDeformableTransformer(**{**defaults, **overrides})


@register_model
def d3da_tiny(**overrides: Any) -> CrossModalDeformableTransformer:
    """CPU scale: 12 frames of 32x32 (4x4 RGB tokens per frame), 13 joints of one person (synth_pose), 64-d,
    2 blocks, 4 heads, joint and temporal windows of 4, 6 classes (synth_pose's actions)."""
    return _create(dict(img_size=32, num_frames=12, num_joints=13, num_people=1, pose_dim=2, pose_space="pixel",
                        num_classes=6, embed_dim=64, depth=2, num_heads=4, joint_wnd=4, temporal_wnd=4),
                   overrides)


@register_model
def d3da_base(**overrides: Any) -> CrossModalDeformableTransformer:
    """Paper scale (our choices where the supplementary gives no size): 12 frames of 224x224 (the 12 training
    frames of Figure A1; 28x28 RGB tokens per frame), 4C = 256 (C = 64), 4 blocks, 8 heads, MLP ratio 4,
    joint and temporal windows of 4 (stride 2), PennAction's 13 pixel joints of one person, 15 classes.
    NTU: ``num_joints=25, pose_dim=3, pose_space="camera", num_classes=60 or 120``."""
    return _create(dict(img_size=224, num_frames=12, num_joints=13, num_people=1, pose_dim=2, pose_space="pixel",
                        num_classes=15, embed_dim=256, depth=4, num_heads=8, joint_wnd=4, temporal_wnd=4),
                   overrides)


__all__ = ["CrossModalBlock", "CrossModalDeformableTransformer", "d3da_base", "d3da_tiny"]
