"""The golden cases of tests/golden/released/ (each the authors' model at a small width, its checkpoint as their save
code wrote it, an input clip and their logits; how they were made: that folder's README) and the model each needs,
for the tests of ``models.released``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models import create_model
from models.released import describe_released, required_model

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "released"
CASES = sorted(path.parent.name for path in GOLDEN.glob("*/expected.pt"))
TOLERANCE = 1e-10  # relative error of our float64 logits against the authors'


def expected(case: str) -> dict[str, Any]:
    """``expected.pt``: layout, checkpoint (its name in the folder), clip (see ``model_input``), logits (the
    authors', float64), given (facts the file does not store), official (what made it)."""
    return torch.load(GOLDEN / case / "expected.pt", weights_only=True)


def checkpoint_file(case: str) -> Path:
    """The checkpoint as the authors' code wrote it: a file, or a DeepSpeed tag folder."""
    return GOLDEN / case / expected(case)["checkpoint"]


def model_input(case: str) -> torch.Tensor:
    """The clip the authors' model read, in float64: stored so, or uint8 pixels normalised as stored."""
    golden = expected(case)
    if "normalise" not in golden:
        return golden["clip"]
    return (golden["clip"].double() / 255 - golden["normalise"]["mean"]) / golden["normalise"]["std"]


def golden_model(case: str, **changes: Any) -> torch.nn.Module:
    """Our model for a golden checkpoint, as ``required_model`` names it for the file's description completed with
    ``given``, in float64 and eval mode; ``changes`` override its options."""
    description = describe_released(checkpoint_file(case)) | expected(case)["given"]
    needed = required_model(description)
    return create_model(needed.name, **{**needed.overrides, **changes}).double().eval()


def known_facts(case: str) -> dict[str, Any]:
    """The given facts a caller states to ``load_released`` (those of ``KNOWN_FACTS``: TokShift's variant, frames)."""
    from models.released import KNOWN_FACTS

    return {k: v for k, v in expected(case)["given"].items() if k in KNOWN_FACTS}


def relative_error(ours: torch.Tensor, official: torch.Tensor) -> float:
    """max |ours - official| / max |official|."""
    return ((ours - official).abs().max() / official.abs().max()).item()
