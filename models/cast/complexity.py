"""Counted complexity of CAST at paper scale (on ``meta``) and measured training cost at tiny scale.

Learnable parameters (EPIC-KITCHENS heads, 97 verbs + 300 nouns), ours vs the paper:

| Table 1c row | options | ours (M) | paper (M) |
|---|---|---|---|
| Identity | ``exchange="none", time_adapter=True`` | 18.07 | 18.1 |
| w/o adapter | ``exchange="xattn"`` | 75.00 | 85.9 |
| X-attn. -> adapter | ``exchange="xattn_adapter"`` | 82.10 | 93.0 |
| B-CAST | ``exchange="bcast"`` (default) | 44.78 | 44.8 |

CAST-B with a single-label head (``fusion="add"``, e.g. 174 SSV2 classes) has 45.2 M (paper: 45). Whence:
per block 4 adapters at ratio 1/4 (4 x 295,872) and B-CAST at ratio 1/2 (2,522,880: down/up projections,
LayerNorms, T2S with 2 x 8 x 384 and S2T with 2 x 196 x 384 positional embeddings); the heads; the two last
LayerNorms. The "Identity" row has the accuracy of Table 1a's independent experts with adapters (68.1 / 54.2 /
41.7 in both) and the parameter count of the official code's independent experts: AIM's CLIP with its temporal
adapter (3 adapters a block and a time embedding) and VideoMAE with 2 adapters, so it is built with
``time_adapter=True``; without it (B-CAST simply removed) it has 14.5 M.

The two full-width cross-attention rows are 10.91 M below the paper, both by the same amount:
``released_s2t_table_excess()`` = 12 blocks x (8 x 197 - 2 x 196) x 768 = 10,911,744. That is what a per-block S2T
positional table over all 8 x (1 + 196) spatial-expert tokens (the ``space_time_pos`` of the released code's earlier
S2T module, ``models/clip_modelling_finetune.py`` of KHU-VLL/CAST) adds over B-CAST's two 196 x D space tables:
with it, 75.00 + 10.91 = 85.92 and 82.10 + 10.91 = 93.02, the paper's 85.9 and 93.0. Our full-width rows keep
B-CAST's positional embeddings (the same module without its bottleneck), so we report 75.0 and 82.1 and do not add
a table the paper does not describe.

Training cost (``measure_training``, ``python -m models.cast.complexity``): the frozen experts' weights save no
inputs for their own gradients (autograd saves a frozen linear layer's input only when its weight trains), and a
training forward skips the last block's unread work (``CAST(skip_unread=True)``). At paper shape, activations
saved for backward per 16 x 224 x 224 clip (fp32, counted on ``meta``): 3.69 GiB frozen vs 4.51 GiB with every
parameter trainable (3.76 GiB frozen without ``skip_unread``); 20.7% of CAST-B's 216.8 M parameters train (EPIC
heads). Tiny shape on CPU (batch 2, one thread): peak 12.1 vs 14.5 MiB, saved 7.1 vs 9.6 MiB, a step about
0.65-0.75x the all-trainable one (55-88 vs 84-119 ms on a shared 2-core machine); 22.3% of the tiny model trains.

GFLOPs of one 16 x 224 x 224 view (``models.flops.count_flops``: attention counted explicitly, one multiply-add =
one FLOP): 390.5 (paper 391); the experts alone 320.8 (CLIP on 8 frames 140.5, VideoMAE 180.3), their adapters
22.3, B-CAST 47.4. Over 2 x 3 views: 2.343 TFLOPs (paper 2.35).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

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
    space tables: the difference between the paper's full-width cross-attention rows and ours (module doc)."""
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
                     num_classes: int | Mapping[str, int] = EK100_CLASSES, **overrides: Any) -> dict[str, Any]:
    """Training cost of the frozen-expert model against the same model with every parameter trainable.

    For each (``train_experts`` False, True), on CPU: the peak bytes of tensors alive during forward + backward
    (``models.memory.peak_bytes``: activations, gradients, temporaries), the bytes autograd saves for backward,
    and the median wall time of ``repeats`` full steps (forward, cross-entropy, backward, AdamW), after one
    warm-up step. Returns ``{"frozen": {...}, "full": {...}, "trained_fraction": ...}``.
    """
    results: dict[str, Any] = {}
    for key, train_experts in (("frozen", False), ("full", True)):
        torch.manual_seed(0)
        model = create_model(name, num_classes=num_classes, train_experts=train_experts, **overrides).train()
        shape = (batch, 3, model.num_frames, model.img_size, model.img_size)
        x = torch.randn(shape)
        labels = torch.randint(0, model.num_classes, (batch,))
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), labels).backward()
            optimizer.step()

        step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        optimizer.zero_grad(set_to_none=True)
        results[key] = {
            "peak_mib": peak_bytes(lambda: model(x)) / 2**20,
            "saved_for_backward_mib": activation_bytes(model, shape) / 2**20,
            "step_ms": statistics.median(times) * 1e3,
            "trainable_params": sum(p.numel() for p in params),
            "total_params": sum(p.numel() for p in model.parameters()),
        }
    results["trained_fraction"] = results["frozen"]["trainable_params"] / results["frozen"]["total_params"]
    return results


def _all_trainable_activation_gib() -> float:
    with torch.device("meta"):
        model = create_model("cast_base", num_classes=EK100_CLASSES, train_experts=True)
    return activation_bytes(model, (1, 3, 16, 224, 224)) / 2**30


def main() -> None:
    """``python -m models.cast.complexity``: the counted figures at paper scale and the tiny training cost."""
    for row, (options, paper) in TABLE1C.items():
        print(f"Table 1c {row:14s} learnable {learnable_millions(**options):6.2f} M (paper {paper})")
    print(f"CAST-B single-label (174 classes) {learnable_millions(num_classes=174):.2f} M "
          f"(paper {PAPER_CAST_B_PARAMS_M})")
    with torch.device("meta"):
        model = create_model("cast_base", num_classes=EK100_CLASSES)
    total = sum(p.numel() for p in model.parameters())
    print(f"CAST-B trained fraction {count_learnable(model) / total:.3f} of {total / 1e6:.1f} M; activations saved "
          f"for backward per 16x224x224 clip (fp32): {activation_bytes(model, (1, 3, 16, 224, 224)) / 2**30:.2f} GiB "
          f"frozen vs {_all_trainable_activation_gib():.2f} GiB all trainable")
    print(f"GFLOPs/view {gflops_per_view():.1f} (paper {PAPER_GFLOPS_PER_VIEW}); TFLOPs 2x3 views "
          f"{tflops_views():.3f} (paper {PAPER_TFLOPS_2X3})")
    cost = measure_training()
    for key in ("frozen", "full"):
        c = cost[key]
        print(f"tiny {key:6s}: peak {c['peak_mib']:.1f} MiB, saved for backward {c['saved_for_backward_mib']:.1f} "
              f"MiB, step {c['step_ms']:.1f} ms, trainable {c['trainable_params']:,} / {c['total_params']:,}")
    print(f"trained fraction {cost['trained_fraction']:.3f}")


if __name__ == "__main__":
    main()
