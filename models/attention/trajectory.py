"""Trajectory attention (Motionformer, Patrick et al. 2021, Eq. 4-6).

Stage one (Eq. 4) builds, for every patch query and every frame t', a trajectory token: attention over the S
locations of frame t' (``normalize="space"``, Norm_S) or one softmax over all frames (``"spacetime"``, Norm_ST,
always on the explicit path). Stage two (Eq. 5-6) pools each trajectory over t' with 1-D attention queried by the
reference-frame token (``temporal_pool="attention"``, Att_T) or averages it (``"average"``, Avg_T). The CLS query
attends jointly to all tokens, as in the official code. By default stage two is rearranged (``proj_kv``'s weights
contracted with the query: the same function, a fifth of the FLOPs) and keeps one trajectory tensor per block.
On CUDA tensors it runs as one fused Triton operation (``trajectory_triton.py``), elsewhere through PyTorch
(``trajectory_pool.py``, one query frame a pass: the least memory); ``stage_two_kernel`` chooses, and its
"fused_stages" computes both stages in Triton kernels (``trajectory_fused_stages.py``), the trajectory tokens never
in memory.
Design and the official code's options: docs/mformer_paper_scale.md#where-the-code-differs-from-the-paper;
memory: docs/mformer_memory.md#what-changed; speed: docs/mformer_memory.md#the-fused-stage-two.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .joint import attend, sdpa
from .trajectory_pool import Source, pool_trajectories

STAGE_TWO_KERNELS = ("auto", "triton", "pytorch", "fused_stages")


def _rearranged_logits(q: Tensor, w_k: Tensor, traj: Tensor) -> Tensor:
    """Stage-two logits q~_h . W_k^h y_t' as (W_k^h^T q~_h) . y_t': (b, N, nh, d) scaled queries, (nh, d, C) key
    weights, (b, N, T, C) trajectory tokens -> (b, N, nh, T). The key bias is left out: it adds q~_h . b_k^h to
    all T logits of a (query, head), which the softmax over t' cancels."""
    u = einsum(q, w_k, "b n nh d, nh d c -> b n nh c")
    return einsum(u, traj, "b n nh c, b n tp c -> b n nh tp")


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
        stage_two: Literal["rearranged", "literal"] = "rearranged",
        stage_two_values: Literal["projected", "trajectory"] = "projected",
        attn_drop_placement: Literal["stage_one", "all"] = "stage_one",
        memory_lean: bool = True,
        frames_per_pass: int = 1,
        stage_two_kernel: Literal["auto", "triton", "pytorch", "fused_stages"] = "auto",
    ) -> None:
        """
        Args:
            dim: token width C; must be divisible by ``num_heads``.
            num_heads: attention heads.
            qkv_bias: bias on the q/k/v projection and on the stage-two ``proj_q``/``proj_kv``.
            attn_drop: dropout on the attention weights, where ``attn_drop_placement`` says.
            proj_drop: dropout after the output projection.
            fused_attn: use SDPA (True) or the explicit softmax path (False). Ignored for Norm_ST.
            temporal_pool: "attention" (Att_T, Eq. 5-6) or "average" (Avg_T: mean over the trajectory).
            normalize: "space" (Norm_S, softmax per frame) or "spacetime" (Norm_ST, one softmax over all frames).
            stage_two: "rearranged" (default: contracts ``proj_kv``'s weights with the query) or "literal" (projects
                every trajectory token to keys and values, as Eq. 5-6 are printed); the same function.
            stage_two_values: what Eq. 6 aggregates: "projected" (the paper's ``W_v y~``) or "trajectory" (the official
                code's ``y~`` itself; ``proj_kv``'s value half is then unused).
            attn_drop_placement: "stage_one" (default, the official code: only exact stage one's weights) or "all"
                (also the CLS attention's and stage two's).
            memory_lean: rearranged Att_T through ``pool_trajectories``, which keeps the trajectory tokens at most once;
                False = the autograd form, also used whenever stage two drops attention weights.
            frames_per_pass: query frames the PyTorch memory-lean stage two pools per pass (1: the least transient
                memory; a larger number launches fewer kernels, at that many frames' transient tensors; at most T).
            stage_two_kernel: the memory-lean stage two: "auto" (default: the fused Triton kernel on CUDA tensors,
                PyTorch elsewhere), "triton" (CPU tensors only through Triton's interpreter; refuses by name what it
                does not implement) or "pytorch" (the least memory, e.g. for a memory budget). The same function;
                approximate stage ones always take PyTorch (the kernel needs the whole trajectory tensor).
                "fused_stages": both stages in Triton kernels (``trajectory_fused_stages.py``), the trajectory tokens
                never in memory; Norm_S with Att_T (either values) or Avg_T, no attention dropout, exact stage one;
                refuses the rest by name. Chosen only by name: "auto" never takes it.
        """
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} not divisible by num_heads {num_heads}"
        if temporal_pool not in ("attention", "average"):
            raise ValueError(f"temporal_pool must be 'attention' or 'average', got {temporal_pool!r}")
        if normalize not in ("space", "spacetime"):
            raise ValueError(f"normalize must be 'space' or 'spacetime', got {normalize!r}")
        if stage_two not in ("rearranged", "literal"):
            raise ValueError(f"stage_two must be 'rearranged' or 'literal', got {stage_two!r}")
        if stage_two_values not in ("projected", "trajectory"):
            raise ValueError(f"stage_two_values must be 'projected' or 'trajectory', got {stage_two_values!r}")
        if attn_drop_placement not in ("stage_one", "all"):
            raise ValueError(f"attn_drop_placement must be 'stage_one' or 'all', got {attn_drop_placement!r}")
        self.num_heads = num_heads
        self.fused_attn = fused_attn
        self.temporal_pool = temporal_pool
        self.normalize = normalize
        self.stage_two = stage_two
        self.stage_two_values = stage_two_values
        self.attn_drop_placement = attn_drop_placement
        self.memory_lean = memory_lean
        if frames_per_pass < 1:
            raise ValueError(f"frames_per_pass must be at least 1, got {frames_per_pass}")
        self.frames_per_pass = frames_per_pass
        self.stage_two_kernel = self._checked_stage_two_kernel(stage_two_kernel, attn_drop)
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
        other_p = dropout_p if self.attn_drop_placement == "all" else 0.0  # CLS and stage two
        q, k, v = rearrange(self.qkv(x), "b n (three nh d) -> three b nh n d", three=3, nh=self.num_heads)
        cls_out = attend(q[:, :, :1], k, v, self.fused_attn, other_p)  # (b nh 1 d): CLS attends to everything

        q, k, v = q[:, :, 1:], k[:, :, 1:], v[:, :, 1:]  # trajectories run over the patch tokens only
        if self.stage_two_kernel == "fused_stages":
            return self._fused_stages(q, k, v, num_frames, cls_out, dropout_p)
        if self.stage_two_kernel == "triton":
            refused = self._not_fused_because(other_p)
            if refused:  # an option changed after construction
                raise ValueError(f"stage_two_kernel='triton' fuses the rearranged Att_T stage two; {refused}")
        if (self.memory_lean and self.temporal_pool == "attention" and self.stage_two == "rearranged"
                and other_p == 0.0):
            source, inputs = self._trajectory_source(q, k, v, num_frames, dropout_p)
            fused = self.stage_two_kernel == "triton" or (self.stage_two_kernel == "auto" and x.is_cuda)
            if fused and source is None:
                from .trajectory_triton import fused_pool_trajectories  # triton is imported only where it runs

                out = fused_pool_trajectories(inputs[0], self.proj_q, self.proj_kv, self.num_heads,
                                              self.stage_two_values)
            elif self.stage_two_kernel == "triton":
                raise ValueError("stage_two_kernel='triton' needs the whole trajectory tensor; an approximate stage "
                                 "one is rebuilt a query frame at a time (use stage_two_kernel='pytorch')")
            else:
                out = pool_trajectories(source, inputs, num_frames, q.shape[2] // num_frames, self.proj_q,
                                        self.proj_kv, self.num_heads, self.stage_two_values,
                                        min(self.frames_per_pass, num_frames))  # (b (t n) (nh d))
            out = torch.cat([rearrange(cls_out, "b nh 1 d -> b 1 (nh d)"), out], dim=1)
            return self.proj_drop(self.proj(out))
        traj = self._trajectories(q, k, v, num_frames, dropout_p)  # (b nh tp (t n) d)
        if self.temporal_pool == "average":
            out = traj.mean(dim=2)
        else:
            out = self._temporal_attention(traj, num_frames, other_p)
        out = rearrange(torch.cat([cls_out, out], dim=2), "b nh n d -> b n (nh d)")
        return self.proj_drop(self.proj(out))

    def _checked_stage_two_kernel(self, stage_two_kernel: str, attn_drop: float) -> str:
        """``stage_two_kernel`` once it can compute this configuration (read from the options ``__init__`` has
        already set), else a ValueError naming what a kernel chosen by name cannot compute; ``attn_drop`` as
        ``__init__`` takes it."""
        if stage_two_kernel not in STAGE_TWO_KERNELS:
            raise ValueError(f"stage_two_kernel must be one of {STAGE_TWO_KERNELS}, got {stage_two_kernel!r}")
        if stage_two_kernel == "triton":
            refused = self._not_fused_because(attn_drop if self.attn_drop_placement == "all" else 0.0)
            if refused:
                raise ValueError(f"stage_two_kernel='triton' fuses the rearranged Att_T stage two; {refused}")
        if stage_two_kernel == "fused_stages":
            refused = self._stages_not_fused_because(attn_drop)
            if refused:
                raise ValueError(f"stage_two_kernel='fused_stages' fuses exact Norm_S stage one with stage two; "
                                 f"{refused}")
        return stage_two_kernel

    def _not_fused_because(self, stage_two_drop: float) -> str | None:
        """Why the fused stage two cannot compute this configuration (None: it can); ``stage_two_drop`` is the
        dropout probability on stage two's attention weights."""
        if self.temporal_pool != "attention":
            return "temporal_pool='average' has no stage-two attention"
        if self.stage_two != "rearranged":
            return "stage_two='literal' asks for every trajectory token projected (use stage_two_kernel='pytorch')"
        if not self.memory_lean:
            return "memory_lean=False asks for the autograd form (use stage_two_kernel='pytorch')"
        if self.frames_per_pass != 1:
            return f"frames_per_pass={self.frames_per_pass} is the PyTorch path's (the kernel pools all frames at once)"
        if stage_two_drop > 0.0:
            return ("it has no dropout, and attn_drop_placement='all' drops stage two's attention weights "
                    "(use stage_two_kernel='pytorch')")
        return None

    def _stages_not_fused_because(self, dropout_p: float) -> str | None:
        """Why the fused stages cannot compute this configuration (None: they can); ``dropout_p`` is the attention
        dropout probability."""
        if self.normalize != "space":
            return "normalize='spacetime' (Norm_ST) takes one softmax over every frame; the kernels compute Norm_S"
        if self.stage_two != "rearranged":
            return "stage_two='literal' asks for every trajectory token projected (use stage_two_kernel='pytorch')"
        if not self.memory_lean:
            return "memory_lean=False asks for the autograd form (use stage_two_kernel='pytorch')"
        if self.frames_per_pass != 1:
            return f"frames_per_pass={self.frames_per_pass} is the PyTorch path's (the kernels pool all frames at once)"
        if dropout_p > 0.0:
            return f"they have no dropout, and attn_drop={dropout_p} drops attention weights (use 'auto' or 'pytorch')"
        return None

    def _fused_stages(self, q: Tensor, k: Tensor, v: Tensor, num_frames: int, cls_out: Tensor,
                      dropout_p: float) -> Tensor:
        """Both stages through ``fused_trajectory_attention``: patch q, k, v (b, nh, T*S, d), the CLS output
        (b, nh, 1, d) -> the layer's output (b, 1 + T*S, C)."""
        refused = self._stages_not_fused_because(dropout_p)
        if refused:  # an option changed after construction
            raise ValueError(f"stage_two_kernel='fused_stages' fuses exact Norm_S stage one with stage two; {refused}")
        from .trajectory_fused_stages import fused_trajectory_attention  # triton is imported only where it runs

        attention = self.temporal_pool == "attention"
        out = fused_trajectory_attention(q, k, v, num_frames, self.temporal_pool, self.stage_two_values,
                                         self.proj_q if attention else None,
                                         self.proj_kv if attention else None)  # (b (t n) (nh d))
        out = torch.cat([rearrange(cls_out, "b nh 1 d -> b 1 (nh d)"), out], dim=1)
        return self.proj_drop(self.proj(out))

    def _trajectory_source(self, q: Tensor, k: Tensor, v: Tensor, num_frames: int,
                           dropout_p: float) -> tuple[Source | None, tuple[Tensor, ...]]:
        """Stage one for ``pool_trajectories``: (source, inputs). Exact attention has no cheaper factors than the
        trajectory tokens themselves, so its source is the whole tensor (None, (y~,))."""
        return None, (self._trajectories(q, k, v, num_frames, dropout_p),)

    def _trajectories(self, q: Tensor, k: Tensor, v: Tensor, num_frames: int, dropout_p: float) -> Tensor:
        """Stage one (Eq. 4): trajectory tokens y~ of shape (b, nh, tp, T*S, d); tp indexes the frame t'."""
        b, nh = q.shape[:2]
        if self.fused_attn and self.normalize == "space":
            # One SDPA problem per (batch, head, frame t'): all T*S queries against the S keys of frame t'.
            q = rearrange(q, "b nh n d -> (b nh) 1 n d").expand(-1, num_frames, -1, -1)  # a view, not T copies
            k, v = (rearrange(z, "b nh (tp n) d -> (b nh) tp n d", tp=num_frames) for z in (k, v))
            traj = sdpa(q, k, v, dropout_p=dropout_p)  # ((b nh) tp N d)
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
        nh = traj.shape[1]
        traj = rearrange(traj, "b nh tp (t n) d -> b nh t n tp d", t=num_frames)
        # y~_stt: the trajectory token at the query's own frame, i.e. the diagonal t' = t.
        ref = rearrange(torch.diagonal(traj, dim1=2, dim2=4), "b nh n d t -> b (t n) (nh d)")
        traj = rearrange(traj, "b nh t n tp d -> b (t n) tp (nh d)")  # every head's channels: proj_kv mixes them
        q = rearrange(self.proj_q(ref), "b n (nh d) -> b n nh d", nh=nh)
        if self.stage_two == "literal":
            out = self._stage_two_literal(q, traj, dropout_p)
        else:
            out = self._stage_two_rearranged(q, traj, dropout_p)
        return rearrange(out, "b n nh d -> b nh n d")

    def _stage_two_literal(self, q: Tensor, traj: Tensor, dropout_p: float) -> Tensor:
        """Eq. 5-6 as printed: (b, N, nh, d) queries, (b, N, T, C) trajectory tokens -> (b, N, nh, d)."""
        b, _, nh, _ = q.shape
        if self.stage_two_values == "projected":
            k, v = rearrange(self.proj_kv(traj), "b n tp (two nh d) -> two (b n) nh tp d", two=2, nh=nh)
        else:
            # Official values: the trajectory tokens themselves; only the key half of proj_kv is evaluated.
            c = traj.shape[-1]
            bias = None if self.proj_kv.bias is None else self.proj_kv.bias[:c]
            k = rearrange(F.linear(traj, self.proj_kv.weight[:c], bias), "b n tp (nh d) -> (b n) nh tp d", nh=nh)
            v = rearrange(traj, "b n tp (nh d) -> (b n) nh tp d", nh=nh)
        q = rearrange(q, "b n nh d -> (b n) nh 1 d")
        out = attend(q, k, v, self.fused_attn, dropout_p)  # ((b n) nh 1 d)
        return rearrange(out, "(b n) nh 1 d -> b n nh d", b=b)

    def _stage_two_rearranged(self, q: Tensor, traj: Tensor, dropout_p: float) -> Tensor:
        """Eq. 5-6 rearranged: same shapes as ``_stage_two_literal``, no projected keys or values (derivation:
        docs/mformer_paper_scale.md)."""
        nh, d = q.shape[2:]
        w_k, w_v = rearrange(self.proj_kv.weight, "(two nh d) c -> two nh d c", two=2, nh=nh)
        q = q * d ** -0.5
        if nh > traj.shape[2] and torch.is_grad_enabled():
            # u (b, N, nh, C) outweighs the trajectory tokens (b, N, T, C) when nh > T (1.5x at ViT-B): recompute
            # it in backward (C^2 per token) rather than keep it among the saved activations.
            logits = checkpoint(_rearranged_logits, q, w_k, traj, use_reentrant=False)
        else:
            logits = _rearranged_logits(q, w_k, traj)
        attn = F.dropout(logits.softmax(dim=-1), p=dropout_p)
        if self.stage_two_values == "trajectory":
            traj = rearrange(traj, "b n tp (nh d) -> b n tp nh d", nh=nh)
            return einsum(attn, traj, "b n nh tp, b n tp nh d -> b n nh d")
        pooled = einsum(attn, traj, "b n nh tp, b n tp c -> b n nh c")  # z_h = sum_t' a_ht' y_t'
        out = einsum(pooled, w_v, "b n nh c, nh d c -> b n nh d")
        if self.proj_kv.bias is None:
            return out
        b_v = rearrange(self.proj_kv.bias[nh * d:], "(nh d) -> nh d", nh=nh)
        # sum_t' a_ht' b_v^h = b_v^h while the weights sum to one; dropout breaks that, so weight it then.
        return out + (b_v if dropout_p == 0.0 else attn.sum(dim=-1, keepdim=True) * b_v)
