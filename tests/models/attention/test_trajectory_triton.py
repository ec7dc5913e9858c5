"""The fused Triton stage two of trajectory attention (models/attention/trajectory_triton.py), run on CPU tensors
through Triton's interpreter (tests/conftest.py sets ``TRITON_INTERPRET=1``; the interpreter evaluates ``tl.dot``
and the reductions in float64 for float64 inputs, so the float64 checks below hold the kernels themselves to
< 1e-10, not a float32 stand-in).

- Stage two alone equals Eq. 5-6 written plainly (projected keys and values, one token and head at a time), and the
  whole layer equals the loop references of Eq. 4-6: outputs and the gradients of every input, float64.
- Official options as the rows use them (official values, Norm_ST, the explicit stage one, no biases, stage-one
  dropout), sizes that are not powers of two and more heads than frames (the kernels pad and mask).
- Which path runs: "auto" never reaches the kernel on the CPU (the CPU results are the PyTorch path's, bit for bit);
  "triton" refuses what it does not implement, by name; the fused path keeps what the lean path keeps.
"""

import pytest
import torch
from torch import nn

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.attention import ApproximateTrajectoryAttention, TrajectoryAttention, trajectory_triton
from models.attention.trajectory_triton import fused_pool_trajectories
from models.memory import saved_tensor_bytes
from tests.models.attention.reference import trajectory_official_values_reference, trajectory_reference

F64 = torch.float64
TOL = 1e-10
REFERENCES = {"projected": trajectory_reference, "trajectory": trajectory_official_values_reference}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


# ---- stage two alone against Eq. 5-6 ---------------------------------------------------------------------------


