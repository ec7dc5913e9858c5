"""Attention approximations (models/attention/approximate.py) and approximate trajectory attention
(models/attention/approximate_trajectory.py) against literal slow references written from Motionformer
Algorithms 1-2 and the FAVOR+ formula, and their limits; their activation memory is in
``test_approximate_memory.py``."""

import inspect
import math

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import create_model
from models.attention import ApproximateTrajectoryAttention, TrajectoryAttention, get_attention
from models.attention.approximate import (
    APPROXIMATIONS,
    exact_attention,
    iterative_pinv,
    nystrom_attention,
    orthoformer_attention,
    orthogonal_prototype_indices,
    orthogonal_random_features,
    performer_attention,
    segment_bounds,
    segment_means,
    select_prototypes,
)
from tests.models.dispatch_probe import LargestTensor

F64 = torch.float64


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _qkv(*shape: int, seed: int = 0, scale: float = 1.0):
    torch.manual_seed(seed)
    q, k, v = (torch.randn(*shape, dtype=F64) for _ in range(3))
    return q * scale, k * scale, v


# ---- literal references (one query, one softmax at a time) -----------------------------------------------------


def _softmax_list(logits: list[torch.Tensor]) -> list[torch.Tensor]:
    top = max(logits)
    weights = [torch.exp(x - top) for x in logits]
    total = sum(weights)
    return [w / total for w in weights]


def _ref_orthoformer(q, k, v, p):
    """Algorithm 1 for one problem: y_i = sum_l S(q_i^T P)_l sum_j S(p_l^T K)_j v_j, 2-D inputs."""
    d = q.shape[-1]
    pooled = []  # Omega_2 V, row by row
    for p_l in p:
        w = _softmax_list([torch.dot(p_l, k_j) / math.sqrt(d) for k_j in k])
        pooled.append(sum(w_j * v_j for w_j, v_j in zip(w, v)))
    out = []
    for q_i in q:
        w = _softmax_list([torch.dot(q_i, p_l) / math.sqrt(d) for p_l in p])
        out.append(sum(w_l * y_l for w_l, y_l in zip(w, pooled)))
    return torch.stack(out)


def _ref_segment_means(x, r):
    bounds = segment_bounds(x.shape[0], r)
    return torch.stack([sum(x[j] for j in range(bounds[i], bounds[i + 1])) / (bounds[i + 1] - bounds[i])
                        for i in range(r)])


def _ref_softmax_matrix(a, b, d):
    return torch.stack([torch.stack(_softmax_list([torch.dot(a_i, b_j) / math.sqrt(d) for b_j in b])) for a_i in a])


def _ref_nystrom(q, k, v, r, iterations, landmarks=None):
    """Algorithm 2 for one problem: Omega_1 IterativeInverse(Omega_2) Omega_3 V with segment-means landmarks
    (or the given ``landmarks`` = (P_q, P_k))."""
    d = q.shape[-1]
    pq, pk = landmarks if landmarks is not None else (_ref_segment_means(q, r), _ref_segment_means(k, r))
    omega1, omega2, omega3 = _ref_softmax_matrix(q, pk, d), _ref_softmax_matrix(pq, pk, d), \
        _ref_softmax_matrix(pq, k, d)
    # Nystromformer Eq. 16: Z_0 = A^T / (||A||_1 ||A||_inf); Z <- 1/4 Z (13I - AZ (15I - AZ (7I - AZ))).
    eye = torch.eye(r, dtype=q.dtype)
    norm_1 = max(sum(abs(omega2[i, j]) for i in range(r)) for j in range(r))
    norm_inf = max(sum(abs(omega2[i, j]) for j in range(r)) for i in range(r))
    z = omega2.T / (norm_1 * norm_inf)
    for _ in range(iterations):
        az = omega2 @ z
        z = 0.25 * z @ (13 * eye - az @ (15 * eye - az @ (7 * eye - az)))
    return omega1 @ (z @ (omega3 @ v))


