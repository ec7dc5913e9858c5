"""The golden files of tests/golden/released/ (the authors' model at a small width, its checkpoint as their
``save_checkpoint`` wrote it, an input clip and their logits; how they were made: that folder's README) and the
model each needs, for the tests of ``models.released``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from models import create_model
from models.released import describe_released, required_model

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "released"
VARIANTS = sorted(path.name.removesuffix(".pyth") for path in GOLDEN.glob("*.pyth"))


def checkpoint_file(name: str) -> Path:
    return GOLDEN / f"{name}.pyth"


def golden_io(name: str) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """The model's input (float64, the clip's pixels normalised as the authors' configs do), the authors' logits
    (float64) and the file's metadata."""
    path = GOLDEN / f"{name}.io.safetensors"
    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    return (tensors["clip"].double() / 255 - 0.5) / 0.5, tensors["logits"], meta


def golden_model(name: str, **changes) -> torch.nn.Module:
    """Our model for a golden checkpoint, as ``required_model`` names it (the backbone heads of a small X-ViT, which
    its file cannot tell, from the golden metadata), in float64 and eval mode; ``changes`` override."""
    needed = required_model(describe_released(checkpoint_file(name)))
    overrides = dict(needed.overrides)
    if "num_heads" not in overrides:
        overrides["num_heads"] = golden_io(name)[2]["num_heads"]
    return create_model(needed.name, **{**overrides, **changes}).double().eval()


def relative_error(ours: torch.Tensor, official: torch.Tensor) -> float:
    return ((ours - official).norm() / official.norm()).item()
