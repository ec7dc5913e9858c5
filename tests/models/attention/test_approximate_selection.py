"""Properties of the attention approximations (models/attention/approximate.py, approximate_trajectory.py) that the
literal-reference tests leave open, each checked against a literal value or a plain loop written here:

- the first Orthoformer prototype is drawn uniformly from every candidate row (Motionformer Sec. 3.2: "starting with a
  query or key at random"), counted over a large batch of independent problems against 1/N;
- the random subsample has exactly c*R candidates: a lone orthogonal row is chosen exactly when it is a candidate,
  so its frequency over many problems is c*R/N;
- the greedy rule never picks a row twice, even when every candidate is parallel or a zero vector (padding-like);
- FAVOR+ projection rows have chi(d) lengths (E|w|^2 = d, marginally N(0, I_d)) and independent orthogonal blocks;
- ``iterative_pinv``'s default is Nystromformer's 6 iterations (the literal Eq. 16 loop of the reference tests);
- random selection and the greedy rule take every valid row before a padded one (``valid`` masks);
- ApproximateTrajectoryAttention forwards ``oversample`` and ``detach_prototypes`` to the selection and the kernel,
  accepts R equal to the candidate count, redraws in training, in eval mode uses ``self.generator`` when one is set
  (its documented "used in every mode") and otherwise the draw seeded by ``eval_seed``.
"""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.attention import ApproximateTrajectoryAttention
from models.attention import approximate_trajectory as trajectory_module
from models.attention.approximate import (
    iterative_pinv,
    orthogonal_prototype_indices,
    orthogonal_random_features,
    select_prototypes,
)
from tests.models.attention.test_approximate import ref_greedy  # (literal greedy most-orthogonal rule)
from tests.models.attention.test_approximate_reference import Recorder, match_rows, ref_pinv

F64 = torch.float64
DIM, HEADS = 16, 2


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _heads(module: ApproximateTrajectoryAttention, x: torch.Tensor, b: int, h: int):
    """Patch queries and keys (N, d) of batch element b, head h, from the module's qkv projection."""
    c, d = x.shape[-1], x.shape[-1] // module.num_heads
    qkv = (x[b, 1:] @ module.qkv.weight.T + module.qkv.bias).detach()
    return qkv[:, h * d:(h + 1) * d], qkv[:, c + h * d:c + (h + 1) * d]


# ---- prototype selection ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("selection", ["orthogonal", "official"])
def test_first_prototype_is_uniform_over_every_row(selection):
    """Every row is a candidate (oversample * R >= N, or "official"): only the first prototype is random, and it must
    be each of the N rows with probability 1/N - not always row 0, not never the last row."""
    problems, n = 4000, 10
    x = torch.randn(problems, n, 4, dtype=F64, generator=_gen(0))
    picked = select_prototypes(x, 3, selection, oversample=4, generator=_gen(1))  # 4 * 3 >= 10: no subsample
    first = [next(j for j in range(n) if torch.equal(x[p, j], picked[p, 0])) for p in range(problems)]
    counts = [first.count(j) for j in range(n)]
    # Binomial(4000, 1/10): mean 400, standard deviation 19; +-100 is five of them.
    assert all(300 < c < 500 for c in counts), counts


@pytest.mark.parametrize("oversample", [1, 3])
def test_subsample_has_c_times_r_candidates(oversample):
    """39 rows along e1 (with a little noise) and one row along e2: the greedy rule takes the e2 row whenever it is a
    candidate (first, or second as the most orthogonal), and never otherwise, so over many independent problems its
    frequency is the candidate fraction c * R / N."""
    problems, n, r = 20000, 40, 2
    rows = torch.zeros(n, 4, dtype=F64)
    rows[:, 0] = 1.0
    rows[:, 1:] = 0.01 * torch.randn(n, 3, dtype=F64, generator=_gen(0))
    rows[n - 1] = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=F64)
    x = rows.expand(problems, n, 4).contiguous()
    idx = orthogonal_prototype_indices(x, r, oversample=oversample, generator=_gen(1))
    frequency = (idx == n - 1).any(dim=1).double().mean().item()
    expected = oversample * r / n  # 0.05 or 0.15; the standard deviation of the estimate is below 0.0026
    assert abs(frequency - expected) < 0.01, (frequency, expected)


@pytest.mark.parametrize("case", ["parallel", "zero_rows"])
def test_greedy_never_repeats_a_row(case):
    """With R = N every row must be taken once. Parallel rows all have |cos| = 1 to the chosen set and zero rows
    (padding) |cos| = 0: only the exclusion of chosen rows keeps the greedy rule from picking one row again."""
    n = 6
    direction = torch.randn(4, dtype=F64, generator=_gen(0))
    x = torch.stack([(j + 1) * direction for j in range(n)])  # all parallel
    if case == "zero_rows":
        x[[1, 4]] = 0.0
    batch = x.expand(8, n, 4).contiguous()
    idx = orthogonal_prototype_indices(batch, n, oversample=1, generator=_gen(1))
    for row in idx.tolist():
        assert sorted(row) == list(range(n)), row


