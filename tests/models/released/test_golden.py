"""The released-checkpoint readers against the authors' code: each golden file (tests/golden/released/, made by
``make_tokshift.py`` and ``make_cast.py`` there from the official repositories: the official model at a small width,
every parameter random, float64, its checkpoint saved as the authors' save code saves it) is read by
``load_released`` into the model that the layout's ``model_config`` names, and gives the official logits (relative
error < 1e-10). The facts a checkpoint does not store come from ``expected.pt``'s ``given``, as a catalogue entry
supplies them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import create_model
from models.released import LAYOUTS, load_released, read_released
from models.released.cast import check_model as check_cast
from models.released.tokshift import TOKSHIFT_OPTIONS, check_model as check_tokshift

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "released"
TOL = 1e-10
# case folder -> (layout, the checkpoint as the authors' code saves it, the official commit it was made at)
CASES = {
    "tokshift_vit": ("tokshift", "best_ckpt_e0.pth", "a7abb7e0"),
    "tokshift_shift": ("tokshift", "best_ckpt_e0.pth", "a7abb7e0"),
    "cast_k400": ("cast", "checkpoint-1.pth", "51eb871b"),
    "cast_ek100": ("cast", "checkpoint-1.pth", "51eb871b"),
    "cast_ek100_deepspeed": ("cast", "checkpoint-1", "51eb871b"),  # a DeepSpeed tag folder
}


def golden_case(case: str) -> tuple[str, Path, dict]:
    layout, name, _ = CASES[case]
    return layout, GOLDEN / case / name, torch.load(GOLDEN / case / "expected.pt", weights_only=True)


def model_for(case: str) -> torch.nn.Module:
    """The model ``model_config`` names for the file's description completed with ``given``, in float64."""
    layout, path, expected = golden_case(case)
    description = LAYOUTS[layout].describe(read_released(path)[0]) | expected["given"]
    name, overrides = LAYOUTS[layout].model_config(description)
    return create_model(name, **overrides).double().eval()


def relative_error(logits: torch.Tensor, expected: torch.Tensor) -> float:
    return ((logits - expected).abs().max() / expected.abs().max()).item()


@pytest.mark.parametrize("named", [True, False], ids=["layout named", "layout recognised"])
@pytest.mark.parametrize("case", CASES)
def test_a_golden_file_gives_the_official_logits(case: str, named: bool) -> None:
    layout, path, expected = golden_case(case)
    assert expected["official"]["official_commit"].startswith(CASES[case][2])
    model = model_for(case)
    description = load_released(model, path, layout if named else None)
    assert description["layout"] == layout and description["source"].startswith(str(path))
    with torch.no_grad():
        logits = model(expected["clip"])
    assert logits.shape == expected["logits"].shape
    assert relative_error(logits, expected["logits"]) < TOL


def test_the_descriptions_say_what_the_files_store() -> None:
    tokshift = LAYOUTS["tokshift"].describe(read_released(golden_case("tokshift_shift")[1])[0])
    assert {k: tokshift[k] for k in ("classes", "crop", "patch", "width", "depth", "frames", "variant", "epoch")} == \
        {"classes": 7, "crop": 16, "patch": 4, "width": 24, "depth": 2, "frames": None, "variant": None, "epoch": 1}
    k400 = LAYOUTS["cast"].describe(read_released(golden_case("cast_k400")[1])[0])
    assert {k: k400[k] for k in ("classes", "frames", "crop", "patch", "variant", "dtype", "deepspeed")} == \
        {"classes": 400, "frames": 4, "crop": 28, "patch": 2, "variant": "bidir", "dtype": "float64",
         "deepspeed": None}
    assert k400["args"]["data_set"] == "Kinetics-400" and k400["args"]["num_frames"] == 4  # the stored Namespace
    ek100 = LAYOUTS["cast"].describe(read_released(golden_case("cast_ek100_deepspeed")[1])[0])
    assert (ek100["classes"], ek100["variant"], ek100["dtype"], ek100["deepspeed"], ek100["args"]) == \
        ({"verb": 97, "noun": 300}, "compo_bidir", "float16", "0.8.0", None)


def _meta(*shape: int) -> torch.Tensor:
    return torch.empty(shape, device="meta")


def test_model_config_at_the_papers_size_names_a_model_that_takes_the_file() -> None:
    """The released 224 / 8-frame TokShift and a 16-frame CAST-B: the configuration named is the paper-scale
    entry point with the checkpoint's classes, crop and frames (built on ``meta``), and passes the model checks."""
    width, blocks = 768, 12
    layer = {f"module.base_model.transformer.encoder.layer.{i}.attn.query.weight": _meta(width, width)
             for i in range(blocks)}
    tokshift = {"epoch": 18, "state_dict": {
        "module.base_model.transformer.embeddings.patch_embeddings.weight": _meta(width, 3, 16, 16),
        "module.base_model.transformer.embeddings.position_embeddings": _meta(1, 197, width),
        "module.base_model.head.weight": _meta(400, width), **layer}}
    description = LAYOUTS["tokshift"].describe(tokshift)
    assert (description["backbone"], description["heads"], description["crop"]) == ("ViT-B_16", 12, 224)
    name, overrides = LAYOUTS["tokshift"].model_config(description | {"variant": "tokshift", "frames": 8})
    assert name == "vit_base_patch16_frame"
    assert overrides == {"num_classes": 400, "img_size": 224, "num_frames": 8, **TOKSHIFT_OPTIONS}
    with torch.device("meta"):
        assert check_tokshift(create_model(name, **overrides), description) == "tokshift"
    cast = {"classes": {"verb": 97, "noun": 300}, "frames": 16, "crop": 224, "patch": 16, "width": 768, "depth": 12,
            "down_ratio": 0.5, "adapter_ratio": 0.25, "variant": "compo_bidir"}
    name, overrides = LAYOUTS["cast"].model_config(cast)
    assert (name, overrides) == ("cast_base", {"num_classes": {"verb": 97, "noun": 300}, "num_frames": 16,
                                               "img_size": 224, "float32_pos_table": True})
    with torch.device("meta"):
        assert check_cast(create_model(name, **overrides), cast) == "compo_bidir"
