"""A DeepSpeed checkpoint given as its tag folder: the one file in it that holds the model's weights.

DeepSpeed's ``engine.save_checkpoint(save_dir, tag)`` writes ``save_dir/tag/mp_rank_00_model_states.pt`` (the
module's state dict under ``module``, beside DeepSpeed's own bookkeeping), ZeRO optimizer shards beside it, and a
text file ``save_dir/latest`` naming the tag. Without model parallelism and ZeRO stage 3 the model states file
holds every weight, which is how the authors' training scripts that use DeepSpeed (CAST's) save. The file is looked
up inside the folder only: a link that leads out of it is refused, as is a layout whose weights are spread over
several files.
"""

from __future__ import annotations

from pathlib import Path

MODEL_STATES = "mp_rank_00_model_states.pt"


class DeepSpeedFolderError(ValueError):
    """A folder that is not a readable DeepSpeed tag folder; the message names it and says why."""


def model_states_file(folder: str | Path) -> Path:
    """``folder/mp_rank_00_model_states.pt``, checked to lie inside ``folder`` and to hold the whole model."""
    folder = Path(folder)
    names = sorted(p.name for p in folder.iterdir())
    candidate = folder / MODEL_STATES
    if not candidate.exists():
        raise DeepSpeedFolderError(f"{folder}: not a DeepSpeed tag folder (no {MODEL_STATES}; {_hint(folder, names)})")
    if not candidate.resolve().is_relative_to(folder.resolve()):
        raise DeepSpeedFolderError(f"{candidate}: refused: a link that leads out of the tag folder {folder} "
                                   f"(to {candidate.resolve()})")
    if any(n.startswith("mp_rank_") and n.endswith("_model_states.pt") and n != MODEL_STATES for n in names):
        raise DeepSpeedFolderError(f"{folder}: a model-parallel DeepSpeed checkpoint (several mp_rank_*_model_states"
                                   f".pt); only a checkpoint whose weights lie in one file can be read")
    if any(n.startswith("zero_pp_rank_") and n.endswith("_model_states.pt") for n in names):
        raise DeepSpeedFolderError(f"{folder}: a ZeRO stage 3 DeepSpeed checkpoint, whose weights are spread over its "
                                   f"ranks' files; consolidate it into one state dict first (DeepSpeed's "
                                   f"zero_to_fp32.py)")
    return candidate


def _hint(folder: Path, names: list[str]) -> str:
    """What the folder holds instead, and what to name when it is a DeepSpeed save folder."""
    tags = [n for n in names if (folder / n / MODEL_STATES).exists()]
    if tags:
        return f"it is a DeepSpeed save folder: name one of its tag folders, e.g. {folder / tags[-1]}"
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return f"it holds {shown}" if names else "it is empty"


__all__ = ["MODEL_STATES", "DeepSpeedFolderError", "model_states_file"]
