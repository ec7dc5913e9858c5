"""CAST's counted complexity at paper scale and its measured training cost, frozen experts against all trainable.

    python -m tools cast-complexity [--shape tiny|paper] [--device cuda] [--batch N] [--precision fp16]

The learnable parameters of Table 1c's rows (``models.cast.complexity.TABLE1C``, beside the paper's), GFLOPs per view
and TFLOPs over views (counted on ``meta``), then ``measure_training`` at one shape. The figures, and why the
full-width cross-attention rows count 10.9 M below the paper: docs/cast_paper_scale.md#counted-not-copied.
"""

from __future__ import annotations

import torch

from data.command_line import MEASURED_BATCH, REPEATS, OneLineParser
from models.cast.complexity import (
    EK100_CLASSES,
    PAPER_CAST_B_PARAMS_M,
    PAPER_GFLOPS_PER_VIEW,
    PAPER_TFLOPS_2X3,
    TABLE1C,
    gflops_per_view,
    learnable_millions,
    measure_training,
    tflops_views,
)
from models.cast.model import count_learnable
from models.hardware import device_name
from models.memory import activation_bytes
from models.registry import create_model


def _all_trainable_activation_gib() -> float:
    with torch.device("meta"):
        model = create_model("cast_base", num_classes=EK100_CLASSES, train_experts=True)
    return activation_bytes(model, (1, 3, 16, 224, 224)) / 2**30


SHAPES = {"tiny": "cast_tiny", "paper": "cast_base"}
AUTOCAST = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def main(argv: list[str] | None = None) -> None:
    """The counted figures at paper scale, then the measured training cost at one shape."""
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES, default="tiny", help="model whose training step is measured")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--batch", type=MEASURED_BATCH, default=2, help="clips per step (the paper: 6 per GPU)")
    parser.add_argument("--repeats", type=REPEATS, default=5, help="timed steps (median) after one warm-up step")
    parser.add_argument("--precision", choices=AUTOCAST, default="fp32",
                        help="autocast dtype of the forward (the paper's GPU preset: fp16)")
    parser.add_argument("--skip-counted", action="store_true", help="only the measured training cost")
    args = parser.parse_args(argv)
    if not args.skip_counted:
        for row, (options, paper) in TABLE1C.items():
            print(f"Table 1c {row:14s} learnable {learnable_millions(**options):6.2f} M (paper {paper})")
        print(f"CAST-B single-label (174 classes) {learnable_millions(num_classes=174):.2f} M "
              f"(paper {PAPER_CAST_B_PARAMS_M})")
        with torch.device("meta"):
            model = create_model("cast_base", num_classes=EK100_CLASSES)
        total = sum(p.numel() for p in model.parameters())
        print(f"CAST-B trained fraction {count_learnable(model) / total:.3f} of {total / 1e6:.1f} M; activations "
              f"saved for backward per 16x224x224 clip (fp32): "
              f"{activation_bytes(model, (1, 3, 16, 224, 224)) / 2**30:.2f} GiB frozen vs "
              f"{_all_trainable_activation_gib():.2f} GiB all trainable")
        print(f"GFLOPs/view {gflops_per_view():.1f} (paper {PAPER_GFLOPS_PER_VIEW}); TFLOPs 2x3 views "
              f"{tflops_views():.3f} (paper {PAPER_TFLOPS_2X3})")
    cost = measure_training(SHAPES[args.shape], batch=args.batch, repeats=args.repeats, device=args.device,
                            autocast_dtype=AUTOCAST[args.precision])
    where = device_name(args.device)
    print(f"training step of {SHAPES[args.shape]}, batch {args.batch}, {args.precision}, on {where}:")
    for key in ("frozen", "full"):
        c = cost[key]
        print(f"  {key:6s}: peak {c['peak_mib']:.1f} MiB, saved for backward {c['saved_for_backward_mib']:.1f} "
              f"MiB (fp32), step {c['step_ms']:.1f} ms, trainable {c['trainable_params']:,} / {c['total_params']:,}")
    ratio = {k: cost["frozen"][k] / cost["full"][k] for k in ("peak_mib", "step_ms")}
    print(f"  frozen / full: peak {ratio['peak_mib']:.2f}x, step {ratio['step_ms']:.2f}x; "
          f"trained fraction {cost['trained_fraction']:.3f}")
