"""Information exchange between the experts inside one block (Eq. 4): B-CAST and the baselines of Table 1b/1c.

Every exchange maps the two experts' post-MHSA tokens (patch grids (B, T, N, D), a frame expert's class tokens
(B, T, D)) to updates added to them. ``kind``: "bcast" (B-CAST, Eq. 8), "none", "xattn", "xattn_adapter" or
"lateral"; ``directions``: "both", "t2s" or "s2t". Each kind, and how class tokens pass it:
docs/cast_model.md#the-exchanges.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import Adapter, Window, WindowedCrossAttention, cast_linear

Exchange = Literal["bcast", "none", "xattn", "xattn_adapter", "lateral"]
EXCHANGES: tuple[str, ...] = ("bcast", "none", "xattn", "xattn_adapter", "lateral")
DIRECTIONS: tuple[str, ...] = ("both", "t2s", "s2t")
Updates = tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]


class BlockExchange(nn.Module):
    """Phi_S and Phi_T of one block (module doc); ``forward`` returns the four updates (or None for none)."""

    def __init__(self, dim: int, num_heads: int, num_steps: int, num_patches: int, kind: Exchange = "bcast",
                 directions: str = "both", down_ratio: float = 0.5, t2s_window: Window = "time",
                 s2t_window: Window = "space", pos: bool = True, adapter_ratio: float = 0.25,
                 fused_attn: bool = True) -> None:
        """
        Args:
            dim: expert width D.
            num_heads: heads of each cross-attention (the experts' head count, as the official code).
            num_steps, num_patches: the (T, N) patch grid shared by both experts.
            kind: "bcast", "xattn", "xattn_adapter" or "lateral" ("none" builds no module: see ``CAST``).
            directions: "both", "t2s" or "s2t".
            down_ratio: B-CAST bottleneck width / D (Table 1d: 1/8, 1/4, 1/2, 1).
            t2s_window, s2t_window: window shapes (Table 1e): "time", "space" or "space_time".
            pos: B-CAST positional embeddings (Table 8).
            adapter_ratio: width ratio of the adapters of "xattn_adapter".
            fused_attn: SDPA or explicit softmax in the cross-attentions.
        """
        super().__init__()
        if kind not in EXCHANGES or kind == "none":
            raise ValueError(f"exchange kind must be one of {EXCHANGES[:1] + EXCHANGES[2:]}, got {kind!r}")
        if directions not in DIRECTIONS:
            raise ValueError(f"directions must be one of {DIRECTIONS}, got {directions!r}")
        self.kind = kind
        self.t2s_on, self.s2t_on = directions in ("both", "t2s"), directions in ("both", "s2t")
        if kind == "lateral":
            self.t_to_s = cast_linear(dim, dim, zero=True) if self.t2s_on else None
            self.s_to_t = cast_linear(dim, dim, zero=True) if self.s2t_on else None
            return
        width = dim
        if kind == "bcast":
            width = int(dim * down_ratio)
            if width < num_heads or width % num_heads:
                raise ValueError(f"B-CAST width {dim} x {down_ratio} = {width} must be a multiple of the "
                                 f"{num_heads} heads")
            self.down_s, self.down_t = cast_linear(dim, width), cast_linear(dim, width)
        self.norm_s, self.norm_t = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
        grid = dict(num_steps=num_steps, num_patches=num_patches, pos=pos, fused_attn=fused_attn,
                    zero_proj=kind == "xattn")
        self.t2s = WindowedCrossAttention(width, num_heads, t2s_window, **grid) if self.t2s_on else None
        self.s2t = WindowedCrossAttention(width, num_heads, s2t_window, **grid) if self.s2t_on else None
        if kind == "bcast":
            self.up_s = cast_linear(width, dim, zero=True) if self.t2s_on else None
            self.up_t = cast_linear(width, dim, zero=True) if self.s2t_on else None
        elif kind == "xattn_adapter":
            self.adapter_s = Adapter(dim, adapter_ratio) if self.t2s_on else None
            self.adapter_t = Adapter(dim, adapter_ratio) if self.s2t_on else None

    def _into(self, side: str, x: Tensor) -> Tensor:
        """Tokens entering the cross-attention: LN(x W_D) for B-CAST, LN(x) at full width otherwise."""
        if self.kind == "bcast":
            x = getattr(self, f"down_{side}")(x)
        return getattr(self, f"norm_{side}")(x)

    def _out(self, side: str, z: Tensor) -> Tensor:
        """Cross-attention output -> update: GELU then W_U (B-CAST), as is ("xattn"), or ADAP ("xattn_adapter")."""
        if self.kind == "bcast":
            return getattr(self, f"up_{side}")(F.gelu(z))
        return z if self.kind == "xattn" else getattr(self, f"adapter_{side}")(z)

    def forward(self, s_cls: Tensor | None, s_grid: Tensor, t_cls: Tensor | None, t_grid: Tensor,
                patch_updates: tuple[bool, bool] = (True, True)) -> Updates:
        """Class tokens (B, T, D) or None, grids (B, T, N, D) -> updates (s_cls, s_grid, t_cls, t_grid).

        ``patch_updates``: whether the (spatial, temporal) patch updates are wanted at all; False skips computing
        one (``CAST`` skips work whose result no head reads). Both grids are still read as keys."""
        want_s, want_t = self.t2s_on and patch_updates[0], self.s2t_on and patch_updates[1]
        if self.kind == "lateral":
            return None, self.t_to_s(t_grid) if want_s else None, None, self.s_to_t(s_grid) if want_t else None
        hs, ht = self._into("s", s_grid), self._into("t", t_grid)
        # Class tokens skip the attention; with no trainable layer around it ("xattn") they get no update.
        cls_update = self.kind != "xattn"
        d_s_cls = d_s = d_t_cls = d_t = None
        if want_s:
            d_s = self._out("s", self.t2s(hs, ht))
        if self.t2s_on and s_cls is not None and cls_update:
            d_s_cls = self._out("s", self._into("s", s_cls))
        if want_t:
            d_t = self._out("t", self.s2t(ht, hs))
        if self.s2t_on and t_cls is not None and cls_update:
            d_t_cls = self._out("t", self._into("t", t_cls))
        return d_s_cls, d_s, d_t_cls, d_t
