"""What the golden-file makers (``make_tokshift``, ``make_cast``) share: random weights that reach every path, the
files each case writes, the comparison at the paper's width and its record.

A case folder holds the checkpoint as the authors' save code writes it and ``expected.pt``: the input clip in our
layout (B, C, T, H, W), the official model's logits (float64, our order: verbs before nouns), the facts the
checkpoint does not store (``given``: what a catalogue entry supplies), and what made it (the official repository,
its commit, the official configuration, the command). No official code is kept here: the makers import it from the
checkout named on their command line.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

GOLDEN = Path(__file__).resolve().parent
REPO = GOLDEN.parents[2]
PAPER_WIDTH_LIMIT = 1e-5  # the largest max relative difference a paper-width record may show in float32


def randomise(module: nn.Module, generator: torch.Generator, std: float) -> None:
    """Every parameter drawn afresh, so that none is left at an initialisation that hides it (zero adapters and
    up-projections, a zero head): a 1-D ``*.weight`` (a LayerNorm's) around 1, everything else around 0."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float64) * std
            param.copy_(noise + 1.0 if param.ndim == 1 and name.endswith("weight") else noise)


def git_commit(path: str | os.PathLike) -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def checkout(repository: str, path: str | os.PathLike) -> dict[str, Any]:
    """The official repository, the commit of its checkout, and the Python files changed in it (None: none)."""
    changed = subprocess.run(["git", "diff", "--stat", "--", "*.py"], cwd=path, capture_output=True, text=True,
                             check=True).stdout.strip()
    return {"repository": repository, "official_commit": git_commit(path), "local_changes": changed or None}


def command_line() -> str:
    return "python -m " + __package__ + "." + Path(sys.argv[0]).stem + " " + " ".join(sys.argv[1:])


def write_expected(folder: Path, clip: Tensor, logits: Tensor, given: dict[str, Any],
                   official: dict[str, Any]) -> None:
    """``folder/expected.pt``: the clip, the official logits and the facts the checkpoint does not store."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"clip": clip.contiguous(), "logits": logits.contiguous(), "given": given,
                "official": {**official, "command": command_line()}}, folder / "expected.pt")


def difference(ours: Tensor, official: Tensor) -> dict[str, float]:
    """max |ours - official| relative to max |official| (logits near zero make an element-wise ratio meaningless)."""
    diff = (ours.double() - official.double()).abs().max().item()
    scale = official.double().abs().max().item()
    return {"max_abs_difference": diff, "max_abs_official": scale, "max_relative_difference": diff / scale}


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Add ``record`` to the ``records`` list of the JSON file ``path`` (replacing one of the same layout and
    variant), stamped with the machine, torch and the date."""
    records = json.loads(path.read_text())["records"] if path.exists() else []
    stamped = {**record, "limit": PAPER_WIDTH_LIMIT, "within_limit": record["max_relative_difference"] <=
               PAPER_WIDTH_LIMIT, "device": "cpu", "device_name": platform.processor() or platform.machine(),
               "threads": torch.get_num_threads(), "torch": torch.__version__, "commit": git_commit(REPO),
               "measured_at": datetime.date.today().isoformat(), "command": command_line()}
    records = [r for r in records if (r["layout"], r["variant"]) != (record["layout"], record["variant"])]
    path.write_text(json.dumps({"records": records + [stamped]}, indent=1) + "\n")
