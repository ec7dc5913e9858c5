"""Approximate trajectory attention (Motionformer Sec. 3.2-3.3, Tables 3a-3d and 7): stage one (Eq. 4) through
Orthoformer, Nystromformer or Performer; stage two (Eq. 5-6) exact, inherited from ``TrajectoryAttention``.

Each approximation is applied per key frame t' to ``softmax(q K_t'^T / sqrt(d)) V_t'`` for all T*S queries (Norm_S),
the frame axis a broadcast batch axis. No (T*S) x (T*S) or per-frame (T*S) x S score matrix exists; with
``memory_lean`` (the default) the trajectory tokens, a low-rank product per key frame, are never whole either
(``_trajectory_source``). Prototypes and random features are drawn afresh at every forward: from
``self.generator`` if set, else from the global RNG in training and from ``eval_seed`` in eval mode. Options:
models/README.md#the-video-vit-and-its-attentions; the official code's: experiments/mformer/README.md.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from einops import rearrange
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .approximate import (
    SELECTIONS,
    PrototypeSource,
    Selection,
    _matmul,
    favor_features,
    iterative_pinv,
    nystrom_attention,
    orthoformer_attention,
    orthogonal_random_features,
    performer_attention,
    resolve_official_options,
    segment_means,
    select_prototypes,
)
from .joint import sdpa
from .trajectory import TrajectoryAttention
from .trajectory_pool import Source

Approximation = Literal["orthoformer", "nystrom", "performer", "exact"]


class ApproximateTrajectoryAttention(TrajectoryAttention):
    """Trajectory attention whose stage one (Eq. 4) is approximated; stage two (Eq. 5-6) stays exact."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
        temporal_pool: Literal["attention", "average"] = "attention",
        approximation: Approximation = "orthoformer",
        num_prototypes: int = 128,
        selection: Selection = "orthogonal",
        shared_prototypes: bool = True,
        oversample: int = 4,
        prototype_source: PrototypeSource | None = None,
        detach_prototypes: bool | None = None,
        eval_seed: int | None = 0,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn, temporal_pool: as ``TrajectoryAttention``
                (``fused_attn`` also picks SDPA for the key side of the approximation; the same function either way).
            approximation: "orthoformer" (Algorithm 1), "nystrom" (Algorithm 2), "performer" (FAVOR+), or "exact".
            num_prototypes: the budget R: Orthoformer prototypes, Nystrom landmarks or Performer random features.
            selection: Orthoformer's prototype rule: "orthogonal" (greedy most-orthogonal of a random subsample, the
                paper), "random", "segment_means" (Table 3b) or "official" (greedy over every query, no gradient).
            shared_prototypes: one prototype (landmark) set for all frames (True) or one per query (key) frame (False).
            oversample: c, the "orthogonal" selection's random subsample of c*R candidates.
            prototype_source: "queries_keys" (the paper) or "queries" (the official code); None: "queries" with
                ``selection="official"``, else "queries_keys".
            detach_prototypes: no gradient through the selected prototypes; None: True with ``selection="official"``.
            eval_seed: in eval mode, draws come from a generator seeded with this at every forward (the same batch gets
                the same approximation; a clip's draw depends on its place in the batch); None: the global RNG.
            **kwargs: further options of ``TrajectoryAttention`` (``normalize`` can only be "space";
                ``stage_two_kernel="triton"`` or ``"fused_stages"`` only with ``approximation="exact"``: "auto" keeps
                the approximations on the PyTorch path, which never makes their trajectory tokens whole).
        """
        if kwargs.get("normalize", "space") != "space":
            raise ValueError("approximate trajectory attention approximates Norm_S (per-frame softmax) only; "
                             f"got normalize={kwargs['normalize']!r}")
        if approximation not in ("orthoformer", "nystrom", "performer", "exact"):
            raise ValueError(f"approximation must be 'orthoformer', 'nystrom', 'performer' or 'exact', "
                             f"got {approximation!r}")
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        prototype_source, detach_prototypes = resolve_official_options(selection, prototype_source,
                                                                       detach_prototypes)
        if num_prototypes < 1 or oversample < 1:
            raise ValueError(f"num_prototypes ({num_prototypes}) and oversample ({oversample}) must be >= 1")
        super().__init__(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop,
                         fused_attn=fused_attn, temporal_pool=temporal_pool, **kwargs)
        self.approximation = approximation
        if approximation != "exact" and self.stage_two_kernel == "triton":
            raise ValueError("stage_two_kernel='triton' needs the whole trajectory tensor; the approximate stage one "
                             "is rebuilt a query frame at a time, for its memory (use 'auto' or 'pytorch')")
        if approximation != "exact" and self.stage_two_kernel == "fused_stages":
            raise ValueError(f"stage_two_kernel='fused_stages' computes exact stage one; approximation="
                             f"{approximation!r} is not (use 'auto' or 'pytorch')")
        self.num_prototypes = num_prototypes
        self.selection = selection
        self.shared_prototypes = shared_prototypes
        self.oversample = oversample
        self.prototype_source = prototype_source
        self.detach_prototypes = detach_prototypes
        self.eval_seed = eval_seed
        self.generator: torch.Generator | None = None  # if set, used in every mode (tests, reproducible runs)

    def _trajectories(self, q: Tensor, k: Tensor, v: Tensor, num_frames: int, dropout_p: float) -> Tensor:
        """Approximate stage one: trajectory tokens (b, nh, tp, T*S, d) from patch q, k, v (b, nh, T*S, d)."""
        if self.approximation == "exact":
            return super()._trajectories(q, k, v, num_frames, dropout_p)
        k, v = (rearrange(z, "b nh (tp n) d -> b nh tp n d", tp=num_frames) for z in (k, v))
        generator = self.generator
        if generator is None and not self.training and self.eval_seed is not None:
            generator = torch.Generator().manual_seed(self.eval_seed)  # CPU: draws are moved to q's device
        if self.approximation == "orthoformer":
            return self._orthoformer(q, k, v, num_frames, generator)
        q = q.unsqueeze(2)  # (b nh 1 N d): broadcast over the key frames t'
        if self.approximation == "nystrom":
            return self._nystrom(q, k, v)
        return performer_attention(q, k, v, self.num_prototypes, generator=generator)

    def _orthoformer(self, q: Tensor, k: Tensor, v: Tensor, num_frames: int,
                     generator: torch.Generator | None) -> Tensor:
        """Algorithm 1 per key frame t'; q (b nh N d), k and v (b nh tp n d)."""
        if self.shared_prototypes:
            pool = q if self.prototype_source == "queries" else torch.cat([q, k.flatten(2, 3)], dim=2)
            prototypes = self._select(pool, generator).unsqueeze(2)  # (b nh 1 R d), shared by all frames
            return orthoformer_attention(q.unsqueeze(2), k, v, self.num_prototypes, prototypes=prototypes,
                                         detach_prototypes=self.detach_prototypes)  # (b nh tp N d)
        q = rearrange(q, "b nh (t n) d -> b nh t n d", t=num_frames)
        pool = q if self.prototype_source == "queries" else torch.cat([q, k], dim=3)
        prototypes = self._select(pool, generator).unsqueeze(3)  # (b nh t 1 R d): one set per query frame t
        out = orthoformer_attention(q.unsqueeze(3), k.unsqueeze(2), v.unsqueeze(2), self.num_prototypes,
                                    prototypes=prototypes, detach_prototypes=self.detach_prototypes)
        return rearrange(out, "b nh t tp n d -> b nh tp (t n) d")

    def _nystrom(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Algorithm 2 per key frame t'; q (b nh 1 N d), k and v (b nh tp n d)."""
        if not self.shared_prototypes:  # landmarks of all queries and of frame t''s keys
            return nystrom_attention(q, k, v, self.num_prototypes)  # (b nh tp N d)
        # Shared (the official ``nystrom_spatial_attn(use_spatial_landmarks=True)``): segments run over tokens in
        # (space, time) order, so each landmark averages a few spatial positions over all frames; one R x R
        # pseudo-inverse per (batch, head) serves every frame.
        landmarks = [segment_means(rearrange(z, "b nh tp n d -> b nh (n tp) d"), self.num_prototypes).unsqueeze(2)
                     for z in (rearrange(q, "b nh 1 (tp n) d -> b nh tp n d", tp=k.shape[2]), k)]
        return nystrom_attention(q, k, v, self.num_prototypes, landmarks=(landmarks[0], landmarks[1]))

    # ---- factored stage one (``memory_lean``): what ``pool_trajectories`` rebuilds each query frame from ----------

    def _trajectory_source(self, q: Tensor, k: Tensor, v: Tensor, num_frames: int,
                           dropout_p: float) -> tuple[Source | None, tuple[Tensor, ...]]:
        """Stage one as factors: only the key side (b, nh, T, R, d) and the prototypes, landmarks or random
        features; the query side and the product are rebuilt one query frame at a time (``_low_rank_frame``,
        ``_performer_frame``)."""
        if self.approximation == "exact":
            return super()._trajectory_source(q, k, v, num_frames, dropout_p)
        k, v = (rearrange(z, "b nh (tp n) d -> b nh tp n d", tp=num_frames) for z in (k, v))
        generator = self.generator
        if generator is None and not self.training and self.eval_seed is not None:
            generator = torch.Generator().manual_seed(self.eval_seed)
        if self.approximation == "orthoformer":
            return self._orthoformer_factors(q, k, v, num_frames, generator)
        if self.approximation == "nystrom":
            return self._nystrom_factors(q, k, v)
        projection = orthogonal_random_features(self.num_prototypes, q.shape[-1], generator, q.dtype).to(q.device)
        # The key features (b nh tp n m) are 2x the keys at m = 4d (Performer-256); recomputed in backward
        # (n*m*d per frame) rather than kept, with their exponent, for the two products below.
        kv, k_sum = checkpoint(_performer_key_side, k, v, projection, use_reentrant=False)
        return _performer_frame, (q, kv, k_sum, projection)

    def _orthoformer_factors(self, q: Tensor, k: Tensor, v: Tensor, num_frames: int,
                             generator: torch.Generator | None) -> tuple[Source, tuple[Tensor, ...]]:
        """Algorithm 1's factors: prototypes P and softmax_s'(P K_t'^T / sqrt(d)) V_t' for every key frame t'."""
        if self.shared_prototypes:
            pool = q if self.prototype_source == "queries" else torch.cat([q, k.flatten(2, 3)], dim=2)
            prototypes = self._select(pool, generator)  # (b nh R d)
            prototypes = prototypes.detach() if self.detach_prototypes else prototypes
            values = self._attend_key_frames(prototypes, k, v)  # (b nh tp R d)
            return _low_rank_frame, (q, prototypes.unsqueeze(2), values)
        qf = rearrange(q, "b nh (t n) d -> b nh t n d", t=num_frames)
        pool = qf if self.prototype_source == "queries" else torch.cat([qf, k], dim=3)
        prototypes = self._select(pool, generator)  # (b nh t R d): one set per query frame t
        prototypes = prototypes.detach() if self.detach_prototypes else prototypes
        # Every query frame's prototypes against every key frame: R*T rows of one attention per key frame.
        values = self._attend_key_frames(prototypes.flatten(2, 3), k, v)  # (b nh tp (t R) d)
        # One input per query frame (views): their gradients meet in one split's backward, not in T full-size slices.
        return _per_query_frame, (q, prototypes, *values.split(self.num_prototypes, dim=3))

    def _nystrom_factors(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[Source, tuple[Tensor, ...]]:
        """Algorithm 2's factors: the key landmarks and pinv(softmax(P_q P_k^T)) softmax(P_q K_t'^T) V_t'."""
        r, scale = self.num_prototypes, q.shape[-1] ** -0.5
        if self.shared_prototypes:  # as ``_nystrom``: segments over tokens in (space, time) order, all frames
            land_q, land_k = (segment_means(rearrange(z, "b nh tp n d -> b nh (n tp) d"), r) for z in
                              (rearrange(q, "b nh (tp n) d -> b nh tp n d", tp=k.shape[2]), k))
            land_k = land_k.unsqueeze(2)  # (b nh 1 R d)
        else:  # landmarks of all queries, and of each key frame's keys
            land_q, land_k = segment_means(q, r), segment_means(k, r)  # (b nh R d), (b nh tp R d)

        def key_side(land_q: Tensor, land_k: Tensor, k: Tensor, v: Tensor) -> Tensor:
            pinv = iterative_pinv(((land_q * scale).unsqueeze(2) @ land_k.transpose(-2, -1)).softmax(dim=-1))
            return _matmul(pinv, self._attend_key_frames(land_q, k, v))  # (b nh tp R d)

        # The pseudo-inverse's six iterations keep some 25 R x R matrices per (clip, head), 0.5 of a trajectory
        # tensor at ViT-B with R = 128: recomputed in backward (R^3 per iteration) rather than kept.
        values = checkpoint(key_side, land_q, land_k, k, v, use_reentrant=False)
        return _low_rank_frame, (q, land_k, values)

    def _attend_key_frames(self, queries: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """softmax_s'(queries K_t'^T / sqrt(d)) V_t' for every key frame t': (b nh L d) -> (b nh tp L d). Fused:
        SDPA with the frame axis as its head axis (keeps its output and log-sum-exp, no L x S weights)."""
        b, nh, num_frames = k.shape[:3]
        queries = queries.unsqueeze(2).expand(-1, -1, num_frames, -1, -1)  # a view
        if not self.fused_attn:
            weights = ((queries * queries.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
            return weights @ v
        out = sdpa(*(z.flatten(0, 1) for z in (queries, k, v)))
        return out.unflatten(0, (b, nh))

    def _select(self, pool: Tensor, generator: torch.Generator | None) -> Tensor:
        if self.num_prototypes > pool.shape[-2]:
            raise ValueError(f"num_prototypes={self.num_prototypes} exceeds the {pool.shape[-2]} candidate tokens "
                             f"(prototype_source={self.prototype_source!r}, shared={self.shared_prototypes}); "
                             "lower num_prototypes for this input size")
        return select_prototypes(pool, self.num_prototypes, self.selection, self.oversample, generator)

    def extra_repr(self) -> str:
        return (f"approximation={self.approximation}, num_prototypes={self.num_prototypes}, "
                f"selection={self.selection}, shared_prototypes={self.shared_prototypes}, "
                f"prototype_source={self.prototype_source}")


def _low_rank_frame(t: int, q: Tensor, keys: Tensor, values: Tensor) -> Tensor:
    """Trajectory tokens of query frame t, softmax_R(q P^T / sqrt(d)) (softmax(P K_t'^T / sqrt(d)) V_t') for
    every key frame t': q (b nh T*S d), keys P (b nh 1|tp R d), values (b nh tp R d) -> (b nh tp S d)."""
    frame_len = q.shape[2] // values.shape[2]
    q = q[:, :, t * frame_len:(t + 1) * frame_len].unsqueeze(2)
    weights = ((q * q.shape[-1] ** -0.5) @ keys.transpose(-2, -1)).softmax(dim=-1)  # (b nh 1|tp S R)
    return _matmul(weights, values)


def _per_query_frame(t: int, q: Tensor, prototypes: Tensor, *values: Tensor) -> Tensor:
    """``_low_rank_frame`` with query frame t's own prototypes: prototypes (b nh t R d), values[t] (b nh tp R d)."""
    return _low_rank_frame(t, q, prototypes[:, :, t:t + 1], values[t])


def _performer_key_side(k: Tensor, v: Tensor, projection: Tensor) -> tuple[Tensor, Tensor]:
    """phi(K_t')^T V_t' (b nh tp m d) and phi(K_t')^T 1 (b nh tp m) for every key frame t'."""
    k_feat = favor_features(k, projection, is_query=False)  # (b nh tp n m)
    return k_feat.transpose(-2, -1) @ v, k_feat.sum(dim=-2)


def _performer_frame(t: int, q: Tensor, kv: Tensor, k_sum: Tensor, projection: Tensor) -> Tensor:
    """FAVOR+ for query frame t: phi(q) (phi(K_t')^T V_t') / phi(q) (phi(K_t')^T 1); kv (b nh tp m d), k_sum
    (b nh tp m)."""
    frame_len = q.shape[2] // kv.shape[2]
    q_feat = favor_features(q[:, :, t * frame_len:(t + 1) * frame_len].unsqueeze(2), projection, is_query=True)
    return _matmul(q_feat, kv) / _matmul(q_feat, k_sum.unsqueeze(-1))


__all__ = ["ApproximateTrajectoryAttention"]
