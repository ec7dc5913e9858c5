"""Outputs AND gradients of the attention approximations against plain, slow references written from the equations
(float64, random inputs, relative error < 1e-10): the kernels of models/attention/approximate.py (Motionformer
Algorithm 1, Nystromformer Algorithm 2 with its Eq. 16 pseudo-inverse, FAVOR+), the full forward of
ApproximateTrajectoryAttention (Eq. 4-6, stage one approximated) for every approximation, and LRAAttention with a
padding mask (models/lra_transformer.py).

Prototype selection is random: the selected prototypes are recorded where the code selects them and identified by
value as rows of the pool they must come from (the queries and/or keys). The references rebuild them from those
rows, so gradients flow through the prototypes as in the paper (Algorithm 1 selects rows of Q and K; nothing says
to stop gradients) unless the selection is "official" (the official code selects under ``torch.no_grad``). Where
every row is a candidate the greedy most-orthogonal rule is checked literally too. Random features come from a
fixed projection or the same seeded generator on both sides.

Padding (LRA): exact attention masks padded keys out of its softmax; the approximations take no mask and, as the
module intends (its doc, and the Nystromformer repository's Performer: ``K * mask``, ``V * mask``), see the padded
keys and values as zero vectors, which still take part in their normalisations. The references do exactly that.
"""

import math

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.attention import ApproximateTrajectoryAttention
from models.attention import approximate as approximate_module
from models.attention import approximate_trajectory as trajectory_module
from models.attention.approximate import (
    iterative_pinv,
    nystrom_attention,
    orthoformer_attention,
    orthogonal_random_features,
    performer_attention,
)
from models.lra_transformer import LRAAttention
from tests.models.attention.test_approximate import MODULE_OPTIONS as TRAJECTORY_OPTIONS
from tests.models.attention.test_approximate import ref_greedy, ref_performer  # literal FAVOR+ and greedy selection

F64 = torch.float64
TOL = 1e-10


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int, scale: float = 1.0, grad: bool = True) -> torch.Tensor:
    return (torch.randn(*shape, dtype=F64, generator=_gen(seed)) * scale).requires_grad_(grad)


def _assert_matches(out, ref, inputs: dict[str, torch.Tensor], seed: int = 99):
    """Output and the gradient of <out, G> for a random cotangent G w.r.t. every named input, all within TOL."""
    assert out.shape == ref.shape
    assert _rel(out, ref) < TOL, f"output: rel err {_rel(out, ref):.2e}"
    cotangent = torch.randn(out.shape, dtype=F64, generator=_gen(seed))
    names, leaves = list(inputs), list(inputs.values())
    grads = torch.autograd.grad((out * cotangent).sum(), leaves, allow_unused=True)
    ref_grads = torch.autograd.grad((ref * cotangent).sum(), leaves, allow_unused=True)
    for name, g, r in zip(names, grads, ref_grads):
        assert r is not None and r.norm() > 0, f"the reference has no gradient for {name}"
        assert g is not None, f"no gradient reaches {name}"
        assert _rel(g, r) < TOL, f"gradient of {name}: rel err {_rel(g, r):.2e}"


class Recorder:
    """Wraps a function and keeps (detached copies of) what it returned; the call itself is untouched."""

    def __init__(self, fn):
        self.fn, self.outputs = fn, []

    def __call__(self, *args, **kwargs):
        out = self.fn(*args, **kwargs)
        self.outputs.append(out.detach().clone())
        return out


@pytest.fixture
def recorded_prototypes(monkeypatch):
    """Records every prototype set selected, by the kernels and by the trajectory module."""
    recorder = Recorder(approximate_module.select_prototypes)
    monkeypatch.setattr(approximate_module, "select_prototypes", recorder)
    monkeypatch.setattr(trajectory_module, "select_prototypes", recorder)
    return recorder.outputs


# ---- literal references: one query, one softmax at a time -------------------------------------------------------


def _softmax(logits: list[torch.Tensor]) -> list[torch.Tensor]:
    top = max(x.detach() for x in logits)  # a constant shift: the softmax and its gradient are unchanged
    weights = [torch.exp(x - top) for x in logits]
    total = sum(weights)
    return [w / total for w in weights]


def _attend(q_i, keys, values):
    """sum_j softmax_j(q_i . k_j / sqrt(d)) v_j for one query."""
    w = _softmax([torch.dot(q_i, k_j) / math.sqrt(q_i.shape[0]) for k_j in keys])
    return sum(w_j * v_j for w_j, v_j in zip(w, values))


