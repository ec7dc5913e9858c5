"""Forward+backward time and memory of the shift family against the frame-wise ViT, one block or the whole model.

    python -m tools shift-family [--shape tiny|paper|all] [--unit block|model] [--device cpu|cuda] [--batch N]
                                 [--compile [default|reduce-overhead|max-autotune]] [--repeats N] [--json]
                                 [--record FILE]

Variants: ``vit``, ``msca_kv``, ``msca_pkv``, ``tokenshift``, ``tsm``, ``xvit``; passes of all variants interleaved
(``measure``). ``--record FILE`` merges the records, stamped with the machine, torch, the commit and this command,
into FILE (``reports/benchmarks/shift_*.json``), which the README's tables are made from (``reports.benchmarks``).
Method: tools/README.md#shift-family.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from data.command_line import MEASURED_BATCH, REPEATS, THREADS, OneLineParser, number
from models.hardware import device_name
from models.memory import peak_bytes, saved_tensor_bytes
from models.registry import create_model
from reports.benchmarks import read_records, setting

SHAPES = {
    # name: (model, dim, (T, H, W), token rows N_b = N_f of MSCA-pKV)
    "tiny": ("vit_tiny_frame", 96, (8, 4, 4), 1),
    "paper": ("vit_base_patch16_frame", 768, (8, 14, 14), 8),
}
VARIANT_NAMES = ("vit", "msca_kv", "msca_pkv", "tokenshift", "tsm", "xvit")


def variant_options(variant: str, token_rows: int) -> dict[str, Any]:
    """VideoViT overrides of the frame-wise model for ``variant``."""
    return {
        "vit": {},
        "msca_kv": dict(attn_layer="msca", attn_kwargs=dict(shifted="KV", num_backward=1, num_forward=1)),
        "msca_pkv": dict(attn_layer="msca", attn_kwargs=dict(shifted="KV", shift_along="tokens",
                                                             num_backward=token_rows, num_forward=token_rows)),
        "tokenshift": dict(temporal_shift="cls", shift_fraction=0.25, shift_before=("attn", "mlp")),
        "tsm": dict(temporal_shift="all", shift_fraction=0.25, shift_before=("attn",)),
        "xvit": dict(attn_layer="xvit", attn_kwargs=dict(shift_fraction=0.5)),
    }[variant]


class _InsideNetwork(nn.Module):
    """A block as it runs inside the network: its input is another layer's output (a non-leaf tensor, which the
    shifts may rewrite in place), not a leaf tensor of the benchmark's."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor, thw: tuple[int, int, int]) -> torch.Tensor:
        return self.block(x.clone(), thw)


def build_unit(shape: str, variant: str, unit: str, batch: int, dev: torch.device, compiled: str | None = None
           ) -> tuple[nn.Module, tuple]:
    """The layer of ``variant`` (a block or the whole model) on ``dev`` and its input; ``compiled``: wrapped in
    ``torch.compile`` with that mode ("default", "reduce-overhead": CUDA graphs, "max-autotune")."""
    model_name, dim, thw, token_rows = SHAPES[shape]
    options = variant_options(variant, token_rows)
    torch.manual_seed(0)
    if unit == "block":
        x = torch.randn(batch, thw[0] * (1 + thw[1] * thw[2]), dim, device=dev, requires_grad=True)
        block = create_model(model_name, depth=1, **options).blocks[0]  # exactly the block the model has
        layer, args = _InsideNetwork(block).to(dev).train(), (x, thw)
    else:
        layer = create_model(model_name, **options).to(dev).train()
        args = (torch.randn(batch, 3, layer.num_frames, layer.img_size, layer.img_size, device=dev),)
    return (torch.compile(layer, mode=compiled) if compiled else layer), args


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += not func.is_view
        return func(*args, **(kwargs or {}))


def dispatched_ops(fn: Callable[[], None]) -> int:
    """The ops that ``fn`` dispatches below autograd (forward and backward), views apart: what a step that waits
    on each op's dispatch (CPU) or kernel launch (GPU) pays for, whatever the machine."""
    with _CountOps() as counter:
        fn()
    return counter.count