def ref_performer(q, k, v, w):
    """FAVOR+: phi(x)_i = exp(w_i . x' - |x'|^2/2) / sqrt(m), x' = x / d^(1/4);
    y_i = sum_j phi(q_i).phi(k_j) v_j / sum_j phi(q_i).phi(k_j)."""
    d, m = q.shape[-1], w.shape[0]

    def phi(x):
        x = x / d ** 0.25
        return torch.stack([torch.exp(torch.dot(w_r, x) - torch.dot(x, x) / 2) for w_r in w]) / math.sqrt(m)

    kf = [phi(k_j) for k_j in k]
    out = []
    for q_i in q:
        qf = phi(q_i)
        weights = [torch.dot(qf, kf_j) for kf_j in kf]
        out.append(sum(w_j * v_j for w_j, v_j in zip(weights, v)) / sum(weights))
    return torch.stack(out)


def ref_greedy(x, first, r):
    """Greedy most-orthogonal selection over all rows of x (2-D), from row ``first``: each next prototype is the
    row with the smallest maximum |cosine| to those already chosen (ties: lowest index)."""
    unit = [row / row.norm() for row in x]
    chosen = [first]
    while len(chosen) < r:
        scores = [math.inf if j in chosen else max(abs(torch.dot(unit[j], unit[c]).item()) for c in chosen)
                  for j in range(len(unit))]
        chosen.append(min(range(len(unit)), key=lambda j: (scores[j], j)))
    return chosen


# ---- kernels vs references ------------------------------------------------------------------------------------


def test_greedy_selection_matches_literal_rule():
    x = torch.randn(3, 20, 6, dtype=F64, generator=_gen(0))
    idx = orthogonal_prototype_indices(x, 7, oversample=100, generator=_gen(1))  # all 20 rows are candidates
    assert idx.shape == (3, 7)
    for b in range(3):
        assert idx[b].tolist() == ref_greedy(x[b], idx[b, 0].item(), 7)


def test_official_selection_is_literal_greedy_over_every_row_without_gradient():
    """selection="official" (the official ``orthogonal_landmarks`` under ``torch.no_grad``): every row is a
    candidate even where "orthogonal" would subsample oversample*R of them, and no gradient reaches the rows."""
    for n, r in [(20, 7), (200, 10)]:  # 200 rows > the default 4 * 10 candidates of "orthogonal"
        x = torch.randn(3, n, 6, dtype=F64, generator=_gen(n), requires_grad=True)
        picked = select_prototypes(x, r, "official", generator=_gen(1))
        assert picked.shape == (3, r, 6) and not picked.requires_grad
        for b in range(3):
            first = next(i for i in range(n) if torch.equal(x[b, i], picked[b, 0]))
            assert torch.equal(picked[b], x[b, ref_greedy(x[b].detach(), first, r)])


def test_greedy_selection_subsample_deterministic_and_distinct():
    x = torch.randn(4, 200, 8, generator=_gen(0))
    a = orthogonal_prototype_indices(x, 10, oversample=2, generator=_gen(5))
    b = orthogonal_prototype_indices(x, 10, oversample=2, generator=_gen(5))
    c = orthogonal_prototype_indices(x, 10, oversample=2, generator=_gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert all(len(set(row.tolist())) == 10 for row in a)
    assert torch.equal(select_prototypes(x, 10, generator=_gen(5)), select_prototypes(x, 10, generator=_gen(5)))


def test_greedy_prototypes_more_orthogonal_than_random():
    # Correlated candidates (a shared component), as queries and keys of one head tend to be.
    g = _gen(0)
    x = torch.randn(8, 256, 16, generator=g) + 0.8 * torch.randn(8, 1, 16, generator=g)

    def mean_abs_cos(p):
        unit = torch.nn.functional.normalize(p, dim=-1)
        cos = (unit @ unit.transpose(-2, -1)).abs()
        r = p.shape[-2]
        return ((cos.sum(dim=(-2, -1)) - r) / (r * (r - 1))).mean().item()

    greedy = mean_abs_cos(select_prototypes(x, 16, "orthogonal", generator=_gen(1)))
    random = mean_abs_cos(select_prototypes(x, 16, "random", generator=_gen(1)))
    assert greedy < 0.8 * random, (greedy, random)


@pytest.mark.parametrize("n,r", [(12, 4), (10, 4), (7, 7), (9, 1)])
def test_segment_means_literal(n, r):
    x = torch.randn(2, n, 3, dtype=F64, generator=_gen(0))
    out = segment_means(x, r)
    for b in range(2):
        assert _rel(out[b], _ref_segment_means(x[b], r)) < 1e-12
    sizes = [hi - lo for lo, hi in zip(segment_bounds(n, r), segment_bounds(n, r)[1:])]
    assert sum(sizes) == n and max(sizes) - min(sizes) <= 1


def test_selection_errors():
    x = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="num_prototypes"):
        select_prototypes(x, 6)
    with pytest.raises(ValueError, match="selection"):
        select_prototypes(x, 2, "kmeans")
    with pytest.raises(ValueError, match="segments"):
        segment_means(x, 6)


