"""CAST's expert blocks, exchanges and whole forward against slow references written from the paper's equations
(and, where the paper is silent, the official code KHU-VLL/CAST), float64, every parameter random, values and
gradients (inputs and every parameter) at relative error < 1e-10.

- ``ExpertBlock``: Eq. 3  Y = X + MHSA(LN1(X)) + ADAP(MHSA(LN1(X))), Eq. 5  X' = B + FFN(LN2(B)) + 0.5 ADAP(LN2(B))
  with ADAP(x) = GELU(x W_D) W_U (Eq. 2). The 0.5 is the official ``self.scale`` (bidir_modeling_crossattn.py
  Block); AIM's time adapter is the official clip_modelling_finetune.py Block: before the spatial MHSA, at every
  token position (class token included) the T frames' tokens go through LN1, the same MHSA, and their own adapter:
  X += ADAP_T(MHSA(LN1(X along time))).
- ``BlockExchange``: B-CAST Eq. 8  Phi_S = GELU(MHCA(E_s + LN(Y_s W_Ds), E_t + LN(Y_t W_Dt))) W_Us (and Phi_T
  the reverse), MHCA (Eq. 7) within the window of Figure 3c. Class tokens: the official T2S returns the LN'd class
  token from the attention slot and S2T keys are the patches only, so a class token gets GELU(LN(cls W_D)) W_U.
  The Table 1b/1c baselines ("xattn", "xattn_adapter", "lateral"), every direction, window, ratio and class-token
  layout.
- ``CAST``: embeddings, blocks, Eq. 4's residual B = Y + Phi, pooling and heads composed from the same pieces.

The references take a module only for its parameters; shapes, windows, eps and scales are written here.
"""

from __future__ import annotations

import math

import pytest
import torch

from models import create_model
from models.cast import CAST
from models.cast.exchange import BlockExchange
from models.cast.experts import ExpertBlock

B, T, N, D, HEADS = 2, 3, 4, 16, 2  # batch, time steps, patches per step (2 x 2 of 8 x 8 pixels), width, heads
PATCH, FRAMES = 8, 2 * 3  # both experts see FRAMES / 2 = T steps
TOL = 1e-10
FFN_ADAPTER_SCALE = 0.5  # official Block: self.scale = 0.5 on S_MLP_Adapter / T_MLP_Adapter (Eq. 5 prints none)
EXCHANGE_EPS = 1e-6  # official ln_s_cross / ln_t_cross: norm_layer = partial(nn.LayerNorm, eps=1e-6)


def _randomize(module: torch.nn.Module) -> torch.nn.Module:
    """Every parameter random, trainable, in eval mode: matrices std 2 / sqrt(fan_in) (0.5 at width 16, so the
    softmaxes are far from uniform without saturating), LayerNorm gains 1 + N(0, 0.25), everything else (biases,
    positional tables, tokens) N(0, 0.25). Zero-started layers (adapters' W_U, B-CAST's W_U) would hide terms."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2 and name.endswith("weight"):
                p.normal_(0.0, 2 * p[0].numel() ** -0.5)
            elif name.endswith("weight"):
                p.normal_(1.0, 0.5)
            else:
                p.normal_(0.0, 0.5)
            p.requires_grad_(True)
    return module.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _assert_match(fast: list, ref: list, leaves: dict[str, torch.Tensor], unread: tuple[str, ...] = ()) -> None:
    """Outputs (None where one is not computed) and gradients of a random projection of them wrt ``leaves``. Every
    reference gradient must be non-zero (else the comparison is vacuous), except for leaves named with a prefix in
    ``unread`` whose work no output reads: where theirs is exactly zero, the fast one must be None or zero too."""
    assert [f is None for f in fast] == [r is None for r in ref]
    pairs = [(f, r) for f, r in zip(fast, ref) if r is not None]
    for i, (f, r) in enumerate(pairs):
        assert f.shape == r.shape and _rel(f, r) < TOL, f"output {i}: {_rel(f, r):.2e}"
    torch.manual_seed(2)
    cotangents = [torch.randn_like(r) for _, r in pairs]
    names, tensors = list(leaves), list(leaves.values())
    g_fast = torch.autograd.grad(sum((f * c).sum() for (f, _), c in zip(pairs, cotangents)), tensors, allow_unused=True)
    g_ref = torch.autograd.grad(sum((r * c).sum() for (_, r), c in zip(pairs, cotangents)), tensors, allow_unused=True)
    for name, gf, gr in zip(names, g_fast, g_ref):
        if name.startswith(unread) and (gr is None or not gr.any()):
            assert gf is None or not gf.any(), name
            continue
        assert gr is not None and gr.norm() > 0, f"{name}: zero reference gradient, the comparison would be vacuous"
        assert gf is not None and _rel(gf, gr) < TOL, f"{name}: {_rel(gf, gr):.2e}"


# ---- literal pieces ------------------------------------------------------------------------------------------


def _lin(x: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    """x W^T + b."""
    y = torch.einsum("...i,oi->...o", x, layer.weight)
    return y if layer.bias is None else y + layer.bias


def _gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU (exact, erf form) [20]; nn.GELU() in the official adapters, B-CAST and VideoMAE's FFN."""
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """CLIP's FFN activation (official QuickGELU)."""
    return x * torch.sigmoid(1.702 * x)


