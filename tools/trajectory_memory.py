"""Memory vs number of tokens of one trajectory-attention layer: exact vs Orthoformer (Motionformer Sec. 3.2, the
"linear complexity" claim behind Tables 3 and 7), measured on the CPU.

    python -m tools trajectory-memory                    # T = 8 frames, S = 4x4 ... 14x14, width 192, 3 heads
    python -m tools trajectory-memory --json             # the same rows as JSON
    python -m tools trajectory-memory --device meta --dim 768 --heads 12 --sides 14 16 20 24   # paper width

The frame count T stays fixed and the spatial size S grows, as when the resolution grows (Table 7's 224 -> 336):
the trajectory tensor (T, T*S, d) that stage two consumes is linear in S, so at fixed T the Orthoformer layer's
memory is linear in the token count N = T*S while exact stage one holds (T*S)^2 scores per head.

Columns: ``saved`` = bytes autograd saves for backward in one forward (``models.memory.saved_tensor_bytes``);
``peak`` = the most bytes of op-created tensors alive at once during forward + backward (``models.memory.
peak_bytes``: op outputs only, no allocator caching or kernel workspaces). ``slope`` = d log(bytes) / d log(N)
between consecutive sizes: ~1 for linear growth, ->2 for quadratic. "exact" is the explicit softmax path (as the
official code); "exact_sdpa" uses SDPA, which on a CPU saves no score matrix (its compute stays quadratic).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import torch

from data.command_line import MEASURED_BATCH, OneLineParser, count
from models.attention import get_attention
from models.memory import peak_bytes, saved_tensor_bytes

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "exact": ("trajectory", {"fused_attn": False}),
    "exact_sdpa": ("trajectory", {"fused_attn": True}),
    "orthoformer": ("trajectory_approx", {"approximation": "orthoformer"}),
    "orthoformer_unshared": ("trajectory_approx", {"approximation": "orthoformer", "shared_prototypes": False}),
    "nystrom": ("trajectory_approx", {"approximation": "nystrom"}),
    "performer": ("trajectory_approx", {"approximation": "performer"}),
}


def measure(variant: str, frames: int, side: int, dim: int, heads: int, prototypes: int, batch: int,
            device: str) -> dict[str, Any]:
    """One layer, one size: saved and peak bytes of a training forward (+ backward for the peak)."""
    name, options = VARIANTS[variant]
    if name == "trajectory_approx":
        options = {**options, "num_prototypes": prototypes}
    torch.manual_seed(0)
    with torch.device(device):
        layer = get_attention(name)(dim, num_heads=heads, qkv_bias=True, **options)
        x = torch.randn(batch, 1 + frames * side * side, dim, requires_grad=True)
    thw = (frames, side, side)
    start = time.perf_counter()
    saved = saved_tensor_bytes(lambda: layer(x, thw), exclude=[*layer.parameters(), x])
    peak = peak_bytes(lambda: layer(x, thw))
    return {"variant": variant, "frames": frames, "side": side, "tokens": frames * side * side,
            "saved_bytes": saved, "peak_bytes": peak, "seconds": round(time.perf_counter() - start, 3)}


def run(variants: list[str], frames: int, sides: list[int], dim: int, heads: int, prototypes: int, batch: int,
        device: str) -> list[dict[str, Any]]:
    rows = []
    for variant in variants:
        previous = None
        for side in sides:
            try:
                row = measure(variant, frames, side, dim, heads, prototypes, batch, device)
            except ValueError as err:  # e.g. more prototypes/landmarks than tokens at this size
                rows.append({"variant": variant, "frames": frames, "side": side, "tokens": frames * side * side,
                             "skipped": str(err)})
                continue
            for key in ("saved", "peak"):
                row[f"{key}_slope"] = (None if previous is None else round(
                    math.log(row[f"{key}_bytes"] / previous[f"{key}_bytes"])
                    / math.log(row["tokens"] / previous["tokens"]), 3))
            rows.append(row)
            previous = row
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    table = []
    for r in rows:
        if "skipped" in r:
            table.append([r["variant"], r["tokens"], f"{r['side']}x{r['side']}", "-", "-", "-", "-", r["skipped"]])
            continue
        table.append([r["variant"], r["tokens"], f"{r['side']}x{r['side']}", f"{r['saved_bytes'] / 2**20:.2f}",
                      r["saved_slope"], f"{r['peak_bytes'] / 2**20:.2f}", r["peak_slope"], r["seconds"]])
    return tabulate(table, headers=["variant", "N=T*S", "S", "saved MiB", "slope", "peak MiB", "slope", "s"])


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["exact", "exact_sdpa", "orthoformer"],
                        choices=sorted(VARIANTS))
    parser.add_argument("--frames", type=count(1, 320, "a frame count"), default=8, help="T (fixed)")
    parser.add_argument("--sides", type=count(1, 140, "a side"), nargs="+", default=[4, 6, 8, 10, 12, 14],
                        help="S = side^2")
    parser.add_argument("--dim", type=count(1, 10_240, "a width"), default=192)
    parser.add_argument("--heads", type=count(1, 160, "a head count"),
                        default=3)
    parser.add_argument("--prototypes", type=count(1, 2560, "a prototype count"), default=128,
                        help="R (prototypes / landmarks / features)")
    parser.add_argument("--batch", type=MEASURED_BATCH, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, or meta (shapes only: fast at any size)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args(argv)
    rows = run(args.variants, args.frames, args.sides, args.dim, args.heads, args.prototypes, args.batch,
               args.device)
    if args.json:
        print(json.dumps({"config": vars(args), "rows": rows}, indent=1))
    else:
        print(f"one trajectory-attention layer, T={args.frames}, dim={args.dim}, heads={args.heads}, "
              f"R={args.prototypes}, batch={args.batch}, device={args.device}")
        print(format_table(rows))
