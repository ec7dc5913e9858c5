"""The RGB+pose model's mixing layers (supplementary Algorithm A3, and A1-A3 composed in ``CrossModalBlock``) against
plain float64 references written from the algorithms, values and gradients (inputs, modal tokens and every parameter,
the offset network's included), relative error < 1e-10.

The references read only the modules' parameter tensors: the offset network f_off (depthwise Conv3d, LayerNorm over
channels, GELU, 1x1x1 Conv3d), tanh and its scaling, A3's sampling sum over the whole grid, the softmax, the window
loops of A1/A2, LayerNorm and the FFN are all written out here. Every parameter is random (non-zero biases, LayerNorm
affine away from 1 and 0), so the offsets are non-zero, the softmax is peaked and sampled points lie off the grid
points (A3's g(a, b) = max(0, 1 - |a - b|) has kinks there; the references assert the points avoid them)."""

import itertools
import math

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.d3da.deformable import DeformableAttention3D, TokenSearch3D
from models.d3da.model import CrossModalBlock

DIM, HEADS = 8, 2
TOL = 1e-10
OFFSET_LN_EPS = 1e-5  # the offset network's LayerNorm: nn.LayerNorm's default, as DAT's LayerNormProxy
BLOCK_LN_EPS = 1e-6  # the block's pre-norms: timm ViT's epsilon (models.video_vit.LayerNorm)


# ---- literal pieces ---------------------------------------------------------------------------------------------


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, dim: int = -1) -> torch.Tensor:
    """(x - mean) / sqrt(biased var + eps) * weight + bias over axis ``dim``."""
    mean = x.mean(dim, keepdim=True)
    var = ((x - mean) ** 2).mean(dim, keepdim=True)
    shape = [1] * x.ndim
    shape[dim] = -1
    return (x - mean) / torch.sqrt(var + eps) * weight.view(shape) + bias.view(shape)


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact (erf) GELU, nn.GELU's default."""
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2.0)))


