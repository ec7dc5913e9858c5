"""Proof of conversion: each golden case of tests/golden/released/, written by the authors' own code with random
weights at a small width (Motionformer's joint, divided, trajectory and EPIC models; X-ViT's K600 and SSv2 models;
TokShift's ViT and TokShift; CAST's one-head and verb-noun networks, as ``.pth`` and as a DeepSpeed tag folder),
loaded through ``models.released`` into the model ``required_model`` names, computes the authors' logits (float64,
relative error < 1e-10). The facts a checkpoint does not store come from ``expected.pt``'s ``given``, as a catalogue
entry supplies them. The golden logits tell the variants apart: the same weights in a model of the other stage two,
without X-ViT's shift segments, or of the other TokShift network miss them by far, so these tests can fail."""

from __future__ import annotations

import pytest
import torch

from models import create_model
from models.released import DESCRIPTION_KEYS, LAYOUTS, describe_released, load_released, read_released, required_model
from models.released.tokshift import TOKSHIFT_OPTIONS
from models.released.tokshift import model_mismatches as tokshift_mismatches

from .golden import CASES, TOLERANCE, checkpoint_file, expected, golden_model, known_facts, model_input, relative_error

# What the files themselves tell (their stored cfg, args and weights), as the official configs and builders set them.
DESCRIBED = {
    "mformer_trajectory": {"variant": "trajectory", "stage_two_values": "trajectory", "classes": 10, "frames": 8,
                           "crop": 32, "grid": [4, 4, 4], "tubelet": 2, "pos_embed": "separate", "epoch": 0},
    # every released configuration keeps POS_EMBED "separate", the joint one included
    "mformer_joint": {"variant": "joint", "classes": 10, "frames": 8, "crop": 32, "grid": [4, 4, 4],
                      "pos_embed": "separate"},
    "mformer_divided": {"variant": "divided", "attn_layer": "divided_official", "classes": 10, "frames": 8,
                        "crop": 32},
    "mformer_epic": {"variant": "trajectory", "classes": {"verb": 97, "noun": 300}, "num_classes": 397,
                     "heads": {"head0": 97, "head1": 300}, "dataset": "epic_kitchens100"},
    "xvit_k600": {"variant": "xvit", "frames": 16, "crop": 32, "shift_segment": 8, "shift_fraction": 0.25,
                  "temporal_table_frames": 8, "unused": ["new_fc.bias", "new_fc.weight"]},
    "xvit_ssv2": {"variant": "xvit", "frames": 16, "shift_segment": 16, "shift_fraction": 0.5,
                  "temporal_table_frames": 8, "dataset": "ssv2"},
    "tokshift_vit": {"classes": 7, "crop": 16, "patch": 4, "embed_dim": 24, "depth": 2, "frames": None,
                     "variant": None, "epoch": 1},
    "tokshift_shift": {"classes": 7, "frames": None, "variant": None},
    "cast_k400": {"classes": 400, "frames": 4, "crop": 28, "patch": 2, "variant": "bidir", "dtype": "float64",
                  "deepspeed": None, "dataset": "kinetics400"},
    "cast_ek100": {"classes": {"verb": 97, "noun": 300}, "variant": "compo_bidir", "dataset": "epic_kitchens100"},
    "cast_ek100_deepspeed": {"classes": {"verb": 97, "noun": 300}, "variant": "compo_bidir", "dtype": "float16",
                             "deepspeed": "0.8.0", "args": None},
}
# The official commit each case was made at.
COMMITS = {"mformer": "bf43d50c", "xvit": "82ca1766", "tokshift": "a7abb7e0", "cast": "51eb871b"}


def test_every_layout_and_variant_the_proof_needs_has_a_golden_case():
    assert set(CASES) == set(DESCRIBED)
    assert {expected(case)["layout"] for case in CASES} == set(LAYOUTS)
    for case in CASES:
        size = sum(p.stat().st_size for p in checkpoint_file(case).parent.rglob("*") if p.is_file())
        assert size < 500_000, f"{case}: golden files stay small"


@pytest.mark.parametrize("named", [True, False], ids=["layout named", "layout recognised"])
@pytest.mark.parametrize("case", CASES)
def test_a_golden_checkpoint_gives_the_authors_logits(case, named):
    golden = expected(case)
    assert golden["official"]["official_commit"].startswith(COMMITS[golden["layout"]])
    model = golden_model(case)
    description = load_released(model, checkpoint_file(case), golden["layout"] if named else None, known_facts(case))
    assert description["layout"] == golden["layout"] and set(DESCRIPTION_KEYS) <= set(description)
    assert description["file"].startswith(str(checkpoint_file(case)))
    with torch.no_grad():
        ours = model(model_input(case))
    assert ours.shape == golden["logits"].shape
    assert relative_error(ours, golden["logits"]) < TOLERANCE, golden["official"]["repository"]


@pytest.mark.parametrize("case", CASES)
def test_the_file_describes_itself(case):
    description = describe_released(checkpoint_file(case))
    assert {k: description[k] for k in DESCRIBED[case]} == DESCRIBED[case]
    checkpoint, _ = read_released(checkpoint_file(case))
    assert [name for name, layout in LAYOUTS.items() if layout.recognise(checkpoint)] == [expected(case)["layout"]]


