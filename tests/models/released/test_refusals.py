"""What ``load_released`` refuses, each in one ``ReleasedWeightsError`` line that names the file and what is wrong,
before anything is loaded: a checkpoint of another variant, class count, crop or frame count than the model; a file
of another layout, or of none; a truncated file; a pickle that would run code; weights that do not fill the model
exactly; DeepSpeed folders whose weights are not in one file inside them. The golden files of
tests/golden/released/ are the starting point (test_golden.py)."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import pytest
import torch

from models import create_model
from models.released import LAYOUTS, ReleasedWeightsError, load_released, read_released
from models.released.tokshift import TOKSHIFT_OPTIONS

from ..test_weights import _RunsCode
from .test_golden import golden_case, model_for

TOKSHIFT_SMALL = dict(num_classes=7, img_size=16, patch_size=4, num_frames=4, embed_dim=24, depth=2, num_heads=2)
CAST_SMALL = dict(img_size=28, num_frames=4, patch_size=2, embed_dim=16, depth=2, num_heads=2,
                  float32_pos_table=True)


def refused(model: torch.nn.Module, source, layout: str | None, *fragments: str) -> str:
    """Assert that loading ``source`` raises one line naming it and every fragment, and that nothing loaded."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ReleasedWeightsError) as caught:
        load_released(model, source, layout)
    message = str(caught.value)
    assert "\n" not in message, message
    assert str(source) in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "something was loaded"
    return message


# ---- the model is another variant, class count, crop or frame count ---------------------------------------------


def test_a_tokshift_file_does_not_say_whether_it_shifts() -> None:
    """The shift has no parameters: the ViT and TokShift files are alike key for key and neither stores its frames,
    so ``model_config`` asks for both rather than guessing, and each file loads into either network (computing
    the other network's function there): the variant comes from the catalogue, not the file."""
    _, path, expected = golden_case("tokshift_vit")
    description = LAYOUTS["tokshift"].describe(read_released(path)[0])
    assert description["variant"] is None and description["frames"] is None
    with pytest.raises(ValueError, match="variant or frames"):
        LAYOUTS["tokshift"].model_config(description)
    shifting = model_for("tokshift_shift")
    load_released(shifting, path, "tokshift")
    with torch.no_grad():
        assert (shifting(expected["clip"]) - expected["logits"]).abs().max() > 1e-3


@pytest.mark.parametrize("options, fragment", [
    ({**TOKSHIFT_OPTIONS, "shift_order": "paper"}, "shift_order"),  # MSCA's TokenShift rows: Eq. 8's order
    ({**TOKSHIFT_OPTIONS, "temporal_shift": "all"}, "not TokShift's"),  # TSM-ViT
    ({**TOKSHIFT_OPTIONS, "shift_before": ("attn",)}, "not TokShift's"),
    ({"attn_layer": "msca"}, "MultiHeadSelfCrossAttention"),
    ({"temporal_aggregation": "attention", "attn_layer": "xvit"}, "average"),
], ids=["paper order", "all tokens", "before attention only", "msca", "xvit"])
def test_a_frame_wise_model_that_is_not_the_vit_or_tokshift_is_refused(options: dict, fragment: str) -> None:
    model = create_model("vit_base_patch16_frame", **TOKSHIFT_SMALL, **options).double()
    refused(model, golden_case("tokshift_shift")[1], "tokshift", "does not fit", fragment)


def test_a_tokshift_file_of_another_crop_or_class_count_is_refused() -> None:
    path = golden_case("tokshift_vit")[1]
    model = create_model("vit_base_patch16_frame", **{**TOKSHIFT_SMALL, "num_classes": 5, "img_size": 32})
    refused(model, path, "tokshift", "classes: file 7, model 5", "crop: file 16, model 32")
    refused(create_model("vit_tiny_video"), path, "tokshift", "not the frame-wise ViT (cls_layout='single'")
    refused(create_model("cast_tiny"), path, "tokshift", "read into the frame-wise VideoViT, not a CAST")


def test_a_cast_file_into_a_model_of_another_dataset_variant_or_frame_count_is_refused() -> None:
    k400, ek100 = golden_case("cast_k400")[1], golden_case("cast_ek100_deepspeed")[1]
    ssv2 = create_model("cast_base", num_classes=174, **CAST_SMALL)
    refused(ssv2, k400, "cast", "classes: file 400, model 174")
    one_head = create_model("cast_base", num_classes=397, **CAST_SMALL)
    refused(one_head, ek100, "cast", "classes: file {'verb': 97, 'noun': 300}, model 397",
            "variant: file compo_bidir, model bidir")
    two_heads = create_model("cast_base", num_classes={"verb": 97, "noun": 300}, **CAST_SMALL)
    refused(two_heads, k400, "cast", "variant: file bidir, model compo_bidir")
    eight_frames = create_model("cast_base", num_classes=400, **{**CAST_SMALL, "num_frames": 8})
    refused(eight_frames, k400, "cast", "frames: file 4, model 8")
    independent = create_model("cast_base", num_classes=400, exchange="none", time_adapter=True, **CAST_SMALL)
    refused(independent, k400, "cast", "no B-CAST in every block", "adapters are not the official ones")


# ---- another layout, no checkpoint, a pickle that would run code --------------------------------------------------