def measure(shape: str, variants: list[str], unit: str, batch: int, device: str, repeats: int,
            min_seconds: float = 2.0, compiled: str | None = None) -> list[dict[str, Any]]:
    """Forward+backward time and memory of every variant at one shape.

    Timed passes run round-robin over the variants, so that drifting load from other processes spreads over all of
    them: at least ``repeats`` each, more until about ``min_seconds`` per variant (at most 100).
    """
    # Every variant compiles the same forward code, which dynamo otherwise compiles for 8 modules at most and then
    # runs eagerly: later variants would be timed uncompiled without a word. Earlier calls' entries are dropped.
    if compiled:
        torch._dynamo.reset()
    limit = torch._dynamo.config.patch(recompile_limit=8 + len(variants)) if compiled else contextlib.nullcontext()
    with limit:
        return _measure(shape, variants, unit, batch, device, repeats, min_seconds, compiled)


def _measure(shape: str, variants: list[str], unit: str, batch: int, device: str, repeats: int,
             min_seconds: float, compiled: str | None) -> list[dict[str, Any]]:
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    built = {v: build_unit(shape, v, unit, batch, dev, compiled) for v in variants}

    def clear_gradients(variant: str) -> None:
        # Inside the network a block's input gradient flows on, it is not summed over steps; summing it here would
        # also add to a buffer that CUDA graphs (``reduce-overhead``) overwrite at their next replay.
        layer, args = built[variant]
        layer.zero_grad(set_to_none=True)
        for arg in args:
            if isinstance(arg, torch.Tensor):
                arg.grad = None

    def step(variant: str) -> None:
        layer, args = built[variant]
        layer(*args).sum().backward()
        clear_gradients(variant)
        if cuda:
            torch.cuda.synchronize()

    records = {}
    for variant, (layer, args) in built.items():
        step(variant)  # warm-up: one-time allocations stay out of the figures
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            step(variant)
            measured = {"peak_mib": (torch.cuda.max_memory_allocated() - before) / 2 ** 20}
        elif compiled:  # the CPU counters hook autograd and tensor creation, which a compiled graph hides
            measured = {}
        else:
            exclude = [*layer.parameters(), *layer.buffers()]
            forward = partial(layer, *args)
            measured = {"saved_mib": saved_tensor_bytes(forward, exclude=exclude) / 2 ** 20,
                        "peak_mib": peak_bytes(forward) / 2 ** 20}
            clear_gradients(variant)
        if not compiled:  # a compiled graph dispatches its own fused kernels, not these ops
            measured["ops"] = dispatched_ops(partial(step, variant))
        records[variant] = {"shape": shape, "variant": variant, "unit": unit, "batch": batch, "device": device,
                            "compiled": compiled, **measured, "threads": torch.get_num_threads()}
    times: dict[str, list[float]] = {v: [] for v in variants}
    started = time.perf_counter()
    while min(map(len, times.values())) < repeats or (time.perf_counter() - started < min_seconds * len(variants)
                                                      and len(times[variants[0]]) < 100):
        for variant in variants:
            start = time.perf_counter()
            step(variant)
            times[variant].append(time.perf_counter() - start)
    for variant, record in records.items():
        record.update(time_s=statistics.median(times[variant]), time_min_s=min(times[variant]),
                      passes=len(times[variant]))
    return list(records.values())


