"""Training-step time and memory of the whole RGB+pose model (``d3da_tiny``, ``d3da_base``).

    python -m tools d3da-step [--shape tiny|paper|all] [--batch N] [--device cpu|cuda] [--repeats N]

Shapes: ``tiny`` = d3da_tiny on 12 frames of 32 x 32 (4 x 4 RGB tokens per frame) + 13 joints; ``paper`` =
d3da_base on 12 frames of 224 x 224 (28 x 28 RGB tokens per frame) + 13 joints. A step is forward, backward and an
AdamW update; its time is the median (and minimum) of ``--repeats`` steps after one untimed warm-up step, in wall
time and in this process's CPU time (on a machine shared with other work, the CPU time of a one-thread run is
what the step would take alone). Memory:
on a CPU, the bytes autograd saves for backward and the peak of op-created tensors over forward + backward
(``models.memory``; allocator caching and kernel workspaces are not seen); on CUDA, ``max_memory_allocated``
over one step minus what was allocated before it.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import torch

from data.command_line import MEASURED_BATCH, REPEATS, OneLineParser
from models.memory import peak_bytes, saved_tensor_bytes
from models.registry import create_model

SHAPES = {"tiny": "d3da_tiny", "paper": "d3da_base"}  # each entrypoint's defaults are the shape


def measure(shape: str, batch: int = 1, device: str = "cpu", repeats: int = 5) -> dict[str, Any]:
    """Time and memory of one training step of the shape's model on random clips and joints."""
    torch.manual_seed(0)
    dev = torch.device(device)
    model = create_model(SHAPES[shape]).to(dev)
    t, size = model.num_frames, model.img_size
    inputs = {"video": torch.randn(batch, 3, t, size, size, device=dev),
              "pose": torch.rand(batch, t, model.pose_embed.num_joints, model.pose_embed.pose_dim,
                                 device=dev) * size + 0.5}
    labels = torch.zeros(batch, dtype=torch.long, device=dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cuda = dev.type == "cuda"

    def step() -> None:
        torch.nn.functional.cross_entropy(model(inputs), labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()

    step()  # warm-up (optimizer state, one-time allocations)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        memory = {"peak_mib": (torch.cuda.max_memory_allocated() - before) / 2 ** 20}
    else:
        exclude = [*model.parameters(), *model.buffers()]
        memory = {"saved_mib": saved_tensor_bytes(lambda: model(inputs), exclude=exclude) / 2 ** 20,
                  "peak_mib": peak_bytes(lambda: model(inputs)) / 2 ** 20}
        optimizer.zero_grad(set_to_none=True)
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return {"shape": shape, "model": SHAPES[shape], "frames": t, "img_size": size, "batch": batch,
            "device": torch.cuda.get_device_name(dev) if cuda else "cpu", "threads": torch.get_num_threads(),
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "step_s": statistics.median(times),
            "step_min_s": min(times), "step_cpu_s": statistics.median(cpu_times), **memory}


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=[*SHAPES, "all"], default="all")
    parser.add_argument("--batch", type=MEASURED_BATCH, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=REPEATS, default=5)
    args = parser.parse_args(argv)
    for shape in SHAPES if args.shape == "all" else [args.shape]:
        print(json.dumps(measure(shape, args.batch, args.device, args.repeats)))
