"""Attention weights taken from a model while its forward runs, the model unchanged.

``capture_attention(model, names)`` is a context manager that puts a forward hook on each chosen attention module
(Motionformer's joint, divided (ours, and the official block's two stages) and trajectory attention, CAST's windowed
cross-attention (T2S, S2T), 3D-Deformable's deformable attention and joint stride attention). After the module has
computed its output the hook recomputes, from the module's own input and projections, the softmax weights its forward
applied (by the plain formula ``softmax(q k^T / sqrt(d))``: the fused SDPA path never materialises them) and stores
them, detached, in an ``AttentionRecord``. The hooks return nothing, so the module's output and everything after it
are the same tensors; tests/models/test_attention_capture.py checks the logits (``torch.equal``) and that each
record's weights, applied to the module's values, give the module's output (float64).

Weights are those of evaluation: a module in training mode with attention dropout draws a random mask the record
cannot know, so capture refuses it. Approximate trajectory attention has no weight matrix to record (refused).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from ..cast.layers import WindowedCrossAttention, to_windows
from ..d3da.deformable import DeformableAttention3D
from ..d3da.stride_attention import JointStrideAttention, window_pairs
from .approximate_trajectory import ApproximateTrajectoryAttention
from .divided import DividedSpaceTimeAttention, OfficialDividedSpaceTimeAttention, OfficialDividedTemporalStage
from .joint import JointSpaceTimeAttention
from .trajectory import TrajectoryAttention


@dataclass
class AttentionRecord:
    """What one forward of one attention module attended to.

    ``kind``: "joint", "divided", "trajectory", "cast_window", "d3da_deformable" or "d3da_joint_stride".
    ``weights``: stage name -> tensor (shapes in each extractor's doc); ``layout``: the sizes needed to read them
    (``thw`` of the patch grid, the CAST window, the stride windows' indices...).
    """

    name: str
    kind: str
    weights: dict[str, Tensor]
    layout: dict[str, Any] = field(default_factory=dict)


def softmax_weights(q: Tensor, k: Tensor) -> Tensor:
    """``softmax(q k^T / sqrt(d))`` over the keys, the formula ``attend``'s explicit path and SDPA compute."""
    return ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)


def _heads(z: Tensor, num_heads: int) -> Tensor:
    return rearrange(z, "b n (nh d) -> b nh n d", nh=num_heads)


def _joint(module: JointSpaceTimeAttention, args: tuple) -> AttentionRecord:
    """"all": (B, nh, 1 + THW, 1 + THW), token 0 the class token, patches in (t h w) order."""
    x, thw = args[0], args[1]
    q, k, _ = rearrange(module.qkv(x), "b n (three nh d) -> three b nh n d", three=3, nh=module.num_heads)
    return AttentionRecord("", "joint", {"all": softmax_weights(q, k)}, {"thw": tuple(thw)})


def _divided(module: DividedSpaceTimeAttention, args: tuple) -> AttentionRecord:
    """"temporal": (B, nh, HW, T, T), each location's T patches over themselves; "spatial": (B, nh, T, HW, 1 + HW),
    each frame's patches over the class token (key 0) and that frame's patches; "cls": (B, nh, 1, 1 + THW)."""
    x, thw = args[0], args[1]
    num_frames, nh = thw[0], module.num_heads
    q, k, _ = rearrange(module.temporal_qkv(x[:, 1:]), "b (t n) (three nh d) -> three b nh n t d",
                        t=num_frames, three=3, nh=nh)
    temporal = softmax_weights(q, k)
    spatial_input = x + module._temporal(x, num_frames)  # the spatial stage reads u + t (module doc)
    spatial, cls = _spatial_stage(module.qkv(spatial_input), num_frames, nh)
    return AttentionRecord("", "divided", {"temporal": temporal, "spatial": spatial, "cls": cls},
                           {"thw": tuple(thw), "temporal_keys": "steps"})


def _official_divided(module: OfficialDividedSpaceTimeAttention, args: tuple, stage: OfficialDividedTemporalStage,
                      stage_inputs: list[Tensor]) -> AttentionRecord:
    """The official divided block (``divided_official``): its temporal stage is the block's ``pre_attn``, a residual
    branch of its own run before this module on the block's input (kept by a hook, ``stage_inputs``), whose patch
    queries also see the class token. "temporal": (B, nh, HW, T, 1 + T), each location's T patches over the class
    token (key 0) and themselves; "temporal_cls": (B, nh, 1, 1 + THW); "spatial" and "cls" as ``_divided``'s, from
    this module's input."""
    x, thw = args[0], args[1]
    num_frames = thw[0]
    q, k, _ = rearrange(stage.qkv(stage.norm(stage_inputs.pop())), "b n (three nh d) -> three b nh n d", three=3,
                        nh=stage.num_heads)
    q_steps, k_steps = (rearrange(z[:, :, 1:], "b nh (t n) d -> b nh n t d", t=num_frames) for z in (q, k))
    k_steps = torch.cat([k[:, :, None, :1].expand(-1, -1, k_steps.shape[2], -1, -1), k_steps], dim=3)
    spatial, cls = _spatial_stage(module.qkv(x), num_frames, module.num_heads)
    return AttentionRecord("", "divided", {"temporal": softmax_weights(q_steps, k_steps),
                                           "temporal_cls": softmax_weights(q[:, :, :1], k), "spatial": spatial,
                                           "cls": cls},
                           {"thw": tuple(thw), "temporal_keys": "cls+steps"})


def _spatial_stage(qkv: Tensor, num_frames: int, num_heads: int) -> tuple[Tensor, Tensor]:
    """Divided attention's spatial stage from its (B, n, 3C) projection: ((B, nh, T, HW, 1 + HW) each frame's patches
    over the class token (key 0) and that frame's patches, (B, nh, 1, 1 + THW) the class token over every token)."""
    q, k, _ = rearrange(qkv, "b n (three nh d) -> three b nh n d", three=3, nh=num_heads)
    q_frames = rearrange(q[:, :, 1:], "b nh (t n) d -> b nh t n d", t=num_frames)
    k_frames = rearrange(k[:, :, 1:], "b nh (t n) d -> b nh t n d", t=num_frames)
    k_frames = torch.cat([k[:, :, None, :1].expand(-1, -1, num_frames, -1, -1), k_frames], dim=3)
    return softmax_weights(q_frames, k_frames), softmax_weights(q[:, :, :1], k)


def _trajectory(module: TrajectoryAttention, args: tuple) -> AttentionRecord:
    """"stage_one": (B, nh, THW, T, HW), each patch query's weights over the patches of every frame t' (Eq. 4;
    normalised per frame with Norm_S, over all frames with Norm_ST); "cls": (B, nh, 1, 1 + THW)."""
    x, thw = args[0], args[1]
    num_frames = thw[0]
    q, k, _ = rearrange(module.qkv(x), "b n (three nh d) -> three b nh n d", three=3, nh=module.num_heads)
    cls = softmax_weights(q[:, :, :1], k)
    scores = (q[:, :, 1:] * q.shape[-1] ** -0.5) @ k[:, :, 1:].transpose(-2, -1)
    scores = rearrange(scores, "b nh q (tp n) -> b nh q tp n", tp=num_frames)
    if module.normalize == "space":
        stage_one = scores.softmax(dim=-1)
    else:
        stage_one = rearrange(rearrange(scores, "b nh q tp n -> b nh q (tp n)").softmax(dim=-1),
                              "b nh q (tp n) -> b nh q tp n", tp=num_frames)
    return AttentionRecord("", "trajectory", {"stage_one": stage_one, "cls": cls},
                           {"thw": tuple(thw), "normalize": module.normalize})


def _cast_window(module: WindowedCrossAttention, args: tuple) -> AttentionRecord:
    """"windows": (W, nh, L, L), each window's queries (one expert's tokens) over its keys (the other's): W = B*N
    windows of L = T steps for "time" (T2S), W = B*T windows of L = N patches for "space" (S2T)."""
    query_grid, key_grid = args[0], args[1]
    q_tokens, kv_tokens = to_windows(query_grid, module.window), to_windows(key_grid, module.window)
    if module.query_pos is not None:
        q_tokens, kv_tokens = q_tokens + module.query_pos, kv_tokens + module.key_pos
    q = rearrange(module.q(q_tokens), "w l (nh d) -> w nh l d", nh=module.num_heads)
    k, _ = rearrange(module.kv(kv_tokens), "w l (two nh d) -> two w nh l d", two=2, nh=module.num_heads)
    b, t, n, _ = query_grid.shape
    return AttentionRecord("", "cast_window", {"windows": softmax_weights(q, k)},
                           {"window": module.window, "batch": b, "num_steps": t, "num_patches": n})


def _d3da_deformable(module: DeformableAttention3D, args: tuple) -> AttentionRecord:
    """"sampling_points": (B, T~, H~, W~, 3), the (x, y, t) in [-1, 1] (``grid_sample``'s coordinates, align_corners
    False) where 3DTS sampled each deformed token; "offsets": the same, less the reference points; "all":
    (B, nh, THW + Tm, T~H~W~ + Tm), RGB and modal queries over the deformed and modal keys."""
    z, modal = args[0], args[1]
    grid = rearrange(z, "b t h w c -> b c t h w")
    delta = module.search.offsets(grid)
    reference = module.search.reference_points(tuple(grid.shape[2:]), tuple(delta.shape[1:4]), grid)
    deformed = module.search.sample(grid, delta)
    x = torch.cat([rearrange(z, "b t h w c -> b (t h w) c"), rearrange(modal, "b t m c -> b (t m) c")], 1)
    x_def = torch.cat([rearrange(deformed, "b c t h w -> b (t h w) c"), rearrange(modal, "b t m c -> b (t m) c")], 1)
    q = _heads(module.q(x), module.num_heads)
    k, _ = rearrange(module.kv(x_def), "b n (two nh d) -> two b nh n d", two=2, nh=module.num_heads)
    return AttentionRecord("", "d3da_deformable",
                           {"sampling_points": reference + delta, "offsets": delta, "all": softmax_weights(q, k)},
                           {"thw": tuple(z.shape[1:4]), "sampled_thw": tuple(delta.shape[1:4]),
                            "modal": modal.shape[2]})


def _d3da_joint_stride(module: JointStrideAttention, args: tuple) -> AttentionRecord:
    """"windows": (B, D, nh, Lq, Lk) for the D paired windows; a window's tokens are (position, frame) pairs in
    (l a) order: l the window's pose tokens (``query_windows`` / ``key_windows`` rows) then the m modal tokens,
    a the T frames."""
    pose, modal = args[0], (args[1] if len(args) > 1 else None)
    x = pose.transpose(1, 2)  # (B, R, T, C): joints are the windowed axis, frames enter a window together
    extra = None if modal is None else modal.transpose(1, 2)
    b, n, a, _ = x.shape
    q_idx, kv_idx, _ = module._windows(n, x.device)
    tokens = x if extra is None else torch.cat([x, extra], dim=1)
    q, k, _ = module.qkv(tokens).chunk(3, dim=-1)
    m = 0 if extra is None else extra.shape[1]

    def windows(z: Tensor, idx: Tensor) -> Tensor:
        win = z[:, idx]
        if m:
            win = torch.cat([win, z[:, n:].unsqueeze(1).expand(-1, idx.shape[0], -1, -1, -1)], dim=2)
        return rearrange(win, "b dw l a (nh d) -> b dw nh (l a) d", nh=module.num_heads)

    # The window lists from their source, not from the index tensors: those may live on the meta device.
    query_windows, key_windows = window_pairs(n, module.wnd, module.cover)
    return AttentionRecord("", "d3da_joint_stride", {"windows": softmax_weights(windows(q, q_idx), windows(k, kv_idx))},
                           {"query_windows": [list(w) for w in query_windows],
                            "key_windows": [list(w) for w in key_windows], "frames": a, "modal": m, "joints": n})


# Most specific class first: an approximate trajectory attention is a TrajectoryAttention.
EXTRACTORS: tuple[tuple[type[nn.Module], Callable[[Any, tuple], AttentionRecord]], ...] = (
    (TrajectoryAttention, _trajectory),
    (DividedSpaceTimeAttention, _divided),
    (OfficialDividedSpaceTimeAttention, _official_divided),  # given its temporal stage by ``capture_attention``
    (JointSpaceTimeAttention, _joint),
    (WindowedCrossAttention, _cast_window),
    (DeformableAttention3D, _d3da_deformable),
    (JointStrideAttention, _d3da_joint_stride),
)


def _extractor(module: nn.Module) -> Callable[[Any, tuple], AttentionRecord] | None:
    for cls, extract in EXTRACTORS:
        if isinstance(module, cls):
            return extract
    return None


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The modules of ``model`` whose attention can be captured, by qualified name, in forward order of
    ``named_modules`` (e.g. "blocks.3.attn", "exchange.2.t2s", "blocks.1.rgb.attn")."""
    return {name: module for name, module in model.named_modules() if _extractor(module) is not None}


def _official_temporal_stage(model: nn.Module, name: str) -> OfficialDividedTemporalStage:
    """The temporal stage the block of the official divided attention ``name`` runs before it (its ``pre_attn``)."""
    parent = name.rpartition(".")[0]
    stage = getattr(model.get_submodule(parent), "pre_attn", None) if parent else None
    if not isinstance(stage, OfficialDividedTemporalStage):
        raise ValueError(f"{name!r} is the official divided attention's spatial stage, but its block has no temporal "
                         f"stage (pre_attn) to capture with it")
    return stage


@contextmanager
def capture_attention(model: nn.Module, names: Sequence[str] | None = None) -> Iterator[list[AttentionRecord]]:
    """Record the attention of the modules ``names`` (all of ``attention_modules(model)`` when None) during the
    forwards run inside the ``with``; yields the list the records are appended to, one per module call.

    Raises ``ValueError`` naming a module that is not among the capturable ones (and listing them)."""
    available = attention_modules(model)
    chosen = list(available) if names is None else list(names)
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise ValueError(f"no capturable attention module {unknown[0]!r} in {type(model).__name__}; "
                         f"capturable: {list(available)}")
    approximate = [name for name in chosen if isinstance(available[name], ApproximateTrajectoryAttention)]
    if approximate:
        raise ValueError(f"{approximate[0]!r} is approximate trajectory attention, which has no weight matrix to "
                         f"capture (its stage one is a low-rank product); capture an exact trajectory model")
    records: list[AttentionRecord] = []
    handles = []

    def hook_for(name: str) -> Callable[[nn.Module, tuple, Any], None]:
        extract = _extractor(available[name])
        if isinstance(available[name], OfficialDividedSpaceTimeAttention):
            stage = _official_temporal_stage(model, name)
            stage_inputs: list[Tensor] = []
            handles.append(stage.register_forward_pre_hook(lambda _, args: stage_inputs.append(args[0])))
            extract = partial(_official_divided, stage=stage, stage_inputs=stage_inputs)

        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            dropout = getattr(getattr(module, "attn_drop", None), "p", 0.0)
            if module.training and dropout > 0:
                raise ValueError(f"attention capture of {name!r}: the module is in training mode with attention "
                                 f"dropout {dropout}, whose random mask no record can know; call model.eval()")
            with torch.no_grad():
                record = extract(module, args)
            record.name = name
            record.weights = {stage: w.detach() for stage, w in record.weights.items()}
            records.append(record)

        return hook

    try:
        for name in chosen:
            handles.append(available[name].register_forward_hook(hook_for(name)))
        yield records
    finally:
        for handle in handles:
            handle.remove()


__all__ = ["AttentionRecord", "EXTRACTORS", "attention_modules", "capture_attention", "softmax_weights"]
