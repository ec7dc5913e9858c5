"""The test checkpoints of ``authors_layout`` are the authors' layout: our model's weights written by them hold the
key names, shapes and nesting of the golden cases the authors' own code made, and load back through the readers to
the same weights."""

from __future__ import annotations

import pytest
import torch

from models.released import describe_released, load_released, read_released

from .authors_layout import WRITERS
from .golden import CASES, checkpoint_file, expected, golden_model, known_facts

NESTING = {"mformer": "model_state", "xvit": "model_state", "tokshift": "state_dict"}
# Values the writers cannot give back: the position tables the readers resample, and weights the authors' models
# build but never use (Motionformer's 2-D tokenizer beside its tubelets, X-ViT's new_fc), written as zeros
NOT_KEPT = {"mformer": ("pos_embed", "patch_embed.proj."), "xvit": ("base_model.pos_embed", "new_fc.")}


def facts(case: str) -> dict:
    d = describe_released(checkpoint_file(case)) | expected(case)["given"]
    return {"frames": d["frames"], "crop": d["crop"], "classes": d["classes"], "dataset": d.get("dataset"),
            "attention": d.get("attention"), "embed_dim": d["embed_dim"], "depth": d["depth"],
            "num_heads": d.get("num_heads"), "tubelet": d.get("tubelet"), "patch": d["patch"],
            "shift_div": d.get("shift_div"), "num_segments": d.get("shift_segment"),
            "head_dim": (d.get("head") or {}).get("mlp_dim"), "head_heads": (d.get("head") or {}).get("num_heads"),
            "base_model": d.get("base_model")}


def official(checkpoint: dict, layout: str) -> dict:
    if layout == "cast":
        return next(checkpoint[k] for k in ("model", "module") if k in checkpoint)
    return checkpoint[NESTING[layout]]


@pytest.mark.parametrize("case", [c for c in CASES if c != "cast_ek100_deepspeed"])
def test_our_weights_written_back_are_the_authors_keys_and_load_again(case, tmp_path):
    layout = expected(case)["layout"]
    model = golden_model(case)
    load_released(model, checkpoint_file(case), known=known_facts(case))
    written = WRITERS[layout](model.state_dict(), facts(case))
    authors = official(read_released(checkpoint_file(case))[0], layout)
    ours = official(written, layout)
    assert sorted(ours) == sorted(authors)
    for key, value in authors.items():
        assert ours[key].shape == value.shape or key.endswith("pos_embed"), key
        if not key.startswith(NOT_KEPT.get(layout, ())):
            assert torch.equal(ours[key].to(value.dtype), value), key
    path = tmp_path / "rewritten.pth"
    torch.save(written, path)
    again = golden_model(case)
    load_released(again, path, layout, known_facts(case))
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value) or key == "pos_embed", key
