"""Attention approximations of Motionformer Sec. 3.2 on plain (..., N, d) tensors: Orthoformer (Algorithm 1),
Nystromformer (Algorithm 2, Xiong et al. 2021) and Performer's FAVOR+ (Choromanski et al. 2021).

All kernels approximate ``softmax(q k^T / sqrt(d)) v`` with q of shape (..., Nq, d) and k, v of shape (..., Nk, d);
leading axes are batch axes and broadcast (a (b, nh, 1, N, d) query against (b, nh, T, S, d) keys gives one
problem per frame without copying the queries). No approximation forms the Nq x Nk score matrix: memory is
O((Nq + Nk) * budget), budget = prototypes R, landmarks R or random features m.

``APPROXIMATIONS`` maps a name to a kernel with the common call ``fn(q, k, v, budget, **options)`` (``exact``
ignores the budget), so a sequence model can switch kernels by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .joint import attend

Selection = Literal["orthogonal", "random", "segment_means", "official"]
SELECTIONS = ("orthogonal", "random", "segment_means", "official")
PrototypeSource = Literal["queries_keys", "queries"]


def exact_attention(q: Tensor, k: Tensor, v: Tensor, budget: int | None = None, fused: bool = True) -> Tensor:
    """``softmax(q k^T / sqrt(d)) v``; ``budget`` is ignored (it exists for the common ``APPROXIMATIONS`` call).

    Args:
        q: queries (..., Nq, d). k, v: keys and values (..., Nk, d).
        budget: unused.
        fused: SDPA (True) or the explicit softmax path that materialises the Nq x Nk scores (False).
    """
    return attend(q, k, v, fused)


def _matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` that does not materialise ``a`` broadcast over a frame axis.

    A query-side operand (..., 1, N, R) times a per-frame operand (..., T, R, d) would make torch expand ``a`` to
    T copies (T*N*R entries, saved for backward); instead the frame axis is folded into b's columns.
    """
    if a.dim() == b.dim() >= 3 and a.shape[-3] == 1 and b.shape[-3] > 1:
        frames = b.shape[-3]
        cols = b.movedim(-3, -2).flatten(-2)  # (..., R, T*d)
        out = a.squeeze(-3) @ cols  # (..., N, T*d)
        return out.unflatten(-1, (frames, b.shape[-1])).movedim(-2, -3)  # (..., T, N, d)
    return a @ b


# ---- prototype / landmark selection ---------------------------------------------------------------------------


