"""What a measurement ran on, named one way by every benchmark and record: the GPU's name, or the CPU's model name
(``/proc/cpuinfo``; ``platform.processor()`` is only the architecture on Linux) with the torch threads it used; and
the commit of the code that measured it, which runs' records (``experiments.harness.provenance``) name the same way."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    """The CPU's model name, else the platform's processor or machine (e.g. ``aarch64``, whose cpuinfo has none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str | torch.device, threads: int | None = None, unit: str = "thread(s)") -> str:
    """A CUDA device's name, or the CPU's with the torch threads (``threads``, else the current count) and ``unit``
    (the smoke records' wording is "torch thread(s)")."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {torch.get_num_threads() if threads is None else threads} {unit}"


# What `run`, `reports` and the benchmarks rewrite themselves (each table's report and plots, the index, the tracked
# records, the benchmark records) and the prose beside them (markdown): no number depends on them, so a change there
# alone does not mark a run or a benchmark record "dirty".
NOT_CODE = ("*.md", "reports/*.png", "reports/results", "reports/benchmarks")


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """The checkout's commit and whether tracked files other than ``NOT_CODE`` differ from it (numbers
    from uncommitted code say so); None for both outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                      *(f":(exclude){pattern}" for pattern in NOT_CODE))
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changed)}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def source_commit(root: Path = REPO_ROOT) -> str:
    """``git_state`` as one string: the commit, "-dirty" when code differs from it, "unknown" outside git. A record
    stamped with it says which code measured it."""
    state = git_state(root)
    if state["commit"] is None:
        return "unknown"
    return state["commit"] + ("-dirty" if state["dirty"] else "")