def _softmax_matrix(a, b):
    """S(A B^T / sqrt(d)), row by row."""
    return torch.stack([torch.stack(_softmax([torch.dot(a_i, b_j) / math.sqrt(a.shape[1]) for b_j in b])) for a_i in a])


def _ref_exact(q, k, v):
    return torch.stack([_attend(q_i, k, v) for q_i in q])


def _ref_orthoformer(q, k, v, p):
    """Algorithm 1: Y = Omega_1 (Omega_2 V), Omega_1 = S(Q P^T / sqrt(d)), Omega_2 = S(P K^T / sqrt(d))."""
    pooled = torch.stack([_attend(p_l, k, v) for p_l in p])  # Omega_2 V: prototype l attends to the keys
    return torch.stack([_attend(q_i, p, pooled) for q_i in q])  # each query attends to the prototypes


def _ref_segment_means(x, r):
    """Means of r contiguous segments; when r does not divide n the first r * (n // r + 1) - n segments have n // r
    rows and the rest one more (the official Motionformer rule)."""
    n = x.shape[0]
    sizes = [n // r] * (r * (n // r + 1) - n)
    sizes += [n // r + 1] * (r - len(sizes))
    starts = [sum(sizes[:i]) for i in range(r)]
    return torch.stack([sum(x[j] for j in range(a, a + size)) / size for a, size in zip(starts, sizes)])


def ref_pinv(a, iterations):
    """Nystromformer Eq. 16: Z_0 = A^T / (||A||_1 ||A||_inf), Z <- Z (13 I - A Z (15 I - A Z (7 I - A Z))) / 4."""
    r = a.shape[0]
    eye = torch.eye(r, dtype=a.dtype)
    norm_1 = max(sum(a[i, j].abs() for i in range(r)) for j in range(r))  # largest column sum
    norm_inf = max(sum(a[i, j].abs() for j in range(r)) for i in range(r))  # largest row sum
    z = a.T / (norm_1 * norm_inf)
    for _ in range(iterations):
        az = a @ z
        z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))
    return z


def _ref_nystrom(q, k, v, r, iterations=6, landmarks=None):
    """Algorithm 2: Y = Omega_1 (pinv(Omega_2) (Omega_3 V)) with segment-means landmarks (or the given ones)."""
    pq, pk = landmarks if landmarks is not None else (_ref_segment_means(q, r), _ref_segment_means(k, r))
    omega1, omega2, omega3 = _softmax_matrix(q, pk), _softmax_matrix(pq, pk), _softmax_matrix(pq, k)
    return omega1 @ (ref_pinv(omega2, iterations) @ (omega3 @ v))


def match_rows(prototypes, pool):
    """Index of the pool row each recorded prototype equals: the selection must pick rows of its pool."""
    dist = (prototypes[:, None] - pool.detach()[None]).norm(dim=-1)  # (R, M)
    best = dist.argmin(dim=-1)
    worst = dist.gather(1, best[:, None]).max().item()
    assert worst <= 1e-12 * pool.detach().norm(dim=-1).max().item(), f"a prototype is no row of its pool ({worst:.1e})"
    return best.tolist()


def _ref_prototypes(recorded, pool, r, selection, oversample):
    """Prototypes (R, d) for the reference, differentiable rows of ``pool`` (2-D) unless the selection says not."""
    if selection == "segment_means":
        return _ref_segment_means(pool, r)
    idx = match_rows(recorded, pool)
    assert len(set(idx)) == r, "prototypes repeat"
    every_row = selection == "official" or (selection == "orthogonal" and oversample * r >= pool.shape[0])
    if every_row:  # no random subsample: only the first prototype is random, the rest follow the greedy rule
        assert idx == ref_greedy(pool, idx[0], r), "not the greedy most-orthogonal subset"
    return pool[idx].detach() if selection == "official" else pool[idx]


# ---- (a) kernels -------------------------------------------------------------------------------------------------

ORTHO_CASES = [  # (selection, source, oversample): 17 queries and keys, R = 4
    ("orthogonal", "queries_keys", 4),  # a random subsample of 16 candidates
    ("orthogonal", "queries_keys", 100),  # every row a candidate: the greedy rule is checked literally
    ("orthogonal", "queries", 4),
    ("random", "queries_keys", 4),
    ("random", "queries", 4),
    ("segment_means", "queries_keys", 4),
    ("segment_means", "queries", 4),
    ("official", None, 4),  # from the queries, without gradient through the prototypes
]