def _flatten_batch(x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
    """(..., N, d) -> (B, N, d) and the leading shape."""
    return x.reshape(-1, *x.shape[-2:]), tuple(x.shape[:-2])


def _random_keys(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform random numbers of ``shape`` on ``like``'s device, drawn from ``generator`` (on its own device)."""
    if generator is None:
        return torch.rand(shape, device=like.device)
    return torch.rand(shape, generator=generator, device=generator.device).to(like.device)


def orthogonal_prototype_indices(x: Tensor, num_prototypes: int, oversample: int = 4,
                                 generator: torch.Generator | None = None, valid: Tensor | None = None) -> Tensor:
    """Indices (B, R) of the greedy most-orthogonal subset of the rows of ``x`` (B, N, d) (Algorithm 1, line 1).

    Motionformer Sec. 3.2: "we first randomly subsample cR queries and keys, for a constant c, before selecting the
    most orthogonal subset" and "we incrementally build a set of prototypes from the set of queries and keys such
    that a new prototype is maximally orthogonal to the prototypes already selected, starting with a query or key
    at random". Maximally orthogonal is read as in the official code: the candidate whose largest absolute
    cosine similarity to the prototypes chosen so far is smallest. c = ``oversample``; when cR >= N all rows are
    candidates. Cost O(c R^2 d); ties go to the lower candidate index.

    ``valid`` (B, N) bool marks the rows that may be chosen (padding is not: a zero vector has cosine 0 with every
    prototype, so the greedy rule would take padding first); the subsample and the first prototype are drawn from
    them, and an invalid row is taken only once every valid candidate is.
    """
    batch, n, _ = x.shape
    num_candidates = min(oversample * num_prototypes, n)
    with torch.no_grad():
        if num_candidates < n or valid is not None:  # a uniform subset without replacement (valid rows first)
            keys = _random_keys((batch, n), x, generator)
            if valid is not None:
                keys = keys + (~valid).to(keys.dtype)
            candidates = keys.argsort(dim=-1)[:, :num_candidates]
        else:
            candidates = torch.arange(n, device=x.device).expand(batch, n)
        unit = F.normalize(x.gather(1, candidates.unsqueeze(-1).expand(-1, -1, x.shape[-1])), dim=-1)
        if valid is None:
            first = (_random_keys((batch, 1), x, generator) * num_candidates).long().clamp_(max=num_candidates - 1)
            penalty = torch.zeros(batch, num_candidates, dtype=unit.dtype, device=x.device)
        else:  # the candidates are in random order, valid ones first: the first is a valid row drawn at random
            first = torch.zeros(batch, 1, dtype=torch.long, device=x.device)
            penalty = (~valid.gather(1, candidates)).to(unit.dtype) * 2  # above any |cos| <= 1
        chosen = [first.squeeze(1)]
        rows = torch.arange(batch, device=x.device)
        max_cos = torch.zeros(batch, num_candidates, dtype=unit.dtype, device=x.device)
        taken = torch.zeros(batch, num_candidates, dtype=torch.bool, device=x.device)
        for _ in range(num_prototypes - 1):
            last = chosen[-1]
            taken[rows, last] = True
            cos = torch.einsum("bcd,bd->bc", unit, unit[rows, last]).abs()
            max_cos = torch.maximum(max_cos, cos)  # running max |cos| to the chosen set
            chosen.append((max_cos + penalty).masked_fill(taken, math.inf).argmin(dim=-1))
        picked = torch.stack(chosen, dim=1)  # (B, R) positions among the candidates
        return candidates.gather(1, picked)


def segment_bounds(n: int, num_segments: int) -> list[int]:
    """Boundaries of ``num_segments`` contiguous segments of ``n`` items whose sizes differ by at most one.

    When ``num_segments`` does not divide ``n``, the first ``num_segments * (n // num_segments + 1) - n`` segments
    have ``n // num_segments`` items and the rest one more (the rule of the official Motionformer Nystrom code).
    """
    if not 1 <= num_segments <= n:
        raise ValueError(f"cannot split {n} tokens into {num_segments} segments (need 1 <= segments <= tokens)")
    size = n // num_segments
    num_short = num_segments * (size + 1) - n
    sizes = [size] * num_short + [size + 1] * (num_segments - num_short)
    return [sum(sizes[:i]) for i in range(num_segments + 1)]


def segment_means(x: Tensor, num_segments: int) -> Tensor:
    """Nystromformer landmarks: means of ``num_segments`` contiguous segments of the token axis, (..., R, d)."""
    n = x.shape[-2]
    segment_bounds(n, num_segments)  # validates
    size = n // num_segments
    split = (num_segments * (size + 1) - n) * size  # tokens in the segments of ``size`` items; n if R divides n
    short = x[..., :split, :].unflatten(-2, (-1, size)).mean(dim=-2)
    if split == n:
        return short
    long = x[..., split:, :].unflatten(-2, (-1, size + 1)).mean(dim=-2)
    return torch.cat([short, long], dim=-2)


def select_prototypes(x: Tensor, num_prototypes: int, selection: Selection = "orthogonal", oversample: int = 4,
                      generator: torch.Generator | None = None, valid: Tensor | None = None) -> Tensor:
    """R prototype vectors (..., R, d) chosen from the rows of ``x`` (..., N, d), independently per leading index.

    Args:
        x: candidate vectors (queries, or queries and keys concatenated along the token axis).
        num_prototypes: R; at most N.
        selection: "orthogonal" (Algorithm 1's greedy most-orthogonal subset of a random subsample of
            ``oversample * R`` candidates), "random" (R distinct rows uniformly at random), "segment_means"
            (Nystromformer's landmarks: means of R contiguous segments, see ``segment_bounds``) or "official"
            (the official code's ``orthogonal_landmarks``: the same greedy rule with every row a candidate, no
            subsample, and the result detached, as the official code selects under ``torch.no_grad``).
        oversample: the constant c of the random subsample ("orthogonal" only).
        generator: random source (orthogonal, official and random selection); None uses the global RNG.
        valid: (..., N) bool, the rows that may be chosen before any other (padding may not); not with
            "segment_means".

    Except with "official", the selected rows are gathered with gradients: the indices are discrete, the values
    stay differentiable.
    """
    n = x.shape[-2]
    if not 1 <= num_prototypes <= n:
        raise ValueError(f"num_prototypes must be in [1, {n}] (the number of candidate tokens), got {num_prototypes}")
    if selection == "segment_means":
        if valid is not None:
            raise ValueError("segment-means prototypes average contiguous rows: they take no `valid` mask")
        return segment_means(x, num_prototypes)
    flat, lead = _flatten_batch(x)
    flat_valid = None if valid is None else valid.expand(x.shape[:-1]).reshape(flat.shape[:2])
    if selection == "orthogonal":
        if oversample < 1:
            raise ValueError(f"oversample must be >= 1, got {oversample}")
        idx = orthogonal_prototype_indices(flat, num_prototypes, oversample, generator, flat_valid)
    elif selection == "official":
        every_row = -(-n // num_prototypes)  # oversample * R >= N: all rows are candidates, none drawn
        idx = orthogonal_prototype_indices(flat, num_prototypes, every_row, generator, flat_valid)
        flat = flat.detach()
    elif selection == "random":
        keys = _random_keys((flat.shape[0], n), flat, generator)
        if flat_valid is not None:
            keys = keys + (~flat_valid).to(keys.dtype)  # valid rows first
        idx = keys.argsort(dim=-1)[:, :num_prototypes]
    else:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    # Advanced indexing, not gather: its backward keeps only the indices, not the whole candidate pool.
    picked = flat[torch.arange(flat.shape[0], device=flat.device).unsqueeze(1), idx]  # (B, R, d)
    return picked.reshape(*lead, num_prototypes, x.shape[-1])


def resolve_official_options(selection: str, source: PrototypeSource | None,
                             detach_prototypes: bool | None) -> tuple[PrototypeSource, bool]:
    """(source, detach) for a selection rule; None means the rule's own: "official" selects from the queries
    without gradient (and refuses "queries_keys" or ``detach_prototypes=False``), the others from the queries
    and keys with gradient."""
    if selection == "official":
        if source == "queries_keys" or detach_prototypes is False:
            raise ValueError("selection='official' is the official code's rule: prototypes from the queries only, "
                             f"without gradient; got source={source!r}, detach_prototypes={detach_prototypes!r}")
        return "queries", True
    source = "queries_keys" if source is None else source
    if source not in ("queries_keys", "queries"):
        raise ValueError(f"prototype source must be 'queries_keys' or 'queries', got {source!r}")
    return source, bool(detach_prototypes)


# ---- Orthoformer (Algorithm 1) --------------------------------------------------------------------------------


def orthoformer_attention(q: Tensor, k: Tensor, v: Tensor, num_prototypes: int, selection: Selection = "orthogonal",
                          oversample: int = 4, generator: torch.Generator | None = None,
                          source: PrototypeSource | None = None, prototypes: Tensor | None = None,
                          detach_prototypes: bool | None = None, mask: Tensor | None = None) -> Tensor:
    """Algorithm 1: ``softmax(Q P^T / sqrt(d)) (softmax(P K^T / sqrt(d)) V)`` (Eq. 10), both softmaxes over their
    last axis, with R prototypes P.

    Args:
        q: queries (..., Nq, d). k, v: keys and values (..., Nk, d).
        num_prototypes: R.
        selection, oversample, generator: how P is chosen (``select_prototypes``); "official" is the official
            code's rule (every query a candidate, no gradient through P).
        source: "queries_keys" (the paper: P is selected from the queries and the keys) or "queries" (the official
            code's ``orthogonal_landmarks``, which selects from the queries only); None: "queries" for the
            "official" selection, else "queries_keys".
        prototypes: use these prototypes (..., R, d), broadcastable to q's leading axes, instead of selecting.
        detach_prototypes: stop gradients through P (the official code selects under ``torch.no_grad``); None:
            True for the "official" selection, else False.
        mask: (..., N) bool, True for real tokens, of a padded self-attention (Nq = Nk = N): prototypes are chosen
            among real queries and keys, and padded keys are left out of the second softmax, as exact attention
            leaves them out of its one.
    """
    source, detach_prototypes = resolve_official_options(selection, source, detach_prototypes)
    if prototypes is None:
        pool = torch.cat([q, k], dim=-2) if source == "queries_keys" else q
        valid = None if mask is None else (torch.cat([mask, mask], dim=-1) if source == "queries_keys" else mask)
        prototypes = select_prototypes(pool, num_prototypes, selection, oversample, generator, valid)
    if detach_prototypes:
        prototypes = prototypes.detach()
    scale = q.shape[-1] ** -0.5
    omega1 = ((q * scale) @ prototypes.transpose(-2, -1)).softmax(dim=-1)  # (..., Nq, R)
    logits2 = (prototypes * scale) @ k.transpose(-2, -1)
    if mask is not None:
        logits2 = logits2.masked_fill(~mask.unsqueeze(-2), -math.inf)
    omega2 = logits2.softmax(dim=-1)  # (..., R, Nk)
    return _matmul(omega1, omega2 @ v)


# ---- Nystromformer (Algorithm 2) ------------------------------------------------------------------------------


def iterative_pinv(a: Tensor, num_iterations: int = 6) -> Tensor:
    """Moore-Penrose pseudo-inverse of square matrices (..., R, R) by the iteration of Nystromformer (Eq. 16,
    after Razavi et al. 2014): Z_0 = A^T / (||A||_1 ||A||_inf), Z_{j+1} = Z_j (13 I - A Z_j (15 I - A Z_j (7 I -
    A Z_j))) / 4. The norms are per matrix (the Nystromformer code takes one maximum over the whole batch)."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    norm_1 = a.abs().sum(dim=-2).amax(dim=-1, keepdim=True).unsqueeze(-1)  # max column sum
    norm_inf = a.abs().sum(dim=-1).amax(dim=-1, keepdim=True).unsqueeze(-1)  # max row sum
    z = a.transpose(-2, -1) / (norm_1 * norm_inf)
    for _ in range(num_iterations):
        az = a @ z
        z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))
    return z


def nystrom_attention(q: Tensor, k: Tensor, v: Tensor, num_landmarks: int, pinv_iterations: int = 6,
                      landmarks: tuple[Tensor, Tensor] | None = None,
                      pinv_side: Literal["values", "queries"] = "values", mask: Tensor | None = None) -> Tensor:
    """Algorithm 2: ``softmax(Q P_k^T) pinv(softmax(P_q P_k^T)) (softmax(P_q K^T) V)``, all scaled by 1/sqrt(d),
    with segment-means landmarks P_q (of the queries) and P_k (of the keys).

    Args:
        q: queries (..., Nq, d). k, v: keys and values (..., Nk, d).
        num_landmarks: R <= min(Nq, Nk). When R does not divide a length, segments differ in size by one
            (``segment_bounds``) instead of padding; with R = Nq = Nk every landmark is one token and the result is
            exact attention up to the accuracy of the pseudo-inverse.
        pinv_iterations: iterations of ``iterative_pinv`` (Nystromformer uses 6).
        landmarks: use these (P_q, P_k), each (..., R, d) and broadcastable, instead of segment means of q and k.
        pinv_side: where the pseudo-inverse Z is multiplied first; the same function, other costs. "values"
            (default): ``Omega_1 (Z (Omega_3 V))``, R^2 d per head for Z's product. "queries" (the Nystromformer
            code's ``(kernel_1 @ Z) @ (kernel_3 @ V)``): ``(Omega_1 Z) (Omega_3 V)``, Nq R^2 for it.
        mask: (..., N) bool, True for real tokens, of a padded self-attention: as the Nystromformer repository's
            LRA code (``attention_nystrom.py``), padded queries and keys become zero vectors (so landmarks are means
            over the padded segments) and padded keys are left out of Omega_3's softmax.
    """
    if pinv_side not in ("values", "queries"):
        raise ValueError(f"pinv_side must be 'values' or 'queries', got {pinv_side!r}")
    scale = q.shape[-1] ** -0.5
    if mask is not None:
        keep = mask.unsqueeze(-1).to(q.dtype)
        q, k = q * keep, k * keep
    if landmarks is None:
        landmarks = segment_means(q, num_landmarks), segment_means(k, num_landmarks)
    landmarks_q, landmarks_k = landmarks[0] * scale, landmarks[1]
    omega1 = ((q * scale) @ landmarks_k.transpose(-2, -1)).softmax(dim=-1)  # (..., Nq, R)
    omega2 = (landmarks_q @ landmarks_k.transpose(-2, -1)).softmax(dim=-1)  # (..., R, R)
    logits3 = landmarks_q @ k.transpose(-2, -1)
    if mask is not None:
        logits3 = logits3.masked_fill(~mask.unsqueeze(-2), -math.inf)
    omega3 = logits3.softmax(dim=-1)  # (..., R, Nk)
    pinv = iterative_pinv(omega2, pinv_iterations)
    if pinv_side == "queries":
        return _matmul(omega1 @ pinv, omega3 @ v)
    return _matmul(omega1, pinv @ (omega3 @ v))


# ---- Performer FAVOR+ -----------------------------------------------------------------------------------------


def orthogonal_random_features(num_features: int, dim: int, generator: torch.Generator | None = None,
                               dtype: torch.dtype = torch.float32) -> Tensor:
    """FAVOR+ projection (m, d) on the CPU: blocks of d exactly orthogonal Gaussian directions (QR of a Gaussian
    matrix), each row rescaled to the norm of an independent d-dimensional Gaussian vector (chi(d) lengths), so
    every row is marginally N(0, I_d) as the unbiased positive-feature estimator requires."""
    blocks = []
    for _ in range(-(-num_features // dim)):
        gaussian = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
        blocks.append(torch.linalg.qr(gaussian).Q.T)  # rows orthonormal
    directions = torch.cat(blocks)[:num_features]
    lengths = torch.randn(num_features, dim, generator=generator, dtype=torch.float64).norm(dim=-1, keepdim=True)
    return (directions * lengths).to(dtype)


def favor_features(x: Tensor, projection: Tensor, is_query: bool) -> Tensor:
    """Positive random features phi(x)_i = exp(w_i . x' - |x'|^2 / 2) / sqrt(m), x' = x / d^(1/4), up to a constant
    factor that cancels in the normalised attention: per query row (queries) or per key set (keys), the maximum
    exponent is subtracted for numerical range, as in the Performer code (without its additive epsilon)."""
    x = x * x.shape[-1] ** -0.25
    logits = x @ projection.transpose(-2, -1) - x.square().sum(dim=-1, keepdim=True) / 2  # (..., N, m)
    # A per-query constant cancels between numerator and denominator; a per-key-set constant likewise.
    shift = logits.amax(dim=-1, keepdim=True) if is_query else logits.amax(dim=(-2, -1), keepdim=True)
    return (logits - shift.detach()).exp() * projection.shape[0] ** -0.5


def performer_attention(q: Tensor, k: Tensor, v: Tensor, num_features: int,
                        generator: torch.Generator | None = None, projection: Tensor | None = None) -> Tensor:
    """FAVOR+ (Performer): ``phi(Q) (phi(K)^T V) / (phi(Q) (phi(K)^T 1))`` with positive orthogonal random
    features phi, an unbiased estimate of softmax attention's kernel exp(q . k / sqrt(d)).

    Args:
        q: queries (..., Nq, d). k, v: keys and values (..., Nk, d).
        num_features: m, the number of random features.
        generator: random source of the projection (one projection for every leading index); None: global RNG.
        projection: use this (m, d) projection instead of drawing one (``orthogonal_random_features``).
    """
    if projection is None:
        projection = orthogonal_random_features(num_features, q.shape[-1], generator, q.dtype)
    projection = projection.to(device=q.device, dtype=q.dtype)
    q_feat = favor_features(q, projection, is_query=True)  # (..., Nq, m)
    k_feat = favor_features(k, projection, is_query=False)  # (..., Nk, m)
    numerator = _matmul(q_feat, k_feat.transpose(-2, -1) @ v)  # (..., Nq, d)
    denominator = _matmul(q_feat, k_feat.sum(dim=-2).unsqueeze(-1))  # (..., Nq, 1)
    return numerator / denominator


ApproximateKernel = Callable[..., Tensor]

APPROXIMATIONS: dict[str, ApproximateKernel] = {
    "exact": exact_attention,
    "orthoformer": orthoformer_attention,
    "nystrom": nystrom_attention,
    "performer": performer_attention,
}


def get_approximation(name: str) -> ApproximateKernel:
    """The kernel ``fn(q, k, v, budget, **options)`` registered under ``name``."""
    try:
        return APPROXIMATIONS[name]
    except KeyError:
        raise ValueError(f"unknown attention approximation {name!r}; valid names: {sorted(APPROXIMATIONS)}") from None


__all__ = [
    "APPROXIMATIONS",
    "SELECTIONS",
    "exact_attention",
    "favor_features",
    "get_approximation",
    "iterative_pinv",
    "nystrom_attention",
    "orthoformer_attention",
    "orthogonal_prototype_indices",
    "orthogonal_random_features",
    "performer_attention",
    "resolve_official_options",
    "segment_bounds",
    "segment_means",
    "select_prototypes",
]