@pytest.mark.parametrize("selection", ["orthogonal", "random", "segment_means"])
@pytest.mark.parametrize("source", ["queries_keys", "queries"])
def test_orthoformer_matches_reference(selection, source):
    q, k, v = _qkv(2, 10, 4)
    k, v = k[:, :7], v[:, :7]  # Nk != Nq
    out = orthoformer_attention(q, k, v, 4, selection=selection, source=source, generator=_gen(3))
    pool = torch.cat([q, k], dim=-2) if source == "queries_keys" else q
    protos = select_prototypes(pool, 4, selection, generator=_gen(3))  # same generator state: same prototypes
    for b in range(2):
        assert _rel(out[b], _ref_orthoformer(q[b], k[b], v[b], protos[b])) < 1e-10


@pytest.mark.parametrize("nq,nk,r", [(12, 12, 4), (10, 9, 4), (8, 8, 8)])
def test_nystrom_matches_reference(nq, nk, r):
    q, k, v = _qkv(2, max(nq, nk), 4)
    q, k, v = q[:, :nq], k[:, :nk], v[:, :nk]
    out = nystrom_attention(q, k, v, r, pinv_iterations=6)
    for b in range(2):
        assert _rel(out[b], _ref_nystrom(q[b], k[b], v[b], r, 6)) < 1e-10


def test_performer_matches_reference():
    q, k, v = _qkv(2, 9, 4, scale=0.7)
    w = orthogonal_random_features(10, 4, _gen(0), dtype=F64)
    out = performer_attention(q, k, v, 10, projection=w)
    for b in range(2):
        assert _rel(out[b], ref_performer(q[b], k[b], v[b], w)) < 1e-10
    # Drawing the features from a generator is the same as injecting them.
    assert _rel(performer_attention(q, k, v, 10, generator=_gen(0)), out) < 1e-12


def test_official_orthoformer_no_gradient_through_the_selection():
    """The official mode's gradients are those of Algorithm 1 with the selected prototypes held constant; with
    gradients through the selection (the default) they differ, so the comparison can fail."""
    q, k, v = (z.requires_grad_() for z in _qkv(2, 12, 4))
    out = orthoformer_attention(q, k, v, 5, selection="official", generator=_gen(3))
    constant = select_prototypes(q.detach(), 5, "official", generator=_gen(3))
    ref = orthoformer_attention(q, k, v, 5, prototypes=constant)
    cotangent = torch.randn(out.shape, dtype=F64, generator=_gen(4))
    grads = torch.autograd.grad((out * cotangent).sum(), (q, k, v))
    ref_grads = torch.autograd.grad((ref * cotangent).sum(), (q, k, v))
    assert _rel(out, ref) < 1e-12
    assert all(_rel(g, r) < 1e-10 for g, r in zip(grads, ref_grads))
    idx = orthogonal_prototype_indices(q.detach(), 5, oversample=3, generator=_gen(3))  # 3 * 5 >= 12: every row
    with_grad = q[torch.arange(2).unsqueeze(1), idx]  # the same prototypes, differentiable
    assert torch.equal(with_grad.detach(), constant)
    through = orthoformer_attention(q, k, v, 5, prototypes=with_grad)
    assert _rel(torch.autograd.grad((through * cotangent).sum(), q)[0], grads[0]) > 1e-3
    with pytest.raises(ValueError, match="official"):
        orthoformer_attention(q, k, v, 5, selection="official", source="queries_keys")
    with pytest.raises(ValueError, match="official"):
        orthoformer_attention(q, k, v, 5, selection="official", detach_prototypes=False)