def _ln(x: torch.Tensor, norm: torch.nn.LayerNorm, eps: float) -> torch.Tensor:
    """LayerNorm over channels with the biased variance; ``eps`` given here, not read from the module."""
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * norm.weight + norm.bias


def adap(x: torch.Tensor, adapter: torch.nn.Module) -> torch.Tensor:
    """Eq. 2 with biases (AIM's adapter): GELU(x W_D + b_D) W_U + b_U."""
    return _lin(_gelu(_lin(x, adapter.fc1)), adapter.fc2)


def _softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One head on one sequence: softmax_j(<q_i, k_j> / sqrt(d)) weights over the values, the softmax written out."""
    logits = q @ k.T / math.sqrt(q.shape[-1])
    e = torch.exp(logits - logits.max(dim=-1, keepdim=True).values)
    return (e / e.sum(dim=-1, keepdim=True)) @ v


def _multi_head(xq: torch.Tensor, xkv: torch.Tensor, w: tuple, proj: torch.nn.Linear, heads: int) -> torch.Tensor:
    """Eq. 1 / 7 on one sequence of queries (Lq, C) and one of keys/values (Lk, C); ``w`` = (W_Q, b_Q, W_K, b_K,
    W_V, b_V); heads are contiguous channel blocks; then the output projection."""
    wq, bq, wk, bk, wv, bv = w
    q, k, v = xq @ wq.T + bq, xkv @ wk.T + bk, xkv @ wv.T + bv
    d = q.shape[-1] // heads
    out = torch.cat([_softmax_attention(q[:, h * d:(h + 1) * d], k[:, h * d:(h + 1) * d], v[:, h * d:(h + 1) * d])
                     for h in range(heads)], dim=-1)
    return _lin(out, proj)


def _mhsa(x: torch.Tensor, attn: torch.nn.Module) -> torch.Tensor:
    """Eq. 1 on one sequence (L, D) with timm's fused projection laid out [q | k | v]."""
    w, b, c = attn.qkv.weight, attn.qkv.bias, x.shape[-1]
    parts = (w[:c], b[:c], w[c:2 * c], b[c:2 * c], w[2 * c:], b[2 * c:])
    return _multi_head(x, x, parts, attn.proj, attn.num_heads)


# ---- expert blocks (Eq. 3, 5, AIM's time adapter) -------------------------------------------------------------