def test_greedy_takes_padded_rows_last():
    """Padded rows (zero vectors, |cos| = 0 to everything) would be the greedy rule's favourites: with a ``valid``
    mask every valid row must be taken before any padded one."""
    x = torch.randn(20, 10, 4, dtype=F64, generator=_gen(0))
    x[:, 6:] = 0.0
    valid = torch.zeros(20, 10, dtype=torch.bool)
    valid[:, :6] = True
    idx = orthogonal_prototype_indices(x, 6, oversample=2, generator=_gen(1), valid=valid)  # all 10 rows candidates
    for row in idx.tolist():
        assert sorted(row) == list(range(6)), row


# ---- FAVOR+ random features ---------------------------------------------------------------------------------------


def test_random_feature_lengths_are_chi_d():
    """FAVOR+'s unbiased estimator needs every row marginally N(0, I_d): E|w|^2 = d and Var|w|^2 = 2d."""
    d, m = 8, 4096
    squared = orthogonal_random_features(m, d, _gen(0), dtype=F64).square().sum(dim=-1)
    # The mean of 4096 chi^2(8) draws has standard deviation sqrt(16 / 4096) = 0.0625.
    assert abs(squared.mean().item() - d) < 0.4, squared.mean().item()
    assert abs(squared.var().item() - 2 * d) < 3.0, squared.var().item()


def test_random_feature_blocks_are_independent():
    """Each block of d rows is its own random rotation: a row of one block is not parallel to the same row of the
    next (one reused rotation would repeat every direction and add no information)."""
    d = 8
    unit = torch.nn.functional.normalize(orthogonal_random_features(3 * d, d, _gen(0), dtype=F64), dim=-1)
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        cos = (unit[a * d:(a + 1) * d] * unit[b * d:(b + 1) * d]).sum(dim=-1).abs()
        assert cos.max().item() < 0.999, (a, b, cos)


# ---- Nystrom pseudo-inverse -----------------------------------------------------------------------------------------


def test_iterative_pinv_default_is_six_iterations():
    """Nystromformer runs Eq. 16 six times; the literal loop
    (tests.models.attention.test_approximate_reference._ref_pinv) with 6, on softmax matrices where the iterate has not
    converged yet, so 5 or 7 iterations give another matrix."""
    a = torch.softmax(3 * torch.randn(3, 6, 6, dtype=F64, generator=_gen(0)), dim=-1)
    ref = torch.stack([ref_pinv(a[i], 6) for i in range(3)])
    assert (iterative_pinv(a) - ref).abs().max().item() < 1e-12
    assert (ref_pinv(a[0], 5) - ref[0]).abs().max().item() > 1e-6  # the default is observable


# ---- ApproximateTrajectoryAttention wiring ------------------------------------------------------------------------


def test_module_oversample_reaches_the_selection(monkeypatch):
    """oversample=100 makes all 54 queries and keys of a (batch, head) candidates, so each recorded prototype set is
    the literal greedy subset from its first row; the default c = 4 would subsample 20 of them."""
    recorder = Recorder(trajectory_module.select_prototypes)
    monkeypatch.setattr(trajectory_module, "select_prototypes", recorder)
    torch.manual_seed(0)
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, qkv_bias=True, num_prototypes=5,
                                            oversample=100).double()
    module.generator = _gen(7)
    x = torch.randn(2, 1 + 27, DIM, dtype=F64, generator=_gen(1))
    module(x, (3, 3, 3))
    (recorded,) = recorder.outputs  # (b, nh, R, d)
    for b in range(2):
        for h in range(HEADS):
            q, k = _heads(module, x, b, h)
            pool = torch.cat([q, k])
            idx = match_rows(recorded[b, h], pool)
            assert idx == ref_greedy(pool, idx[0], 5), (b, h, idx)


