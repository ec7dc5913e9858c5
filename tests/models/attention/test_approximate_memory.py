"""The activation-memory claims of the attention approximations (models/memory.py, tools/trajectory_memory.py):
the saved-tensor counter against the meta device and the CPU, approximations cheaper than exact, and the memory
benchmark's records."""

import gc
import json
import weakref

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.memory import (
    activation_bytes,
    cuda_training_peak_gib,
    lra_training_memory_mb,
    model_activation_bytes,
    saved_tensor_bytes,
)
from tools.trajectory_memory import main as benchmark_main
from tools.trajectory_memory import run as benchmark_run


def test_activation_bytes_meta_matches_cpu():
    """With explicit attention (no device-specific SDPA kernel) the meta device saves exactly what the CPU does."""
    kwargs = dict(attn_layer="trajectory_approx", attn_kwargs=dict(num_prototypes=8), fused_attn=False,
                  depth=1, num_classes=5)
    cpu = model_activation_bytes("vit_tiny_video", device="cpu", **kwargs)
    meta = model_activation_bytes("vit_tiny_video", device="meta", **kwargs)
    assert cpu == meta > 0


def test_activation_bytes_counts_saved_tensors():
    lin = torch.nn.Linear(10, 20)
    model = torch.nn.Sequential(lin, torch.nn.Tanh())
    # Linear saves its input (4x10) and tanh its output (4x20); the weight is a parameter and is excluded.
    assert activation_bytes(model, (4, 10)) == 4 * (4 * 10 + 4 * 20)


def test_counting_saved_tensors_frees_the_graph_it_counted():
    """Tanh saves its own output: a counting hook that kept that output would tie it to its own graph in a cycle
    Python cannot collect, and a GPU measuring row after row ran out of memory."""
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.Tanh())
    outputs = []

    def forward():
        out = model(torch.randn(4, 10))
        outputs.append(weakref.ref(out))
        return out

    assert saved_tensor_bytes(forward, exclude=model.parameters()) == 4 * (4 * 10 + 4 * 20)
    gc.collect()
    assert outputs[0]() is None


def test_approximate_uses_less_activation_memory():
    """CPU at a moderate shape (T=4, S=8x8 = 256 tokens), and the meta device at the paper's ViT-B 16x224x224."""
    common = dict(input_shape=(1, 3, 8, 64, 64), device="cpu", depth=1, num_classes=5, fused_attn=False)
    exact = model_activation_bytes("vit_tiny_video", attn_layer="trajectory", **common)
    approx = model_activation_bytes("vit_tiny_video", attn_layer="trajectory_approx",
                                    attn_kwargs=dict(num_prototypes=16), **common)
    assert approx < 0.8 * exact, (approx, exact)
    paper = dict(depth=2, fused_attn=False)
    exact = model_activation_bytes("vit_base_patch16_video", attn_layer="trajectory", **paper)
    approx = model_activation_bytes("vit_base_patch16_video", attn_layer="trajectory_approx", **paper)
    assert approx < exact


def test_lra_memory_column_order():
    """Table 5's memory column without a GPU: activations at ListOps shape (batch 32 x 2048) on the meta device.
    The paper's order: exact > Performer-256 > Nystrom-128 > Orthoformer-64."""
    if torch.cuda.is_available():
        pytest.skip("on a GPU the function measures; this test covers the CPU fallback")
    values = {a: lra_training_memory_mb(a, b) for a, b in
              [("exact", None), ("performer", 256), ("nystrom", 128), ("orthoformer", 64)]}
    assert all("needs GPU" in how for _, how in values.values())
    mb = [values[a][0] for a in ("exact", "performer", "nystrom", "orthoformer")]
    assert all(b < a for a, b in zip(mb, mb[1:])), mb
    assert cuda_training_peak_gib("vit_tiny_video", (1, 3, 8, 32, 32)) is None


def test_benchmark_orthoformer_linear_exact_quadratic():
    rows = benchmark_run(["exact", "orthoformer"], frames=2, sides=[6, 12, 24], dim=16, heads=2, prototypes=16,
                         batch=1, device="cpu")
    slopes = {(r["variant"], r["side"]): r["saved_slope"] for r in rows}
    # Doubling the side quadruples the tokens; exponent of bytes vs tokens over the last step:
    assert 0.8 < slopes["orthoformer", 24] < 1.1, slopes
    assert slopes["exact", 24] > 1.6, slopes
    peaks = {(r["variant"], r["side"]): r["peak_slope"] for r in rows}
    assert 0.8 < peaks["orthoformer", 24] < 1.1 and peaks["exact", 24] > 1.6, peaks


def test_benchmark_json(capsys):
    benchmark_main(["--json", "--variants", "orthoformer", "--sides", "4", "6", "--dim", "8", "--heads", "2",
                    "--prototypes", "8", "--frames", "2", "--device", "meta"])
    result = json.loads(capsys.readouterr().out)
    assert [r["side"] for r in result["rows"]] == [4, 6]
    assert result["rows"][1]["saved_bytes"] > result["rows"][0]["saved_bytes"] > 0
