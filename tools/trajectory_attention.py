"""Forward+backward time and peak memory of one trajectory attention layer (or block) in four formulations.

    python -m tools trajectory-attention [--shape tiny|paper|all] [--device cpu|cuda] [--batch N] [--block] [--json]

Variants (``VARIANTS``, the same function, tested equal): ``literal`` (the official code's), ``fused``,
``rearranged`` (our default) and ``rearranged_autograd``. Each runs in a fresh subprocess; on a CPU, memory is read
from the resident set size. Method: tools/README.md#trajectory-attention.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

from data.command_line import MEASURED_BATCH, REPEATS, THREADS, OneLineParser
from models.attention import TrajectoryAttention
from models.hardware import device_name
from models.video_vit import Block

SHAPES = {
    # name: (dim, num_heads, (T, H, W)); the tiny preset and ViT-B at the paper's clip
    "tiny": (64, 4, (4, 4, 4)),
    "paper": (768, 12, (8, 14, 14)),
}
VARIANTS = {
    # name: TrajectoryAttention options
    "literal": {"fused_attn": False, "stage_two": "literal"},
    "fused": {"fused_attn": True, "stage_two": "literal"},
    "rearranged": {"fused_attn": True, "stage_two": "rearranged"},
    "rearranged_autograd": {"fused_attn": True, "stage_two": "rearranged", "memory_lean": False},
}


def _status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"/proc/self/status has no {field}: CPU memory needs Linux")


def _reset_peak_resident() -> None:
    from data.atomic_write import write_proc

    write_proc("/proc/self/clear_refs", "5")  # "5" resets the peak resident set size (VmHWM) to the current one


def measure(shape: str, variant: str, batch: int, device: str, repeats: int, block: bool,
            threads: int | None = None) -> dict[str, Any]:
    """One forward+backward benchmark in this process (the CLI runs each in a fresh subprocess)."""
    if threads:
        torch.set_num_threads(threads)
    dim, num_heads, thw = SHAPES[shape]
    torch.manual_seed(0)
    dev = torch.device(device)
    if block:
        layer = Block(dim, num_heads, attn_layer=TrajectoryAttention, attn_kwargs=VARIANTS[variant])
    else:
        layer = TrajectoryAttention(dim, num_heads=num_heads, qkv_bias=True, **VARIANTS[variant])
    layer = layer.to(dev).train()
    x = torch.randn(batch, 1 + thw[0] * thw[1] * thw[2], dim, device=dev, requires_grad=True)
    cuda = dev.type == "cuda"

    def finish(loss: torch.Tensor) -> None:
        loss.backward()
        x.grad = None
        layer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()

    def step() -> None:
        finish(layer(x, thw).sum())

    def allocated() -> int:
        return torch.cuda.memory_allocated() if cuda else _status_bytes("VmRSS")

    step()  # warm-up: one-time allocations (kernel caches, lazy inits) stay out of both figures
    peak = retained = None
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        method = "cuda.max_memory_allocated"
    else:
        try:
            _reset_peak_resident()
            method = "peak RSS (VmHWM) increase"
        except OSError:  # some sandboxes forbid it: report no figure rather than a wrong one
            method = "n/a (/proc/self/clear_refs not writable)"
    if cuda or method.startswith("peak"):
        before = allocated()
        loss = layer(x, thw).sum()
        if cuda:
            torch.cuda.synchronize()
        retained = allocated() - before  # what the forward keeps for backward (deeper models stack these)
        finish(loss)
        peak = (torch.cuda.max_memory_allocated() if cuda else _status_bytes("VmHWM")) - before

    times = []
    while len(times) < repeats or (sum(times) < 2.0 and len(times) < 100):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {
        "shape": shape, "variant": variant, "batch": batch, "block": block, "device": device,
        "dim": dim, "num_heads": num_heads, "thw": list(thw),
        "time_s": statistics.median(times), "time_min_s": min(times), "passes": len(times),
        "peak_mib": None if peak is None else peak / 2 ** 20,
        "retained_mib": None if retained is None else retained / 2 ** 20, "memory_method": method,
        "threads": torch.get_num_threads(),
    }


def _run_subprocess(config: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tools.trajectory_attention", "--worker", json.dumps(config)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}  # RSS follows live tensors (models/README.md)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {config} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def records_table(records: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    def mib(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}" if a is not None and b else "n/a"

    rows = []
    for r in records:
        base = next(b for b in records if b["shape"] == r["shape"] and b["variant"] == "literal")
        rows.append([r["shape"], r["batch"], r["variant"], f"{1e3 * r['time_s']:.1f}", f"{1e3 * r['time_min_s']:.1f}",
                     f"{base['time_s'] / r['time_s']:.2f}x", mib(r["peak_mib"]), ratio(r["peak_mib"], base["peak_mib"]),
                     mib(r["retained_mib"]), ratio(r["retained_mib"], base["retained_mib"])])
    headers = ["shape", "batch", "variant", "fwd+bwd ms (median)", "min ms", "speed-up vs literal", "peak MiB",
               "peak / literal", "kept for bwd MiB", "kept / literal"]
    return tabulate(rows, headers=headers, tablefmt="github")


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=[*SHAPES, "all"], default="all")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--batch", type=MEASURED_BATCH, default=1,
                        help="clips per batch (the paper trains with 1-4 per GPU)")
    parser.add_argument("--repeats", type=REPEATS, default=3, help="at least this many timed passes (more up to 2 s)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--threads", type=THREADS, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--block", action="store_true", help="time a whole block (LayerNorms, attention, MLP)")
    parser.add_argument("--json", action="store_true", help="print the records as JSON instead of a table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one measurement, JSON config
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(measure(**json.loads(args.worker))))
        return
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")
    if "literal" not in args.variants:
        args.variants = ["literal", *args.variants]  # the baseline every ratio is relative to
    shapes = list(SHAPES) if args.shape == "all" else [args.shape]
    records = [_run_subprocess({"shape": s, "variant": v, "batch": args.batch, "device": args.device,
                                "repeats": args.repeats, "block": args.block, "threads": args.threads})
               for s in shapes for v in args.variants]
    if args.json:
        print(json.dumps(records, indent=1))
        return
    what = "block" if args.block else "trajectory attention layer"
    print(f"One {what}, forward+backward, float32, on {device_name(args.device, records[0]['threads'])}; "
          f"peak memory: {records[0]['memory_method']} over one pass, fresh process per variant.")
    print(records_table(records))


if __name__ == "__main__":
    main()