@pytest.mark.parametrize("selection,source,oversample", ORTHO_CASES, ids=["-".join(map(str, c)) for c in ORTHO_CASES])
def test_orthoformer_outputs_and_gradients(selection, source, oversample, recorded_prototypes):
    q, k, v = _randn(2, 10, 4, seed=0), _randn(2, 7, 4, seed=1), _randn(2, 7, 4, seed=2)  # Nk != Nq
    out = orthoformer_attention(q, k, v, 4, selection=selection, oversample=oversample, generator=_gen(3),
                                source=source)
    (recorded,) = recorded_prototypes
    pool = q if source in ("queries", None) else torch.cat([q, k], dim=1)
    ref = torch.stack([_ref_orthoformer(q[b], k[b], v[b], _ref_prototypes(recorded[b], pool[b], 4, selection,
                                                                          oversample)) for b in range(2)])
    _assert_matches(out, ref, dict(q=q, k=k, v=v))


def test_iterative_pinv_gradients():
    # Not row-stochastic: a softmax matrix's row sums all equal 1, a tie that makes ||A||_inf's gradient an arbitrary
    # subgradient (harmless inside Nystrom, where the softmax's Jacobian annihilates it).
    a = (3 * torch.eye(5, dtype=F64) + torch.randn(3, 5, 5, dtype=F64, generator=_gen(0))).requires_grad_()
    out = iterative_pinv(a, 6)
    _assert_matches(out, torch.stack([ref_pinv(a[i], 6) for i in range(3)]), dict(a=a))


@pytest.mark.parametrize("nq,nk,r", [(12, 12, 4), (10, 9, 4), (8, 8, 8)])
@pytest.mark.parametrize("pinv_side", ["values", "queries"])
def test_nystrom_outputs_and_gradients(nq, nk, r, pinv_side):
    q, k, v = _randn(2, nq, 4, seed=0), _randn(2, nk, 4, seed=1), _randn(2, nk, 4, seed=2)
    out = nystrom_attention(q, k, v, r, pinv_iterations=6, pinv_side=pinv_side)
    ref = torch.stack([_ref_nystrom(q[b], k[b], v[b], r, 6) for b in range(2)])
    _assert_matches(out, ref, dict(q=q, k=k, v=v))


def test_nystrom_given_landmarks_gradients():
    """Landmarks passed in (the trajectory module's shared ones) carry gradients to where they came from."""
    q, k, v = _randn(2, 10, 4, seed=0), _randn(2, 9, 4, seed=1), _randn(2, 9, 4, seed=2)
    pq, pk = _randn(2, 3, 4, seed=3), _randn(2, 3, 4, seed=4)
    out = nystrom_attention(q, k, v, 3, landmarks=(pq, pk))
    ref = torch.stack([_ref_nystrom(q[b], k[b], v[b], 3, 6, (pq[b], pk[b])) for b in range(2)])
    _assert_matches(out, ref, dict(q=q, k=k, v=v, landmarks_q=pq, landmarks_k=pk))


def test_performer_outputs_and_gradients():
    q, k, v = _randn(2, 9, 4, seed=0, scale=0.7), _randn(2, 7, 4, seed=1, scale=0.7), _randn(2, 7, 4, seed=2)
    w = torch.randn(10, 4, dtype=F64, generator=_gen(5))  # any fixed projection: the formula holds for every w
    out = performer_attention(q, k, v, 10, projection=w)
    ref = torch.stack([ref_performer(q[b], k[b], v[b], w) for b in range(2)])
    _assert_matches(out, ref, dict(q=q, k=k, v=v))


def test_broadcast_kernels_gradients():
    """A (b, 1, N, d) query against (b, T, S, d) keys (the trajectory use: frames folded into one product instead of
    copying the queries): the gradient of the shared queries sums over the T per-frame problems."""
    q, k, v = _randn(2, 1, 12, 4, seed=0, scale=0.7), _randn(2, 3, 5, 4, seed=1, scale=0.7), _randn(2, 3, 5, 4, seed=2)
    p = _randn(2, 1, 4, 4, seed=3)
    w = torch.randn(8, 4, dtype=F64, generator=_gen(4))
    cases = {  # name: (kernel call, reference for one batch element b and key frame t)
        "orthoformer": (lambda: orthoformer_attention(q, k, v, 4, prototypes=p),
                        lambda b, t: _ref_orthoformer(q[b, 0], k[b, t], v[b, t], p[b, 0])),
        "nystrom": (lambda: nystrom_attention(q, k, v, 3), lambda b, t: _ref_nystrom(q[b, 0], k[b, t], v[b, t], 3)),
        "performer": (lambda: performer_attention(q, k, v, 8, projection=w),
                      lambda b, t: ref_performer(q[b, 0], k[b, t], v[b, t], w)),
    }
    for name, (fast, ref_fn) in cases.items():
        ref = torch.stack([torch.stack([ref_fn(b, t) for t in range(3)]) for b in range(2)])
        inputs = dict(q=q, k=k, v=v, **(dict(prototypes=p) if name == "orthoformer" else {}))
        _assert_matches(fast(), ref, inputs)


