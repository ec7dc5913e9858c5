"""A step's time as every benchmark of ``tools`` measures it (``time_steps``: untimed warm-up steps, then each
timed step alone with the device's queued work waited for, and their median) and where it goes (``profile_steps``:
the kernels or operators with the most self time, from ``torch.profiler``). Imports torch only when called."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

PROFILE_TOP = 12  # kernels (GPU) or operators (CPU) kept per profiled step


class StepTimes(NamedTuple):
    median_s: float  # the median of the timed steps
    warmup_s: float  # the warm-up steps together (compilation, autotuning, caches), their work waited for


def device_sync(cuda: bool) -> Callable[[], None]:
    """What waits for the device's queued work: ``torch.cuda.synchronize`` on a GPU, nothing on the CPU."""
    import torch

    return torch.cuda.synchronize if cuda else (lambda: None)


def time_steps(step: Callable[[], None], cuda: bool, steps: int, warmup: int) -> StepTimes:
    """``step`` run ``warmup`` times untimed, then ``steps`` times, each timed alone until the device has done its
    work. On a GPU the peak-memory count starts after the warm-up: ``torch.cuda.max_memory_allocated`` then reads
    the timed steps' peak."""
    import torch

    sync = device_sync(cuda)
    started = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warmup_s = time.perf_counter() - started
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return StepTimes(statistics.median(times), warmup_s)


def profile_steps(step: Callable[[], None], sync: Callable[[], None], cuda: bool, repeats: int = 2,
                  top: int = PROFILE_TOP) -> dict[str, Any]:
    """The ``top`` kernels (GPU) or operators (CPU) by self time, in ms per step, with calls per step and the share
    of the step's summed self time; and the kernel count per step."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
    with profile(activities=activities) as prof:
        for _ in range(repeats):
            step()
        sync()
    # Annotated ranges (the optimizer's "Optimizer.step#AdamW.step") span kernels counted on their own: left out.
    events = [e for e in prof.key_averages() if (e.self_device_time_total if cuda else e.self_cpu_time_total) > 0
              and not getattr(e, "is_user_annotation", False)]
    if cuda:  # kernels only: their self device time is the GPU's busy time; CPU-side ops report none
        events = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]

    def self_us(event: Any) -> float:
        return event.self_device_time_total if cuda else event.self_cpu_time_total

    total = sum(self_us(e) for e in events)
    ranked = sorted(events, key=self_us, reverse=True)[:top]
    return {"what": "CUDA kernels, self device time" if cuda else "CPU operators, self CPU time",
            "per_step_ms": total / repeats / 1e3, "kernels_per_step": sum(e.count for e in events) / repeats,
            "top": [{"name": e.key[:120], "ms_per_step": self_us(e) / repeats / 1e3,
                     "calls_per_step": e.count / repeats, "share": self_us(e) / total} for e in ranked]}
