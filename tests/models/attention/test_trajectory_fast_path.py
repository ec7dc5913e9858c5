"""Trajectory attention's stage two: the rearranged fast path equals Eq. 5-6 as printed (values and every
gradient, float64), both equal the loop references, the official-values option matches its own reference, and
the fast path never projects every trajectory token."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.attention import TrajectoryAttention
from tests.models.attention.reference import trajectory_official_values_reference, trajectory_reference

DIM, HEADS = 16, 2
REFERENCES = {"projected": trajectory_reference, "trajectory": trajectory_official_values_reference}


def _random_module(normalize: str, fused: bool, values: str, stage_two: str = "rearranged",
                   attn_drop: float = 0.0, num_heads: int = HEADS) -> TrajectoryAttention:
    """Float64, every weight and bias random and nonzero (a zero bias would hide the b_v / b_k terms)."""
    torch.manual_seed(0)
    module = TrajectoryAttention(DIM, num_heads=num_heads, qkv_bias=True, attn_drop=attn_drop, fused_attn=fused,
                                 normalize=normalize, stage_two=stage_two, stage_two_values=values).double()
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.normal_(0.0, 0.5 if name.endswith("bias") else p.shape[-1] ** -0.5)
    return module.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _value_and_grads(module, fn, x, thw, cotangent):
    """Output of ``fn(module, x, thw)`` and the gradients of <output, cotangent> w.r.t. x and every parameter
    (zeros for a parameter the computation does not use)."""
    names, params = zip(*module.named_parameters())
    out = fn(module, x, thw)
    grads = torch.autograd.grad((out * cotangent).sum(), [x, *params], allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, [x, *params])]
    return out, dict(zip(["x", *names], grads))


def _assert_same_gradients(fast: dict, ref: dict, values: str) -> None:
    c = DIM
    for name, g_ref in ref.items():
        g_fast = fast[name]
        if name.startswith("proj_kv"):
            (k_fast, v_fast), (k_ref, v_ref) = g_fast.split(c), g_ref.split(c)
            if name == "proj_kv.bias":
                # b_k adds q~.b_k to all T logits of a (query, head): it cancels in the softmax, so its true
                # gradient is zero; the literal forms leave rounding noise there, the rearranged form nothing.
                assert k_ref.abs().max() < 1e-12 and k_fast.abs().max() < 1e-12, name
            else:
                assert k_ref.norm() > 0 and _rel(k_fast, k_ref) < 1e-10, f"{name} (key half)"
            if values == "trajectory":  # the official form never reads the value half of proj_kv
                assert not v_fast.any() and not v_ref.any(), f"{name} (value half must be unused)"
            else:
                assert v_ref.norm() > 0 and _rel(v_fast, v_ref) < 1e-10, f"{name} (value half)"
            continue
        assert g_ref.norm() > 0, f"reference gradient of {name} is zero: the comparison would be vacuous"
        assert _rel(g_fast, g_ref) < 1e-10, name


def _inputs(thw, batch=2):
    torch.manual_seed(1)
    num_tokens = 1 + thw[0] * thw[1] * thw[2]
    x = torch.randn(batch, num_tokens, DIM, dtype=torch.float64, requires_grad=True)
    return x, torch.randn(batch, num_tokens, DIM, dtype=torch.float64)


def _call(module, x, thw):
    return module(x, thw)


OPTIONS = [(n, f, v) for n in ("space", "spacetime") for f in (True, False) for v in ("projected", "trajectory")]


@pytest.mark.parametrize("normalize,fused,values", OPTIONS,
                         ids=[f"{n}-{'fused' if f else 'explicit'}-{v}" for n, f, v in OPTIONS])
def test_rearranged_equals_literal(normalize, fused, values):
    """Same instance, ``stage_two`` flipped: outputs and the gradients of x and every parameter agree."""
    thw = (4, 2, 3)
    module = _random_module(normalize, fused, values)
    x, cotangent = _inputs(thw)
    fast, fast_grads = _value_and_grads(module, _call, x, thw, cotangent)
    module.stage_two = "literal"
    literal, literal_grads = _value_and_grads(module, _call, x, thw, cotangent)
    assert _rel(fast, literal) < 1e-10
    _assert_same_gradients(fast_grads, literal_grads, values)


@pytest.mark.parametrize("normalize,values", [("space", "projected"), ("spacetime", "trajectory")])
def test_rearranged_equals_literal_when_u_is_recomputed(normalize, values, monkeypatch):
    """With more heads than frames (nh = 4 > T = 2, as ViT-B's 12 > 8) the autograd form (``memory_lean=False``)
    recomputes u in backward, not saved (the lean function never saves it:
    tests/models/attention/test_trajectory_memory.py)."""
    import models.attention.trajectory as trajectory

    calls = []

    def recording_checkpoint(fn, *args, **kwargs):
        calls.append(fn.__name__)
        return torch.utils.checkpoint.checkpoint(fn, *args, **kwargs)

    monkeypatch.setattr(trajectory, "checkpoint", recording_checkpoint)
    thw = (2, 2, 3)
    module = _random_module(normalize, True, values, num_heads=4)
    module.memory_lean = False
    x, cotangent = _inputs(thw)
    fast, fast_grads = _value_and_grads(module, _call, x, thw, cotangent)
    assert calls == ["_rearranged_logits"]
    module.stage_two = "literal"
    literal, literal_grads = _value_and_grads(module, _call, x, thw, cotangent)
    assert _rel(fast, literal) < 1e-10
    _assert_same_gradients(fast_grads, literal_grads, values)


CASES = [(s, n, v) for s in ("rearranged", "literal") for n in ("space", "spacetime")
         for v in ("projected", "trajectory")]


@pytest.mark.parametrize("stage_two,normalize,values", CASES, ids=["-".join(c) for c in CASES])
def test_matches_loop_reference(stage_two, normalize, values):
    """Both stage-two forms against the loop references written from Eq. 4-6 (``trajectory_reference``) and
    from the official code's Eq. 6 (``trajectory_official_values_reference``)."""
    thw = (3, 2, 2)
    module = _random_module(normalize, True, values, stage_two)
    x, cotangent = _inputs(thw)
    fast, fast_grads = _value_and_grads(module, _call, x, thw, cotangent)
    ref, ref_grads = _value_and_grads(module, REFERENCES[values], x, thw, cotangent)
    assert _rel(fast, ref) < 1e-10
    _assert_same_gradients(fast_grads, ref_grads, values)


def test_official_values_differ_from_the_paper():
    """The two Eq. 6 readings are different functions of the same weights (the option is not a no-op)."""
    thw = (3, 2, 2)
    module = _random_module("space", True, "projected")
    x, _ = _inputs(thw)
    paper = module(x, thw)
    module.stage_two_values = "trajectory"
    assert _rel(module(x, thw), paper) > 1e-3


@pytest.mark.parametrize("values", ["projected", "trajectory"])
def test_rearranged_equals_literal_under_dropout(values, monkeypatch):
    """With dropout on the stage-two weights they no longer sum to one; the rearranged form must then weight
    b_v by their sum. Dropout is made deterministic (a fixed mask per element count, in memory order) so both
    forms drop the same (query, head, t') weights: literal ((b n), nh, 1, tp) and rearranged (b, n, nh, tp)
    hold the same elements in the same order."""

    def fixed_dropout(x, p=0.5, training=True, inplace=False):
        if not training or p == 0.0:
            return x
        gen = torch.Generator().manual_seed(x.numel())
        keep = (torch.rand(x.numel(), generator=gen, dtype=x.dtype) >= p).reshape(x.shape)
        return x * keep / (1 - p)

    monkeypatch.setattr(F, "dropout", fixed_dropout)
    thw = (4, 2, 2)
    module = _random_module("space", False, values, attn_drop=0.4).train()
    x, cotangent = _inputs(thw)
    fast, fast_grads = _value_and_grads(module, _call, x, thw, cotangent)
    module.stage_two = "literal"
    literal, literal_grads = _value_and_grads(module, _call, x, thw, cotangent)
    module.eval()
    assert _rel(fast, module(x, thw)) > 1e-3, "dropout must have changed the output"
    assert _rel(fast, literal) < 1e-10
    _assert_same_gradients(fast_grads, literal_grads, values)


class _OutputShapes(TorchDispatchMode):
    """Records the shape of every tensor any aten op produces (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


def test_rearranged_never_projects_every_trajectory_token():
    """No tensor as large as the projected keys and values of all T trajectory tokens, (b, N, T, 2C), exists in
    the rearranged forward or backward; the literal form trips the same detector. (With official values the
    keys alone are as large as the trajectory tokens, so only the FLOP count below can tell the forms apart.)"""
    batch, thw = 1, (4, 3, 3)
    num_patches = thw[0] * thw[1] * thw[2]
    projected = (batch, num_patches, thw[0], 2 * DIM)
    module = TrajectoryAttention(DIM, num_heads=HEADS, qkv_bias=True)
    x = torch.randn(batch, 1 + num_patches, DIM, requires_grad=True)

    with _OutputShapes() as probe:
        module(x, thw).sum().backward()
    largest = max(probe.shapes, key=lambda s: torch.Size(s).numel())
    assert torch.Size(largest).numel() < torch.Size(projected).numel(), f"rearranged stage two made {largest}"

    module.stage_two = "literal"
    with _OutputShapes() as probe:
        module(x, thw).sum().backward()
    assert projected in probe.shapes


@pytest.mark.parametrize("values", ["projected", "trajectory"])
def test_stage_two_flops(values):
    """Multiply-adds of one layer, explicit path. Per patch token, stage two costs (proj_q included):
    literal, projected:   C^2 + 2 T C^2 + 2 T C   (proj_q, proj_kv on T tokens, QK~ and AV~ over T)
    rearranged, projected: 3 C^2 + 2 nh T C        (proj_q, u = W_k^T q~, W_v z; logits and z over T, per head)
    literal, trajectory:  C^2 + T C^2 + 2 T C     (keys only)
    rearranged, trajectory: 2 C^2 + nh T C + T C  (proj_q, u; logits per head; each head pools its d channels)
    """
    batch, thw = 2, (4, 3, 3)
    num_patches = thw[0] * thw[1] * thw[2]
    c, t, nh = DIM, thw[0], HEADS
    expected = {
        ("literal", "projected"): c * c + 2 * t * c * c + 2 * t * c,
        ("rearranged", "projected"): 3 * c * c + 2 * nh * t * c,
        ("literal", "trajectory"): c * c + t * c * c + 2 * t * c,
        ("rearranged", "trajectory"): 2 * c * c + nh * t * c + t * c,
    }
    x = torch.randn(batch, 1 + num_patches, DIM)
    counts = {}
    for pool in ("attention", "average"):
        for stage_two in ("literal", "rearranged"):
            module = TrajectoryAttention(DIM, num_heads=HEADS, qkv_bias=True, fused_attn=False, temporal_pool=pool,
                                         stage_two=stage_two, stage_two_values=values)
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                module(x, thw)
            counts[pool, stage_two] = counter.get_total_flops() // 2  # torch counts 2 FLOPs per multiply-add
    for stage_two in ("literal", "rearranged"):
        stage_two_flops = counts["attention", stage_two] - counts["average", stage_two]
        assert stage_two_flops == batch * num_patches * expected[stage_two, values], stage_two


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="stage_two must be"):
        TrajectoryAttention(DIM, num_heads=HEADS, stage_two="fast")
    with pytest.raises(ValueError, match="stage_two_values must be"):
        TrajectoryAttention(DIM, num_heads=HEADS, stage_two_values="values")


def test_benchmark_measures_one_variant():
    """The benchmark's in-process measurement (the CLI runs it once per variant in a fresh subprocess)."""
    from tools.trajectory_attention import measure, records_table

    records = [measure("tiny", variant, batch=1, device="cpu", repeats=1, block=False)
               for variant in ("literal", "rearranged")]
    for record in records:
        assert record["time_s"] > 0 and record["passes"] >= 1
        assert record["peak_mib"] is None or record["peak_mib"] >= 0
        assert record["retained_mib"] is None or record["retained_mib"] >= 0
    assert "rearranged" in records_table(records) and "speed-up vs literal" in records_table(records)