# ---- (b) the full approximate trajectory attention ----------------------------------------------------------------

DIM, HEADS, THW = 16, 2, (3, 2, 2)  # T = 3 frames of S = 4 patches, head width 8
MODULE_OPTIONS = [
    dict(approximation="exact"),  # the parent's exact stage one, against the literal per-frame softmax
    dict(approximation="orthoformer", num_prototypes=5),  # 20 of the 24 queries and keys are candidates
    *TRAJECTORY_OPTIONS,  # tests.models.attention.test_approximate's: every selection, sharing and approximation
]
MODULE_IDS = ["-".join(str(v) for v in o.values()) for o in MODULE_OPTIONS]


def _linear(x, layer):
    out = x @ layer.weight.T
    return out if layer.bias is None else out + layer.bias


def _ref_stage_one(module, q, k, v, num_t, recorded, projection):
    """Eq. 4 with Norm_S approximated, one (batch, head): y~[t', i] = approx of softmax_s'(q_i K_t'^T / sqrt(d)) V_t'
    for all T*S patch queries i (frame-major tokens) and key frames t'; returns (T, T*S, d)."""
    n = q.shape[0]
    s, r, kind = n // num_t, module.num_prototypes, module.approximation
    frames = [(k[t * s:(t + 1) * s], v[t * s:(t + 1) * s]) for t in range(num_t)]
    if kind == "exact":
        return torch.stack([_ref_exact(q, kt, vt) for kt, vt in frames])
    if kind == "performer":
        return torch.stack([ref_performer(q, kt, vt, projection) for kt, vt in frames])
    if kind == "nystrom":
        landmarks = None
        if module.shared_prototypes:  # segments of all patch tokens taken in (space, time) order
            order = [t * s + sp for sp in range(s) for t in range(num_t)]
            landmarks = _ref_segment_means(q[order], r), _ref_segment_means(k[order], r)
        return torch.stack([_ref_nystrom(q, kt, vt, r, 6, landmarks) for kt, vt in frames])
    with_keys = module.prototype_source == "queries_keys"
    if module.shared_prototypes:  # one set from all frames' queries (and keys)
        pool = torch.cat([q, k]) if with_keys else q
        p = _ref_prototypes(recorded, pool, r, module.selection, module.oversample)
        return torch.stack([_ref_orthoformer(q, kt, vt, p) for kt, vt in frames])
    per_frame = []  # one set per query frame t, from frame t's queries (and keys), used against every key frame
    for t, (kt, _) in enumerate(frames):
        qt = q[t * s:(t + 1) * s]
        pool = torch.cat([qt, kt]) if with_keys else qt
        per_frame.append(_ref_prototypes(recorded[t], pool, r, module.selection, module.oversample))
    return torch.stack([torch.cat([_ref_orthoformer(q[t * s:(t + 1) * s], kt, vt, per_frame[t]) for t in range(num_t)])
                        for kt, vt in frames])