def test_orthogonal_random_features():
    w = orthogonal_random_features(20, 8, _gen(0), dtype=F64)
    assert w.shape == (20, 8)
    unit = w / w.norm(dim=-1, keepdim=True)
    for lo, hi in [(0, 8), (8, 16), (16, 20)]:  # blocks of d exactly orthogonal rows
        block = unit[lo:hi]
        assert torch.allclose(block @ block.T, torch.eye(hi - lo, dtype=F64), atol=1e-12)
    assert not torch.allclose(w.norm(dim=-1), w.norm(dim=-1)[0].expand(20))  # chi(d) lengths, not constant


def test_broadcast_over_frames_equals_per_frame_calls():
    """A (.., 1, N, d) query against (.., T, S, d) keys = T separate problems (the trajectory use)."""
    q = torch.randn(2, 1, 12, 4, dtype=F64, generator=_gen(0))
    k, v = (torch.randn(2, 3, 6, 4, dtype=F64, generator=_gen(i)) for i in (1, 2))
    p = torch.randn(2, 1, 5, 4, dtype=F64, generator=_gen(3))
    w = orthogonal_random_features(16, 4, _gen(4), dtype=F64)
    cases = [(lambda a, b, c: orthoformer_attention(a, b, c, 5, prototypes=p if a.dim() == 4 else p[:, 0])),
             (lambda a, b, c: nystrom_attention(a, b, c, 3)),
             (lambda a, b, c: performer_attention(a, b, c, 16, projection=w))]
    for fn in cases:
        together = fn(q, k, v)
        assert together.shape == (2, 3, 12, 4)
        for t in range(3):
            assert _rel(together[:, t], fn(q[:, 0], k[:, t], v[:, t])) < 1e-12


def test_common_call_convention():
    q, k, v = _qkv(2, 3, 10, 8)
    for name, fn in APPROXIMATIONS.items():
        out = fn(q, k, v, 5)
        assert out.shape == q.shape and torch.isfinite(out).all(), name
    assert _rel(APPROXIMATIONS["exact"](q, k, v, None), exact_attention(q, k, v, fused=False)) < 1e-12


# ---- limits and convergence -----------------------------------------------------------------------------------


def test_iterative_pinv_converges_to_inverse():
    a = torch.softmax(torch.randn(3, 8, 8, dtype=F64, generator=_gen(0)), dim=-1)
    assert _rel(iterative_pinv(a, 40), torch.linalg.inv(a)) < 1e-8


def test_nystrom_with_every_token_a_landmark_is_exact():
    """R = N: each landmark is one token, Omega_1 = Omega_2 = Omega_3 = softmax(QK^T), so the product is exact
    once the pseudo-inverse has converged."""
    q, k, v = _qkv(2, 16, 8, scale=0.5)
    assert _rel(nystrom_attention(q, k, v, 16, pinv_iterations=40), exact_attention(q, k, v)) < 1e-6


