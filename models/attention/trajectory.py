"""Trajectory attention (Motionformer, Patrick et al. 2021, Eq. 4-6).

Per head, stage one builds for every query ``q_st`` and every frame ``t'`` a trajectory token (Eq. 4)::

    y~_stt' = sum_s' v_s't' softmax(q_st . k_s't' / sqrt(d))

with the softmax over the S locations of frame t' (``normalize="space"``, Norm_S) or jointly over all (s', t')
(``normalize="spacetime"``, Norm_ST). Stage two (Eq. 5-6) pools each trajectory over t' with 1-D attention whose
query is the trajectory token at the reference frame: ``q~ = proj_q(y~_stt)``, ``k~, v~ = proj_kv(y~_stt')``
(``temporal_pool="attention"``, Att_T), or simply averages over t' (``temporal_pool="average"``, Avg_T).
As in the official code, stage two projects the concatenated heads (``proj_q``: dim->dim, ``proj_kv``:
dim->2*dim) and the CLS query attends jointly to all tokens (itself included) with plain attention, while patch
tokens run trajectory attention over the patch tokens only.

Memory: the fused Norm_S path folds the frame axis t' into the batch (each query is broadcast, as a view, over
the T frames, each frame's S keys form one problem) and calls SDPA, so no (T*S) x (T*S) score matrix exists.
Norm_ST needs one normaliser across frames, which SDPA cannot return differentiably; it always takes the explicit
path, which materialises the (T*S) x (T*S) scores, whatever ``fused_attn`` says.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from torch import Tensor, nn

from .joint import attend


class TrajectoryAttention(nn.Module):
    """Attention along probabilistic trajectories: spatial attention per frame, then 1-D pooling over time."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
        temporal_pool: Literal["attention", "average"] = "attention",
        normalize: Literal["space", "spacetime"] = "space",
    ) -> None:
        """
        Args:
            dim: token width C; must be divisible by ``num_heads``.
            num_heads: attention heads.
            qkv_bias: bias on the q/k/v projection and on the stage-two ``proj_q``/``proj_kv``.
            attn_drop: dropout on the attention weights (CLS, stage one and stage two).
            proj_drop: dropout after the output projection.
            fused_attn: use SDPA (True) or the explicit softmax path (False). Ignored for Norm_ST (see module doc).
            temporal_pool: "attention" (Att_T, Eq. 5-6) or "average" (Avg_T: mean over the trajectory).
            normalize: "space" (Norm_S, softmax per frame, Eq. 4) or "spacetime" (Norm_ST, one softmax over
                all frames).
        """
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} not divisible by num_heads {num_heads}"
        if temporal_pool not in ("attention", "average"):
            raise ValueError(f"temporal_pool must be 'attention' or 'average', got {temporal_pool!r}")
        if normalize not in ("space", "spacetime"):
            raise ValueError(f"normalize must be 'space' or 'spacetime', got {normalize!r}")
        self.num_heads = num_heads
        self.fused_attn = fused_attn
        self.temporal_pool = temporal_pool
        self.normalize = normalize
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        if temporal_pool == "attention":
            self.proj_q = nn.Linear(dim, dim, bias=qkv_bias)
            self.proj_kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        num_frames = thw[0]
        dropout_p = self.attn_drop.p if self.training else 0.0
        q, k, v = rearrange(self.qkv(x), "b n (three nh d) -> three b nh n d", three=3, nh=self.num_heads)
        cls_out = attend(q[:, :, :1], k, v, self.fused_attn, dropout_p)  # (b nh 1 d): CLS attends to everything

        q, k, v = q[:, :, 1:], k[:, :, 1:], v[:, :, 1:]  # trajectories run over the patch tokens only
        traj = self._trajectories(q, k, v, num_frames, dropout_p)  # (b nh tp (t n) d)
        if self.temporal_pool == "average":
            out = traj.mean(dim=2)
        else:
            out = self._temporal_attention(traj, num_frames, dropout_p)
        out = rearrange(torch.cat([cls_out, out], dim=2), "b nh n d -> b n (nh d)")
        return self.proj_drop(self.proj(out))

    def _trajectories(self, q: Tensor, k: Tensor, v: Tensor, num_frames: int, dropout_p: float) -> Tensor:
        """Stage one (Eq. 4): trajectory tokens y~ of shape (b, nh, tp, T*S, d); tp indexes the frame t'."""
        b, nh = q.shape[:2]
        if self.fused_attn and self.normalize == "space":
            # One SDPA problem per (batch, head, frame t'): all T*S queries against the S keys of frame t'.
            q = rearrange(q, "b nh n d -> (b nh) 1 n d").expand(-1, num_frames, -1, -1)  # a view, not T copies
            k, v = (rearrange(z, "b nh (tp n) d -> (b nh) tp n d", tp=num_frames) for z in (k, v))
            traj = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)  # ((b nh) tp N d)
            return rearrange(traj, "(b nh) tp n d -> b nh tp n d", b=b, nh=nh)

        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (b nh N N): the (T*S) x (T*S) matrix
        scores = rearrange(scores, "b nh q (tp n) -> b nh q tp n", tp=num_frames)
        if self.normalize == "space":
            attn = scores.softmax(dim=-1)  # over the S keys of each frame
        else:
            attn = rearrange(scores, "b nh q tp n -> b nh q (tp n)").softmax(dim=-1)  # over all (s', t')
            attn = rearrange(attn, "b nh q (tp n) -> b nh q tp n", tp=num_frames)
        attn = F.dropout(attn, p=dropout_p)
        v = rearrange(v, "b nh (tp n) d -> b nh tp n d", tp=num_frames)
        return einsum(attn, v, "b nh q tp n, b nh tp n d -> b nh tp q d")

    def _temporal_attention(self, traj: Tensor, num_frames: int, dropout_p: float) -> Tensor:
        """Stage two (Eq. 5-6): pool each trajectory over t' with the reference-frame token as query."""
        b, nh = traj.shape[:2]
        traj = rearrange(traj, "b nh tp (t n) d -> b nh t n tp d", t=num_frames)
        # y~_stt: the trajectory token at the query's own frame, i.e. the diagonal t' = t.
        ref = rearrange(torch.diagonal(traj, dim1=2, dim2=4), "b nh n d t -> b (t n) (nh d)")
        traj = rearrange(traj, "b nh t n tp d -> b (t n) tp (nh d)")
        q = rearrange(self.proj_q(ref), "b n (nh d) -> (b n) nh 1 d", nh=nh)
        k, v = rearrange(self.proj_kv(traj), "b n tp (two nh d) -> two (b n) nh tp d", two=2, nh=nh)
        out = attend(q, k, v, self.fused_attn, dropout_p)  # ((b n) nh 1 d)
        return rearrange(out, "(b n) nh 1 d -> b nh n d", b=b)