def ref_trajectory_attention(module, x, thw, recorded, projection):
    """The whole layer, loops written from Eq. 4-6: qkv; the CLS query attends to all tokens; stage one per head;
    stage two per patch token: q~ = proj_q(y~ at its own frame), k~_t', v~_t' = the halves of proj_kv(y~_t'),
    heads attend over t'; heads concatenated; proj."""
    num_t = thw[0]
    batch, tokens, c = x.shape
    nh = module.num_heads
    d, n = c // nh, tokens - 1
    s = n // num_t
    qkv = _linear(x, module.qkv)
    rows = []
    for b in range(batch):
        cls, traj = [], []  # per head: the CLS output (d) and the trajectory tokens (T, N, d)
        for h in range(nh):
            q, k, v = (qkv[b, :, i * c + h * d:i * c + (h + 1) * d] for i in range(3))
            cls.append(_attend(q[0], k, v))
            traj.append(_ref_stage_one(module, q[1:], k[1:], v[1:], num_t,
                                       None if recorded is None else recorded[b, h], projection))
        out = [torch.cat(cls)]
        for i in range(n):
            ys = [torch.cat([traj[h][tp, i] for h in range(nh)]) for tp in range(num_t)]  # y~_{i t'}, all heads
            q_tilde = _linear(ys[i // s], module.proj_q)
            kv = [_linear(y, module.proj_kv) for y in ys]
            out.append(torch.cat([_attend(q_tilde[h * d:(h + 1) * d],
                                          [z[h * d:(h + 1) * d] for z in kv],
                                          [z[c + h * d:c + (h + 1) * d] for z in kv]) for h in range(nh)]))
        rows.append(torch.stack(out))
    return _linear(torch.stack(rows), module.proj)


@pytest.mark.parametrize("options", MODULE_OPTIONS, ids=MODULE_IDS)
def test_trajectory_module_outputs_and_gradients(options, recorded_prototypes):
    torch.manual_seed(0)
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, qkv_bias=True, **options).double()
    module.generator = _gen(7)
    x = _randn(2, 1 + 12, DIM, seed=1)
    out = module(x, THW)
    recorded = None
    if module.approximation == "orthoformer":
        (recorded,) = recorded_prototypes  # (b, nh, R, d) shared, (b, nh, T, R, d) per query frame
    projection = None
    if module.approximation == "performer":  # the module draws its features from its generator: the same draw
        projection = orthogonal_random_features(module.num_prototypes, DIM // HEADS, _gen(7), dtype=F64)
    ref = ref_trajectory_attention(module, x, THW, recorded, projection)
    _assert_matches(out, ref, dict(x=x, **dict(module.named_parameters())))


# ---- (c) LRA attention with padding ---------------------------------------------------------------------------------

LRA_CASES = [("exact", None, True), ("exact", None, False), ("orthoformer", 4, True), ("nystrom", 3, True),
             ("nystrom", 4, True), ("performer", 16, True)]


def _ref_lra_attention(attn, x, mask, recorded):
    """Per (batch, head), every position computed: exact attention over the real keys only; Orthoformer with
    prototypes among the real queries and keys and Omega_2 over the real keys; Nystrom as the Nystromformer
    repository's LRA code (padded queries and keys zeroed, so the landmarks average zeros too, and Omega_3 over the
    real keys); Performer with the padded keys and values replaced by zero vectors (its FAVOR+ takes no mask)."""
    inner = attn.num_heads * attn.head_dim
    hd = attn.head_dim
    qkv = _linear(x, attn.qkv)
    rows = []
    for b in range(x.shape[0]):
        real = mask[b].tolist()
        heads = []
        for h in range(attn.num_heads):
            q, k, v = (qkv[b, :, i * inner + h * hd:i * inner + (h + 1) * hd] for i in range(3))
            if attn.attention == "exact":
                keep = [j for j, m in enumerate(real) if m]
                heads.append(_ref_exact(q, k[keep], v[keep]))
                continue
            keep = [j for j, m in enumerate(real) if m]
            zero = torch.zeros(hd, dtype=x.dtype)
            if attn.attention == "orthoformer":  # the default options: prototypes from the queries and keys
                pool = torch.cat([q[keep], k[keep]])  # real rows only: a padded row matches none of them
                heads.append(_ref_orthoformer(q, k[keep], v[keep], pool[match_rows(recorded[b, h], pool)]))
            elif attn.attention == "nystrom":
                qz, kz = (torch.stack([z_j if m else zero for z_j, m in zip(z, real)]) for z in (q, k))
                pq, pk = _ref_segment_means(qz, attn.budget), _ref_segment_means(kz, attn.budget)
                omega1, omega2 = _softmax_matrix(qz, pk), _softmax_matrix(pq, pk)
                omega3 = _softmax_matrix(pq, k[keep])
                heads.append(omega1 @ (ref_pinv(omega2, 6) @ (omega3 @ v[keep])))
            else:
                k, v = (torch.stack([z_j if m else zero for z_j, m in zip(z, real)]) for z in (k, v))
                heads.append(ref_performer(q, k, v, attn.projection))
        rows.append(torch.cat(heads, dim=-1))
    return _linear(torch.stack(rows), attn.proj)


@pytest.mark.parametrize("attention,budget,fused", LRA_CASES, ids=["-".join(map(str, c)) for c in LRA_CASES])
def test_lra_attention_with_padding(attention, budget, fused, recorded_prototypes):
    """Outputs and gradients (input, every parameter) of one LRA attention layer on a padded batch."""
    torch.manual_seed(0)
    attn = LRAAttention(24, num_heads=3, head_dim=8, attention=attention, budget=budget, fused_attn=fused).double()
    x = _randn(2, 9, 24, seed=1)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 7:] = False  # LRA pads at the end; the second sequence is almost half padding
    mask[1, 5:] = False
    out = attn(x, mask)
    recorded = recorded_prototypes[0] if attention == "orthoformer" else None
    _assert_matches(out, _ref_lra_attention(attn, x, mask, recorded), dict(x=x, **dict(attn.named_parameters())))
