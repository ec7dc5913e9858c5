"""Both stages of exact trajectory attention in Triton kernels (models/attention/trajectory_fused_stages.py), run on
CPU tensors through Triton's interpreter (tests/conftest.py sets ``TRITON_INTERPRET=1``; the interpreter evaluates
``tl.dot`` and the reductions in float64 for float64 inputs, so the float64 checks hold the kernels themselves to
< 1e-10).

- The layer with ``stage_two_kernel="fused_stages"`` equals the loop references of Eq. 4-6 (the paper's values, the
  official code's, Avg_T): output and the gradients of the input and every parameter, float64. Sizes that are not
  powers of two, more heads than frames, two clips and more queries than one program's block (the kernels pad and
  mask, and the key-side backward loops over query blocks).
- What it keeps for backward: nothing of the trajectory tensor's size.
- Which path runs: only by name ("auto" never takes it); what it does not compute is refused by name, in one line.
"""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.attention import ApproximateTrajectoryAttention, TrajectoryAttention, trajectory_fused_stages
from models.memory import saved_tensor_bytes
from tests.models.attention.reference import trajectory_official_values_reference, trajectory_reference

F64 = torch.float64
TOL = 1e-10


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _layer(dim: int = 16, heads: int = 4, bias: bool = True, dtype=F64, **options) -> TrajectoryAttention:
    """Every weight and bias random and nonzero (a zero bias would hide the b_v / b_k terms)."""
    torch.manual_seed(0)
    module = TrajectoryAttention(dim, num_heads=heads, qkv_bias=bias, stage_two_kernel="fused_stages",
                                 **options).to(dtype)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.normal_(0.0, 0.5 if name.endswith("bias") else p.shape[-1] ** -0.5)
    return module


def _inputs(thw, dim=16, clips=1, dtype=F64):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(clips, 1 + thw[0] * thw[1] * thw[2], dim, dtype=dtype, generator=generator, requires_grad=True)
    return x, torch.randn(x.shape, dtype=dtype, generator=generator)


def _grads(out, cotangent, inputs):
    grads = torch.autograd.grad((out * cotangent).sum(), inputs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]


def _assert_equal_to_reference(module, x, cotangent, thw, tol=TOL):
    """Float64: the output and the gradients of x and every parameter within ``tol`` of Eq. 4-6's loops."""
    reference = (trajectory_official_values_reference if module.stage_two_values == "trajectory"
                 else trajectory_reference)
    names, params = zip(*module.named_parameters())
    out = module(x, thw)
    ref = reference(module, x, thw)
    assert _rel(out, ref) < tol, f"output: {_rel(out, ref):.1e}"
    got = _grads(out, cotangent, [x, *params])
    want = _grads(ref, cotangent, [x, *params])
    c = x.shape[-1]
    for name, g, w in zip(["x", *names], got, want):
        if name == "proj_kv.bias":  # b_k: no gradient here (it cancels in the softmax), rounding noise in the loops
            assert g[:c].abs().max() == 0 and w[:c].abs().max() < 1e-12
            g, w = g[c:], w[c:]
        if not w.any():  # proj_kv's value half under the official values: never read
            assert not g.any(), name
            continue
        assert _rel(g, w) < tol, f"{name}: {_rel(g, w):.1e}"


# ---- the layer against Eq. 4-6 -----------------------------------------------------------------------------------

LAYERS = [  # (options, dim, heads, bias, thw, clips)
    (dict(stage_two_values="projected"), 16, 4, True, (3, 1, 2), 1),  # the paper's: Norm_S, Att_T, W_v y~
    (dict(stage_two_values="trajectory"), 15, 3, False, (2, 1, 3), 1),  # the official values; d = 5, nh > T
    (dict(temporal_pool="average"), 16, 4, True, (3, 1, 2), 1),  # Avg_T (Table 4)
    (dict(stage_two_values="projected"), 16, 4, True, (2, 3, 3), 2),  # 18 queries: two blocks; two clips
]


@pytest.mark.parametrize("options,dim,heads,bias,thw,clips", LAYERS,
                         ids=["att_t-projected", "att_t-official-values", "avg_t", "two-query-blocks-two-clips"])
def test_the_fused_stages_equal_the_loop_reference_of_eq_4_to_6(options, dim, heads, bias, thw, clips):
    """Output and the gradients of x and every parameter, float64, < 1e-10."""
    module = _layer(dim, heads, bias, **options)
    x, cotangent = _inputs(thw, dim, clips)
    _assert_equal_to_reference(module, x, cotangent, thw)


@pytest.mark.slow  # the interpreter, some 30 s: more shapes, two clips, the CLS query's explicit path
@pytest.mark.parametrize("options,dim,heads,thw", [
    (dict(stage_two_values="projected", fused_attn=False), 12, 3, (4, 2, 3)),
    (dict(stage_two_values="trajectory"), 16, 2, (3, 3, 3)),
    (dict(temporal_pool="average", fused_attn=False), 12, 4, (2, 5, 4)),  # S = 20: two blocks of padded keys
])
def test_more_shapes_equal_the_loop_reference(options, dim, heads, thw):
    module = _layer(dim, heads, **options)
    x, cotangent = _inputs(thw, dim, clips=2)
    _assert_equal_to_reference(module, x, cotangent, thw)


