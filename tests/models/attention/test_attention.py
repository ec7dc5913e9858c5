"""Every registered attention against its literal reference (tests/models/attention/reference.py), values and gradients,
on both the fused (SDPA) and the explicit path; and the fused trajectory path's memory claim."""

import pytest
import torch
import torch.nn.functional as F

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.attention import ATTENTION_LAYERS, get_attention
from tests.models.attention.reference import REFERENCES, random_attention
from tests.models.dispatch_probe import LargestTensor

DIM, HEADS = 16, 2
TRAJECTORY_OPTIONS = [{"temporal_pool": p, "normalize": n} for p in ("attention", "average")
                      for n in ("space", "spacetime")]
# trajectory_approx: its literal references (Algorithms 1-2, FAVOR+) live in tests/models/attention/test_approximate.py
VARIANTS = [(name, {}) for name in ATTENTION_LAYERS if name not in ("trajectory", "trajectory_approx")]
VARIANTS += [("trajectory", opts) for opts in TRAJECTORY_OPTIONS]


def _variant_id(variant):
    name, opts = variant
    return "-".join([name, *map(str, opts.values())])


def _random_module(name: str, opts: dict, fused: bool) -> torch.nn.Module:
    return random_attention(get_attention(name), DIM, HEADS, fused, **opts)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_registry_lookup():
    assert set(REFERENCES) == set(ATTENTION_LAYERS) - {"trajectory_approx"}, "every attention needs a reference"
    with pytest.raises(ValueError, match="trajectory"):
        get_attention("trajectroy")


# Every variant on a 3x2x2 grid; trajectory (which folds frames into the batch) also on 3x3x3.
CASES = [(v, (3, 2, 2)) for v in VARIANTS] + [(v, (3, 3, 3)) for v in VARIANTS if v[0] == "trajectory"]


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
@pytest.mark.parametrize("variant,thw", CASES, ids=[f"{_variant_id(v)}-{'x'.join(map(str, g))}" for v, g in CASES])
def test_matches_reference(variant, thw, fused):
    name, opts = variant
    module = _random_module(name, opts, fused)
    torch.manual_seed(1)
    num_tokens = 1 + thw[0] * thw[1] * thw[2]
    x = torch.randn(2, num_tokens, DIM, dtype=torch.float64, requires_grad=True)
    cotangent = torch.randn(2, num_tokens, DIM, dtype=torch.float64)
    params = dict(module.named_parameters())
    inputs = [x, *params.values()]

    fast = module(x, thw)
    ref = REFERENCES[name](module, x, thw)
    assert fast.shape == x.shape
    assert _rel(fast, ref) < 1e-10

    fast_grads = torch.autograd.grad((fast * cotangent).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * cotangent).sum(), inputs)
    for label, g_fast, g_ref in zip(["x", *params], fast_grads, ref_grads):
        assert g_ref.norm() > 0, f"reference gradient of {label} is zero: the test would be vacuous"
        assert _rel(g_fast, g_ref) < 1e-10, label


APPROX_VARIANTS = [("trajectory_approx", {"num_prototypes": 8}),
                   ("trajectory_approx", {"num_prototypes": 8, "shared_prototypes": False}),
                   ("trajectory_approx", {"approximation": "nystrom", "num_prototypes": 4}),
                   ("trajectory_approx", {"approximation": "performer", "num_prototypes": 8})]


@pytest.mark.parametrize("variant", VARIANTS + APPROX_VARIANTS, ids=_variant_id)
def test_fused_flag_flip(variant):
    """Same instance, flag flipped: identical outputs (timm's test_attn2d pattern)."""
    name, opts = variant
    module = _random_module(name, opts, fused=True)
    x = torch.randn(2, 1 + 2 * 3 * 3, DIM, dtype=torch.float64)
    fused = module(x, (2, 3, 3))
    module.fused_attn = False
    assert _rel(fused, module(x, (2, 3, 3))) < 1e-12