@pytest.mark.parametrize("shared", [True, False])
def test_module_detach_prototypes_stops_their_gradient(shared, monkeypatch):
    """detach_prototypes=True with a non-official selection: output and gradients equal those of the same forward
    whose selection returns the same prototypes as constants; with gradients through the selected rows they differ."""
    torch.manual_seed(0)
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, qkv_bias=True, num_prototypes=3, selection="random",
                                            shared_prototypes=shared, detach_prototypes=True).double()
    module.generator = _gen(7)
    x = torch.randn(2, 1 + 12, DIM, dtype=F64, generator=_gen(1), requires_grad=True)
    cotangent = torch.randn(2, 1 + 12, DIM, dtype=F64, generator=_gen(2))
    leaves = [x, module.qkv.weight, module.qkv.bias]

    recorder = Recorder(trajectory_module.select_prototypes)
    monkeypatch.setattr(trajectory_module, "select_prototypes", recorder)
    out = module(x, (3, 2, 2))
    grads = torch.autograd.grad((out * cotangent).sum(), leaves)

    (constant,) = recorder.outputs  # detached copies
    monkeypatch.setattr(trajectory_module, "select_prototypes", lambda *args, **kwargs: constant)
    module.detach_prototypes = False  # no detaching needed: the prototypes are constants now
    ref = module(x, (3, 2, 2))
    ref_grads = torch.autograd.grad((ref * cotangent).sum(), leaves)
    assert (out - ref).abs().max().item() < 1e-12
    for g, r in zip(grads, ref_grads):
        assert ((g - r).norm() / r.norm()).item() < 1e-10


def test_eval_mode_uses_the_module_generator_when_set():
    """eval_seed seeds the draws only when no generator is set: with module.generator set, eval outputs follow it."""
    torch.manual_seed(0)
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, num_prototypes=4).double().eval()
    x = torch.randn(2, 1 + 3 * 9, DIM, dtype=F64, generator=_gen(1))

    def forward(seed):
        module.generator = _gen(seed)
        return module(x, (3, 3, 3))

    first = forward(1)
    assert torch.equal(forward(1), first)
    assert (forward(2) - first).abs().max().item() > 1e-6


def test_eval_seed_chooses_the_eval_draw():
    """Same fused flag throughout (a fused/explicit flip alone already breaks bitwise equality): eval_seed 0 twice
    gives one output, eval_seed 1 another."""
    torch.manual_seed(0)
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, num_prototypes=4).double().eval()
    x = torch.randn(2, 1 + 3 * 9, DIM, dtype=F64, generator=_gen(1))

    def forward(seed):
        module.eval_seed = seed
        return module(x, (3, 3, 3))

    seed_0 = forward(0)
    assert torch.equal(forward(0), seed_0)
    assert (forward(1) - seed_0).abs().max().item() > 1e-6


def test_random_selection_takes_valid_rows_first():
    """selection="random" with a ``valid`` mask: while valid rows remain, no padded row is a prototype."""
    x = torch.randn(50, 9, 4, dtype=F64, generator=_gen(0))
    valid = torch.zeros(50, 9, dtype=torch.bool)
    valid[:, :5] = True  # padding at the end, as in LRA
    picked = select_prototypes(x, 5, "random", generator=_gen(1), valid=valid)
    for b in range(50):
        assert sorted(match_rows(picked[b], x[b])) == [0, 1, 2, 3, 4]


def test_module_accepts_as_many_prototypes_as_candidates(monkeypatch):
    """R may equal the candidate count (select_prototypes allows R = N): per query frame with the official rule,
    the 4 prototypes of frame t are exactly frame t's 4 queries."""
    recorder = Recorder(trajectory_module.select_prototypes)
    monkeypatch.setattr(trajectory_module, "select_prototypes", recorder)
    torch.manual_seed(0)
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, qkv_bias=True, num_prototypes=4, selection="official",
                                            shared_prototypes=False).double()
    module.generator = _gen(7)
    x = torch.randn(1, 1 + 12, DIM, dtype=F64, generator=_gen(1))
    module(x, (3, 2, 2))
    (recorded,) = recorder.outputs  # (b, nh, T, R, d)
    for h in range(HEADS):
        q, _ = _heads(module, x, 0, h)
        for t in range(3):
            assert sorted(match_rows(recorded[0, h, t], q[4 * t:4 * (t + 1)])) == [0, 1, 2, 3]


@pytest.mark.parametrize("options", [dict(approximation="performer", num_prototypes=8),
                                     dict(approximation="orthoformer", num_prototypes=4, selection="official")],
                         ids=["performer", "orthoformer-official"])
def test_training_redraws_at_every_forward(options):
    """In training with no generator set, random features (Performer) and the first prototype (official Orthoformer,
    whose only random draw it is) are drawn afresh at every forward, so two forwards of one input differ."""
    torch.manual_seed(0)
    module = ApproximateTrajectoryAttention(DIM, num_heads=HEADS, **options).double().train()
    x = torch.randn(2, 1 + 3 * 9, DIM, dtype=F64, generator=_gen(1))
    assert (module(x, (3, 3, 3)) - module(x, (3, 3, 3))).abs().max().item() > 1e-6