def test_nystrom_error_decreases_with_landmarks():
    q, k, v = _qkv(4, 64, 16)
    exact = exact_attention(q, k, v)
    errors = [_rel(nystrom_attention(q, k, v, r), exact) for r in (4, 8, 16, 32, 64)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors


def test_orthoformer_true_limits():
    """Orthoformer with P = K (or every token) is not exact in general; what holds exactly:
    (1) with P = Q, Algorithm 1 equals softmax(Q Q^T / sqrt(d)) times exact attention (an identity);
    (2) hence it tends to exact attention when that query-query softmax tends to the identity, e.g. mutually
    orthogonal queries of large norm, and greedy selection from the queries with R = N picks exactly them."""
    q, k, v = _qkv(2, 12, 8)
    exact = exact_attention(q, k, v)
    d = q.shape[-1]
    mix = torch.softmax(q @ q.transpose(-2, -1) / math.sqrt(d), dim=-1)
    assert _rel(orthoformer_attention(q, k, v, 12, prototypes=q), mix @ exact) < 1e-12
    assert _rel(orthoformer_attention(q, k, v, 12, prototypes=k), exact) > 0.05  # P = K: not exact

    basis = torch.linalg.qr(torch.randn(2, 8, 8, dtype=F64, generator=_gen(1))).Q.transpose(-2, -1)
    q = basis * math.sqrt(50 * math.sqrt(d))  # q_i . q_j / sqrt(d) = 50 delta_ij
    out = orthoformer_attention(q, k[:, :8], v[:, :8], 8, source="queries", generator=_gen(2))
    assert _rel(out, exact_attention(q, k[:, :8], v[:, :8])) < 1e-6


@pytest.mark.parametrize("selection", ["orthogonal", "random"])
def test_orthoformer_error_decreases_with_prototypes(selection):
    q, k, v = _qkv(4, 64, 16)
    exact = exact_attention(q, k, v)
    errors = [sum(_rel(orthoformer_attention(q, k, v, r, selection=selection, generator=_gen(s)), exact)
                  for s in range(4)) / 4 for r in (4, 16, 64, 128)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors


def test_performer_error_decreases_with_features():
    q, k, v = _qkv(4, 64, 16, scale=0.5)
    exact = exact_attention(q, k, v)
    errors = [sum(_rel(performer_attention(q, k, v, m, generator=_gen(s)), exact) for s in range(3)) / 3
              for m in (16, 64, 256, 1024)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.4 * errors[0], errors  # ~1/sqrt(m): 64x the features, ~8x smaller error


# ---- ApproximateTrajectoryAttention ---------------------------------------------------------------------------

DIM, HEADS = 16, 2
MODULE_OPTIONS = [
    dict(approximation="orthoformer", num_prototypes=6),
    dict(approximation="orthoformer", num_prototypes=4, shared_prototypes=False),
    dict(approximation="orthoformer", num_prototypes=5, prototype_source="queries", selection="random"),
    dict(approximation="orthoformer", num_prototypes=4, selection="segment_means", shared_prototypes=False),
    dict(approximation="orthoformer", num_prototypes=5, selection="official"),
    dict(approximation="orthoformer", num_prototypes=3, selection="official", shared_prototypes=False),
    dict(approximation="nystrom", num_prototypes=5),
    dict(approximation="nystrom", num_prototypes=3, shared_prototypes=False),
    dict(approximation="performer", num_prototypes=12),
]
MODULE_IDS = ["-".join(str(v) for v in o.values()) for o in MODULE_OPTIONS]


def _ref_trajectories(module, q, k, v, num_t, generator_seed):
    """Stage one per frame t', literally: for every query (all T*S of them) and frame t', the chosen
    approximation of softmax_s'(q K_t'^T / sqrt(d)) V_t'. q, k, v: (b, nh, T*S, d)."""
    b, nh, n, d = q.shape
    s = n // num_t
    r = module.num_prototypes
    kf, vf = k.unflatten(2, (num_t, s)), v.unflatten(2, (num_t, s))
    g = _gen(generator_seed)
    if module.approximation == "orthoformer":
        if module.shared_prototypes:  # one set from all frames' queries (and keys)
            pool = q if module.prototype_source == "queries" else torch.cat([q, k], dim=2)
            protos = select_prototypes(pool, r, module.selection, module.oversample, g)  # (b nh R d)
            proto_of = lambda bb, hh, i: protos[bb, hh]  # noqa: E731
        else:  # one set per query frame, from that frame's queries (and keys)
            qf = q.unflatten(2, (num_t, s))
            pool = qf if module.prototype_source == "queries" else torch.cat([qf, kf], dim=3)
            protos = select_prototypes(pool, r, module.selection, module.oversample, g)  # (b nh T R d)
            proto_of = lambda bb, hh, i: protos[bb, hh, i // s]  # noqa: E731
    elif module.approximation == "performer":
        w = orthogonal_random_features(r, d, g, dtype=q.dtype)
    out = torch.zeros(b, nh, num_t, n, d, dtype=q.dtype)
    for bb in range(b):
        for hh in range(nh):
            for tp in range(num_t):
                keys, values = kf[bb, hh, tp], vf[bb, hh, tp]
                if module.approximation == "nystrom":
                    landmarks = None
                    if module.shared_prototypes:  # segments of all tokens taken in (space, time) order
                        order = [t * s + sp for sp in range(s) for t in range(num_t)]
                        landmarks = (_ref_segment_means(q[bb, hh, order], r), _ref_segment_means(k[bb, hh, order], r))
                    out[bb, hh, tp] = _ref_nystrom(q[bb, hh], keys, values, r, 6, landmarks)
                    continue
                if module.approximation == "performer":
                    out[bb, hh, tp] = ref_performer(q[bb, hh], keys, values, w)
                    continue
                for i in range(n):
                    out[bb, hh, tp, i] = _ref_orthoformer(q[bb, hh, i:i + 1], keys, values, proto_of(bb, hh, i))[0]
    return out


@pytest.mark.parametrize("options", MODULE_OPTIONS, ids=MODULE_IDS)
def test_stage_one_matches_literal_reference(options):
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, **options)
    num_t, s = 3, 4
    q, k, v = (torch.randn(2, HEADS, num_t * s, DIM // HEADS, dtype=F64, generator=_gen(i)) for i in range(3))
    module.generator = _gen(7)
    fast = module._trajectories(q, k, v, num_t, 0.0)
    assert fast.shape == (2, HEADS, num_t, num_t * s, DIM // HEADS)
    assert _rel(fast, _ref_trajectories(module, q, k, v, num_t, 7)) < 1e-10


def test_official_mode_resolves_to_the_official_options():
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, selection="official")
    assert (module.prototype_source, module.detach_prototypes) == ("queries", True)
    paper = ApproximateTrajectoryAttention(DIM, num_heads=HEADS)
    assert (paper.selection, paper.prototype_source, paper.detach_prototypes) == ("orthogonal", "queries_keys", False)
    for conflicting in (dict(prototype_source="queries_keys"), dict(detach_prototypes=False)):
        with pytest.raises(ValueError, match="official"):
            ApproximateTrajectoryAttention(DIM, num_heads=HEADS, selection="official", **conflicting)


def test_approximate_attention_dropout_default_drops_nothing():
    """The official approximations have no attention dropout and the default placement drops only exact stage
    one's weights: with attn_drop = 1 the training output is the one without dropout (same prototypes)."""
    x = torch.randn(2, 1 + 3 * 4, DIM, dtype=F64)
    outs = []
    for p in (0.0, 1.0):
        torch.manual_seed(0)
        module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, num_prototypes=4, attn_drop=p).double()
        module.generator = _gen(5)
        outs.append(module(x, (3, 2, 2)))
    assert _rel(outs[1], outs[0]) < 1e-12
    module.attn_drop_placement, module.generator = "all", _gen(5)
    assert _rel(module(x, (3, 2, 2)), outs[0]) > 1e-3  # "all": the CLS attention and stage two are dropped


def test_exact_option_equals_trajectory_attention():
    torch.manual_seed(0)
    exact = TrajectoryAttention(DIM, num_heads=HEADS, qkv_bias=True).double().eval()
    approx = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, qkv_bias=True, approximation="exact").double()
    approx.load_state_dict(exact.state_dict())
    x = torch.randn(2, 1 + 3 * 4, DIM, dtype=F64)
    assert _rel(approx.eval()(x, (3, 2, 2)), exact(x, (3, 2, 2))) < 1e-12


def test_constructor_validation_and_kwargs_forwarding():
    with pytest.raises(ValueError, match="Norm_S"):
        ApproximateTrajectoryAttention(DIM, num_heads=HEADS, normalize="spacetime")
    with pytest.raises(ValueError, match="approximation"):
        ApproximateTrajectoryAttention(DIM, num_heads=HEADS, approximation="linformer")
    with pytest.raises(TypeError):  # unknown options reach the parent, which rejects them
        ApproximateTrajectoryAttention(DIM, num_heads=HEADS, not_an_option=1)
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, temporal_pool="average", normalize="space")
    assert module.temporal_pool == "average" and not hasattr(module, "proj_q")
    if "stage_two" in inspect.signature(TrajectoryAttention.__init__).parameters:  # the parent's newer options
        assert ApproximateTrajectoryAttention(DIM, num_heads=HEADS, stage_two="literal").stage_two == "literal"
    with pytest.raises(ValueError, match="num_prototypes=128 exceeds"):  # 2 * 12 candidates < 128
        module(torch.randn(1, 13, DIM), (3, 2, 2))


def test_eval_mode_is_reproducible_training_is_random():
    torch.manual_seed(0)
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, num_prototypes=6).double()
    x = torch.randn(2, 1 + 3 * 9, DIM, dtype=F64)
    assert not torch.equal(module(x, (3, 3, 3)), module(x, (3, 3, 3)))  # training: fresh prototypes each call
    module.eval()
    out = module(x, (3, 3, 3))
    assert torch.equal(module(x, (3, 3, 3)), out)  # eval: seeded with eval_seed at every forward
    module.fused_attn = False  # the flag only changes how the CLS attention and stage two are evaluated
    unfused = module(x, (3, 3, 3))
    assert _rel(unfused, out) < 1e-12
    module.eval_seed = 1  # another seed, another draw (compared at the same fused_attn, so only the seed differs)
    assert _rel(module(x, (3, 3, 3)), unfused) > 1e-6


@pytest.mark.parametrize("options", MODULE_OPTIONS, ids=MODULE_IDS)
def test_in_video_vit(options):
    torch.manual_seed(0)
    model = create_model("vit_tiny_video", attn_layer="trajectory_approx", attn_kwargs=options, num_classes=5,
                         depth=2)
    assert all(isinstance(b.attn, ApproximateTrajectoryAttention) for b in model.blocks)
    features = model.forward_features(torch.randn(2, 3, 8, 32, 32))
    logits = model.forward_head(features)
    assert features.shape == (2, 65, 64) and logits.shape == (2, 5)
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()
    (logits.square().mean() + features.square().mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} received no gradient"


@pytest.mark.parametrize("options", MODULE_OPTIONS, ids=MODULE_IDS)
def test_never_materialises_quadratic_scores(options):
    """No tensor with as many entries as the (T*S) x (T*S) scores per (batch, head) - which is also the size of
    the per-frame (T*S) x S scores over all frames - exists, forward or backward; the explicit exact path trips
    the same detector."""
    batch, (num_t, grid_h, grid_w) = 1, (3, 6, 6)
    n = num_t * grid_h * grid_w
    score_numel = batch * HEADS * n * n
    x = torch.randn(batch, 1 + n, DIM, requires_grad=True)
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, **options)
    with LargestTensor() as probe:
        module(x, (num_t, grid_h, grid_w)).sum().backward()
    assert probe.max_numel < score_numel, f"approximate path produced {probe.max_shape}"
    exact = get_attention("trajectory")(DIM, num_heads=HEADS, fused_attn=False)
    with LargestTensor() as probe:
        exact(x, (num_t, grid_h, grid_w)).sum().backward()
    assert probe.max_numel >= score_numel


