"""Released files written by a test, in each authors' layout (``tests/models/released/authors_layout.py``), for the
checkpoint a catalogue entry names: the weights of the model the evaluation builds for the entry's cell (stride-0
zeros for a ``--dry-run``, or random values), and beside them what the authors' save code stores, read from their
configuration files (the facts below), not from our model: Motionformer's attention and original trajectory code,
X-ViT's shift and temporal head, CAST's arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from experiments.harness.evaluate import Evaluation
from experiments.harness.tasks import build_model
from tests.models.released.authors_layout import WRITERS, tiny_tensors

# What the authors' X-ViT configs set (configs/Kinetics/xvit_B16_16x16_k600.yaml l.24-30, configs/SSv2/
# xvit_B16_16x16.yaml l.26-32; TEMPORAL_HEAD at slowfast/config/defaults.py l.139-156's defaults).
XVIT_CONFIGS = {"configs/Kinetics/xvit_B16_16x16_k600.yaml": {"shift_div": 8, "num_segments": 8},
                "configs/SSv2/xvit_B16_16x16.yaml": {"shift_div": 4, "num_segments": 16}}
XVIT_HEAD = {"head_dim": 768, "head_heads": 12}
CAST_DATA_SETS = {"kinetics400": "Kinetics-400", "ssv2": "SSV2", "epic_kitchens100": "EPIC"}


def authors_facts(evaluation: Evaluation, model: torch.nn.Module) -> dict[str, Any]:
    """What the authors' save code stores beside the weights for the entry's file, and the shapes it implies."""
    entry, cfg = evaluation.entry, evaluation.cfg
    facts: dict[str, Any] = {"frames": entry.protocol.frames, "crop": entry.protocol.crop,
                             "stride": entry.protocol.stride, "classes": entry.expects["classes"],
                             "dataset": cfg.data.dataset}
    if entry.layout == "mformer":
        facts |= {"attention": entry.expects["variant"], "embed_dim": model.embed_dim, "depth": len(model.blocks),
                  "num_heads": 12 if model.embed_dim == 768 else 16, "tubelet": 2, "patch": 16}
    elif entry.layout == "xvit":
        facts |= XVIT_CONFIGS[entry.config] | XVIT_HEAD
    elif entry.layout == "cast":
        facts |= {"data_set": CAST_DATA_SETS[cfg.data.dataset], "num_frames": entry.protocol.frames,
                  "input_size": entry.protocol.crop}
    return facts


def write_released(evaluation: Evaluation, folder: Path, tiny: bool = True, deepspeed: bool = False,
                   dtype: torch.dtype = torch.float16) -> Path:
    """The entry's file (named as the catalogue names it) in ``folder``: a DeepSpeed tag folder for CAST with
    ``deepspeed``. ``tiny``: stride-0 zeros of every shape (a few kilobytes at paper width); else random values in
    ``dtype`` (N(0, 0.02^2); norms' weights around 1)."""
    entry = evaluation.entry
    with torch.device("meta"):
        model = build_model(evaluation.cfg, entry.expects["classes"])
    generator = torch.Generator().manual_seed(0)
    state = tiny_tensors(model.state_dict()) if tiny else {
        k: (torch.randn(v.shape, generator=generator) * 0.02 + (k.endswith("norm.weight") or ".norm" in k and
                                                                   k.endswith(".weight"))).to(dtype)
        for k, v in model.state_dict().items()}
    facts = authors_facts(evaluation, model)
    writer = WRITERS[entry.layout]
    checkpoint = writer(state, facts, deepspeed=True) if deepspeed else writer(state, facts)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / entry.file
    if deepspeed:
        path.mkdir()
        torch.save(checkpoint, path / "mp_rank_00_model_states.pt")
    else:
        torch.save(checkpoint, path)
    return path