def test_the_stored_configuration_and_arguments_are_read_as_data():
    mformer = describe_released(checkpoint_file("mformer_trajectory"))
    assert mformer["config"]["VIT"]["USE_ORIGINAL_TRAJ_ATTN_CODE"] is True  # the authors' cfg.dump()
    assert "optimizer_state" in mformer["other_entries"]
    k400 = describe_released(checkpoint_file("cast_k400"))
    assert k400["args"]["data_set"] == "Kinetics-400" and k400["args"]["num_frames"] == 4  # the stored Namespace


def _load_unchecked(model, case):
    """The converted weights loaded without the reader's checks, to see what another variant would compute."""
    golden = expected(case)
    checkpoint, _ = read_released(checkpoint_file(case))
    model.load_state_dict(LAYOUTS[golden["layout"]].convert(checkpoint, model))
    with torch.no_grad():
        return model(model_input(case))


def _as_variant(case, variant):
    """The model ``required_model`` names for the case's file as the other TokShift network."""
    needed = required_model(describe_released(checkpoint_file(case)) | expected(case)["given"] | {"variant": variant})
    return create_model(needed.name, **needed.overrides).double().eval()


@pytest.mark.parametrize("case, other", [
    ("mformer_trajectory", lambda: golden_model("mformer_trajectory", attn_kwargs={"stage_two_values": "projected"})),
    ("xvit_k600", lambda: golden_model("xvit_k600", attn_kwargs={"shift_fraction": 0.25})),  # one 16-frame segment
    ("xvit_ssv2", lambda: golden_model("xvit_ssv2", attn_kwargs={"shift_fraction": 0.5, "shift_segment": 8})),
    ("tokshift_vit", lambda: _as_variant("tokshift_vit", "tokshift")),
    ("tokshift_shift", lambda: _as_variant("tokshift_shift", "vit")),
], ids=["the paper's stage two", "X-ViT K600 without segments", "X-ViT SSv2 in segments", "ViT as TokShift",
        "TokShift as ViT"])
def test_the_golden_logits_tell_the_variants_apart(case, other):
    official = expected(case)["logits"]
    assert relative_error(_load_unchecked(golden_model(case), case), official) < TOLERANCE
    assert relative_error(_load_unchecked(other(), case), official) > 1e-3


def test_the_tiled_temporal_table_is_the_authors():
    """The authors' X-ViT backbone has 8 temporal entries for 16 frames; frame t adds entry t mod 8."""
    model = golden_model("xvit_k600")
    load_released(model, checkpoint_file("xvit_k600"))
    table = torch.load(checkpoint_file("xvit_k600"), weights_only=True)["model_state"]["base_model.temp_embed"]
    assert table.shape[1] == 8 and model.time_embed.shape[1] == 16
    assert torch.equal(model.time_embed[0, 8:], model.time_embed[0, :8])
    assert torch.equal(model.time_embed[0, :8].float(), table[0, :, 0])


def _meta(*shape: int) -> torch.Tensor:
    return torch.empty(shape, device="meta")


def test_required_model_at_the_papers_size_names_a_model_that_takes_the_file():
    """The released 224 / 8-frame TokShift and a 16-frame CAST-B: the model named is the paper-scale entry point
    with the checkpoint's classes, crop and frames (built on ``meta``), and passes the model checks."""
    width, blocks = 768, 12
    layer = {f"module.base_model.transformer.encoder.layer.{i}.attn.query.weight": _meta(width, width)
             for i in range(blocks)}
    tokshift = {"epoch": 18, "state_dict": {
        "module.base_model.transformer.embeddings.patch_embeddings.weight": _meta(width, 3, 16, 16),
        "module.base_model.transformer.embeddings.position_embeddings": _meta(1, 197, width),
        "module.base_model.head.weight": _meta(400, width), **layer}}
    description = describe_released(tokshift, "tokshift", known={"variant": "tokshift", "frames": 8})
    assert (description["backbone"], description["num_heads"], description["crop"]) == ("ViT-B_16", 12, 224)
    needed = required_model(description)
    assert needed.name == "vit_base_patch16_frame"
    assert needed.overrides == {"num_classes": 400, "img_size": 224, "num_frames": 8, **TOKSHIFT_OPTIONS}
    with torch.device("meta"):
        assert tokshift_mismatches(create_model(needed.name, **needed.overrides), description) == []
    cast = {"layout": "cast", "classes": {"verb": 97, "noun": 300}, "frames": 16, "crop": 224, "patch": 16,
            "embed_dim": 768, "depth": 12, "down_ratio": 0.5, "adapter_ratio": 0.25, "variant": "compo_bidir"}
    needed = required_model(cast)
    assert (needed.name, needed.overrides) == ("cast_base", {"num_classes": {"verb": 97, "noun": 300},
                                                             "num_frames": 16, "img_size": 224,
                                                             "float32_pos_table": True})
    with torch.device("meta"):
        assert LAYOUTS["cast"].mismatches(cast, create_model(needed.name, **needed.overrides)) == []