def test_nystrom_pinv_side_is_the_same_function():
    """The Nystromformer code's product order (Omega_1 Z)(Omega_3 V) equals ours, Omega_1 (Z (Omega_3 V))."""
    q, k, v = _qkv(2, 12, 4)
    ours = nystrom_attention(q, k, v, 4)
    assert _rel(nystrom_attention(q, k, v, 4, pinv_side="queries"), ours) < 1e-12
    with pytest.raises(ValueError, match="pinv_side"):
        nystrom_attention(q, k, v, 4, pinv_side="keys")


def test_table5_gflops_name_what_the_paper_counted():
    """Table 5's GFLOPs cells: our count, plus each operation of the code the paper ran, counted. With the
    Nystromformer code's product order and its convolution on V, Nystromformer-128 is within 2% of the paper."""
    from experiments.harness.spec import table_spec
    from experiments.mformer.lra import nystromformer_conv_gflops

    assert nystromformer_conv_gflops() == pytest.approx(2 * 2 * 35 * 2048 * 32 / 1e9)  # layers x heads x taps x N x d
    spec = table_spec("mformer_table5")
    column = next(c for c in spec.static_columns if c.column.startswith("GFLOPS"))
    nystrom = column.compute(spec, spec.row("nystrom"))
    total = float(nystrom.text.rsplit("= ", 1)[1].rstrip(")"))
    assert nystrom.value == pytest.approx(0.474, abs=0.001) and total == pytest.approx(0.62, rel=0.02)
    ortho = column.compute(spec, spec.row("orthoformer"))
    assert "all 2048 queries" in ortho.text and float(ortho.text.rsplit("= ", 1)[1].rstrip(")")) > ortho.value