def _attend_reference(block: ExpertBlock, x: torch.Tensor, eps: float, time_adapter: bool) -> torch.Tensor:
    """Eq. 3 on (rows, n, D) tokens, one self-attention per row. With the time adapter (frame layout, rows
    ordered (b t) as the official 'n (b t) d'), first at every (clip b, token j): the T tokens x[b T + t, j] ->
    ADAP_T(MHSA(LN1(.))) added back to them; the spatial MHSA then reads the updated tokens."""
    rows, n, _ = x.shape
    if time_adapter:
        cells = [[x[r, j] for j in range(n)] for r in range(rows)]
        for b in range(rows // T):
            for j in range(n):
                along_time = torch.stack([x[b * T + t, j] for t in range(T)])
                delta = adap(_mhsa(_ln(along_time, block.norm1, eps), block.attn), block.time_adapter)
                for t in range(T):
                    cells[b * T + t][j] = cells[b * T + t][j] + delta[t]
        x = torch.stack([torch.stack(row) for row in cells])
    out = []
    for r in range(rows):
        a = _mhsa(_ln(x[r], block.norm1, eps), block.attn)
        out.append(x[r] + a + (adap(a, block.attn_adapter) if block.attn_adapter is not None else 0))
    return torch.stack(out)


def _feed_forward_reference(block: ExpertBlock, x: torch.Tensor, eps: float, act) -> torch.Tensor:
    """Eq. 5: X' = B + FFN(LN2(B)) + 0.5 ADAP(LN2(B)), FFN = fc2(act(fc1(.)))."""
    h = _ln(x, block.norm2, eps)
    out = x + _lin(act(_lin(h, block.mlp.fc1)), block.mlp.fc2)
    return out + FFN_ADAPTER_SCALE * adap(h, block.mlp_adapter) if block.mlp_adapter is not None else out


# id: (ExpertBlock options, layout, FFN activation); eps as each arch's LayerNorms (CLIP 1e-5, VideoMAE 1e-6)
BLOCKS = {
    "clip-time_adapter": (dict(act="quick_gelu", norm_eps=1e-5, time_adapter=True), "frame", _quick_gelu),
    "clip": (dict(act="quick_gelu", norm_eps=1e-5), "frame", _quick_gelu),
    "videomae": (dict(act="gelu", norm_eps=1e-6), "tubelet", _gelu),
    "no_adapters": (dict(act="gelu", norm_eps=1e-6, adapter_ratio=None), "tubelet", _gelu),
    # stochastic depth everywhere it can be: identity in eval mode
    "drop_path-eval": (dict(act="gelu", norm_eps=1e-6, time_adapter=True, drop_path=0.5, drop_main=True), "frame",
                       _gelu),
}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
@pytest.mark.parametrize("case", BLOCKS)
def test_expert_block_matches_reference(case: str, fused: bool) -> None:
    """attend (Eq. 3) on X, feed_forward (Eq. 5) on an independent B, and forward = both in turn."""
    options, layout, act = BLOCKS[case]
    block = _randomize(ExpertBlock(D, HEADS, fused_attn=fused, **options).double())  # default adapter scale
    eps, time_adapter = options["norm_eps"], options.get("time_adapter", False)
    assert (block.time_adapter is not None) == time_adapter
    shape = (B * T, 1 + N, D) if layout == "frame" else (B, T * N, D)
    torch.manual_seed(1)
    x, b_in = (torch.randn(shape, dtype=torch.float64, requires_grad=True) for _ in range(2))

    fast = [block.attend(x, T), block.feed_forward(b_in), block(x, T)]
    y = _attend_reference(block, x, eps, time_adapter)
    ref = [y, _feed_forward_reference(block, b_in, eps, act), _feed_forward_reference(block, y, eps, act)]
    _assert_match(fast, ref, {"x": x, "b": b_in, **dict(block.named_parameters())})


# ---- exchanges (Eq. 4, 7, 8; Table 1b-1h) ---------------------------------------------------------------------


def _windows(window: str) -> list[list[tuple[int, int]]]:
    """The (t, n) cells of each window of one clip, in the order the positional table indexes them (Figure 3c):
    "time" = one patch position over the T steps (T2S), "space" = the N patches of one step (S2T), "space_time" =
    all, t-major (the official space_time_pos over 'b (t n) d')."""
    if window == "time":
        return [[(t, n) for t in range(T)] for n in range(N)]
    if window == "space":
        return [[(t, n) for n in range(N)] for t in range(T)]
    assert window == "space_time"
    return [[(t, n) for t in range(T) for n in range(N)]]


def _mhca(xattn: torch.nn.Module, q_grid: torch.Tensor, kv_grid: torch.Tensor, window: str, pos: bool) -> torch.Tensor:
    """Eq. 7 within each window of (B, T, N, C) grids; with ``pos`` the tokens first get E of their own expert
    (Eq. 8: queries E_q, keys/values E_kv; one vector per position in the window). kv laid out [k | v]."""
    c = q_grid.shape[-1]
    wkv, bkv = xattn.kv.weight, xattn.kv.bias
    w = (xattn.q.weight, xattn.q.bias, wkv[:c], bkv[:c], wkv[c:], bkv[c:])
    cells = {}
    for b in range(B):
        for members in _windows(window):
            xq = torch.stack([q_grid[b, t, n] for t, n in members])
            xkv = torch.stack([kv_grid[b, t, n] for t, n in members])
            if pos:
                xq, xkv = xq + xattn.query_pos, xkv + xattn.key_pos
            else:
                assert xattn.query_pos is None and xattn.key_pos is None
            out = _multi_head(xq, xkv, w, xattn.proj, xattn.num_heads)
            for p, cell in enumerate(members):
                cells[(b, *cell)] = out[p]
    return torch.stack([torch.stack([torch.stack([cells[b, t, n] for n in range(N)]) for t in range(T)])
                        for b in range(B)])


def _exchange_reference(ex: BlockExchange, kind: str, directions: str, windows: tuple[str, str], pos: bool,
                        s_cls, s_grid, t_cls, t_grid, patch_updates=(True, True)) -> list:
    """Updates (Phi for s_cls, s_grid, t_cls, t_grid; None where none) of one exchange."""
    t2s_on, s2t_on = directions in ("both", "t2s"), directions in ("both", "s2t")
    want_s, want_t = t2s_on and patch_updates[0], s2t_on and patch_updates[1]
    if kind == "lateral":  # Table 1b: linear projection of the other expert's token (t, n), no cls update
        return [None, _lin(t_grid, ex.t_to_s) if want_s else None, None, _lin(s_grid, ex.s_to_t) if want_t else None]

    def into(side: str, x: torch.Tensor) -> torch.Tensor:  # LN(Y W_D) (B-CAST) or LN(Y) at full width
        if kind == "bcast":
            x = _lin(x, getattr(ex, f"down_{side}"))
        return _ln(x, getattr(ex, f"norm_{side}"), EXCHANGE_EPS)

    def out(side: str, z: torch.Tensor) -> torch.Tensor:  # GELU(.) W_U (B-CAST), as is (xattn), ADAP (xattn_adapter)
        if kind == "bcast":
            return _lin(_gelu(z), getattr(ex, f"up_{side}"))
        return z if kind == "xattn" else adap(z, getattr(ex, f"adapter_{side}"))

    hs, ht = into("s", s_grid), into("t", t_grid)
    d_s = out("s", _mhca(ex.t2s, hs, ht, windows[0], pos)) if want_s else None  # T2S: queries spatial
    d_t = out("t", _mhca(ex.s2t, ht, hs, windows[1], pos)) if want_t else None  # S2T: queries temporal
    cls_path = kind != "xattn"  # class tokens skip the attention; "xattn" has nothing else to send them through
    d_s_cls = out("s", into("s", s_cls)) if t2s_on and s_cls is not None and cls_path else None
    d_t_cls = out("t", into("t", t_cls)) if s2t_on and t_cls is not None and cls_path else None
    return [d_s_cls, d_s, d_t_cls, d_t]


def _case(kind="bcast", directions="both", windows=("time", "space"), pos=True, down_ratio=0.5, cls="spatial"):
    return dict(kind=kind, directions=directions, windows=windows, pos=pos, down_ratio=down_ratio, cls=cls)


# cls: which experts bring class tokens ("spatial" = CLIP / VideoMAE, "temporal" = Table 1h swapped, ...)
EXCHANGE_CASES = {f"{k}-{d}": _case(k, d) for k in ("bcast", "xattn", "xattn_adapter", "lateral")
                  for d in ("both", "t2s", "s2t")}
EXCHANGE_CASES.update({
    **{f"bcast-windows-{w[0]}-{w[1]}": _case(windows=w)  # Table 1e rows, and "time" in the S2T role
       for w in (("space_time", "space_time"), ("space_time", "space"), ("space", "space"), ("space", "time"))},
    "bcast-no_pos": _case(pos=False),  # Table 8
    "xattn-no_pos": _case("xattn", pos=False),
    **{f"bcast-ratio-{r}": _case(down_ratio=r) for r in (0.25, 1.0)},  # Table 1d
    **{f"bcast-cls-{c}": _case(cls=c) for c in ("temporal", "both", "none")},  # Table 1h expert pairs
    "xattn_adapter-cls-both": _case("xattn_adapter", cls="both"),
    "xattn-cls-both": _case("xattn", cls="both"),
})


def _exchange_inputs(cls: str) -> dict[str, torch.Tensor | None]:
    torch.manual_seed(1)
    grid = lambda: torch.randn(B, T, N, D, dtype=torch.float64, requires_grad=True)  # noqa: E731
    token = lambda on: torch.randn(B, T, D, dtype=torch.float64, requires_grad=True) if on else None  # noqa: E731
    return dict(s_cls=token(cls in ("spatial", "both")), s_grid=grid(), t_cls=token(cls in ("temporal", "both")),
                t_grid=grid())


def _build_exchange(c: dict, fused: bool) -> BlockExchange:
    return _randomize(BlockExchange(D, HEADS, T, N, c["kind"], c["directions"], c["down_ratio"], *c["windows"],
                                    pos=c["pos"], fused_attn=fused).double())


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
@pytest.mark.parametrize("case", EXCHANGE_CASES)
def test_exchange_matches_reference(case: str, fused: bool) -> None:
    c = EXCHANGE_CASES[case]
    ex = _build_exchange(c, fused)
    inputs = _exchange_inputs(c["cls"])
    fast = list(ex(**inputs))
    ref = _exchange_reference(ex, c["kind"], c["directions"], c["windows"], c["pos"], **inputs)
    # Inputs an exchange reads: a class token only for its own update (T2S / S2T keys are patches); a grid as the
    # other direction's keys, except that "lateral" reads a grid only for the other expert's update.
    lateral, t2s_on, s2t_on = c["kind"] == "lateral", c["directions"] != "s2t", c["directions"] != "t2s"
    reads = dict(s_cls=ref[0] is not None, s_grid=not lateral or s2t_on, t_cls=ref[2] is not None,
                 t_grid=not lateral or t2s_on)
    leaves = {k: v for k, v in inputs.items() if reads[k]}
    _assert_match(fast, ref, {**leaves, **dict(ex.named_parameters())})


@pytest.mark.parametrize("patch_updates", [(False, True), (True, False)])
def test_exchange_skipping_an_update_leaves_the_others_exact(patch_updates: tuple[bool, bool]) -> None:
    """``patch_updates`` (``CAST`` skips work no head reads): the skipped grid update is None, the rest (class
    tokens included) as the reference; the skipped cross-attention gets no gradient."""
    c = EXCHANGE_CASES["bcast-cls-both"]
    ex = _build_exchange(c, fused=True)
    inputs = _exchange_inputs(c["cls"])
    fast = list(ex(**inputs, patch_updates=patch_updates))
    ref = _exchange_reference(ex, "bcast", "both", c["windows"], True, **inputs, patch_updates=patch_updates)
    skipped = "t2s." if not patch_updates[0] else "s2t."
    params = dict(ex.named_parameters())
    _assert_match(fast, ref, {**inputs, **params}, unread=(skipped,))


# ---- CAST: embeddings, Eq. 4's residual, pooling, heads -----------------------------------------------------

# arch: (layout, FFN activation, LayerNorm eps, patch-projection bias, LayerNorm after the embeddings)
ARCHS = {"clip": ("frame", _quick_gelu, 1e-5, False, True), "videomae": ("tubelet", _gelu, 1e-6, True, False)}


def _sinusoid(position: int, j: int) -> float:
    """VideoMAE's fixed table: angle p / 10000^(2 floor(j / 2) / D), sin on even j, cos on odd j."""
    angle = position / 10000 ** (2 * (j // 2) / D)
    return math.sin(angle) if j % 2 == 0 else math.cos(angle)


def _embed_reference(expert: torch.nn.Module, arch: str, video: torch.Tensor, time_adapter: bool,
                     float32_table: bool = False) -> torch.Tensor:
    """Frame expert: frames 1, 3, 5, ... (official x[:, :, 1::2]), p x p patches row-major, class token first,
    positional table, AIM's time embedding of the frame, CLIP's ln_pre -> (B*T, 1 + N, D) rows (b t). Tubelet
    expert: 2 x p x p tubelets in (t h w) order plus the sinusoid table (with ``float32_table`` its values rounded
    to float32, as the official ``get_sinusoid_encoding_table`` stores them) -> (B, T*N, D)."""
    layout, _, eps, bias, norm_pre = ARCHS[arch]
    w = expert.patch_embed.proj.weight
    b_proj = expert.patch_embed.proj.bias if bias else 0
    side = int(math.isqrt(N))
    pix = [(i, j) for i in range(side) for j in range(side)]
    if layout == "frame":
        rows = []
        for b in range(B):
            for t in range(T):
                frame = video[b, :, 2 * t + 1]
                patches = [(frame[:, i * PATCH:(i + 1) * PATCH, j * PATCH:(j + 1) * PATCH] * w).sum((1, 2, 3))
                           for i, j in pix]
                x = torch.stack([expert.cls_token[0, 0], *patches]) + expert.pos_embed[0]
                if time_adapter:
                    x = x + expert.time_embed[0, t, 0]
                rows.append(_ln(x, expert.norm_pre, eps) if norm_pre else x)
        return torch.stack(rows)
    assert not norm_pre
    clips = []
    for b in range(B):
        tokens = [(video[b, :, 2 * t:2 * t + 2, i * PATCH:(i + 1) * PATCH, j * PATCH:(j + 1) * PATCH] * w).sum(
            (1, 2, 3, 4)) for t in range(T) for i, j in pix]
        table = torch.tensor([[_sinusoid(p, j) for j in range(D)] for p in range(T * N)],
                             dtype=torch.float32 if float32_table else video.dtype).to(video.dtype)
        clips.append(torch.stack(tokens) + b_proj + table)
    return torch.stack(clips)


def _split(x: torch.Tensor, layout: str) -> tuple:
    """Rows (b t) / tokens (t n) -> class tokens (B, T, D) or None, grid (B, T, N, D)."""
    if layout == "frame":
        x = x.reshape(B, T, 1 + N, D)
        return x[:, :, 0], x[:, :, 1:]
    return None, x.reshape(B, T, N, D)


def _merge(cls, grid: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "frame":
        return torch.cat([cls[:, :, None], grid], dim=2).reshape(B * T, 1 + N, D)
    return grid.reshape(B, T * N, D)


def _cast_reference(model: CAST, video: torch.Tensor, opts: dict) -> torch.Tensor:
    archs = (opts.get("spatial_expert", "clip"), opts.get("temporal_expert", "videomae"))
    experts = (model.spatial, model.temporal)
    time_adapter = opts.get("time_adapter", False)
    layouts = [ARCHS[a][0] for a in archs]
    xs = [_embed_reference(e, a, video, time_adapter and lay == "frame", opts.get("float32_pos_table", False))
          for e, a, lay in zip(experts, archs, layouts)]
    kind = opts.get("exchange", "bcast")
    depth = len(model.spatial.blocks)
    for i in range(depth):
        blocks = [e.blocks[i] for e in experts]
        ys = [_attend_reference(blk, x, ARCHS[a][2], time_adapter and lay == "frame")
              for blk, x, a, lay in zip(blocks, xs, archs, layouts)]
        if i in opts.get("exchange_blocks", range(depth)):  # Eq. 4: B = Y + Phi(Y_s, Y_t)
            (s_cls, s_grid), (t_cls, t_grid) = _split(ys[0], layouts[0]), _split(ys[1], layouts[1])
            phi = _exchange_reference(model.exchange[str(i)], kind, opts.get("directions", "both"),
                                      ("time", "space"), True, s_cls, s_grid, t_cls, t_grid)
            s_cls, t_cls = (c + d if d is not None else c for c, d in ((s_cls, phi[0]), (t_cls, phi[2])))
            s_grid, t_grid = (g + d if d is not None else g for g, d in ((s_grid, phi[1]), (t_grid, phi[3])))
            ys = [_merge(s_cls, s_grid, layouts[0]), _merge(t_cls, t_grid, layouts[1])]
        xs = [_feed_forward_reference(blk, y, ARCHS[a][2], ARCHS[a][1]) for blk, y, a in zip(blocks, ys, archs)]
    # Pooling: mean of the per-frame class tokens (frame expert) or of all tokens (tubelet), then the last LN.
    pooled = []
    for e, x, a, lay in zip(experts, xs, archs, layouts):
        mean = x.reshape(B, T, 1 + N, D)[:, :, 0].mean(1) if lay == "frame" else x.mean(1)
        pooled.append(_ln(mean, e.norm, ARCHS[a][2]))
    f_s, f_t = pooled
    assert model.fusion == ("add" if "num_classes" in opts else "split")  # the default with and without verbs
    if model.fusion == "split":  # verbs from the temporal expert, nouns from the spatial one (Figure 9b)
        return torch.cat([_lin(f_t, model.head_temporal), _lin(f_s, model.head_spatial)], dim=-1)
    # Eq. 6: Z = ADAP(CLS(X_s)) + ADAP(GAP(X_t)), then the classifier
    return _lin(adap(f_s, model.head_adapter_spatial) + adap(f_t, model.head_adapter_temporal), model.head)


CAST_CASES = {
    "default-split": {},
    "lateral-time_adapter-add": dict(exchange="lateral", time_adapter=True, num_classes=5),
    "swapped-s2t-first_block-add": dict(spatial_expert="videomae", temporal_expert="clip", directions="s2t",
                                        exchange_blocks=(0,), num_classes=5),
    "xattn_adapter-t2s": dict(exchange="xattn_adapter", directions="t2s"),
    "float32_pos_table-add": dict(float32_pos_table=True, num_classes=5),  # the released checkpoints' table
}


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("case", CAST_CASES)
def test_cast_forward_matches_reference(case: str, training: bool) -> None:
    """Logits of a 2-block CAST (every parameter random and trainable, frozen ones included) from the video. The
    last block's update of a frame expert's patch tokens reaches no head (it pools class tokens): what only feeds
    it has a zero gradient, and in training is skipped (``skip_unread``) with the same logits and gradients."""
    opts = CAST_CASES[case]
    model = create_model("cast_tiny", **{"num_classes": {"verb": 3, "noun": 4}, **opts}, img_size=2 * PATCH,
                         num_frames=FRAMES, patch_size=PATCH, embed_dim=D, depth=2, num_heads=HEADS)
    model = _randomize(model.double()).train(training)
    assert (model.num_steps, model.num_patches) == (T, N)
    torch.manual_seed(1)
    video = torch.randn(B, 3, FRAMES, 2 * PATCH, 2 * PATCH, dtype=torch.float64, requires_grad=True)
    params = dict(model.named_parameters())
    _assert_match([model(video)], [_cast_reference(model, video, opts)], {"video": video, **params}, ("exchange.1.",))


def test_the_float32_table_is_the_official_rounding_and_only_that() -> None:
    """``float32_pos_table`` adds VideoMAE's table as the official code stores it, a ``torch.FloatTensor`` of the
    float64 formula: in float64 the embeddings differ from the exact table's by that rounding and nothing else; in
    float32 they are the same."""
    options = dict(num_classes=5, img_size=2 * PATCH, num_frames=FRAMES, patch_size=PATCH, embed_dim=D, depth=1,
                   num_heads=HEADS)
    rounded = create_model("cast_tiny", **options, float32_pos_table=True).temporal.double()
    exact = create_model("cast_tiny", **options).temporal.double()
    exact.load_state_dict(rounded.state_dict())
    video = torch.randn(B, 3, FRAMES, 2 * PATCH, 2 * PATCH, dtype=torch.float64)
    table = torch.tensor([[_sinusoid(p, j) for j in range(D)] for p in range(T * N)], dtype=torch.float64)
    rounding = table.float().double() - table
    difference = rounded.embed(video) - exact.embed(video)
    assert rounding.abs().max() > 1e-10
    assert (difference - rounding).abs().max() < 1e-14
    assert torch.equal(rounded.float().embed(video.float()), exact.float().embed(video.float()))
