"""Frame-wise attention and the attentions that exchange q, k, v with the neighbouring frames t-1 and t+1.

Tokens have one class token per frame: x is (B, T*(1+S), C) ordered (t n), frame t's class token at n = 0, then its
S = H*W patches. ``FrameAttention`` is an image ViT's MSA inside every frame (the frame-wise ViT baseline); its
subclasses only change which frame some heads, token rows or channels of the per-frame Q, K, V come from
(``shift_frames`` on the qkv output, channels head-major ``(nh d)``), so attention, FLOPs and parameters (timm's
``qkv``/``proj``) stay ``FrameAttention``'s. A neighbour outside the clip contributes zeros. Readings of the MSCA
and X-ViT papers: docs/msca_paper_scale.md#readings-where-the-text-leaves-room.
"""

from __future__ import annotations

from typing import Literal

from einops import rearrange
from torch import Tensor

from .joint import JointSpaceTimeAttention, attend
from .temporal_shift import Shift, channels_per_direction, shift_frames

SHIFTED = ("Q", "K", "V", "QK", "KV", "QV", "QKV")  # MSCA's seven variants: which projections are exchanged


class FrameAttention(JointSpaceTimeAttention):
    """Multi-head self-attention inside each frame (tokens of frame t attend to frame t only): the frame-wise ViT.

    The joint attention's parameters (timm's ``Attention``), applied to every frame as an image.
    """

    def forward(self, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
        batch, tokens, dim = x.shape
        num_t = thw[0]
        shifts = self.shifts(tokens // num_t)
        # Projected as a (tokens, 3C) matrix: a tensor of its own, not the view nn.Linear returns for 3-D input,
        # so that a shift may rewrite it in place.
        qkv = self.qkv(x.reshape(batch * tokens, dim))
        if shifts:  # the projection with elements exchanged; (b, t, n, three, C) indices
            qkv = shift_frames(qkv, self.shift_view(batch, num_t, dim), shifts, in_place=True)  # this method's own
        q, k, v = rearrange(qkv, "(b t n) (three nh d) -> three (b t) nh n d", b=batch, t=num_t, three=3,
                            nh=self.num_heads)
        dropout_p = self.attn_drop.p if self.training else 0.0
        x = attend(q, k, v, self.fused_attn, dropout_p)
        x = rearrange(x, "(b t) nh n d -> b (t n) (nh d)", t=num_t)
        return self.proj_drop(self.proj(x))

    def shifts(self, tokens_per_frame: int) -> list[Shift]:
        """Elements of the per-frame (n, three, C) q, k, v taken from frames t-1 and t+1: none here."""
        return []

    def shift_view(self, batch: int, num_frames: int, dim: int) -> tuple[int, ...]:
        """The (clips, frames, n, three, C) view of the q, k, v projection in which ``shifts`` move elements
        between neighbouring frames: every clip whole here."""
        return (batch, num_frames, -1, 3, dim)


class MultiHeadSelfCrossAttention(FrameAttention):
    """MSCA (Eq. 17-23): some heads (or token rows) of Q, K and/or V are taken from frames t-1 and t+1.

    ``shift_along="heads"``: heads ``[0, num_backward)`` come from t-1, the next ``num_forward`` from t+1 (h_b, h_f);
    ``"tokens"`` (MSCA-p*): token rows likewise, row 0 being the class token (N_b, N_f)."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
        shifted: Literal["Q", "K", "V", "QK", "KV", "QV", "QKV"] = "KV",
        shift_along: Literal["heads", "tokens"] = "heads",
        num_backward: int = 1,
        num_forward: int = 1,
        value_frames: Literal["same", "opposite"] = "same",
        head_order: Literal["paper", "official"] = "paper",
    ) -> None:
        """
        Args:
            dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn: as ``FrameAttention``.
            shifted: which projections are exchanged ("KV" = MSCA-KV, the paper's best).
            shift_along: "heads" (MSCA-KV, ...) or "tokens" (MSCA-pKV, ...).
            num_backward: heads (h_b) or token rows (N_b) taken from frame t-1.
            num_forward: heads (h_f) or token rows (N_f) taken from frame t+1.
            value_frames: "same" (the paper): a shifted head's (row's) values come from the neighbour its queries
                and keys come from; "opposite" (not in the paper): from the other neighbour. Needs V and Q or K
                in ``shifted``.
            head_order: which heads move: "paper" (Eq. 17: the first h_b from t-1, the next h_f from t+1) or
                "official" (the authors' code: the first h_f from t+1, the last h_b from t-1); heads only.
        """
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn)
        if shifted not in SHIFTED:
            raise ValueError(f"shifted must be one of {SHIFTED}, got {shifted!r}")
        if shift_along not in ("heads", "tokens"):
            raise ValueError(f"shift_along must be 'heads' or 'tokens', got {shift_along!r}")
        if min(num_backward, num_forward) < 0:
            raise ValueError(f"num_backward {num_backward} and num_forward {num_forward} must be >= 0")
        if shift_along == "heads" and num_backward + num_forward > num_heads:
            raise ValueError(f"num_backward + num_forward = {num_backward + num_forward} heads exceed num_heads "
                             f"{num_heads}")
        if value_frames not in ("same", "opposite"):
            raise ValueError(f"value_frames must be 'same' or 'opposite', got {value_frames!r}")
        if value_frames == "opposite" and not ("V" in shifted and len(shifted) > 1):
            raise ValueError(f"value_frames='opposite' takes the shifted values from the other neighbour than the "
                             f"shifted queries or keys: shifted must hold V and Q or K, got {shifted!r}")
        if head_order not in ("paper", "official"):
            raise ValueError(f"head_order must be 'paper' or 'official', got {head_order!r}")
        if head_order == "official" and (shift_along != "heads" or value_frames != "same"):
            raise ValueError("head_order='official' places shifted heads as the authors' code does, which shifts "
                             "heads (shift_along='heads') with the values of their keys' frame (value_frames='same')")
        self.shifted = shifted
        self.shift_along = shift_along
        self.num_backward = num_backward
        self.num_forward = num_forward
        self.value_frames = value_frames
        self.head_order = head_order
        unit = dim // num_heads if shift_along == "heads" else 1  # a head is head_dim channels; a row is one row
        previous, following = (0, num_backward * unit), (num_backward * unit, (num_backward + num_forward) * unit)
        # Projections that share their frames as one slice of the (q, k, v) axis, so KV or QKV move in one copy;
        # values from the opposite neighbour are a shift of their own, its two ranges swapped.
        same = shifted if value_frames == "same" else shifted.replace("V", "")
        first, last = "QKV".index(same[0]), "QKV".index(same[-1])
        groups = [(p, previous, following) for p in ([0, 2] if same == "QV" else [slice(first, last + 1)])]
        if value_frames == "opposite":
            groups.append((2, following, previous))
        if head_order == "official":  # the last h_b heads from t-1, the first h_f from t+1: apart, one shift each
            last = (num_heads - num_backward) * unit
            ends = ([((last, dim), (last, last))] if num_backward else []) + (
                [((0, 0), (0, num_forward * unit))] if num_forward else [])
            groups = [(p, back, ahead) for p, _, _ in groups for back, ahead in ends]
        self._shifts = [Shift(at=(slice(None), p, None) if shift_along == "heads" else (None, p),  # (n, three, C)
                              previous=back, next=ahead) for p, back, ahead in groups]

    def shifts(self, tokens_per_frame: int) -> list[Shift]:
        if self.shift_along == "tokens" and self.num_backward + self.num_forward > tokens_per_frame:
            raise ValueError(f"num_backward + num_forward = {self.num_backward + self.num_forward} token rows "
                             f"exceed the {tokens_per_frame} tokens of a frame")
        return self._shifts


class SpaceTimeMixingAttention(FrameAttention):
    """X-ViT space-time mixing: keys and values of each frame built from frames t-1, t and t+1, queries of frame
    t only, then frame-wise attention. As the official ``TemporalShift``: of ``c = int(C * shift_fraction) // 2``
    channels per direction, ``[0, c)`` come from t+1 and ``[c, 2c)`` from t-1 (head-major, whole heads or not).
    ``shift_segment``: as the official shift, which reshapes the frames into segments of ``XVIT.NUM_SEGMENTS``
    frames, frames mix only within their segment, a segment's first and last frames taking zeros from beyond it
    (its Kinetics configurations run 16 frames in two segments of 8)."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
        shift_fraction: float = 0.5,
        shift_segment: int | None = None,
    ) -> None:
        """
        Args:
            dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn: as ``FrameAttention``.
            shift_fraction: fraction of the key/value channels from the neighbours, half from each (official
                ``SHIFT_DIV`` s: ``2 / s``).
            shift_segment: frames of one segment within which frames mix (official ``XVIT.NUM_SEGMENTS``); it
                must divide the clip's frames. None: the whole clip.
        """
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn)
        if shift_segment is not None and shift_segment < 1:
            raise ValueError(f"shift_segment must be a positive number of frames or None, got {shift_segment}")
        c = channels_per_direction(dim, shift_fraction)
        self.shift_fraction = shift_fraction
        self.shift_segment = shift_segment
        keys_values = slice(1, 3)
        self._shifts = [Shift(at=(slice(None), keys_values, None), previous=(c, 2 * c), next=(0, c))]

    def shifts(self, tokens_per_frame: int) -> list[Shift]:
        return self._shifts

    def shift_view(self, batch: int, num_frames: int, dim: int) -> tuple[int, ...]:
        segment = self.shift_segment or num_frames
        if num_frames % segment:
            raise ValueError(f"shift_segment {segment} does not divide the clip's {num_frames} frames")
        return (batch * (num_frames // segment), segment, -1, 3, dim)


__all__ = ["SHIFTED", "FrameAttention", "MultiHeadSelfCrossAttention", "SpaceTimeMixingAttention"]