def records_table(records: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    def ratio(r: dict[str, Any], base: dict[str, Any], key: str) -> str:
        return f"{r[key] / base[key]:.3f}" if key in r else "n/a"

    rows = []
    for r in records:
        base = next(b for b in records if b["shape"] == r["shape"] and b["variant"] == "vit")
        rows.append([r["shape"], r["variant"], r.get("ops", "n/a"), f"{1e3 * r['time_s']:.1f}",
                     ratio(r, base, "time_s"),
                     f"{1e3 * r['time_min_s']:.1f}", ratio(r, base, "time_min_s"),
                     f"{r.get('saved_mib', float('nan')):.2f}", ratio(r, base, "saved_mib"),
                     f"{r.get('peak_mib', float('nan')):.2f}", ratio(r, base, "peak_mib")])
    headers = ["shape", "variant", "ops", "fwd+bwd ms (median)", "median / vit", "min ms", "min / vit",
               "saved for bwd MiB", "saved / vit", "peak MiB", "peak / vit"]
    return tabulate(rows, headers=headers, tablefmt="github")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m tools shift-family", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=[*SHAPES, "all"], default="tiny")
    parser.add_argument("--unit", choices=["block", "model"], default="block")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--batch", type=MEASURED_BATCH, default=1, help="clips per batch")
    parser.add_argument("--repeats", type=REPEATS, default=3, help="at least this many timed passes (more up to 2 s)")
    parser.add_argument("--min-seconds", type=number(0, 3600, "a duration in seconds"), default=2.0,
                        help="keep timing each variant until about this long has passed (at most 100 passes)")
    parser.add_argument("--variants", nargs="+", choices=VARIANT_NAMES, default=list(VARIANT_NAMES))
    parser.add_argument("--threads", type=THREADS, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--compile", nargs="?", const="default",
                        choices=["default", "reduce-overhead", "max-autotune"],
                        help="time every variant through torch.compile (this mode; default: 'default')")
    parser.add_argument("--json", action="store_true", help="print the records as JSON instead of a table")
    parser.add_argument("--record", metavar="FILE", help="merge the stamped records into FILE (e.g. "
                                                         "reports/benchmarks/shift_cpu.json), which the README shows")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")
    return args


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The records of every shape and variant that ``args`` (``parse_args``) asks for."""
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = args.variants if "vit" in args.variants else ["vit", *args.variants]  # the baseline of every ratio
    shapes = list(SHAPES) if args.shape == "all" else [args.shape]
    return [r for s in shapes for r in measure(s, variants, args.unit, args.batch, args.device, args.repeats,
                                               min_seconds=args.min_seconds, compiled=args.compile)]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.record:
        options = without_record(list(sys.argv[1:] if argv is None else argv))
        new = record_shift_benchmark(args.record, options)
        print(f"{args.record}: {len(new)} record(s) merged; `python -m reports readme` shows them in "
              f"docs/shift_family.md")
        return
    records = run(args)
    if args.json:
        print(json.dumps(records, indent=1))
        return
    where = device_name(args.device, records[0]["threads"])
    how = f"compiled (torch.compile, mode {args.compile})" if args.compile else "eager"
    print(f"One {args.unit}, forward+backward, float32, {how}, batch {args.batch}, on {where}.")
    print(records_table(records))


def without_record(argv: list[str]) -> list[str]:
    """``argv`` without its ``--record FILE`` (or ``--record=FILE``): the options that say what is measured."""
    out, skip = [], False
    for token in argv:
        if skip or token.startswith("--record="):
            skip = False
            continue
        skip = token == "--record"
        if not skip:
            out.append(token)
    return out


def record_shift_benchmark(path: str | Path, options: list[str]) -> list[dict[str, Any]]:
    """Measure what ``options`` ask for (``parse_args``'s, ``--record`` aside), stamp the records and merge them into
    ``path`` (``reports.benchmarks``: a record replaces the file's records of its setting); returns the new
    records."""
    from data.atomic_write import atomic_write_text
    from experiments.harness.provenance import git_commit

    path = Path(path)
    kept = read_records(path) if path.exists() else []  # a malformed file stops here, before any measuring
    args = parse_args(options)
    new = run(args)
    stamp = {"device_name": device_name(args.device), "torch": torch.__version__, "commit": git_commit(),
             "measured_at": datetime.now(UTC).date().isoformat(),
             "command": shlex.join(["python", "-m", "tools", "shift-family", "--record", str(path), *options])}
    new = [{**r, **stamp} for r in new]
    replaced = {setting(r) for r in new}
    merged = [r for r in kept if setting(r) not in replaced] + new
    atomic_write_text(path, json.dumps({"records": merged}, indent=1) + "\n")
    return new
