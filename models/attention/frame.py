"""Frame-wise attention and the attentions that exchange q, k, v with the neighbouring frames t-1 and t+1.

Token layout, "per-frame class tokens": x is (B, T*(1+S), C) ordered (t n); frame t holds its own class token at
n = 0, then its S = H*W patches. ``FrameAttention`` is an image ViT's MSA run inside every frame (MSCA paper
Eq. 12-16): the frame-wise ViT baseline. Its subclasses change only which frame some elements of the per-frame
Q, K, V come from, by ``shift_frames`` on the qkv projection's output before the attention (seen per frame as
(n, three, C), channels head-major ``(nh d)``: a head is a range of channels); the attention
itself, its FLOPs and its parameters (timm's ``qkv``/``proj``) are those of ``FrameAttention``.

Reading of the MSCA paper (Hashiguchi & Tamaki), written down where the text leaves room:

- Heads (Eq. 17-18): "the first h_b heads" take frame t-1, "the next h_f heads" frame t+1, the rest stay (the
  text and Table 1, where h_b = h_f = 1 shifts 2 heads; Eq. 17's ``1 <= i < h_b`` is read as those h_b heads).
  A head shift moves that head's channels of every token of the frame, the class token included.
- The seven variants Q, K, V, QK, KV, QV, QKV shift the same heads of each named projection, each from the same
  neighbour frame. ``value_frames="opposite"`` (not in the paper) takes the shifted values from the other
  neighbour instead: a diagnostic of why the variants whose keys and values come from one frame do not see motion
  on the tiny motion control (``experiments.msca.msca_kv_frames``).
- Patches (Eq. 19-23): K^(t) = [K_0, ..., K_N] has N + 1 rows and row 0 is the class token (Eq. 1's order),
  so "the first N_b patches" are rows 0..N_b-1: the class token and the first N_b - 1 patches (raster order)
  come from frame t-1, rows N_b..N_b+N_f-1 from frame t+1. Table 4 counts N_b + N_f over N + 1 = 197 rows.
- Clip boundaries: a neighbour frame outside the clip contributes zeros (TSM's padding; the paper says nothing).
  A zero key still takes part in the softmax (logit 0); a zero query attends uniformly.
- Scale: Eq. 14 divides by sqrt(D); we use sqrt(D/h) as timm's ViT, which is what a pretrained ViT needs.
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
            qkv = shift_frames(qkv, (batch, num_t, -1, 3, dim), shifts, in_place=True)  # qkv is this method's own
        q, k, v = rearrange(qkv, "(b t n) (three nh d) -> three (b t) nh n d", b=batch, t=num_t, three=3,
                            nh=self.num_heads)
        dropout_p = self.attn_drop.p if self.training else 0.0
        x = attend(q, k, v, self.fused_attn, dropout_p)
        x = rearrange(x, "(b t) nh n d -> b (t n) (nh d)", t=num_t)
        return self.proj_drop(self.proj(x))

    def shifts(self, tokens_per_frame: int) -> list[Shift]:
        """Elements of the per-frame (n, three, C) q, k, v taken from frames t-1 and t+1: none here."""
        return []


class MultiHeadSelfCrossAttention(FrameAttention):
    """MSCA (Eq. 17-23): some heads (or token rows) of Q, K and/or V are taken from frames t-1 and t+1.

    ``shift_along="heads"``: heads ``[0, num_backward)`` come from t-1, ``[num_backward, num_backward +
    num_forward)`` from t+1 (h_b, h_f). ``shift_along="tokens"`` (MSCA-p*): token rows ``[0, num_backward)``
    -- row 0 is the class token -- from t-1, the next ``num_forward`` rows from t+1 (N_b, N_f).
    ``value_frames="opposite"`` reads the shifted values from the other neighbour (heads ``[0, num_backward)`` of
    V from t+1, the next ``num_forward`` from t-1) while the shifted queries and keys stay as above.
    ``head_order="official"`` places the heads as the authors' code does (TokShift-Transformer's ``MSCA.diff``,
    ``vit_models/modeling_attentionshift.py``): heads ``[0, num_forward)`` from t+1 and the last ``num_backward``
    heads from t-1.
    """

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
    t only, then frame-wise attention (X-ViT's local temporal window of one frame each side).

    Channel order as the official code (``TemporalShift`` on k and v of shape (b*t, nh, n, d), permuted to
    head-major channels ``(nh d)``): with ``c = int(C * shift_fraction) // 2`` channels per direction, channels
    ``[0, c)`` come from frame t+1 and ``[c, 2c)`` from frame t-1, whole heads or not: with 12 heads, the
    official SSv2 ``SHIFT_DIV: 4`` (``shift_fraction=0.5``) takes heads 0-2 from t+1, heads 3-5 from t-1 and
    heads 6-11 from t; its Kinetics ``SHIFT_DIV: 8`` (``shift_fraction=0.25``) 1.5 heads each way. Every token
    moves, the class token included.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
        shift_fraction: float = 0.5,
    ) -> None:
        """
        Args:
            dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn: as ``FrameAttention``.
            shift_fraction: fraction of the key/value channels from the neighbours, half from each (official
                ``SHIFT_DIV`` s: ``2 / s``).
        """
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn)
        c = channels_per_direction(dim, shift_fraction)
        self.shift_fraction = shift_fraction
        keys_values = slice(1, 3)
        self._shifts = [Shift(at=(slice(None), keys_values, None), previous=(c, 2 * c), next=(0, c))]

    def shifts(self, tokens_per_frame: int) -> list[Shift]:
        return self._shifts


__all__ = ["SHIFTED", "FrameAttention", "MultiHeadSelfCrossAttention", "SpaceTimeMixingAttention"]