@pytest.mark.parametrize("temporal_pool", ["attention", "average"])
def test_fused_trajectory_never_materialises_spacetime_scores(temporal_pool, monkeypatch):
    """Fused Norm_S: no tensor as large as the (T*S) x (T*S) score matrix per (batch, head) exists, forward or
    backward, and stage one is SDPA over the S keys of one frame. The explicit path trips the same detector."""
    batch, (num_t, grid_h, grid_w) = 1, (3, 6, 6)
    num_s = grid_h * grid_w
    score_numel = batch * HEADS * (num_t * num_s) ** 2
    x = torch.randn(batch, 1 + num_t * num_s, DIM, requires_grad=True)

    sdpa_calls = []
    real_sdpa = F.scaled_dot_product_attention

    def recording_sdpa(q, k, v, *args, **kwargs):
        sdpa_calls.append((tuple(q.shape), tuple(k.shape), q.stride(1)))
        return real_sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording_sdpa)
    module = get_attention("trajectory")(DIM, num_heads=HEADS, temporal_pool=temporal_pool, fused_attn=True)
    with LargestTensor() as probe:
        module(x, (num_t, grid_h, grid_w)).sum().backward()
    assert probe.max_numel < score_numel, f"fused path produced {probe.max_shape}"
    d = DIM // HEADS
    # Stage one: per (batch*head, frame t'), all T*S queries (broadcast over t' with stride 0) vs S keys.
    assert ((batch * HEADS, num_t, num_t * num_s, d), (batch * HEADS, num_t, num_s, d), 0) in sdpa_calls

    module.fused_attn = False
    with LargestTensor() as probe:
        module(x, (num_t, grid_h, grid_w)).sum().backward()
    assert probe.max_numel >= score_numel, "detector must catch the explicit path's score matrix"


# ---- attention dropout placement (trajectory) -----------------------------------------------------------------


def _record_dropout(monkeypatch):
    """Record (shape, p) of every dropout applied to attention weights: F.dropout calls and SDPA's dropout_p."""
    calls = []
    real_dropout, real_sdpa = F.dropout, F.scaled_dot_product_attention

    def dropout(x, p=0.5, *args, **kwargs):
        calls.append(("dropout", tuple(x.shape), p))
        return real_dropout(x, p, *args, **kwargs)

    def sdpa(q, k, v, *args, dropout_p=0.0, **kwargs):
        calls.append(("sdpa", tuple(q.shape[:-1]) + (k.shape[-2],), dropout_p))
        return real_sdpa(q, k, v, *args, dropout_p=dropout_p, **kwargs)

    monkeypatch.setattr(F, "dropout", dropout)
    monkeypatch.setattr(F, "scaled_dot_product_attention", sdpa)
    return calls


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
@pytest.mark.parametrize("placement", ["stage_one", "all"])
def test_trajectory_attention_dropout_placement(placement, fused, monkeypatch):
    """Default ("stage_one", the official code): only stage one's per-frame weights (T*S queries x T frames x S
    keys) are dropped; "all" also drops the CLS attention's (1 x (1 + T*S)) and stage two's (T per query)."""
    num_t, grid = 3, (2, 2)
    n, s = num_t * grid[0] * grid[1], grid[0] * grid[1]
    module = get_attention("trajectory")(DIM, num_heads=HEADS, attn_drop=0.3, fused_attn=fused,
                                         attn_drop_placement=placement).train()
    calls = _record_dropout(monkeypatch)
    module(torch.randn(2, 1 + n, DIM), (num_t, *grid))
    dropped = {shape for _, shape, p in calls if p > 0}
    stage_one = (2 * HEADS, num_t, n, s) if fused else (2, HEADS, n, num_t, s)
    cls = (2, HEADS, 1, 1 + n)
    stage_two = (2, n, HEADS, num_t)  # rearranged stage two: the weights over t' per (query, head)
    assert stage_one in dropped
    assert (cls in dropped) == (stage_two in dropped) == (placement == "all"), dropped
    assert len(dropped) == (1 if placement == "stage_one" else 3), dropped


def test_trajectory_attention_dropout_one_drops_stage_one_only():
    """attn_drop = 1 with the default placement: stage one's weights are all zero, so every trajectory token is
    zero and each patch output is proj(b_v), stage two's value bias; the CLS output is that of eval mode."""
    module = random_attention(get_attention("trajectory"), DIM, HEADS, fused=False, attn_drop=1.0)
    x = torch.randn(2, 1 + 3 * 4, DIM, dtype=torch.float64)
    expected_cls = module(x, (3, 2, 2))[:, 0]
    out = module.train()(x, (3, 2, 2))
    assert _rel(out[:, 0], expected_cls) < 1e-12
    b_v = module.proj_kv.bias[DIM:]
    patch = module.proj(b_v).expand_as(out[:, 1:])
    assert _rel(out[:, 1:], patch) < 1e-12
    module.attn_drop_placement = "all"  # the CLS weights are dropped too: its output is the projection's bias
    assert _rel(module(x, (3, 2, 2))[:, 0], module.proj.bias.expand(2, -1)) < 1e-12
    with pytest.raises(ValueError, match="attn_drop_placement"):
        get_attention("trajectory")(DIM, num_heads=HEADS, attn_drop_placement="stage_two")
