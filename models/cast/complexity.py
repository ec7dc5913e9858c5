"""Counted complexity of CAST at paper scale (on ``meta``) and measured training cost at tiny scale.

``python -m tools cast-complexity`` prints the learnable parameters of Table 1c's rows (``TABLE1C``, with the
paper's), GFLOPs per view and TFLOPs over views, then ``measure_training`` at one shape. The figures, and why the
full-width cross-attention rows count 10.9 M below the paper: docs/cast_paper_scale.md#counted-not-copied.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..flops import count_flops
from ..memory import activation_bytes, peak_bytes
from ..registry import create_model
from .model import count_learnable

EK100_CLASSES = {"verb": 97, "noun": 300}
# Table 1c rows: (our options, the paper's learnable parameters in millions).
TABLE1C: dict[str, tuple[dict[str, Any], float]] = {
    "identity": ({"exchange": "none", "time_adapter": True}, 18.1),
    "xattn": ({"exchange": "xattn"}, 85.9),
    "xattn_adapter": ({"exchange": "xattn_adapter"}, 93.0),
    "bcast": ({"exchange": "bcast"}, 44.8),
}
PAPER_CAST_B_PARAMS_M = 45.0  # Tables 9-11
PAPER_GFLOPS_PER_VIEW = 391.0  # Table 2
PAPER_TFLOPS_2X3 = 2.35  # Tables 9, 10


def learnable_millions(name: str = "cast_base", num_classes: int | Mapping[str, int] = EK100_CLASSES,
                       **overrides: Any) -> float:
    """Learnable parameters (M) of the registered CAST model ``name`` with ``overrides``, built on ``meta``."""
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, **overrides)
    return count_learnable(model) / 1e6


def released_s2t_table_excess(depth: int = 12, num_steps: int = 8, num_patches: int = 196, dim: int = 768) -> int:
    """Parameters a per-block S2T table over all T x (1 + N) spatial-expert tokens has beyond B-CAST's two N x D
    space tables: the gap between the paper's full-width cross-attention rows and ours (README: counted, not copied)."""
    return depth * (num_steps * (1 + num_patches) - 2 * num_patches) * dim


def gflops_per_view(name: str = "cast_base", num_classes: int | Mapping[str, int] = EK100_CLASSES,
                    **overrides: Any) -> float:
    """GFLOPs of one view (the model's own clip) of the registered CAST model, counted on ``meta``."""
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, **overrides)
    return count_flops(model, (1, 3, model.num_frames, model.img_size, model.img_size))


def tflops_views(clips: int = 2, crops: int = 3, **overrides: Any) -> float:
    """TFLOPs over ``clips`` x ``crops`` test views (Tables 9-11's "TFLOPs"; EPIC/SSV2: 2 x 3, K-400: 5 x 3)."""
    return gflops_per_view(**overrides) * clips * crops / 1e3


# (stage, expert, module in one block's exchange, what to record) in the order of supplementary Table 3 (read
# bottom-up there): B-CAST input, down-projection, the windows entering each cross-attention with its positional
# tables, the cross-attention output, the up-projection.
_STAGES = (
    ("input of B-CAST", "spatial", "", "input 1"), ("input of B-CAST (class tokens)", "spatial", "", "input 0"),
    ("input of B-CAST", "temporal", "", "input 3"),
    ("down projection", "spatial", "down_s", "output"), ("down projection", "temporal", "down_t", "output"),
    ("cross-attention windows (queries)", "spatial", "t2s.q", "output"),
    ("cross-attention windows (queries)", "temporal", "s2t.q", "output"),
    ("positional embeddings", "spatial", "t2s", "query_pos"), ("positional embeddings", "temporal", "s2t", "query_pos"),
    ("cross-attention output", "spatial", "t2s", "output"), ("cross-attention output", "temporal", "s2t", "output"),
    ("up projection", "spatial", "up_s", "output"), ("up projection", "temporal", "up_t", "output"),
)