def test_a_file_of_another_layout_is_refused_naming_what_it_looks_like(tmp_path: Path) -> None:
    mformer = tmp_path / "k400_motionformer_224_16x4.pyth"
    torch.save({"epoch": 35, "model_state": {"patch_embed.proj.weight": torch.zeros(4, 3, 2, 2),
                                             "cls_token": torch.zeros(1, 1, 4)}, "optimizer_state": {}, "cfg": ""},
               mformer)
    model = model_for("tokshift_vit")
    refused(model, mformer, "tokshift", "not a tokshift checkpoint", "no known layout fits it", "model_state")
    refused(model, mformer, None, "recognised by none of the known layouts")
    refused(model, golden_case("cast_k400")[1], "tokshift", "it looks like a cast checkpoint")
    refused(model, golden_case("tokshift_vit")[1], "motionformer", "unknown layout 'motionformer'")


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    whole = golden_case("tokshift_shift")[1].read_bytes()
    truncated = tmp_path / "best_tokshift_B8x32x224_k400.pth"
    truncated.write_bytes(whole[:len(whole) // 2])
    refused(model_for("tokshift_shift"), truncated, "tokshift", "not a readable PyTorch checkpoint")
    refused(model_for("tokshift_shift"), tmp_path / "absent.pth", None, "does not exist")


def test_a_pickle_that_would_run_code_is_refused_and_runs_none(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    planted = tmp_path / "checkpoint-49.pth"
    torch.save({"model": {"clip_conv1.weight": _RunsCode(marker)}, "epoch": 49}, planted)
    refused(model_for("cast_k400"), planted, "cast", "refused", "arbitrary code")
    # the stored arguments are read as data, and only as data
    in_args = tmp_path / "checkpoint-50.pth"
    checkpoint = read_released(golden_case("cast_k400")[1])[0]
    torch.save({**checkpoint, "args": argparse.Namespace(nb_classes=400, hook=_RunsCode(marker))}, in_args)
    refused(model_for("cast_k400"), in_args, "cast", "refused")
    assert not marker.exists(), "unpickling ran the checkpoint's code"


# ---- weights that do not fill the model exactly -------------------------------------------------------------------


def test_a_missing_an_unexpected_or_a_half_projection_key_is_named(tmp_path: Path) -> None:
    checkpoint = read_released(golden_case("tokshift_shift")[1])[0]
    weights = dict(checkpoint["state_dict"])
    root = "module.base_model.transformer.encoder.layer.1."
    del weights[root + "ffn.fc2.bias"], weights[root + "attn.key.weight"]
    weights["module.base_model.transformer.embeddings.hybrid_model.root.conv.weight"] = torch.zeros(1)
    edited = tmp_path / "edited.pth"
    torch.save({**checkpoint, "state_dict": weights}, edited)
    refused(model_for("tokshift_shift"), edited, "tokshift",
            "missing from the file 2: blocks.1.attn.qkv.weight, blocks.1.mlp.fc2.bias",
            "not in the model 3:", "base_model.transformer.embeddings.hybrid_model.root.conv.weight",
            "base_model.transformer.encoder.layer.1.attn.query.weight")


def test_a_cast_weight_of_another_shape_is_named(tmp_path: Path) -> None:
    checkpoint = read_released(golden_case("cast_k400")[1])[0]
    model = dict(checkpoint["model"])
    model["blocks.1.attn.q_bias"] = torch.zeros(3, dtype=torch.float64)
    del model["blocks.0.attn.v_bias"]
    edited = tmp_path / "edited.pth"
    torch.save({**checkpoint, "model": model}, edited)
    refused(model_for("cast_k400"), edited, "cast",
            "other shapes 1: temporal.blocks.1.attn.qkv.bias (file (22,), model (48,))",
            "not in the model 1: blocks.0.attn.q_bias", "missing from the file 1: temporal.blocks.0.attn.qkv.bias")
    del model["blocks.0.t2s_cross.clip_time_pos"]  # what gives the frame count
    torch.save({**checkpoint, "model": model}, edited)
    refused(model_for("cast_k400"), edited, "cast", "a cast checkpoint without 'blocks.0.t2s_cross.clip_time_pos'")


# ---- DeepSpeed folders -----------------------------------------------------------------------------------------


def test_a_deepspeed_save_folder_is_refused_naming_its_tag_folder() -> None:
    save_folder = golden_case("cast_ek100_deepspeed")[1].parent
    refused(model_for("cast_ek100_deepspeed"), save_folder, "cast", "not a DeepSpeed tag folder",
            str(save_folder / "checkpoint-1"))


def test_a_link_out_of_the_tag_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.pt"
    shutil.copy(golden_case("cast_ek100_deepspeed")[1] / "mp_rank_00_model_states.pt", outside)
    tag = tmp_path / "checkpoint-1"
    tag.mkdir()
    os.symlink(outside, tag / "mp_rank_00_model_states.pt")
    message = refused(model_for("cast_ek100_deepspeed"), tag, "cast", "leads out of the tag folder")
    assert str(outside) in message
    inside = tmp_path / "checkpoint-2"
    inside.mkdir()
    shutil.copy(outside, inside / "states.pt")
    os.symlink(inside / "states.pt", inside / "mp_rank_00_model_states.pt")  # a link that stays inside: read
    load_released(model_for("cast_ek100_deepspeed"), inside, "cast")


@pytest.mark.parametrize("other, fragment", [("mp_rank_01_model_states.pt", "model-parallel"),
                                             ("zero_pp_rank_0_mp_rank_00_model_states.pt", "ZeRO stage 3")])
def test_a_deepspeed_checkpoint_spread_over_several_files_is_refused(tmp_path: Path, other: str,
                                                                     fragment: str) -> None:
    tag = tmp_path / "checkpoint-1"
    shutil.copytree(golden_case("cast_ek100_deepspeed")[1], tag)
    (tag / other).write_bytes(b"")
    refused(model_for("cast_ek100_deepspeed"), tag, "cast", fragment)
