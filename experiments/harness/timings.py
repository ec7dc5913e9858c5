"""The timings some specs' static columns read, so that a spec only says what to time: ``inference_rate`` (X-ViT
Table 1's videos per second) and ``measure_sweep`` (3D-Deformable Tables A1-A2: counted FLOPs and forward times along
a size, with their fitted exponents)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from .spec import RunConfig
from .tasks import build_model

NUM_CLASSES = 400  # every row is measured with a 400-way head, as the static columns count it

def inference_rate(cfg: RunConfig, repeats: int, num_classes: int = NUM_CLASSES) -> tuple[float, str]:
    """Inference throughput of ``cfg``'s model in clips per second, batch 1, over ``repeats`` passes after one
    warm-up pass: on the GPU when there is one (bf16 autocast), else on this CPU (fp32, all its threads); and the
    device it ran on, named."""
    import torch

    from models.hardware import device_name

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_model(cfg, num_classes=num_classes, device=device).eval()
    clip = torch.randn(1, 3, cfg.data.num_frames, cfg.data.crop_size, cfg.data.crop_size, device=device)
    autocast = torch.autocast("cuda", torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    with torch.inference_mode(), autocast:
        model(clip)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(clip)
        if device == "cuda":
            torch.cuda.synchronize()
        rate = repeats / (time.perf_counter() - start)
    return rate, device_name(device)


def measure_sweep(sizes: Sequence[int], flops: Callable[[int], float], windows: Callable[[int], int],
                  seconds: Callable[[int], float]) -> dict[str, Any]:
    """Every point of a complexity sweep over ``sizes``, counted and timed once: attention FLOPs, windows and seconds
    per size, the exponents fitted in the swept size (of the FLOPs, of the FLOPs per window, of the time), and the
    CPU the times were taken on, with the machine's load (other work stretches wall times: the record says how much
    there was)."""
    from models.d3da.complexity import fit_exponent
    from models.hardware import device_name

    load = os.getloadavg()[0]
    counted = [flops(n) for n in sizes]
    wins = [windows(n) for n in sizes]
    timed = [seconds(n) for n in sizes]
    return {"flops": counted, "windows": wins, "seconds": timed,
            "flops_exponent": fit_exponent(sizes, counted),
            "window_exponent": fit_exponent(sizes, [f / w for f, w in zip(counted, wins)]),
            "time_exponent": fit_exponent(sizes, timed),
            "device": f"{device_name('cpu')}, load {load:.1f} on {os.cpu_count()} cores"}
