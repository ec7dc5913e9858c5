"""Tokens of the cross-modal RGB+pose transformer: RGB tokens Z, pose tokens P and the modal tokens.

- RGB (*stem is our choice; the supplementary fixes only its output, 4C channels on an H/8 x W/8 grid per frame):
  three stride-2 3x3 Conv2d -> BatchNorm2d -> GELU layers applied to every frame, widths C, 2C, 4C
  (``embed_dim`` = 4C), then a learnable spatial table (H/8 * W/8 entries) and the temporal table.
- Pose: one token per joint per person per frame, R = people x joints, person-major (person 0's joints, then
  person 1's). Coordinates -> Linear(k -> 4C) + a learnable joint table + a learnable person table + the
  temporal table. ``pose_space="pixel"``: (x, y) in the frame's 1-based pixel coordinates (PennAction,
  ``synth_pose``, as ``data.transforms`` leaves them) are mapped to [-1, 1] by the input clip's width and height
  before the linear layer; ``"camera"`` (NTU, metres) is used as is.
- Modal tokens M_RGB, M_pose, M_CLS: three learnable vectors, one copy per frame (the supplementary's shapes
  M in R^{4C x T x 1}), plus the temporal table. M'_CLS, the "memorised" CLS modal token of Algorithm A1, is not a
  parameter: each block hands the pose branch the M_CLS it received, before the RGB branch (A3) updates it.
- Temporal table: learnable, ``num_frames`` entries, shared by all tokens; a clip with another frame count (the
  test-frame sweep of Figure A1) gets it linearly interpolated to its T.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

POSE_SPACES = ("pixel", "camera")


class ConvStem(nn.Module):
    """(B, 3, T, H, W) video -> (B, T, H/8, W/8, 4C) RGB tokens: three stride-2 conv-BN-GELU layers per frame."""

    def __init__(self, in_chans: int = 3, embed_dim: int = 256) -> None:
        super().__init__()
        if embed_dim % 4:
            raise ValueError(f"embed_dim must be divisible by 4 (the stem widths are C, 2C, 4C), got {embed_dim}")
        widths = [in_chans, embed_dim // 4, embed_dim // 2, embed_dim]
        layers: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, video: Tensor) -> Tensor:
        b, _, t = video.shape[:3]
        frames = video.transpose(1, 2).flatten(0, 1)  # (B*T, 3, H, W)
        x = self.layers(frames)  # (B*T, 4C, H/8, W/8)
        return x.unflatten(0, (b, t)).permute(0, 1, 3, 4, 2)  # (B, T, H/8, W/8, 4C)


class PoseEmbed(nn.Module):
    """(B, T, [people,] J, k) joints -> (B, T, people * J, 4C) pose tokens (before the temporal table)."""

    def __init__(self, num_joints: int, num_people: int, pose_dim: int, embed_dim: int,
                 pose_space: str = "pixel") -> None:
        super().__init__()
        if pose_space not in POSE_SPACES:
            raise ValueError(f"pose_space must be one of {POSE_SPACES}, got {pose_space!r}")
        self.num_joints, self.num_people, self.pose_dim, self.pose_space = num_joints, num_people, pose_dim, pose_space
        self.proj = nn.Linear(pose_dim, embed_dim)
        self.joint_embed = nn.Parameter(torch.zeros(num_joints, embed_dim))
        self.person_embed = nn.Parameter(torch.zeros(num_people, embed_dim))

    def forward(self, pose: Tensor, frame_hw: tuple[int, int]) -> Tensor:
        if pose.ndim == 4:  # (B, T, J, k): one person
            pose = pose.unsqueeze(2)
        expected = (self.num_people, self.num_joints, self.pose_dim)
        if pose.ndim != 5 or tuple(pose.shape[2:]) != expected:
            raise ValueError(f"pose must be (B, T, J, k) or (B, T, people, J, k) with people={self.num_people}, "
                             f"J={self.num_joints} (num_joints), k={self.pose_dim} (pose_dim); got {tuple(pose.shape)}")
        if self.pose_space == "pixel":  # 1-based pixel centres: x = 1 .. W -> (2x - 1) / W - 1 in (-1, 1)
            h, w = frame_hw
            size = pose.new_tensor([w, h])
            pose = torch.cat([(2 * pose[..., :2] - 1) / size - 1, pose[..., 2:]], dim=-1)
        x = self.proj(pose) + self.joint_embed + self.person_embed[:, None]  # (B, T, people, J, C)
        return x.flatten(2, 3)  # (B, T, R, C), person-major


def temporal_table(table: Tensor, num_frames: int) -> Tensor:
    """(1, T0, 1, C) learnable temporal table -> (1, num_frames, 1, C), linearly interpolated when T differs.

    Clips are sampled by segments (the video cut into T equal parts, one frame from the centre of each), so frame k
    of a T-frame clip shows the instant (k + 1/2) / T of the video, which entry (k + 1/2) T0 / T - 1/2 of the
    table was trained on: ``align_corners=False``. (Pinning the first and last frames to entries 0 and T0 - 1
    would give 4 test frames the embeddings of instants a whole entry away from theirs.)
    """
    if table.shape[1] == num_frames:
        return table
    resized = F.interpolate(table[:, :, 0].transpose(1, 2), size=num_frames, mode="linear", align_corners=False)
    return resized.transpose(1, 2).unsqueeze(2)


__all__ = ["ConvStem", "POSE_SPACES", "PoseEmbed", "temporal_table"]
