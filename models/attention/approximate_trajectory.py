"""Approximate trajectory attention (Motionformer Sec. 3.2-3.3, Tables 3a-3d and 7): stage one (Eq. 4) through
Orthoformer, Nystromformer or Performer; stage two (Eq. 5-6) exact, inherited from ``TrajectoryAttention``.

Stage one needs, for every query q_st and every frame t', attention normalised over the S keys of frame t'
(Norm_S). Each approximation is applied per frame t' to the same problem ``softmax(q K_t'^T / sqrt(d)) V_t'`` for
all T*S queries; the frame axis t' is a broadcast batch axis, so the queries are never copied T times.

Orthoformer (Algorithm 1), with R prototypes per (batch, head)::

    y~_stt' = softmax_R(q_st P^T / sqrt(d)) . softmax_s'(P K_t'^T / sqrt(d)) V_t'

- ``shared_prototypes=True`` ("temporally-shared prototypes", Sec. 3.2, Table 3d): one set P selected from all
  frames' queries and keys; memory O(T*S*R + R*T*S + R*T*d) per (batch, head).
- ``shared_prototypes=False``: a set P_t per query frame t, selected from frame t's queries and keys and used
  against every key frame t', as the official ``orthoformer(..., shared_landmarks=False)``; its
  softmax(P_t K_t'^T) has T*R*T*S entries, T times the shared one's (Table 3d reports 16.5 vs 3.6 GB).
- ``prototype_source="queries"`` selects prototypes from the queries only: that is the official code's
  behaviour (``orthogonal_landmarks(q, k, ...)`` ignores k); the default follows the paper's text.
- ``selection="official"`` runs Orthoformer as the official code does, in one option: prototypes from the queries
  only, every query a candidate (the official ``subsample_fraction=1.0``; no random subsample of ``oversample``*R),
  and no gradient through the selected prototypes (the official code selects them under ``torch.no_grad``). The
  paper's text (Sec. 3.2) instead subsamples c*R queries and keys; that stays the default ("orthogonal").

Nystrom (Algorithm 2) approximates the same per-frame problem with ``num_prototypes`` segment-means landmarks:
``shared_prototypes=True`` as the official ``nystrom_spatial_attn(use_spatial_landmarks=True)``, landmarks of all
queries and all keys taken in (space, time) order (each averages a few positions over all frames), one R x R
pseudo-inverse per (batch, head); False: landmarks of all queries and of frame t''s keys (R <= S), one
pseudo-inverse per frame, whose iterations keep T*R*R-sized tensors for backward. Performer (FAVOR+) uses
``num_prototypes`` random features, one projection for all frames and heads.

No (T*S) x (T*S) or (T*S) x S-per-frame score matrix exists on the approximate path; what remains quadratic is
the trajectory tensor itself, (T, T*S, d) per (batch, head), which stage two consumes (linear in S, quadratic in
T). The approximate stage one has no attention dropout (the official approximations have none), so with the
default ``attn_drop_placement="stage_one"`` ``attn_drop`` drops nothing here; with "all" it acts on the CLS
attention and on stage two. Prototype selection and random features are drawn
afresh at every forward: from ``self.generator`` if set, else in training from the global RNG and in eval mode
from a generator seeded with ``eval_seed`` (reproducible evaluation).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from einops import rearrange
from torch import Tensor

from .approximate import (
    SELECTIONS,
    PrototypeSource,
    Selection,
    nystrom_attention,
    orthoformer_attention,
    performer_attention,
    resolve_official_options,
    segment_means,
    select_prototypes,
)
from .trajectory import TrajectoryAttention

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
                (``fused_attn`` affects the CLS attention and stage two only).
            approximation: "orthoformer" (Algorithm 1), "nystrom" (Algorithm 2), "performer" (FAVOR+), or "exact"
                (the parent's stage one, for comparisons).
            num_prototypes: the budget R: Orthoformer prototypes, Nystrom landmarks per frame, or Performer random
                features (Motionformer uses 128; 196 for Mformer-H in Table 7).
            selection: Orthoformer's prototype rule, "orthogonal" (greedy most-orthogonal of a random subsample,
                the paper), "random" or "segment_means" (Table 3b), or "official" (the official code: greedy
                most-orthogonal of every query, selected without gradient; see the module doc).
            shared_prototypes: Orthoformer: one prototype set for all frames (True) or one per query frame (False)
                (Table 3d). Nystrom: landmarks shared by all frames (True, the official code) or per key frame.
            oversample: c, the "orthogonal" selection's random subsample of c*R candidates.
            prototype_source: "queries_keys" (the paper) or "queries" (the official code); None: "queries" with
                ``selection="official"``, else "queries_keys".
            detach_prototypes: no gradient through the selected prototype vectors (the official code selects them
                under ``torch.no_grad``); None: True with ``selection="official"``, else False (gradients flow
                through the chosen q/k rows).
            eval_seed: in eval mode, prototype selection and random features draw from a generator seeded with
                this at every forward, so the same batch always gets the same approximation (validation is
                reproducible and ``fused_attn`` flips compare equal); None: the global RNG, as in training. The
                selection draws one row per clip and head, so a clip's draw depends on its place in the batch and
                on the batch size (a validation figure, on how the loader batches), and every layer draws the same
                numbers.
            **kwargs: further options of ``TrajectoryAttention`` (stage one must be Norm_S: ``normalize`` can only
                be "space").
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


__all__ = ["ApproximateTrajectoryAttention"]
