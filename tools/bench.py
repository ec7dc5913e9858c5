"""``python -m tools bench ID [--scale paper]``: what each row of a table costs on the device at hand.

Per row, at the row's resolved configuration: parameters, GFLOPs of one view (counted on the meta device by
``models.flops``, as our fast path runs; one multiply-add = one FLOP), training and inference throughput in clips per
second (random clips of the configured shape, batch = the run's per-device batch unless given, AdamW steps), and
peak memory of a training step: ``torch.cuda.max_memory_allocated`` on a GPU; on the CPU (whose allocator has no
peak counter of its own) the same sum counted by hand: the tensors that live through the step (weights, buffers,
AdamW's moments, the batch) plus the peak of those created in its forward and backward, gradients included
(``models.memory.peak_bytes``). Not counted on the CPU: the optimizer step's temporaries.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from data.command_line import MEASURED_BATCH, THREADS, OneLineParser, count
from experiments.harness.plan import require_spec
from experiments.harness.provenance import measured_on
from experiments.harness.spec import SCALES, RunConfig
from experiments.harness.static import clip_shape
from experiments.harness.tasks import build_model, get_task
from experiments.harness.timings import NUM_CLASSES
from tools.step_timing import time_steps


def row_configs(table_id: str, scale: str, rows: Sequence[str] | None = None) -> list[RunConfig]:
    """One configuration per row (its first result column) at ``scale``."""
    spec = require_spec(table_id)
    keys = [spec.row(key).key for key in rows] if rows else [r.key for r in spec.rows]
    configs = []
    for row in spec.rows:
        if row.key in keys:
            column = next(c for r, c in spec.runs() if r.key == row.key)
            configs.append(spec.resolve(row, column, scale, seed=0))
    return configs


def _check_clip_model(cfg: RunConfig) -> None:
    inputs = get_task(cfg.task).model_inputs(cfg.data)
    if "num_frames" not in inputs:
        raise ValueError(f"{cfg.table}/{cfg.row}: bench measures models of video clips; task {cfg.task!r} feeds "
                         f"its model something else")


def bench_row(cfg: RunConfig, device: str, batch: int | None = None, steps: int = 5, warmup: int = 1
              ) -> dict[str, Any]:
    """Measure one row on ``device``; see the module docstring for what each number is."""
    import torch

    from models import count_flops
    from models.memory import peak_bytes

    _check_clip_model(cfg)
    batch = batch or cfg.data.batch_size
    shape = clip_shape(cfg, batch)
    gflops = count_flops(build_model(cfg, NUM_CLASSES, device="meta"), clip_shape(cfg), "computed")
    torch.manual_seed(0)
    model = build_model(cfg, NUM_CLASSES, device=device)
    params = sum(p.numel() for p in model.parameters())
    clips = torch.randn(shape, device=device)
    labels = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(clips), labels).backward()
        optimizer.step()

    def infer_step() -> None:
        with torch.no_grad():
            model(clips)

    model.train()
    cuda = device.startswith("cuda")
    train_s = time_steps(train_step, cuda, steps, warmup).median_s
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        train_step()
        torch.cuda.synchronize(device)
        peak, peak_how = torch.cuda.max_memory_allocated(device), "allocated"
    else:
        optimizer.zero_grad(set_to_none=True)
        # AdamW's scalar `step` counters are left out: on a GPU they stay on the host, outside CUDA's count
        resident = [*model.parameters(), *model.buffers(), clips, labels,
                    *(t for state in optimizer.state.values() for t in state.values() if t.dim())]
        created = peak_bytes(lambda: torch.nn.functional.cross_entropy(model(clips), labels))
        peak, peak_how = _storage_bytes(resident) + created, "live tensors"
    model.eval()
    infer_s = time_steps(infer_step, cuda, steps, warmup).median_s
    return {"row": cfg.row, "model": cfg.model.name, "clip": "x".join(map(str, shape[1:])), "batch": batch,
            "params_m": params / 1e6, "gflops_per_view": gflops, "train_clips_s": batch / train_s,
            "infer_clips_s": batch / infer_s, "peak_mib": peak / 2**20, "peak_how": peak_how}


def _storage_bytes(tensors: Sequence[Any]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (a tied weight counts once)."""
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


def markdown(results: list[dict[str, Any]], table_id: str, scale: str, device: str) -> str:
    from tabulate import tabulate

    body = [[r["row"], r["model"], r["clip"], r["batch"], f"{r['params_m']:.2f}", f"{r['gflops_per_view']:.3g}",
             f"{r['train_clips_s']:.1f}", f"{r['infer_clips_s']:.1f}", f"{r['peak_mib']:.0f} ({r['peak_how']})"]
            for r in results]
    headers = ["row", "model", "clip (C×T×H×W)", "batch", "params (M)", "GFLOPs/view", "train clips/s",
               "inference clips/s", "peak MiB (train step)"]
    return "\n".join([f"`{table_id}` at {scale} scale on {measured_on(device)} (median of timed steps; "
                      f"{NUM_CLASSES}-way head)", "", tabulate(body, headers=headers, tablefmt="github")])


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tools bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("table")
    parser.add_argument("--scale", choices=SCALES, default="tiny")
    parser.add_argument("--rows", nargs="+", metavar="ROW", help="row keys (see `show`); default: all")
    parser.add_argument("--batch-size", type=MEASURED_BATCH,
                        help="clips per step (default: the run's per-device batch)")
    parser.add_argument("--steps", type=count(1, 10_000, "a step count"), default=5,
                        help="timed steps per measurement (median; default 5)")
    parser.add_argument("--warmup", type=count(0, 1000, "a step count"), default=1,
                        help="untimed steps first (default 1)")
    parser.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda if available)")
    parser.add_argument("--threads", type=THREADS, help="torch intra-op threads on the CPU")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Per row: parameters, GFLOPs per view, training and inference clips/s, peak memory, as a markdown table."""
    import torch

    args = build_parser().parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for cfg in row_configs(args.table, args.scale, args.rows):
        print(f"measuring {cfg.row} ...", file=sys.stderr)
        results.append(bench_row(cfg, device, batch=args.batch_size, steps=args.steps, warmup=args.warmup))
    print(markdown(results, args.table, args.scale, device))
    return 0