def _eq_5_6(y: torch.Tensor, proj_q: nn.Linear, proj_kv: nn.Linear, num_heads: int, values: str) -> torch.Tensor:
    """Eq. 5-6 as printed, one (clip, token, head) at a time: y~ (b, nh, T, T*S, d) -> (b, T*S, C).

    Token n = (t, s) has trajectory tokens y~_nt' (heads' channels concatenated); q~ = W_q y~_nt + b_q,
    k~_t' = W_k y~_nt' + b_k, v~_t' = W_v y~_nt' + b_v (or y~_nt' itself: the official values); head h pools
    sum_t' softmax_t'(q~_h . k~_t'h / sqrt(d)) v~_t'h."""
    batch, nh, num_frames, num_tokens, d = y.shape
    c = nh * d
    frame_len = num_tokens // num_frames
    clips = []
    for b in range(batch):
        tokens = []
        for n in range(num_tokens):
            traj = [torch.cat([y[b, g, tp, n] for g in range(nh)]) for tp in range(num_frames)]
            q = proj_q(traj[n // frame_len])  # the reference frame t' = t
            kv = [proj_kv(z) for z in traj]
            heads = []
            for h in range(nh):
                part = slice(h * d, (h + 1) * d)
                logits = torch.stack([q[part] @ kv[tp][:c][part] for tp in range(num_frames)]) / d ** 0.5
                weights = logits.softmax(dim=0)
                pooled = [kv[tp][c:][part] if values == "projected" else traj[tp][part] for tp in range(num_frames)]
                heads.append(sum(weights[tp] * pooled[tp] for tp in range(num_frames)))
            tokens.append(torch.cat(heads))
        clips.append(torch.stack(tokens))
    return torch.stack(clips)


def _stage_two_inputs(nh: int, d: int, thw: tuple[int, int, int], bias: bool, layout: str, dtype=F64):
    torch.manual_seed(0)
    c, num_frames = nh * d, thw[0]
    num_tokens = num_frames * thw[1] * thw[2]
    proj_q, proj_kv = nn.Linear(c, c, bias=bias).to(dtype), nn.Linear(c, 2 * c, bias=bias).to(dtype)
    with torch.no_grad():
        for p in [*proj_q.parameters(), *proj_kv.parameters()]:
            p.normal_(0.0, 0.5 if p.dim() == 1 else c ** -0.5)
    y = torch.randn(2, nh, num_frames, num_tokens, d, dtype=dtype)  # two clips: the clip stride is used
    if layout == "token_major":  # (b nh) N T d in memory, as flash attention writes SDPA's output
        y = y.transpose(2, 3).contiguous().transpose(2, 3)
    return y.requires_grad_(), proj_q, proj_kv, torch.randn(2, num_tokens, c, dtype=dtype)


def _grads(out, cotangent, inputs):
    grads = torch.autograd.grad((out * cotangent).sum(), inputs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]


STAGE_TWO = [("projected", True, "token_major", 2, 4, (3, 1, 2)), ("trajectory", True, "contiguous", 2, 4, (3, 1, 2)),
             ("projected", False, "contiguous", 3, 5, (2, 1, 3)), ("trajectory", False, "token_major", 3, 5, (2, 1, 3))]


@pytest.mark.parametrize("values,bias,layout,nh,d,thw", STAGE_TWO,
                         ids=[f"{v}-bias={b}-{lay}-nh{h}d{d}" for v, b, lay, h, d, _ in STAGE_TWO])
def test_fused_stage_two_equals_eq_5_6(values, bias, layout, nh, d, thw):
    """Outputs and the gradients of y~, W_q, b_q, W_kv and b_kv: float64, < 1e-10. nh = 3 > T = 2 and d = 5 are
    padded to the kernels' block sizes and masked."""
    y, proj_q, proj_kv, cotangent = _stage_two_inputs(nh, d, thw, bias, layout)
    inputs = [y, *proj_q.parameters(), *proj_kv.parameters()]
    out = fused_pool_trajectories(y, proj_q, proj_kv, nh, values)
    ref = _eq_5_6(y, proj_q, proj_kv, nh, values)
    assert _rel(out, ref) < TOL
    c = nh * d
    for i, (got, want) in enumerate(zip(_grads(out, cotangent, inputs), _grads(ref, cotangent, inputs))):
        if want.shape[0] == 2 * c and want.dim() == 1:  # proj_kv.bias: b_k cancels in the softmax (its true gradient
            assert got[:c].abs().max() == 0 and want[:c].abs().max() < 1e-12  # is zero: rounding noise in Eq. 6)
            got, want = got[c:], want[c:]
        if values == "trajectory" and want.shape[0] == 2 * c:  # the official values never read proj_kv's value half
            assert not got[c:].any() and not want[c:].any()
            got, want = got[:c], want[:c]
        if want.numel() == 0 or not want.any():
            assert not got.any(), f"input {i}"
            continue
        assert _rel(got, want) < TOL, f"input {i}: {_rel(got, want):.1e}"


def test_fused_stage_two_in_float32_is_as_close_as_float32_allows():
    """The float32 accumulation path (the GPU's for float32 and 16-bit inputs) against the float64 reference: the
    interpreter runs float32 products in float32, so only float32 rounding separates them (bound 1e-5 relative;
    some 1e-7 is what float32 gives at these sizes)."""
    y, proj_q, proj_kv, cotangent = _stage_two_inputs(2, 4, (3, 1, 2), True, "token_major", dtype=torch.float32)
    inputs = [y, *proj_q.parameters(), *proj_kv.parameters()]
    out = fused_pool_trajectories(y, proj_q, proj_kv, 2, "projected")
    assert out.dtype == torch.float32
    reference_inputs = [x.detach().double().requires_grad_() for x in inputs]
    y64, (wq, bq, wkv, bkv) = reference_inputs[0], reference_inputs[1:]
    q64, kv64 = nn.Linear(8, 8).double(), nn.Linear(8, 16).double()
    with torch.no_grad():
        q64.weight.copy_(wq), q64.bias.copy_(bq), kv64.weight.copy_(wkv), kv64.bias.copy_(bkv)
    ref = _eq_5_6(y64, q64, kv64, 2, "projected")
    assert _rel(out.double(), ref) < 1e-5
    got = _grads(out, cotangent, inputs)
    want = _grads(ref, cotangent.double(), [y64, *q64.parameters(), *kv64.parameters()])
    for g, w in zip(got[:4], want[:4]):  # proj_kv.bias: its key half is rounding noise in the reference
        assert _rel(g.double(), w) < 1e-5


# ---- the whole layer against Eq. 4-6 ---------------------------------------------------------------------------

LAYER_OPTIONS = [dict(normalize=n, fused_attn=f, stage_two_values=v, qkv_bias=b)
                 for n, f, v, b in [("space", True, "projected", True), ("space", True, "trajectory", True),
                                    ("spacetime", False, "projected", True), ("space", False, "trajectory", False),
                                    ("spacetime", True, "trajectory", True)]]


def _layer(options: dict, dim: int = 16, heads: int = 4, **extra) -> TrajectoryAttention:
    """Float64, every weight and bias random and nonzero (a zero bias would hide the b_v / b_k terms)."""
    options = dict(options)
    bias = options.pop("qkv_bias", True)
    torch.manual_seed(0)
    module = TrajectoryAttention(dim, num_heads=heads, qkv_bias=bias, **options, **extra).double()
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.normal_(0.0, 0.5 if name.endswith("bias") else p.shape[-1] ** -0.5)
    return module


def _layer_inputs(thw, dim=16):
    torch.manual_seed(1)  # one clip: the interpreter runs one program per token, one after another
    x = torch.randn(1, 1 + thw[0] * thw[1] * thw[2], dim, dtype=F64, requires_grad=True)
    return x, torch.randn(x.shape, dtype=F64)


@pytest.mark.parametrize("options", LAYER_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_the_fused_layer_equals_the_loop_reference_of_eq_4_to_6(options):
    """``stage_two_kernel="triton"``: output and the gradients of x and every parameter against Eq. 4-6 as loops
    (the paper's values, or the official code's), float64, < 1e-10; 4 heads over 3 frames."""
    thw = (3, 1, 2)
    module = _layer(options, stage_two_kernel="triton")
    x, cotangent = _layer_inputs(thw)
    names, params = zip(*module.named_parameters())
    out = module(x, thw)
    ref = REFERENCES[options["stage_two_values"]](module, x, thw)
    assert _rel(out, ref) < TOL
    got = _grads(out, cotangent, [x, *params])
    want = _grads(ref, cotangent, [x, *params])
    for name, g, w in zip(["x", *names], got, want):
        if name == "proj_kv.bias":  # b_k: zero here, rounding noise in the loops; b_v: compared
            assert g[:16].abs().max() == 0 and w[:16].abs().max() < 1e-12
            g, w = g[16:], w[16:]
        if not w.any():  # proj_kv's value half under the official values: never read
            assert not g.any(), name
            continue
        assert _rel(g, w) < TOL, f"{name}: {_rel(g, w):.1e}"


def test_stage_one_dropout_is_the_pytorch_paths():
    """Training with attention dropout where the tables put it (stage one only): the same random stage one, then
    either stage two, give the same output and gradients."""
    thw = (3, 1, 2)
    results = []
    for kernel in ("triton", "pytorch"):
        module = _layer(LAYER_OPTIONS[0], attn_drop=0.3, stage_two_kernel=kernel).train()
        x, cotangent = _layer_inputs(thw)
        torch.manual_seed(5)
        out = module(x, thw)
        results.append([out, *_grads(out, cotangent, [x, *module.parameters()])])
    module.eval()
    assert _rel(results[1][0], module(x, thw)) > 1e-3, "dropout must have changed the output"
    for fused, plain in zip(*results):
        assert _rel(fused, plain) < TOL


def test_a_tiny_video_model_takes_the_option():
    """Through the model's ``attn_kwargs`` (checked against the layer's options): the fused and PyTorch stage twos
    give one loss and one set of gradients."""
    from models import create_model

    losses, grads = [], []
    for kernel in ("triton", "pytorch"):
        torch.manual_seed(0)
        model = create_model("vit_tiny_video", attn_layer="trajectory", attn_kwargs={"stage_two_kernel": kernel},
                             depth=1, num_classes=3, num_frames=4, img_size=32).double()
        loss = model(torch.randn(1, 3, 4, 32, 32, dtype=F64, generator=torch.Generator().manual_seed(1))).square().sum()
        losses.append(loss)
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    assert _rel(losses[0], losses[1]) < TOL
    assert all(_rel(a, b) < TOL for a, b in zip(*grads) if b.any())


# ---- which path runs -------------------------------------------------------------------------------------------


def test_auto_keeps_the_pytorch_path_on_the_cpu(monkeypatch):
    """The default ("auto") never reaches the kernel with CPU tensors: outputs and gradients are those of
    ``stage_two_kernel="pytorch"``, bit for bit (the tracked CPU records stand)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the fused kernel ran on the CPU under 'auto'")

    monkeypatch.setattr(trajectory_triton, "fused_pool_trajectories", refuse)
    thw = (3, 2, 2)
    results = []
    for kernel in ("auto", "pytorch"):
        module = _layer(LAYER_OPTIONS[0], stage_two_kernel=kernel).float()
        x = torch.randn(2, 13, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
        out = module(x, thw)
        results.append([out, *torch.autograd.grad(out.square().sum(), [x, *module.parameters()])])
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_the_fused_path_keeps_what_the_lean_path_keeps():
    """Saved for backward: the trajectory tensor once (the storage SDPA keeps), q~ and the weights a; neither u nor
    z (each nh/T of the trajectory tensor) nor a copy of the trajectory tokens."""
    thw, dim = (4, 2, 2), 32
    x = torch.randn(1, 1 + 16, dim, generator=torch.Generator().manual_seed(1))
    saved = {}
    for kernel in ("triton", "pytorch"):
        torch.manual_seed(0)
        module = TrajectoryAttention(dim, num_heads=8, qkv_bias=True, stage_two_kernel=kernel)
        saved[kernel] = saved_tensor_bytes(lambda module=module: module(x, thw), exclude=module.parameters())
    assert saved["triton"] == saved["pytorch"], saved


@pytest.mark.parametrize("options,named", [
    (dict(temporal_pool="average"), "temporal_pool='average'"),
    (dict(stage_two="literal"), "stage_two='literal'"),
    (dict(memory_lean=False), "memory_lean=False"),
    (dict(frames_per_pass=2), "frames_per_pass=2"),
    (dict(attn_drop=0.1, attn_drop_placement="all"), "attn_drop_placement='all'"),
])
def test_triton_refuses_what_it_does_not_fuse_by_name(options, named):
    with pytest.raises(ValueError, match=f"stage_two_kernel='triton'.*{named}"):
        TrajectoryAttention(16, num_heads=4, stage_two_kernel="triton", **options)
    TrajectoryAttention(16, num_heads=4, **options)  # "auto" takes the PyTorch path for them


def test_triton_refuses_an_option_changed_after_construction_and_an_approximate_stage_one():
    module = TrajectoryAttention(16, num_heads=4, stage_two_kernel="triton")
    module.memory_lean = False
    with pytest.raises(ValueError, match="memory_lean=False"):
        module(torch.randn(1, 13, 16), (3, 2, 2))
    with pytest.raises(ValueError, match="stage_two_kernel='triton' needs the whole trajectory tensor"):
        ApproximateTrajectoryAttention(16, num_heads=4, num_prototypes=2, stage_two_kernel="triton")
    ApproximateTrajectoryAttention(16, num_heads=4, approximation="exact", stage_two_kernel="triton")
    with pytest.raises(ValueError, match="stage_two_kernel must be one of"):
        TrajectoryAttention(16, num_heads=4, stage_two_kernel="cuda")


def test_cpu_tensors_without_the_interpreter_are_refused_in_one_line(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET")
    y, proj_q, proj_kv, _ = _stage_two_inputs(2, 4, (2, 1, 2), True, "contiguous")
    with pytest.raises(RuntimeError, match="CPU tensors under TRITON_INTERPRET=1.*stage_two_kernel='pytorch'"):
        fused_pool_trajectories(y, proj_q, proj_kv, 2)


def test_16_bit_inputs_take_the_kernels_16_bit_path():
    """float16 trajectory tokens and weights (autocast's case on a GPU, where bf16 is the same code with another
    element type): the products take 16-bit operands and accumulate in float32, and the result is as close to the
    float64 reference as 16-bit operands allow (float16's 2^-11 rounding of every operand: bound 3e-3 relative,
    some 4e-4 here). bf16 itself is not checked here: Triton's interpreter multiplies bf16 operands of ``tl.dot``
    wrongly; ``python -m models.benchmark_step --check-exact`` checks it on a GPU."""
    y, proj_q, proj_kv, cotangent = _stage_two_inputs(2, 8, (2, 1, 2), True, "token_major", dtype=torch.float16)
    out = fused_pool_trajectories(y, proj_q, proj_kv, 2, "projected")
    assert out.dtype == torch.float16
    g_y = torch.autograd.grad((out.float() * cotangent.float()).sum(), y)[0]
    assert g_y.dtype == torch.float16 and g_y.stride() == y.stride()
    y64 = y.detach().double().requires_grad_()
    q64, kv64 = proj_q.double(), proj_kv.double()
    ref = _eq_5_6(y64, q64, kv64, 2, "projected")
    assert _rel(out.double(), ref) < 3e-3
    assert _rel(g_y.double(), torch.autograd.grad((ref * cotangent.double()).sum(), y64)[0]) < 3e-3


_COMPILE_FOR_AN_H100 = """
import importlib.util, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

spec = importlib.util.spec_from_file_location("trajectory_triton", sys.argv[1])
kernels = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kernels)
sizes = dict(NH=12, T=8, D=64, NH_P=16, T_P=16, D_P=64, F64=False)  # ViT-B at 16 frames
for fn in (kernels._pool_forward_kernel, kernels._pool_backward_kernel):
    for dtype, projected in (("bf16", True), ("bf16", False), ("fp32", True)):
        signature = {name: ("*fp32" if name == "a_ptr" else "*" + dtype) if name.endswith("_ptr") else
                     "constexpr" if name in sizes or name == "PROJECTED" else "i32" if name == "num_tokens" else "i64"
                     for name in fn.arg_names}
        triton.compile(ASTSource(fn, signature, {**sizes, "PROJECTED": projected}), target=GPUTarget("cuda", 90, 32))
print("compiled")
"""


def test_the_kernels_compile_for_an_h100():
    """Without a GPU: Triton's compiler (its front end, the MLIR passes for sm_90 and ptxas, all in the wheel) turns
    both kernels into H100 machine code, at ViT-B's sizes, for bf16 (the benchmark's autocast, both values) and
    float32 (the GPU check's): what the interpreter cannot catch (``tl.dot``'s shape and type rules on a GPU) fails
    here, not on a lent GPU. In a fresh process: this one runs Triton in interpreter mode."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", _COMPILE_FOR_AN_H100, trajectory_triton.__file__], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("compiled"), done.stderr[-2000:]