def linear(x: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    return x @ layer.weight.T + (0 if layer.bias is None else layer.bias)


def ffn(x: torch.Tensor, mlp: torch.nn.Module) -> torch.Tensor:
    """FFN: Linear(C -> hidden), GELU, Linear(hidden -> C)."""
    return linear(gelu(linear(x, mlp.fc1)), mlp.fc2)


def mha(queries: torch.Tensor, keys: torch.Tensor, w_q, b_q, w_k, b_k, w_v, b_v, proj: torch.nn.Linear,
        heads: int) -> torch.Tensor:
    """MSA(X W_q, X~ W_k, X~ W_v) and the output projection: per head, exp(s - max) / sum with s = q k^T / sqrt(d).
    queries (B, Lq, C), keys (B, Lk, C) -> (B, Lq, C)."""
    q, k, v = queries @ w_q.T + b_q, keys @ w_k.T + b_k, keys @ w_v.T + b_v
    d = q.shape[-1] // heads
    outs = []
    for i in range(heads):
        sl = slice(i * d, (i + 1) * d)
        scores = q[..., sl] @ k[..., sl].transpose(-1, -2) / math.sqrt(d)
        e = torch.exp(scores - scores.amax(-1, keepdim=True))
        probs = e / e.sum(-1, keepdim=True)
        # a near-uniform softmax would hide a wrong score scale or key set: the random weights must peak it
        assert (probs.amax(-1) * probs.shape[-1]).mean() > 1.5
        outs.append(probs @ v[..., sl])
    return linear(torch.cat(outs, dim=-1), proj)


# ---- A3: offset network, 3D token search, deformable attention --------------------------------------------------


def depthwise_conv3d(z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int) -> torch.Tensor:
    """out[b, c, o_t, o_h, o_w] = bias[c] + sum over taps (i, j, l) of weight[c, 0, i, j, l]
    * Z[b, c, o_t s + i - k//2, o_h s + j - k//2, o_w s + l - k//2], zeros outside the grid."""
    b, c, *size = z.shape
    k = weight.shape[-1]
    pad = k // 2
    out_size = [(n + 2 * pad - k) // stride + 1 for n in size]
    padded = z.new_zeros(b, c, *(n + 2 * pad for n in size))
    padded[:, :, pad:pad + size[0], pad:pad + size[1], pad:pad + size[2]] = z
    out = bias.view(1, c, 1, 1, 1).expand(b, c, *out_size)
    for i, j, m in itertools.product(range(k), repeat=3):
        tap = padded[:, :, i:i + stride * (out_size[0] - 1) + 1:stride, j:j + stride * (out_size[1] - 1) + 1:stride,
                     m:m + stride * (out_size[2] - 1) + 1:stride]
        out = out + weight[:, 0, i, j, m].view(1, c, 1, 1, 1) * tap
    return out


def offset_cells(search: TokenSearch3D, z: torch.Tensor, offset_range: float | None, stride: int) -> torch.Tensor:
    """Delta p = tanh(f_off(Z)) in token cells, channels (x, y, t): z (B, C, T, H, W) -> (B, T~, H~, W~, 3).
    offset_range r: r * tanh cells; None: tanh in normalised [-1, 1] coordinates, where one unit is n / 2 cells."""
    conv, norm, proj = search.offset_net[0], search.offset_net[1].norm, search.offset_net[3]
    hidden = depthwise_conv3d(z, conv.weight, conv.bias, stride)
    hidden = gelu(layer_norm(hidden, norm.weight, norm.bias, OFFSET_LN_EPS, dim=1))
    delta = torch.tanh(torch.einsum("oc,bcthw->bthwo", proj.weight[:, :, 0, 0, 0], hidden))
    t, h, w = z.shape[2:]
    if offset_range is None:
        return delta * torch.tensor([w / 2, h / 2, t / 2], dtype=z.dtype)
    return delta * offset_range


def token_search(z: torch.Tensor, cells: torch.Tensor, stride: int) -> torch.Tensor:
    """A3's 3DTS sum: point p = (o_x s, o_y s, o_t s) + Delta p (token units, the cell o's conv centre), and
    Z~[:, o] = sum over every grid position r of g(p_x, r_x) g(p_y, r_y) g(p_t, r_t) Z[:, r_t, r_y, r_x].
    z (B, C, T, H, W), cells (B, T~, H~, W~, 3) -> (B, C, T~, H~, W~)."""
    t, h, w = z.shape[2:]
    grid_t, grid_y, grid_x = torch.meshgrid(*(torch.arange(n, dtype=z.dtype) * stride for n in cells.shape[1:4]),
                                            indexing="ij")
    points = [grid_x + cells[..., 0], grid_y + cells[..., 1], grid_t + cells[..., 2]]
    for p in points:  # g's kinks at integer distances: keep gradients away from them
        assert ((p - p.round()).abs() > 1e-6).all()

    def g(p: torch.Tensor, n: int) -> torch.Tensor:  # (B, T~, H~, W~, n): g(p, r) for r = 0 .. n - 1
        return torch.clamp(1 - (p.unsqueeze(-1) - torch.arange(n, dtype=z.dtype)).abs(), min=0)

    return torch.einsum("bijkz,bijky,bijkx,bczyx->bcijk", g(points[2], t), g(points[1], h), g(points[0], w), z)


def deformable_reference(attn: DeformableAttention3D, z: torch.Tensor, modal: torch.Tensor,
                         offset_range: float | None, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MSA(X W_q, X~ W_k, X~ W_v), X = [Z || modal], X~ = [Z~ || modal]: z (B, T, H, W, C), modal (B, T, m, C)
    -> the updates of both."""
    b, t, h, w, c = z.shape
    z_chan = z.permute(0, 4, 1, 2, 3)
    sampled = token_search(z_chan, offset_cells(attn.search, z_chan, offset_range, stride), stride)
    flat_modal = modal.reshape(b, -1, c)
    x = torch.cat([z.reshape(b, -1, c), flat_modal], dim=1)
    x_def = torch.cat([sampled.flatten(2).transpose(1, 2), flat_modal], dim=1)
    kv_w, kv_b = attn.kv.weight, attn.kv.bias  # rows: W_k then W_v
    out = mha(x, x_def, attn.q.weight, attn.q.bias, kv_w[:c], kv_b[:c], kv_w[c:], kv_b[c:], attn.proj, HEADS)
    return out[:, :t * h * w].reshape(b, t, h, w, c), out[:, t * h * w:].reshape(modal.shape)


# ---- A1/A2: stride windows ------------------------------------------------------------------------------------


def window_starts(n: int, wnd: int, cover: str) -> tuple[list[int], list[int]]:
    """Paired (query, key/value) window starts. as_printed: A1/A2's two while loops (the query loop stopped at its
    first repeated start), paired window by window; full: both 0, s, 2s, ... while below n - wnd, then n - wnd."""
    stride = wnd // 2
    if cover == "full":
        starts, i = [], 0
        while i < n - wnd:
            starts.append(i)
            i += stride
        return starts + [max(n - wnd, 0)], starts + [max(n - wnd, 0)]
    query, i = [], 0
    while i < n - wnd and i not in query:
        query.append(i)
        i += stride
        if i > n - wnd:
            i -= wnd
    kv, i = [], stride
    while i < n - wnd:
        kv.append(i)
        i += stride
    pairs = min(len(query), len(kv))
    return query[:pairs], kv[:pairs]


def stride_reference(attn: torch.nn.Module, x: torch.Tensor, extra: torch.Tensor | None, wnd: int,
                     cover: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Windows along axis 1 of x (B, n, A, C); O = [x[:, q:q+wnd] || extra], O~ = [x[:, k:k+wnd] || extra] for each
    pair, extra (B, m, A, C) appended to every window. A token's update: the mean over the query windows holding it
    (0 in none); extra's: the mean over all windows."""
    b, n, a, c = x.shape
    size = min(wnd, n)
    w, bias = attn.qkv.weight, attn.qkv.bias
    per_token: list[list[torch.Tensor]] = [[] for _ in range(n)]
    per_extra = []
    for q0, k0 in zip(*window_starts(n, wnd, cover)):
        o, o_kv = x[:, q0:q0 + size], x[:, k0:k0 + size]
        if extra is not None:
            o, o_kv = torch.cat([o, extra], dim=1), torch.cat([o_kv, extra], dim=1)
        y = mha(o.reshape(b, -1, c), o_kv.reshape(b, -1, c), w[:c], bias[:c], w[c:2 * c], bias[c:2 * c], w[2 * c:],
                bias[2 * c:], attn.proj, HEADS).reshape(o.shape)
        for j in range(size):
            per_token[q0 + j].append(y[:, j])
        per_extra.append(y[:, size:])
    update = torch.stack([sum(u) / len(u) if u else x.new_zeros(b, a, c) for u in per_token], dim=1)
    return update, None if extra is None else sum(per_extra) / len(per_extra)


# ---- helpers ---------------------------------------------------------------------------------------------------


def randomise_parameters(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """float64, every parameter random: weights N(0, 1/fan_in), biases N(0, 0.25), LayerNorm affine 1 + N, N."""
    torch.manual_seed(seed)
    module = module.double()
    with torch.no_grad():
        for sub in module.modules():
            for name, p in sub.named_parameters(recurse=False):
                if isinstance(sub, torch.nn.LayerNorm):
                    p.copy_((1.0 if name == "weight" else 0.0) + 0.3 * torch.randn_like(p))
                elif name == "bias":
                    p.normal_(0.0, 0.5)
                else:
                    p.normal_(0.0, p[0].numel() ** -0.5)
    return module.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _assert_close_with_grads(fast, slow, inputs, params, labels) -> None:
    """Outputs agree, and the gradients of one random linear functional of them w.r.t. inputs and parameters."""
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert a.shape == b.shape
        assert _rel(a, b) < TOL
    gen = torch.Generator().manual_seed(1)
    cotangents = [torch.randn(o.shape, generator=gen, dtype=o.dtype) for o in slow]
    wrt = [*inputs, *params]
    g_fast = torch.autograd.grad(sum((o * ct).sum() for o, ct in zip(fast, cotangents)), wrt)
    g_slow = torch.autograd.grad(sum((o * ct).sum() for o, ct in zip(slow, cotangents)), wrt)
    for label, ga, gb in zip(labels, g_fast, g_slow):
        assert gb.norm() > 0, f"reference gradient of {label} is zero: the check would be vacuous"
        assert _rel(ga, gb) < TOL, label


# (offset_kernel, offset_stride, offset_range): stride 2 samples every other cell; None = tanh as printed
SEARCH_CASES = [(3, 1, 2.0), (3, 2, 2.0), (3, 1, None), (5, 2, 1.5), (3, 2, None)]
SEARCH_IDS = [f"k{k}-s{s}-r{r}" for k, s, r in SEARCH_CASES]


def _search_input(seed: int) -> torch.Tensor:
    # T, H, W all different: a swapped axis cannot go unnoticed
    return torch.randn(2, DIM, 3, 4, 5, generator=torch.Generator().manual_seed(seed), dtype=torch.float64,
                       requires_grad=True)


@pytest.mark.parametrize("kernel, stride, offset_range", SEARCH_CASES, ids=SEARCH_IDS)
def test_offset_network_matches_reference(kernel, stride, offset_range):
    """f_off: depthwise Conv3d -> LayerNorm over channels -> GELU -> 1x1x1 Conv3d, then tanh and its scaling."""
    search = randomise_parameters(TokenSearch3D(DIM, kernel, offset_range, stride))
    z = _search_input(2)
    t, h, w = z.shape[2:]
    cells = offset_cells(search, z, offset_range, stride)
    assert cells.shape[1:4] == tuple((n - 1) // stride + 1 for n in (t, h, w))
    assert cells.abs().mean() > 0.2  # offsets of a fair fraction of a cell
    to_normalised = torch.tensor([2 / w, 2 / h, 2 / t], dtype=torch.float64)  # one token cell, (x, y, t)
    params = dict(search.named_parameters())
    _assert_close_with_grads((search.offsets(z),), (cells * to_normalised,), [z], list(params.values()),
                             ["z", *params])


@pytest.mark.parametrize("kernel, stride, offset_range", SEARCH_CASES, ids=SEARCH_IDS)
def test_token_search_matches_reference(kernel, stride, offset_range):
    """3DTS end to end: offsets, reference points (the conv's centres), A3's sum over the grid (zeros outside)."""
    search = randomise_parameters(TokenSearch3D(DIM, kernel, offset_range, stride))
    z = _search_input(3)
    slow = token_search(z, offset_cells(search, z, offset_range, stride), stride)
    assert (slow == 0).sum() < slow.numel() // 2  # most points see the grid
    params = dict(search.named_parameters())
    _assert_close_with_grads((search(z),), (slow,), [z], list(params.values()), ["z", *params])


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("kernel, stride, offset_range", SEARCH_CASES, ids=SEARCH_IDS)
def test_deformable_attention_matches_reference(kernel, stride, offset_range, fused):
    attn = randomise_parameters(DeformableAttention3D(DIM, HEADS, qkv_bias=True, fused_attn=fused, offset_kernel=kernel,
                                            offset_range=offset_range, offset_stride=stride))
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(2, 3, 4, 5, DIM, generator=gen, dtype=torch.float64, requires_grad=True)
    modal = torch.randn(2, 3, 2, DIM, generator=gen, dtype=torch.float64, requires_grad=True)  # M_RGB, M_CLS
    params = dict(attn.named_parameters())
    assert len(params) == 11  # offset net (conv w, b; LN w, b; 1x1 w), q, kv, proj (w, b each): none skipped
    _assert_close_with_grads(attn(z, modal), deformable_reference(attn, z, modal, offset_range, stride), [z, modal],
                             list(params.values()), ["z", "modal", *params])


# ---- one block: A3 and A1 branches, CLS merge, A2 ----------------------------------------------------------------


def block_reference(block: CrossModalBlock, z, pose, modal, grid_hw, joint_wnd, temporal_wnd, cover, stride):
    """CrossModalBlock from the pieces (models.d3da.model's doc; every attention pre-norm, each with its FFN):
    1. [Z || M_RGB || M_CLS] + A3(LN1(.)), then + FFN(LN2(.));
    2. [P || M_pose || M'_CLS] + A1(LN1(.)), then + FFN(LN2(.)), M'_CLS = the M_CLS the block received;
    3. M_CLS = the mean of the two branches' CLS outputs;
    4. N = [Z || P || M_RGB || M_pose || M_CLS] + A2(LN1(N)), then + FFN(LN2(.))."""
    b, t, s, c = z.shape
    r = pose.shape[2]

    def ln(x, norm):
        return layer_norm(x, norm.weight, norm.bias, BLOCK_LN_EPS)

    m_rgb, m_pose, m_cls = modal[:, :, 0:1], modal[:, :, 1:2], modal[:, :, 2:3]
    rgb = block.rgb
    x_modal = torch.cat([m_rgb, m_cls], dim=2)
    d_z, d_xm = deformable_reference(rgb.attn, ln(z, rgb.norm1).reshape(b, t, *grid_hw, c), ln(x_modal, rgb.norm1),
                                     2.0, stride)
    z1, xm1 = z + d_z.reshape(b, t, s, c), x_modal + d_xm
    z1, xm1 = z1 + ffn(ln(z1, rgb.norm2), rgb.mlp), xm1 + ffn(ln(xm1, rgb.norm2), rgb.mlp)

    br = block.pose
    o_modal = torch.cat([m_pose, m_cls], dim=2)  # M'_CLS: the block's input M_CLS, not the RGB branch's output
    d_p, d_om = stride_reference(br.attn, ln(pose, br.norm1).transpose(1, 2), ln(o_modal, br.norm1).transpose(1, 2),
                                 joint_wnd, cover)  # windows over the R joints, all T frames in each
    p1, om1 = pose + d_p.transpose(1, 2), o_modal + d_om.transpose(1, 2)
    p1, om1 = p1 + ffn(ln(p1, br.norm2), br.mlp), om1 + ffn(ln(om1, br.norm2), br.mlp)

    cls = (xm1[:, :, 1:2] + om1[:, :, 1:2]) / 2
    n = torch.cat([z1, p1, xm1[:, :, 0:1], om1[:, :, 0:1], cls], dim=2)  # (B, T, D_n, C)
    tb = block.temporal
    n = n + stride_reference(tb.attn, ln(n, tb.norm1), None, temporal_wnd, cover)[0]  # windows over the T frames
    n = n + ffn(ln(n, tb.norm2), tb.mlp)
    return n.split([s, r, 3], dim=2)


# (cover, T, grid (h, w), R, joint_wnd, temporal_wnd, offset_stride): stride-1 windows overlap 2-3 deep (the mean
# merge matters); as printed, joints 4-6 and frames 4-6 are in no paired query window
BLOCK_CASES = [("full", 5, (2, 3), 5, 2, 3, 1), ("full", 5, (2, 3), 5, 2, 3, 2), ("as_printed", 7, (2, 3), 7, 4, 4, 1)]


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
@pytest.mark.parametrize("cover, t, grid_hw, r, joint_wnd, temporal_wnd, stride", BLOCK_CASES,
                         ids=["full", "full-offset_stride2", "as_printed"])
def test_cross_modal_block_matches_reference(cover, t, grid_hw, r, joint_wnd, temporal_wnd, stride, fused):
    block = randomise_parameters(CrossModalBlock(DIM, HEADS, mlp_ratio=2.0, qkv_bias=True, fused_attn=fused,
                                       joint_wnd=joint_wnd, temporal_wnd=temporal_wnd, cover=cover,
                                       offset_stride=stride))
    gen = torch.Generator().manual_seed(5)
    s = grid_hw[0] * grid_hw[1]
    z = torch.randn(2, t, s, DIM, generator=gen, dtype=torch.float64, requires_grad=True)
    pose = torch.randn(2, t, r, DIM, generator=gen, dtype=torch.float64, requires_grad=True)
    modal = torch.randn(2, t, 3, DIM, generator=gen, dtype=torch.float64, requires_grad=True)
    slow = block_reference(block, z, pose, modal, grid_hw, joint_wnd, temporal_wnd, cover, stride)
    params = dict(block.named_parameters())
    _assert_close_with_grads(block(z, pose, modal, grid_hw), slow, [z, pose, modal], list(params.values()),
                             ["z", "pose", "modal", *params])