@pytest.mark.slow  # the interpreter, some 10 s
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 3e-3)])
def test_float32_and_16_bit_paths_are_as_close_as_their_rounding_allows(dtype, tol):
    """The GPU's accumulation path (float32 for float32 and 16-bit inputs) against the float64 reference: float32
    rounding (some 1e-7 at these sizes) or float16's 2^-11 rounding of every operand (some 1e-3). bf16 is the same
    code with another element type; the interpreter multiplies bf16 operands of ``tl.dot`` wrongly, so it is checked
    on a GPU (``python -m tools trajectory-step --check-exact``)."""
    thw = (3, 1, 2)
    module = _layer(dtype=dtype)
    x, cotangent = _inputs(thw, dtype=dtype)
    names, params = zip(*module.named_parameters())
    out = module(x, thw)
    assert out.dtype == dtype
    module64 = _layer(dtype=F64)
    module64.load_state_dict({k: v.to(F64) for k, v in module.state_dict().items()})
    x64 = x.detach().to(F64).requires_grad_()
    ref = trajectory_reference(module64, x64, thw)
    assert _rel(out.to(F64), ref) < tol
    got = _grads(out, cotangent, [x, *params])
    want = _grads(ref, cotangent.to(F64), [x64, *module64.parameters()])
    for name, g, w in zip(["x", *names], got, want):
        if name == "proj_kv.bias":
            g, w = g[16:], w[16:]
        assert g.dtype == dtype and _rel(g.to(F64), w) < tol, f"{name}: {_rel(g.to(F64), w):.1e}"


def test_a_tiny_video_model_takes_the_option():
    """Through the model's ``attn_kwargs``: the fused stages and the PyTorch stage two give one loss and one set of
    gradients (float64)."""
    from models import create_model

    losses, grads = [], []
    for kernel in ("fused_stages", "pytorch"):
        torch.manual_seed(0)
        model = create_model("vit_tiny_video", attn_layer="trajectory", attn_kwargs={"stage_two_kernel": kernel},
                             depth=1, num_classes=3, num_frames=4, img_size=32).double()
        loss = model(torch.randn(1, 3, 4, 32, 32, dtype=F64, generator=torch.Generator().manual_seed(1))).square().sum()
        losses.append(loss)
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    assert _rel(losses[0], losses[1]) < TOL
    assert all(_rel(a, b) < TOL for a, b in zip(*grads) if b.any())


# ---- what it keeps -------------------------------------------------------------------------------------------------


def test_nothing_of_the_trajectory_tensors_size_is_kept():
    """Saved for backward, against the fused stage two (which keeps stage one's output, the trajectory tensor, once):
    at least one trajectory tensor less; what is kept is q, k, v (one storage), q~, the reference-frame attention's
    and stage two's weights a."""
    thw, dim, heads = (4, 2, 2), 32, 8
    x = torch.randn(1, 1 + 16, dim, generator=torch.Generator().manual_seed(1))
    saved = {}
    for kernel in ("fused_stages", "triton"):
        torch.manual_seed(0)
        module = TrajectoryAttention(dim, num_heads=heads, qkv_bias=True, stage_two_kernel=kernel)
        saved[kernel] = saved_tensor_bytes(lambda module=module: module(x, thw), exclude=module.parameters())
    trajectory_tensor = thw[0] * 16 * dim * 4  # (T, T*S, C) float32, one clip
    assert saved["fused_stages"] <= saved["triton"] - trajectory_tensor, saved


# ---- which path runs -----------------------------------------------------------------------------------------------


def test_only_a_run_that_names_it_takes_it(monkeypatch):
    """"auto" (the default) and "triton" never reach these kernels."""

    def refuse(*args, **kwargs):
        raise AssertionError("the fused stages ran unasked")

    monkeypatch.setattr(trajectory_fused_stages, "fused_trajectory_attention", refuse)
    for kernel in ("auto", "pytorch"):
        TrajectoryAttention(16, num_heads=4, stage_two_kernel=kernel)(torch.randn(1, 13, 16), (3, 2, 2))
    with pytest.raises(AssertionError, match="unasked"):
        TrajectoryAttention(16, num_heads=4, stage_two_kernel="fused_stages")(torch.randn(1, 13, 16), (3, 2, 2))


@pytest.mark.parametrize("options,named", [
    (dict(normalize="spacetime"), "normalize='spacetime'"),
    (dict(stage_two="literal"), "stage_two='literal'"),
    (dict(memory_lean=False), "memory_lean=False"),
    (dict(frames_per_pass=2), "frames_per_pass=2"),
    (dict(attn_drop=0.1), "attn_drop=0.1"),
])
def test_what_the_kernels_do_not_compute_is_refused_by_name(options, named):
    with pytest.raises(ValueError, match=f"stage_two_kernel='fused_stages'.*{named}"):
        TrajectoryAttention(16, num_heads=4, stage_two_kernel="fused_stages", **options)
    TrajectoryAttention(16, num_heads=4, **options)  # "auto" takes the PyTorch path for them


