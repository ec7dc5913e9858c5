"""What a measurement ran on, named one way by every benchmark and record: the GPU's name, or the CPU's model name
(``/proc/cpuinfo``; ``platform.processor()`` is only the architecture on Linux) with the torch threads it used; and
the commit of the code that measured it."""

from __future__ import annotations

import platform
import subprocess
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


def source_commit() -> str:
    """The checkout's commit (short), with ``+dirty`` when tracked files differ from it; ``unknown`` outside git.
    A record stamped with it says which code measured it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")
