"""Slow, literal reference implementations of the space-time attentions, written from Motionformer Eq. 2-6.

Each function takes an attention module (only for its weights and options) and evaluates the equations with
explicit loops over batch, head and token, one softmax at a time. No SDPA, no batching tricks: these are the
ground truth the fast modules are tested against (values and gradients).

Token layout as in the modules: index 0 is CLS, patch (t, s) is index 1 + t * S + s, S = H * W.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _linear(x: Tensor, layer: nn.Linear) -> Tensor:
    out = x @ layer.weight.T
    return out if layer.bias is None else out + layer.bias


def _head(z: Tensor, h: int, d: int) -> Tensor:
    """Channels of head ``h`` (heads are contiguous blocks of ``d`` channels, as in timm)."""
    return z[..., h * d:(h + 1) * d]


def _qkv(x: Tensor, layer: nn.Linear) -> tuple[Tensor, Tensor, Tensor]:
    """q, k, v (each (..., C)) from a fused (C -> 3C) projection laid out [q | k | v]."""
    c = x.shape[-1]
    qkv = _linear(x, layer)
    return qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:]


def _attend_one(q: Tensor, keys: list[Tensor], values: list[Tensor]) -> Tensor:
    """sum_j v_j exp<q, k_j>/sqrt(d) / sum_j' exp<q, k_j'>/sqrt(d) for one query vector q."""
    d = q.shape[-1]
    logits = torch.stack([torch.dot(q, k) / d ** 0.5 for k in keys])
    weights = torch.softmax(logits, dim=0)
    return sum(w * v for w, v in zip(weights, values))


def joint_reference(module: nn.Module, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
    """Eq. 2: every token attends to every token (CLS included)."""
    batch, num_tokens, c = x.shape
    nh = module.num_heads
    d = c // nh
    q, k, v = _qkv(x, module.qkv)
    rows = []
    for b in range(batch):
        tokens = []
        for i in range(num_tokens):
            heads = []
            for h in range(nh):
                keys = [_head(k[b, j], h, d) for j in range(num_tokens)]
                values = [_head(v[b, j], h, d) for j in range(num_tokens)]
                heads.append(_attend_one(_head(q[b, i], h, d), keys, values))
            tokens.append(torch.cat(heads))
        rows.append(torch.stack(tokens))
    return _linear(torch.stack(rows), module.proj)


def divided_reference(module: nn.Module, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
    """Eq. 3, time then space, composed as in the module: t = temporal(u), s = spatial(u + t), out = t + s.

    Temporal: patch (t, s) attends over (t', s) for all t'; CLS is not involved (its temporal output is 0).
    Spatial: patch (t, s) attends over CLS and (t, s') for all s'; the CLS query attends over all tokens.
    """
    num_t, grid_h, grid_w = thw
    num_s = grid_h * grid_w
    batch, num_tokens, c = x.shape
    nh = module.num_heads
    d = c // nh

    def idx(t: int, s: int) -> int:
        return 1 + t * num_s + s

    # Temporal stage.
    q, k, v = _qkv(x, module.temporal_qkv)
    temporal = []
    for b in range(batch):
        tokens = [torch.zeros(c, dtype=x.dtype)]  # CLS
        for t in range(num_t):
            for s in range(num_s):
                heads = []
                for h in range(nh):
                    keys = [_head(k[b, idx(tp, s)], h, d) for tp in range(num_t)]
                    values = [_head(v[b, idx(tp, s)], h, d) for tp in range(num_t)]
                    heads.append(_attend_one(_head(q[b, idx(t, s)], h, d), keys, values))
                tokens.append(_linear(torch.cat(heads), module.temporal_proj))
        temporal.append(torch.stack(tokens))
    temporal = torch.stack(temporal)

    # Spatial stage on u + t.
    q, k, v = _qkv(x + temporal, module.qkv)
    spatial = []
    for b in range(batch):
        tokens = []
        for i in range(num_tokens):
            if i == 0:
                members = list(range(num_tokens))  # CLS: every token
            else:
                t = (i - 1) // num_s
                members = [0] + [idx(t, sp) for sp in range(num_s)]  # CLS + own frame
            heads = []
            for h in range(nh):
                keys = [_head(k[b, j], h, d) for j in members]
                values = [_head(v[b, j], h, d) for j in members]
                heads.append(_attend_one(_head(q[b, i], h, d), keys, values))
            tokens.append(torch.cat(heads))
        spatial.append(torch.stack(tokens))
    return temporal + _linear(torch.stack(spatial), module.proj)


def trajectory_reference(module: nn.Module, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
    """Eq. 4-6 with the module's ``normalize`` (Norm_S / Norm_ST) and ``temporal_pool`` (Att_T / Avg_T).

    CLS attends over all tokens (Eq. 2); patch queries form trajectories over patch tokens only.
    """
    num_t, grid_h, grid_w = thw
    num_s = grid_h * grid_w
    batch, num_tokens, c = x.shape
    nh = module.num_heads
    d = c // nh
    q, k, v = _qkv(x, module.qkv)

    def idx(t: int, s: int) -> int:
        return 1 + t * num_s + s

    out = []
    for b in range(batch):
        cls = torch.cat([
            _attend_one(_head(q[b, 0], h, d), [_head(k[b, j], h, d) for j in range(num_tokens)],
                        [_head(v[b, j], h, d) for j in range(num_tokens)])
            for h in range(nh)
        ])
        tokens = [cls]
        for t in range(num_t):
            for s in range(num_s):
                # Eq. 4: trajectory tokens y~[t'] (all heads concatenated) for reference point (t, s).
                traj = []
                for tp in range(num_t):
                    heads = []
                    for h in range(nh):
                        q_st = _head(q[b, idx(t, s)], h, d)
                        if module.normalize == "space":
                            logits = torch.stack([torch.dot(q_st, _head(k[b, idx(tp, sp)], h, d)) / d ** 0.5
                                                  for sp in range(num_s)])
                            weights = torch.softmax(logits, dim=0)  # over s' of frame t'
                        else:
                            logits = torch.stack([
                                torch.stack([torch.dot(q_st, _head(k[b, idx(tb, sp)], h, d)) / d ** 0.5
                                             for sp in range(num_s)])
                                for tb in range(num_t)])  # (t-bar, s')
                            weights = torch.softmax(logits.flatten(), dim=0).reshape(num_t, num_s)[tp]
                        heads.append(sum(weights[sp] * _head(v[b, idx(tp, sp)], h, d) for sp in range(num_s)))
                    traj.append(torch.cat(heads))
                if module.temporal_pool == "average":
                    tokens.append(sum(traj) / num_t)
                    continue
                # Eq. 5: q~ from the reference frame's trajectory token, k~, v~ from every frame's.
                q2 = _linear(traj[t], module.proj_q)
                kv2 = [_linear(y, module.proj_kv) for y in traj]
                k2, v2 = [z[:c] for z in kv2], [z[c:] for z in kv2]
                # Eq. 6: 1-D attention over t', per head.
                tokens.append(torch.cat([
                    _attend_one(_head(q2, h, d), [_head(z, h, d) for z in k2], [_head(z, h, d) for z in v2])
                    for h in range(nh)
                ]))
        out.append(torch.stack(tokens))
    return _linear(torch.stack(out), module.proj)


def trajectory_official_values_reference(module: nn.Module, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
    """The official code's Eq. 6 (``stage_two_values="trajectory"``): Eq. 4 and Eq. 5's q~, k~ as in
    ``trajectory_reference``, but head h pools its own channels of the trajectory tokens y~_stt' instead of the
    values W_v y~_stt'. Keys come from the first half of ``proj_kv``; its value half is not used.
    """
    num_t, grid_h, grid_w = thw
    num_s = grid_h * grid_w
    batch, num_tokens, c = x.shape
    nh = module.num_heads
    d = c // nh
    q, k, v = _qkv(x, module.qkv)

    def idx(t: int, s: int) -> int:
        return 1 + t * num_s + s

    out = []
    for b in range(batch):
        cls = torch.cat([
            _attend_one(_head(q[b, 0], h, d), [_head(k[b, j], h, d) for j in range(num_tokens)],
                        [_head(v[b, j], h, d) for j in range(num_tokens)])
            for h in range(nh)
        ])
        tokens = [cls]
        for t in range(num_t):
            for s in range(num_s):
                traj = []  # Eq. 4, y~[t'] with all heads concatenated
                for tp in range(num_t):
                    heads = []
                    for h in range(nh):
                        q_st = _head(q[b, idx(t, s)], h, d)
                        if module.normalize == "space":
                            logits = torch.stack([torch.dot(q_st, _head(k[b, idx(tp, sp)], h, d)) / d ** 0.5
                                                  for sp in range(num_s)])
                            weights = torch.softmax(logits, dim=0)
                        else:
                            logits = torch.stack([
                                torch.stack([torch.dot(q_st, _head(k[b, idx(tb, sp)], h, d)) / d ** 0.5
                                             for sp in range(num_s)])
                                for tb in range(num_t)])
                            weights = torch.softmax(logits.flatten(), dim=0).reshape(num_t, num_s)[tp]
                        heads.append(sum(weights[sp] * _head(v[b, idx(tp, sp)], h, d) for sp in range(num_s)))
                    traj.append(torch.cat(heads))
                q2 = _linear(traj[t], module.proj_q)
                k2 = [_linear(y, module.proj_kv)[:c] for y in traj]
                tokens.append(torch.cat([
                    _attend_one(_head(q2, h, d), [_head(z, h, d) for z in k2], [_head(y, h, d) for y in traj])
                    for h in range(nh)
                ]))
        out.append(torch.stack(tokens))
    return _linear(torch.stack(out), module.proj)


def _layer_norm(x: Tensor, norm: nn.LayerNorm) -> Tensor:
    """LayerNorm of every token, written out: (x - mean) / sqrt(var + eps) * weight + bias."""
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def _official_divided_stage(x: Tensor, qkv: nn.Linear, nh: int, thw: tuple[int, int, int], along: str) -> Tensor:
    """One stage of the official divided block (``vit_helper.DividedAttention``) before its output projection: the
    CLS query attends over every token; patch (t, s) over CLS and the patches of its location (t', s) for all t'
    (``along="time"``) or of its frame (t, s') for all s' (``"space"``)."""
    num_t, grid_h, grid_w = thw
    num_s = grid_h * grid_w
    batch, num_tokens, c = x.shape
    d = c // nh
    q, k, v = _qkv(x, qkv)

    def idx(t: int, s: int) -> int:
        return 1 + t * num_s + s

    out = []
    for b in range(batch):
        tokens = []
        for i in range(num_tokens):
            if i == 0:
                members = list(range(num_tokens))
            elif along == "time":
                members = [0] + [idx(tp, (i - 1) % num_s) for tp in range(num_t)]
            else:
                members = [0] + [idx((i - 1) // num_s, sp) for sp in range(num_s)]
            tokens.append(torch.cat([
                _attend_one(_head(q[b, i], h, d), [_head(k[b, j], h, d) for j in members],
                            [_head(v[b, j], h, d) for j in members])
                for h in range(nh)
            ]))
        out.append(torch.stack(tokens))
    return torch.stack(out)


def divided_official_reference(module: nn.Module, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
    """``OfficialDividedSpaceTimeAttention`` alone: the official divided block's spatial stage."""
    return _linear(_official_divided_stage(x, module.qkv, module.num_heads, thw, "space"), module.proj)


def divided_official_block_reference(block: nn.Module, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
    """The official ``DividedSpaceTimeBlock.forward``: x1 = x + timeattn(norm3(x)), x2 = x1 + attn(norm1(x1)),
    out = x2 + mlp(norm2(x2)), each attention as ``_official_divided_stage``; GELU written out (erf)."""
    stage = block.pre_attn
    x1 = x + _linear(_official_divided_stage(_layer_norm(x, stage.norm), stage.qkv, stage.num_heads, thw, "time"),
                     stage.proj)
    x2 = x1 + divided_official_reference(block.attn, _layer_norm(x1, block.norm1), thw)
    hidden = _linear(_layer_norm(x2, block.norm2), block.mlp.fc1)
    hidden = 0.5 * hidden * (1.0 + torch.erf(hidden / 2 ** 0.5))
    return x2 + _linear(hidden, block.mlp.fc2)


REFERENCES = {"joint": joint_reference, "divided": divided_reference, "divided_official": divided_official_reference,
              "trajectory": trajectory_reference}


# ---- The shift family: per-frame class tokens (MSCA paper Eq. 4-9 and 12-23, X-ViT supplementary Eq. 1) --------
# Token layout: frame t's class token is index t * (1 + S), its patch s is index t * (1 + S) + 1 + s.


def msca_reference(module: nn.Module, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
    """Eq. 12-23: frame-wise MSA in which head i (or token row n) of Q, K, V is read from the frame the equations
    name: the first ``num_backward`` heads (rows) from t - 1, the next ``num_forward`` from t + 1, zeros outside
    the clip; with ``value_frames="opposite"`` the shifted values from the other neighbour; with
    ``head_order="official"`` the first ``num_forward`` heads from t + 1 and the last ``num_backward`` from t - 1
    (the authors' code). A ``FrameAttention``
    (no shift attributes) is Eq. 13-16: every row from frame t."""
    num_t = thw[0]
    batch, num_tokens, c = x.shape
    per_frame = num_tokens // num_t
    nh = module.num_heads
    d = c // nh
    shifted = getattr(module, "shifted", "")
    along = getattr(module, "shift_along", "heads")
    n_back, n_fwd = getattr(module, "num_backward", 0), getattr(module, "num_forward", 0)
    q, k, v = _qkv(x, module.qkv)

    def source_frame(t: int, i: int, n: int) -> int:
        position = i if along == "heads" else n
        if getattr(module, "head_order", "paper") == "official":  # the authors' code: first heads ahead, last behind
            return t + 1 if i < n_fwd else t - 1 if i >= nh - n_back else t
        if position < n_back:
            return t - 1
        if position < n_back + n_fwd:
            return t + 1
        return t

    def row(z: Tensor, name: str, b: int, t: int, i: int, n: int) -> Tensor:
        src = source_frame(t, i, n) if name in shifted else t
        if name == "V" and getattr(module, "value_frames", "same") == "opposite":
            src = 2 * t - src  # the other neighbour: t+1 for t-1 and t-1 for t+1 (t stays t)
        if not 0 <= src < num_t:
            return torch.zeros(d, dtype=x.dtype)  # zero padding at the clip's ends
        return _head(z[b, src * per_frame + n], i, d)

    out = []
    for b in range(batch):
        tokens = []
        for t in range(num_t):
            for n in range(per_frame):
                tokens.append(torch.cat([
                    _attend_one(row(q, "Q", b, t, i, n), [row(k, "K", b, t, i, m) for m in range(per_frame)],
                                [row(v, "V", b, t, i, m) for m in range(per_frame)])
                    for i in range(nh)
                ]))
        out.append(torch.stack(tokens))
    return _linear(torch.stack(out), module.proj)


def xvit_reference(module: nn.Module, x: Tensor, thw: tuple[int, int, int]) -> Tensor:
    """X-ViT space-time mixing as the official code's ``TemporalShift`` on k and v, channel by channel: with
    f = int(C * shift_fraction) // 2, channels [0, f) from frame t+1, [f, 2f) from t-1, the rest from t (zeros
    outside the clip, and outside frame t's segment of ``shift_segment`` frames); queries from frame t; then
    attention within frame t, per head."""
    num_t = thw[0]
    batch, num_tokens, c = x.shape
    per_frame = num_tokens // num_t
    nh = module.num_heads
    d = c // nh
    fold = int(c * module.shift_fraction) // 2
    segment = getattr(module, "shift_segment", None) or num_t
    q, k, v = _qkv(x, module.qkv)

    def mixed(z: Tensor, b: int, t: int, n: int) -> Tensor:
        channels = []
        for ch in range(c):
            src = t + 1 if ch < fold else t - 1 if ch < 2 * fold else t
            inside = 0 <= src < num_t and src // segment == t // segment
            channels.append(z[b, src * per_frame + n, ch] if inside else torch.zeros((), dtype=x.dtype))
        return torch.stack(channels)

    out = []
    for b in range(batch):
        keys = [[mixed(k, b, t, m) for m in range(per_frame)] for t in range(num_t)]
        values = [[mixed(v, b, t, m) for m in range(per_frame)] for t in range(num_t)]
        tokens = []
        for t in range(num_t):
            for n in range(per_frame):
                tokens.append(torch.cat([
                    _attend_one(_head(q[b, t * per_frame + n], i, d), [_head(key, i, d) for key in keys[t]],
                                [_head(value, i, d) for value in values[t]])
                    for i in range(nh)
                ]))
        out.append(torch.stack(tokens))
    return _linear(torch.stack(out), module.proj)


def temporal_shift_reference(x: Tensor, thw: tuple[int, int, int], shift_fraction: float, tokens: str,
                             order: str = "paper") -> Tensor:
    """Eq. 8-9 element by element: channel d of token n of frame t comes from frame t-1 for d < D_b, from t+1 for
    D_b <= d < D_b + D_f (D_b = D_f = int(C * shift_fraction) // 2), zeros outside the clip; only class tokens
    (n = 0) move for ``tokens="cls"`` (TokenShift), every token for "all" (TSM-ViT). ``order="official"``: the
    authors' code (TokShift's ``shift_tk``, TSM's ``shift``), d < D_b from t+1 and the next D_f from t-1."""
    early, late = (-1, 1) if order == "paper" else (1, -1)
    num_t = thw[0]
    batch, num_tokens, c = x.shape
    per_frame = num_tokens // num_t
    fold = int(c * shift_fraction) // 2
    out = []
    for b in range(batch):
        for t in range(num_t):
            for n in range(per_frame):
                channels = []
                for ch in range(c):
                    src = t
                    if tokens == "all" or n == 0:
                        src = t + early if ch < fold else t + late if ch < 2 * fold else t
                    channels.append(x[b, src * per_frame + n, ch] if 0 <= src < num_t
                                    else torch.zeros((), dtype=x.dtype))
                out.append(torch.stack(channels))
    return torch.stack(out).reshape(batch, num_tokens, c)


FRAME_REFERENCES = {"frame": msca_reference, "msca": msca_reference, "xvit": xvit_reference}


def random_attention(cls: type[nn.Module], dim: int, num_heads: int, fused: bool, **options) -> nn.Module:
    """A float64 attention module whose weights and biases are all random (zeros would hide bias or layout
    mistakes), in eval mode."""
    torch.manual_seed(0)
    module = cls(dim, num_heads=num_heads, qkv_bias=True, fused_attn=fused, **options).double()
    with torch.no_grad():
        for param_name, p in module.named_parameters():
            p.normal_(0.0, 0.5 if param_name.endswith("bias") else p.shape[-1] ** -0.5)
    return module.eval()
