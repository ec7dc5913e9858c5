"""A small encoder transformer for Long Range Arena, whose attention is exact or an approximation (Table 5).

The architecture and the ``lra_listops`` defaults are those of the Nystromformer repository's LRA code, which
Motionformer's Table 5 used. Token ``pad_id`` (0) is padding: exact attention and mean pooling leave it out,
Nystrom and Orthoformer take the mask, Performer zeroes padded keys and values. Architecture and padding:
models/README.md#the-lra-transformer.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from einops import rearrange
from timm.layers import Mlp
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from .attention.joint import sdpa
from .registry import create_model, register_model

ATTENTION_NAMES = ("exact", "orthoformer", "nystrom", "performer")
PAPER_BUDGETS = {"exact": None, "orthoformer": 64, "nystrom": 128, "performer": 256}  # Table 5: prototypes, etc.
TINY_BUDGETS = {"exact": None, "orthoformer": 16, "nystrom": 32, "performer": 64}  # generated lengths 33..127


def _approximation(name: str):
    from .attention.approximate import APPROXIMATIONS  # lazy: written separately, needed only for approximations

    if name not in APPROXIMATIONS:
        raise ValueError(f"unknown attention {name!r}; valid names: {sorted(APPROXIMATIONS)}")
    return APPROXIMATIONS[name]


class LRAAttention(nn.Module):
    """Multi-head self-attention over (B, N, C) tokens with a key padding mask; exact or approximate per head.

    Args:
        dim: token width.
        num_heads: attention heads.
        head_dim: width of each head (Nystromformer's LRA models use num_heads * head_dim == dim).
        attention: "exact" or a name in ``models.attention.approximate.APPROXIMATIONS``.
        budget: prototypes (orthoformer), landmarks (nystrom) or random features (performer); None for exact.
        attn_options: further keyword arguments of the approximation.
        qkv_bias: bias on the q/k/v projection.
        attn_drop: dropout on the attention weights (exact attention only: approximations have no weight matrix).
        proj_drop: dropout after the output projection.
        fused_attn: exact attention through ``scaled_dot_product_attention`` (else the explicit softmax formula).
    """

    def __init__(self, dim: int, num_heads: int = 2, head_dim: int | None = None, attention: str = "exact",
                 budget: int | None = None, attn_options: dict[str, Any] | None = None, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, fused_attn: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim or dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.attention = attention
        self.budget = budget
        self.attn_options = dict(attn_options or {})
        self.fused_attn = fused_attn
        if attention != "exact":
            if budget is None:
                raise ValueError(f"attention {attention!r} needs a budget (prototypes / landmarks / features)")
            _approximation(attention)  # unknown names fail at construction
        if attention == "performer" and "projection" not in self.attn_options:
            # One random-feature projection per layer, drawn once and kept (as the Performer FastAttention the
            # Nystromformer repository wraps): evaluation is deterministic and checkpoints carry it.
            from .attention.approximate import orthogonal_random_features

            self.register_buffer("projection", orthogonal_random_features(budget, self.head_dim))
        else:
            self.projection = None
        inner = num_heads * self.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(inner, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x (B, N, C), mask (B, N) bool (True = real token) or None -> (B, N, C)."""
        q, k, v = rearrange(self.qkv(x), "b n (three nh d) -> three b nh n d", three=3, nh=self.num_heads)
        if self.attention == "exact":
            x = self._exact(q, k, v, mask)
        else:
            options = self.attn_options if self.projection is None else {**self.attn_options,
                                                                           "projection": self.projection}
            if mask is not None and self.attention == "performer":  # FAVOR+ takes no mask: see the module doc
                keep = rearrange(mask, "b n -> b 1 n 1").to(k.dtype)
                k, v = k * keep, v * keep
            elif mask is not None:
                options = {**options, "mask": rearrange(mask, "b n -> b 1 n")}
            x = _approximation(self.attention)(q, k, v, self.budget, **options)
        x = rearrange(x, "b nh n d -> b n (nh d)")
        return self.proj_drop(self.proj(x))

    def _exact(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        key_mask = None if mask is None else rearrange(mask, "b n -> b 1 1 n")
        if self.fused_attn:
            return sdpa(q, k, v, attn_mask=key_mask, dropout_p=self.attn_drop.p if self.training else 0.0)
        scores = (q * self.scale) @ k.transpose(-2, -1)  # (b, nh, n, n)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask, float("-inf"))
        return self.attn_drop(scores.softmax(dim=-1)) @ v

    def extra_repr(self) -> str:
        return f"attention={self.attention}, budget={self.budget}, num_heads={self.num_heads}, head_dim={self.head_dim}"


class LRABlock(nn.Module):
    """Pre-norm transformer block with a padding mask."""

    def __init__(self, dim: int, num_heads: int, head_dim: int | None, mlp_hidden_dim: int, attention: str,
                 budget: int | None, attn_options: dict[str, Any] | None, drop: float, attn_drop: float) -> None:
        """
        Args:
            dim, num_heads, head_dim, attention, budget, attn_options: as ``LRAAttention``.
            mlp_hidden_dim: hidden width of the MLP.
            drop: dropout after attention and in the MLP.
            attn_drop: dropout on exact attention weights.
        """
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = LRAAttention(dim, num_heads, head_dim, attention, budget, attn_options, attn_drop=attn_drop)
        self.drop1 = nn.Dropout(drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden_dim, act_layer=nn.GELU, drop=drop)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        x = x + self.drop1(self.attn(self.norm1(x), mask))
        return x + self.mlp(self.norm2(x))


class LRATransformer(nn.Module):
    """Token classifier for LRA: (B, L) token ids -> (B, num_classes); (B, 2, L) pairs when ``dual``.

    Args:
        vocab_size: embedding rows (token ids must be smaller).
        num_classes: classes of the head.
        max_len: rows of the learned position table (longest input).
        embed_dim, depth, num_heads: token width, transformer blocks, attention heads.
        head_dim: width of each head (None: embed_dim // num_heads).
        mlp_hidden_dim: hidden width of the block MLPs and of the head.
        attention: "exact", "orthoformer", "nystrom" or "performer".
        budget: prototypes / landmarks / random features; None = the paper's (64 / 128 / 256).
        attn_options: further keyword arguments of the approximation.
        pooling: "mean" over real tokens, or "cls" (a learned token prepended to the sequence).
        dual: inputs are document pairs (retrieval): both encoded, head on [x0, x1, x0 * x1, x0 - x1].
        drop_rate, attn_drop_rate: dropout on embeddings, after attention and in the MLPs; on exact attention weights.
        pad_id: the padding token id.
    """

    def __init__(self, vocab_size: int = 32, num_classes: int = 10, max_len: int = 2048, embed_dim: int = 64,
                 depth: int = 2, num_heads: int = 2, head_dim: int | None = 32, mlp_hidden_dim: int = 128,
                 attention: str = "exact", budget: int | None = None, attn_options: dict[str, Any] | None = None,
                 pooling: Literal["mean", "cls"] = "mean", dual: bool = False, drop_rate: float = 0.1,
                 attn_drop_rate: float = 0.1, pad_id: int = 0) -> None:
        super().__init__()
        if attention not in ATTENTION_NAMES:
            raise ValueError(f"unknown attention {attention!r}; valid names: {list(ATTENTION_NAMES)}")
        if pooling not in ("mean", "cls"):
            raise ValueError(f"unknown pooling {pooling!r}; use 'mean' or 'cls'")
        budget = PAPER_BUDGETS[attention] if budget is None else budget
        self.num_classes, self.vocab_size, self.max_len = num_classes, vocab_size, max_len
        self.embed_dim, self.pooling, self.dual, self.pad_id = embed_dim, pooling, dual, pad_id
        self.attention, self.budget = attention, budget
        self.token_embed = nn.Embedding(vocab_size, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_len + (pooling == "cls"), embed_dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if pooling == "cls" else None
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList(
            LRABlock(embed_dim, num_heads, head_dim, mlp_hidden_dim, attention, budget, attn_options, drop_rate,
                     attn_drop_rate) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        head_in = 4 * embed_dim if dual else embed_dim
        self.head = nn.Sequential(nn.Linear(head_in, mlp_hidden_dim), nn.ReLU(), nn.Linear(mlp_hidden_dim, num_classes))
        for p in (self.token_embed.weight, self.pos_embed, self.cls_token):
            if p is not None:
                nn.init.normal_(p, std=0.02)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def set_fused_attn(self, enable: bool) -> dict[str, bool]:
        """Switch exact attention between SDPA and the explicit formula; returns the previous flags by module name."""
        previous = {}
        for name, m in self.named_modules():
            if isinstance(m, LRAAttention):
                previous[name], m.fused_attn = m.fused_attn, enable
        return previous

    def forward_features(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L) ids -> normalised token features (B, L[+1], C) and the mask of real tokens (B, L[+1])."""
        if tokens.shape[-1] > self.max_len:
            raise ValueError(f"sequence of {tokens.shape[-1]} tokens is longer than max_len {self.max_len}")
        mask = tokens != self.pad_id
        x = self.token_embed(tokens)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)
            mask = torch.cat([mask.new_ones(len(x), 1), mask], dim=1)
        x = self.pos_drop(x + self.pos_embed[:, : x.shape[1]])
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x), mask

    def pool(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.pooling == "cls":
            return x[:, 0]
        weights = mask.to(x.dtype).unsqueeze(-1)
        return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def forward_head(self, pooled: Tensor) -> Tensor:
        return self.head(pooled)

    def forward(self, tokens: Tensor) -> Tensor:
        if self.dual:
            if tokens.ndim != 3 or tokens.shape[1] != 2:
                raise ValueError(f"a dual model takes (B, 2, L) token pairs, got {tuple(tokens.shape)}")
            x = self.pool(*self.forward_features(rearrange(tokens, "b two l -> (b two) l")))
            x0, x1 = rearrange(x, "(b two) c -> two b c", two=2)
            return self.forward_head(torch.cat([x0, x1, x0 * x1, x0 - x1], dim=-1))
        if tokens.ndim != 2:
            raise ValueError(f"expected (B, L) token ids, got {tuple(tokens.shape)}")
        return self.forward_head(self.pool(*self.forward_features(tokens)))


# --- registered variants: the Nystromformer repository's LRA configurations --------------------------------------

_NYSTROM_LRA = dict(embed_dim=64, depth=2, num_heads=2, head_dim=32, mlp_hidden_dim=128, drop_rate=0.1,
                    attn_drop_rate=0.1, pooling="mean")


def _lra(overrides: dict[str, Any], **defaults: Any) -> LRATransformer:
    return LRATransformer(**{**_NYSTROM_LRA, **defaults, **overrides})


@register_model
def lra_listops(**kwargs: Any) -> LRATransformer:
    """ListOps, lra_config.py: vocab 32, 10 classes, 2000 tokens (+48 padding: position table 2048)."""
    return _lra(kwargs, vocab_size=32, num_classes=10, max_len=2048)


@register_model
def lra_listops_tiny(**kwargs: Any) -> LRATransformer:
    """CPU-sized ListOps (generated lengths up to 128): the same network, short positions, no dropout, and budgets
    scaled to the short sequences (``TINY_BUDGETS``: shorter than the paper's 64 / 128 / 256)."""
    if kwargs.get("budget") is None:
        kwargs["budget"] = TINY_BUDGETS.get(kwargs.get("attention", "exact"))
    return _lra(kwargs, vocab_size=16, num_classes=10, max_len=128, drop_rate=0.0, attn_drop_rate=0.0)


@register_model
def lra_text(**kwargs: Any) -> LRATransformer:
    """Text (IMDB bytes): vocab 512 (257 used), 2 classes, 1000 bytes (+24 padding; position table 4096)."""
    return _lra(kwargs, vocab_size=512, num_classes=2, max_len=4096)


@register_model
def lra_retrieval(**kwargs: Any) -> LRATransformer:
    """Retrieval (AAN byte pairs): vocab 512, 2 classes, 4000 bytes per document (+96 padding: 4096)."""
    return _lra(kwargs, vocab_size=512, num_classes=2, max_len=4096, dual=True)


@register_model
def lra_image(**kwargs: Any) -> LRATransformer:
    """Image (CIFAR-10 grayscale pixels): vocab 512, 10 classes, 1024 pixels."""
    return _lra(kwargs, vocab_size=512, num_classes=10, max_len=1024)


@register_model
def lra_pathfinder(**kwargs: Any) -> LRATransformer:
    """Pathfinder-32: vocab 512, 2 classes, 1024 pixels."""
    return _lra(kwargs, vocab_size=512, num_classes=2, max_len=1024)


# --- FLOPs ---------------------------------------------------------------------------------------------------------


def lra_gflops(attention: str = "exact", budget: int | None = None, seq_len: int = 2048, model: str = "lra_listops",
               **overrides: Any) -> float:
    """GFLOPs (one multiply-add = one FLOP) of one forward pass on one sequence of ``seq_len`` real tokens.

    Attention runs its explicit formula so that its matmuls are counted, as in ``models.flops``; the model runs on the
    CPU for real (about a GFLOP), since approximations select prototypes from the data. Approximations count the
    products ``models.attention.approximate`` forms; how they differ from the Nystromformer code's:
    docs/mformer_paper_scale.md#static-columns-gflops-parameters-memory.
    """
    with torch.random.fork_rng(devices=[]):  # the global RNG stays as it was
        torch.manual_seed(0)
        net = create_model(model, attention=attention, budget=budget, max_len=max(seq_len, 1), **overrides).eval()
        net.set_fused_attn(False)
        tokens = torch.randint(1, min(net.vocab_size, 16), (1, 2, seq_len) if net.dual else (1, seq_len))
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(tokens)
    return counter.get_total_flops() / 2 / 1e9


__all__ = ["ATTENTION_NAMES", "LRAAttention", "LRABlock", "LRATransformer", "PAPER_BUDGETS", "TINY_BUDGETS",
           "lra_gflops"]
