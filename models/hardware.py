"""What a measurement ran on, named one way by every benchmark and record: the GPU's name, or the CPU's model name
(``/proc/cpuinfo``; ``platform.processor()`` is only the architecture on Linux) with the torch threads it used."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name, else the platform's processor or machine (e.g. ``aarch64``, whose cpuinfo has none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str | torch.device, threads: int | None = None) -> str:
    """A CUDA device's name, or the CPU's with the torch threads (``threads``, else the current count)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {torch.get_num_threads() if threads is None else threads} thread(s)"