def test_an_option_changed_after_construction_and_an_approximation_are_refused():
    module = TrajectoryAttention(16, num_heads=4, stage_two_kernel="fused_stages").train()
    module.attn_drop.p = 0.2
    with pytest.raises(ValueError, match="attn_drop=0.2"):
        module(torch.randn(1, 13, 16), (3, 2, 2))
    module.eval()(torch.randn(1, 13, 16), (3, 2, 2))  # no dropout outside training
    with pytest.raises(ValueError, match="stage_two_kernel='fused_stages' computes exact stage one"):
        ApproximateTrajectoryAttention(16, num_heads=4, num_prototypes=2, stage_two_kernel="fused_stages")
    ApproximateTrajectoryAttention(16, num_heads=4, approximation="exact", stage_two_kernel="fused_stages")


def test_what_the_kernels_cannot_run_is_refused_in_one_line(monkeypatch):
    from models.attention.trajectory_fused_stages import fused_trajectory_attention

    q = torch.randn(1, 2, 6, 4)
    with pytest.raises(ValueError, match="6 patch tokens to be 4 frames"):
        fused_trajectory_attention(q, q, q, 4, "average")
    with pytest.raises(TypeError, match="not torch.int32"):
        fused_trajectory_attention(*(q.int(),) * 3, 3, "average")
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(RuntimeError, match="CPU tensors under TRITON_INTERPRET=1.*stage_two_kernel='pytorch'"):
        fused_trajectory_attention(q, q, q, 3, "average")


# ---- compiled for a GPU, without one -------------------------------------------------------------------------------

_COMPILE_FOR_AN_H100 = """
import subprocess, sys, tempfile
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import get_ptxas
from triton.compiler import ASTSource

import models.attention.trajectory_fused_stages as kernels

VIT_B = dict(NH=12, T=8, S=196, D=64, NH_P=16, T_P=8, S_P=256, D_P=64)  # 16 frames in tubelets of 2, 224^2
CHECK = dict(NH=4, T=4, S=16, D=16, NH_P=4, T_P=4, S_P=16, D_P=16)  # tools.trajectory_step.check_exact's layer
ACCUMULATED = {"a_ptr", "gl_ptr", "scale_ptr"}  # float32 whatever the inputs' type
launches = [(kernels._weights_kernel, {"GRAD": False, "OWN_HEAD": False}, {"out_ptr"}),
            (kernels._weights_kernel, {"GRAD": True, "OWN_HEAD": False}, {"out_ptr"}),
            (kernels._weights_kernel, {"GRAD": True, "OWN_HEAD": True}, {"out_ptr"}),
            *((kernels._pool_kernel, {"POOL": how}, {"c_ptr"}) for how in range(4)),
            *((kernels._dq_kernel, {"POOL": how}, set()) for how in range(3)),
            *((kernels._dkv_kernel, {"POOL": how}, set()) for how in range(3))]
ptxas = get_ptxas(90).path
for dtype, sizes in (("bf16", VIT_B), ("fp32", CHECK)):
    for fn, flags, accumulated in launches:
        constants = {**sizes, "BM": kernels.BLOCK_M, "ACC": tl.float32, **flags}
        signature = {name: ("*fp32" if name in ACCUMULATED | accumulated else "*" + dtype) if name.endswith("_ptr")
                     else "constexpr" if name in constants else "i64" for name in fn.arg_names}
        compiled = triton.compile(ASTSource(fn, signature, constants), target=GPUTarget("cuda", 90, 32),
                                  options={"num_warps": kernels.NUM_WARPS})
        with tempfile.NamedTemporaryFile("w", suffix=".ptx") as ptx:
            ptx.write(compiled.asm["ptx"])
            ptx.flush()
            usage = subprocess.run([ptxas, "-arch=sm_90a", "-v", ptx.name, "-o", "/dev/null"], capture_output=True,
                                   text=True, check=True).stderr
        spills = [line.split(":")[-1].strip() for line in usage.splitlines() if "spill" in line]
        print(dtype, fn.__name__, flags, "; ".join(spills))
print("compiled")
"""


@pytest.mark.slow  # Triton's compiler and ptxas, some 2 minutes on 2 cores
def test_the_kernels_compile_for_an_h100():
    """Without a GPU: Triton's compiler (its front end, the MLIR passes for sm_90 and ptxas, all in the wheel) turns
    every kernel into H100 machine code, at ViT-B's sizes in bf16 (the benchmark's autocast) and at the GPU check's
    sizes in float32: what the interpreter cannot catch (``tl.dot``'s shape and type rules on a GPU) fails here, not
    on a lent GPU. ptxas's spills are printed (``-s`` shows them). In a fresh process: this one interprets."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", _COMPILE_FOR_AN_H100], env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    print(done.stdout)
    assert done.returncode == 0 and done.stdout.strip().endswith("compiled"), done.stderr[-2000:]