def stage_shapes(name: str = "cast_base", block: int = 0, batch: int = 1,
                 **overrides: Any) -> list[tuple[str, str, tuple[int, ...]]]:
    """Supplementary Table 3 traced, not typed: (stage, expert, shape) of the tensors of one block's B-CAST in a
    forward pass of the registered model on ``meta``. Patch tokens are grids (B, T, N, C) here, the spatial class
    tokens (B, T, C) beside them (the paper's (N + 1) x B*T x C); windows are (windows, tokens per window, C):
    T2S (B*N, T, C), S2T (B*T, N, C); positional tables (tokens per window, C)."""
    with torch.device("meta"):
        model = create_model(name, num_classes=EK100_CLASSES, **overrides).eval()
    exchange = model.exchange[str(block)]
    seen: dict[tuple[str, str], tuple[int, ...]] = {}

    def hook(key: str, what: str):
        def record(module: torch.nn.Module, args: tuple, output: Any) -> None:
            value = args[int(what.split()[1])] if what.startswith("input") else output
            seen.setdefault((key, what), tuple(value.shape))  # first call: the patch grid (class tokens follow)
        return record

    handles = [exchange.get_submodule(path).register_forward_hook(hook(path, what))
               for _, _, path, what in _STAGES if not what.endswith("_pos")]
    try:
        with torch.no_grad():
            model(torch.empty(batch, 3, model.num_frames, model.img_size, model.img_size, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return [(stage, expert, tuple(getattr(exchange.get_submodule(path), what).shape) if what.endswith("_pos")
             else seen[(path, what)]) for stage, expert, path, what in _STAGES]


def measure_training(name: str = "cast_tiny", batch: int = 2, repeats: int = 5,
                     num_classes: int | Mapping[str, int] = EK100_CLASSES, device: str = "cpu",
                     autocast_dtype: torch.dtype | None = None, **overrides: Any) -> dict[str, Any]:
    """Training cost of the frozen-expert model against the same model with every parameter trainable.

    For each (``train_experts`` False, True): the peak memory of a training step (CPU: ``models.memory.peak_bytes``;
    CUDA: ``max_memory_allocated`` less what the process held before, weights, gradients and AdamW state included),
    the bytes autograd saves for backward, and the median wall time of ``repeats`` full steps after one warm-up, the
    two models' steps alternating so that drifting load weighs on both. ``autocast_dtype`` runs the forward under
    autocast. Returns ``{"frozen": {...}, "full": {...}, "trained_fraction": ...}``.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:  # the first matmuls allocate the BLAS workspaces, which would count against whichever model runs first
        probe = torch.ones(64, 64, device=dev, requires_grad=True)
        with torch.autocast(dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            (probe @ probe).float().sum().backward()
        del probe
    results: dict[str, dict[str, Any]] = {}
    steps: dict[str, Callable[[], None]] = {}
    for key, train_experts in (("frozen", False), ("full", True)):
        torch.manual_seed(0)
        before = torch.cuda.memory_allocated(dev) if cuda else 0
        model = create_model(name, num_classes=num_classes, train_experts=train_experts, **overrides)
        model = model.to(dev).train()
        shape = (batch, 3, model.num_frames, model.img_size, model.img_size)
        x = torch.randn(shape, device=dev)
        labels = torch.randint(0, model.num_classes, (batch,), device=dev)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4)

        def forward(model: nn.Module = model, x: torch.Tensor = x) -> torch.Tensor:
            with torch.autocast(dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                return model(x)

        def step(forward: Callable[[], torch.Tensor] = forward, optimizer: torch.optim.Optimizer = optimizer,
                 labels: torch.Tensor = labels) -> None:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(forward().float(), labels).backward()
            optimizer.step()
            sync()

        step()  # warm-up; AdamW's state exists from here on, as in training
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
            step()
            peak = torch.cuda.max_memory_allocated(dev) - before
        optimizer.zero_grad(set_to_none=True)
        if not cuda:
            peak = peak_bytes(forward)
        steps[key] = step
        results[key] = {
            "peak_mib": peak / 2**20,
            "saved_for_backward_mib": activation_bytes(model, shape) / 2**20,
            "trainable_params": sum(p.numel() for p in params),
            "total_params": sum(p.numel() for p in model.parameters()),
        }
    times: dict[str, list[float]] = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    for key, record in results.items():
        record["step_ms"] = statistics.median(times[key]) * 1e3
    return {**results, "trained_fraction": results["frozen"]["trainable_params"] / results["frozen"]["total_params"]}
