"""A released checkpoint that does not fit is refused in one line naming the file and what is wrong, and nothing is
loaded: a checkpoint of another variant, class count, frame count or crop than the model; of another layout than the
one named, or of none; a fact the caller states that the file contradicts; a truncated file; a pickle that would run
code; a key the strict load would miss; DeepSpeed folders whose weights are not in one file inside them. The golden
cases of tests/golden/released/ are the starting point (test_golden.py)."""

from __future__ import annotations

import argparse
import os
import re
import shutil

import pytest
import torch
import yaml

from models import create_model, load_pretrained
from models.released import (
    LAYOUTS,
    ReleasedWeightsError,
    check_fits,
    describe_released,
    load_released,
    read_released,
    required_model,
)
from models.released.tokshift import TOKSHIFT_OPTIONS
from models.weights import CheckpointError
from tests.faults.test_weights_never_run_code import Reduces

from .golden import checkpoint_file, expected, golden_model, known_facts, model_input, relative_error

TOKSHIFT_SMALL = dict(num_classes=7, img_size=16, patch_size=4, num_frames=4, embed_dim=24, depth=2, num_heads=2)
CAST_SMALL = dict(img_size=28, num_frames=4, patch_size=2, embed_dim=16, depth=2, num_heads=2,
                  float32_pos_table=True)


def refused(model, source, *patterns, layout=None, known=None):
    """``load_released`` raises one ``ReleasedWeightsError`` line naming ``source`` and matching ``patterns``
    (regular expressions); the model's weights are untouched."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ReleasedWeightsError) as caught:
        load_released(model, source, layout, known)
    message = str(caught.value)
    assert isinstance(caught.value, CheckpointError)
    assert "\n" not in message and str(source) in message, message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "something was loaded"
    return message


def rewritten(tmp_path, case, weights=None, config=None, drop=(), file_name=None):
    """A golden PySlowFast checkpoint with some weights replaced or dropped and its cfg updated (``config``:
    section -> keys)."""
    checkpoint = torch.load(checkpoint_file(case), weights_only=True)
    checkpoint["model_state"] = {k: v for k, v in {**checkpoint["model_state"], **(weights or {})}.items()
                                 if k not in drop}
    cfg = yaml.safe_load(checkpoint["cfg"])
    for section, values in (config or {}).items():
        cfg[section].update(values)
    checkpoint["cfg"] = yaml.safe_dump(cfg)
    path = tmp_path / (file_name or f"{case}_rewritten.pyth")
    torch.save(checkpoint, path)
    return path


# ---- another variant, dataset, frame count or crop than the model's ---------------------------------------------


def test_a_joint_checkpoint_into_a_trajectory_model():
    model = golden_model("mformer_joint", attn_layer="trajectory", attn_kwargs={"stage_two_values": "trajectory"})
    refused(model, checkpoint_file("mformer_joint"), r"ATTN_LAYER joint", r"attn_layer='joint'")


def test_a_trajectory_checkpoint_into_the_papers_stage_two():
    model = golden_model("mformer_trajectory", attn_kwargs={"stage_two_values": "projected"})
    refused(model, checkpoint_file("mformer_trajectory"), r"USE_ORIGINAL_TRAJ_ATTN_CODE=True",
            r"stage_two_values='trajectory'")


def test_a_divided_checkpoint_into_our_one_attention_divided_model():
    model = golden_model("mformer_divided", attn_layer="divided")
    refused(model, checkpoint_file("mformer_divided"), r"ATTN_LAYER divided", r"divided_official")


def test_a_k400_checkpoint_into_an_ssv2_model(tmp_path):
    dim = golden_model("mformer_trajectory").embed_dim
    k400 = rewritten(tmp_path, "mformer_trajectory", {"head.weight": torch.randn(400, dim),
                                                      "head.bias": torch.randn(400)}, {"MODEL": {"NUM_CLASSES": 400}})
    assert describe_released(k400)["dataset"] == "kinetics400"
    refused(golden_model("mformer_trajectory", num_classes=174), k400, r"num_classes: file 400, model 174")


def test_a_16_frame_checkpoint_into_a_32_frame_model(tmp_path):
    dim = golden_model("mformer_trajectory").embed_dim
    sixteen = rewritten(tmp_path, "mformer_trajectory", {"temp_embed": torch.randn(1, 8, dim)},
                        {"DATA": {"NUM_FRAMES": 16}, "VIT": {"TEMPORAL_RESOLUTION": 8}})
    refused(golden_model("mformer_trajectory", num_frames=32), sixteen, r"frames: file 16, model 32")


def test_a_336_crop_checkpoint_into_a_224_model(tmp_path):
    hr = rewritten(tmp_path, "mformer_trajectory", config={"DATA": {"TRAIN_CROP_SIZE": 336, "TEST_CROP_SIZE": 336}})
    refused(golden_model("mformer_trajectory", img_size=224), hr, r"crop: file 336, model 224")


def test_two_heads_into_one_of_their_class_counts():
    refused(golden_model("mformer_epic", num_classes=97), checkpoint_file("mformer_epic"),
            r"num_classes: file 397, model 97")


def test_x_vit_shift_segments_and_fold_must_be_the_checkpoints():
    refused(golden_model("xvit_k600", attn_kwargs={"shift_fraction": 0.25}), checkpoint_file("xvit_k600"),
            r"XVIT.NUM_SEGMENTS 8", r"shift_segment=8")
    refused(golden_model("xvit_ssv2", attn_kwargs={"shift_fraction": 0.25}), checkpoint_file("xvit_ssv2"),
            r"XVIT.SHIFT_DIV 4", r"shift_fraction=0.5")
    refused(golden_model("xvit_ssv2", temporal_aggregation="average"), checkpoint_file("xvit_ssv2"),
            r"temporal_aggregation='attention'")


def test_an_x_vit_state_dict_without_its_configuration(tmp_path):
    bare = tmp_path / "bare.pth"
    torch.save(torch.load(checkpoint_file("xvit_k600"), weights_only=True)["model_state"], bare)
    refused(golden_model("xvit_k600"), bare, r"stores no configuration \(cfg\)", r"SHIFT_DIV")


def test_a_tokshift_file_does_not_say_whether_it_shifts():
    """The shift has no parameters: the ViT and TokShift files are alike key for key and neither stores its frames,
    so ``required_model`` asks for both rather than guessing; the caller states them (``known``), and a model of
    the other network is then refused. Without them the file loads into either network, computing the other's
    function there: the variant comes from the catalogue, not the file."""
    path = checkpoint_file("tokshift_vit")
    description = describe_released(path)
    assert description["variant"] is None and description["frames"] is None
    with pytest.raises(ValueError, match="variant or frames"):
        required_model(description)
    shifting = golden_model("tokshift_shift")
    refused(shifting, path, r"variant: file vit, model tokshift", known=known_facts("tokshift_vit"))
    load_released(shifting, path, "tokshift")
    with torch.no_grad():
        assert relative_error(shifting(model_input("tokshift_vit")), expected("tokshift_vit")["logits"]) > 1e-3


@pytest.mark.parametrize("options, fragment", [
    ({**TOKSHIFT_OPTIONS, "shift_order": "paper"}, "not TokShift's"),  # MSCA's TokenShift rows: Eq. 8's order
    ({**TOKSHIFT_OPTIONS, "temporal_shift": "all"}, "not TokShift's"),  # TSM-ViT
    ({**TOKSHIFT_OPTIONS, "shift_before": ("attn",)}, "not TokShift's"),
    ({"attn_layer": "msca"}, "MultiHeadSelfCrossAttention"),
    ({"temporal_aggregation": "attention", "attn_layer": "xvit"}, "average"),
], ids=["paper order", "all tokens", "before attention only", "msca", "xvit"])
def test_a_frame_wise_model_that_is_not_the_vit_or_tokshift_is_refused(options, fragment):
    model = create_model("vit_base_patch16_frame", **TOKSHIFT_SMALL, **options).double()
    refused(model, checkpoint_file("tokshift_shift"), "does not fit", re.escape(fragment), layout="tokshift")


def test_a_tokshift_file_of_another_crop_or_class_count_is_refused():
    path = checkpoint_file("tokshift_vit")
    model = create_model("vit_base_patch16_frame", **{**TOKSHIFT_SMALL, "num_classes": 5, "img_size": 32})
    refused(model, path, "classes: file 7, model 5", "crop: file 16, model 32", layout="tokshift")
    refused(create_model("vit_tiny_video"), path, re.escape("not the frame-wise ViT (cls_layout='single'"),
            layout="tokshift")
    refused(create_model("cast_tiny"), path, "read into the frame-wise VideoViT, not a CAST", layout="tokshift")


def test_a_cast_file_into_a_model_of_another_dataset_variant_or_frame_count_is_refused():
    k400, ek100 = checkpoint_file("cast_k400"), checkpoint_file("cast_ek100_deepspeed")
    refused(create_model("cast_base", num_classes=174, **CAST_SMALL), k400, "classes: file 400, model 174")
    one_head = create_model("cast_base", num_classes=397, **CAST_SMALL)
    refused(one_head, ek100, re.escape("classes: file {'verb': 97, 'noun': 300}, model 397"),
            "variant: file compo_bidir, model bidir")
    two_heads = create_model("cast_base", num_classes={"verb": 97, "noun": 300}, **CAST_SMALL)
    refused(two_heads, k400, "variant: file bidir, model compo_bidir")
    eight_frames = create_model("cast_base", num_classes=400, **{**CAST_SMALL, "num_frames": 8})
    refused(eight_frames, k400, "frames: file 4, model 8")
    independent = create_model("cast_base", num_classes=400, exchange="none", time_adapter=True, **CAST_SMALL)
    refused(independent, k400, "no B-CAST in every block", "adapters are not the official ones")


def test_a_fact_the_caller_states_that_the_file_contradicts():
    """A catalogue entry's facts are checked against the file before any model is: another dataset's checkpoint
    named for a cell is refused even when the model was built for it."""
    refused(golden_model("cast_k400"), checkpoint_file("cast_k400"), r"not the CAST .* checkpoint expected",
            r"classes 400 in the file, 174 expected", known={"classes": 174})
    refused(golden_model("mformer_joint"), checkpoint_file("mformer_joint"), r"variant joint in the file, "
            r"trajectory expected", known={"variant": "trajectory"})
    with pytest.raises(ValueError, match="are none of"):
        describe_released(checkpoint_file("mformer_joint"), known={"colour": "red"})


def test_check_fits_makes_every_check_on_the_meta_device_and_loads_nothing():
    with torch.device("meta"):
        model = golden_model("xvit_ssv2")
    assert check_fits(model, checkpoint_file("xvit_ssv2"))["layout"] == "xvit"
    with torch.device("meta"):
        wrong = golden_model("xvit_ssv2", num_classes=5)
    with pytest.raises(ReleasedWeightsError, match="classes: file 12, model 5"):
        check_fits(wrong, checkpoint_file("xvit_ssv2"))


# ---- another layout, or none ------------------------------------------------------------------------------------


def test_a_file_named_as_another_layout():
    refused(golden_model("xvit_k600"), checkpoint_file("xvit_k600"),
            r"layout 'mformer' \(Motionformer .*\) was named, but the file is a checkpoint of X-ViT "
            r"\(1adrianb/video-transformers\), layout 'xvit'", layout="mformer")
    refused(golden_model("mformer_joint"), checkpoint_file("mformer_joint"),
            r"layout 'xvit' .* the file is a checkpoint of Motionformer", layout="xvit")
    refused(golden_model("tokshift_vit"), checkpoint_file("cast_k400"), r"the file is a checkpoint of CAST",
            layout="tokshift")
    refused(golden_model("mformer_joint"), checkpoint_file("mformer_joint"), r"no released layout 'nonesuch'",
            layout="nonesuch")


def test_a_file_of_no_released_layout(tmp_path):
    path = tmp_path / "timm_vit.pth"
    torch.save({"model": {"cls_token": torch.zeros(1, 1, 8), "blocks.0.attn.qkv.weight": torch.zeros(24, 8)}}, path)
    refused(golden_model("mformer_joint"), path, r"recognised by none of the released layouts", r"keys model",
            r"nested weights cls_token")
    refused(golden_model("tokshift_vit"), path, r"layout 'tokshift' .* was named, but the file is of no released "
            r"layout", layout="tokshift")


def test_each_layout_recognises_only_its_own_files():
    for case in ("mformer_trajectory", "mformer_epic", "xvit_k600", "tokshift_vit", "cast_k400",
                 "cast_ek100_deepspeed"):
        checkpoint, _ = read_released(checkpoint_file(case))
        assert [n for n, layout in LAYOUTS.items() if layout.recognise(checkpoint)] == [expected(case)["layout"]]


# ---- files that are no weights, or would run code -----------------------------------------------------------------


@pytest.mark.parametrize("case", ["mformer_trajectory", "tokshift_shift", "cast_k400"])
def test_a_truncated_file(tmp_path, case):
    path = tmp_path / checkpoint_file(case).name
    data = checkpoint_file(case).read_bytes()
    path.write_bytes(data[:len(data) // 2])
    refused(golden_model(case), path, r"not a readable PyTorch checkpoint")


def test_a_missing_file(tmp_path):
    refused(golden_model("mformer_trajectory"), tmp_path / "absent.pyth", r"does not exist")


def test_a_pickle_that_would_run_code(tmp_path):
    path, marker = tmp_path / "k400_joint_224_16x4.pyth", tmp_path / "code_ran"
    weights = torch.load(checkpoint_file("mformer_joint"), weights_only=True)
    weights["model_state"]["cls_token"] = Reduces(marker)
    torch.save(weights, path)
    refused(golden_model("mformer_joint"), path, r"refused: not a plain weights file", r"GLOBAL")
    planted = tmp_path / "checkpoint-49.pth"
    torch.save({"model": {"clip_conv1.weight": Reduces(marker)}, "epoch": 49}, planted)
    refused(golden_model("cast_k400"), planted, "refused", "arbitrary code", layout="cast")
    # CAST's stored arguments are read as data, and only as data
    in_args = tmp_path / "checkpoint-50.pth"
    checkpoint, _ = read_released(checkpoint_file("cast_k400"))
    torch.save({**checkpoint, "args": argparse.Namespace(nb_classes=400, hook=Reduces(marker))}, in_args)
    refused(golden_model("cast_k400"), in_args, "refused", layout="cast")
    assert not marker.exists(), "unpickling ran the checkpoint's code"


# ---- the strict load ----------------------------------------------------------------------------------------------


def test_every_missing_or_unexpected_key_is_named(tmp_path):
    path = rewritten(tmp_path, "mformer_trajectory", {"blocks.1.attn.extra.weight": torch.zeros(2)},
                     drop=("blocks.1.mlp.fc2.bias",))
    refused(golden_model("mformer_trajectory"), path, r"missing from the file 1: blocks.1.mlp.fc2.bias",
            r"not in the model 1: blocks.1.attn.extra.weight")


def test_a_missing_an_unexpected_or_a_half_projection_key_is_named(tmp_path):
    checkpoint, _ = read_released(checkpoint_file("tokshift_shift"))
    weights = dict(checkpoint["state_dict"])
    root = "module.base_model.transformer.encoder.layer.1."
    del weights[root + "ffn.fc2.bias"], weights[root + "attn.key.weight"]
    weights["module.base_model.transformer.embeddings.hybrid_model.root.conv.weight"] = torch.zeros(1)
    edited = tmp_path / "edited.pth"
    torch.save({**checkpoint, "state_dict": weights}, edited)
    refused(golden_model("tokshift_shift"), edited,
            "missing from the file 2: blocks.1.attn.qkv.weight, blocks.1.mlp.fc2.bias",
            "not in the model 3:", "base_model.transformer.embeddings.hybrid_model.root.conv.weight",
            "base_model.transformer.encoder.layer.1.attn.query.weight", layout="tokshift")


def test_a_cast_weight_of_another_shape_is_named(tmp_path):
    checkpoint, _ = read_released(checkpoint_file("cast_k400"))
    weights = dict(checkpoint["model"])
    weights["blocks.1.attn.q_bias"] = torch.zeros(3, dtype=torch.float64)
    del weights["blocks.0.attn.v_bias"]
    edited = tmp_path / "edited.pth"
    torch.save({**checkpoint, "model": weights}, edited)
    refused(golden_model("cast_k400"), edited, re.escape("other shapes 1: temporal.blocks.1.attn.qkv.bias "
                                                         "(file (22,), model (48,))"),
            "not in the model 1: blocks.0.attn.q_bias", "missing from the file 1: temporal.blocks.0.attn.qkv.bias",
            layout="cast")
    del weights["blocks.0.t2s_cross.clip_time_pos"]  # what gives the frame count
    torch.save({**checkpoint, "model": weights}, edited)
    refused(golden_model("cast_k400"), edited, "checkpoint without usable weights: blocks.0.t2s_cross.clip_time_pos",
            layout="cast")


def test_x_vit_blocks_that_shift_must_be_a_suffix_for_our_models(tmp_path):
    path = rewritten(tmp_path, "xvit_ssv2", config={"XVIT": {"LOCATIONS_LIST": [0]}})
    description = describe_released(path) | expected("xvit_ssv2")["given"]
    assert description["shifted_blocks"] == [0]
    with pytest.raises(ValueError, match=r"shifts blocks \[0\]; a model here shifts its last blocks only"):
        required_model(description)
    tail = rewritten(tmp_path, "xvit_ssv2", config={"XVIT": {"LOCATIONS_LIST": [1, 5, 9]}}, file_name="tail.pyth")
    needed = required_model(describe_released(tail) | expected("xvit_ssv2")["given"])
    assert needed.overrides["shift_last_blocks"] == 1
    load_released(golden_model("xvit_ssv2", shift_last_blocks=1), tail)  # block 0 attends within its frame
    refused(golden_model("xvit_ssv2"), tail, r"block 0 does not shift")


def test_the_fine_tuning_route_reads_divided_checkpoints_too():
    """``--pretrained official:FILE`` (``load_pretrained``) starts a divided_official model from the divided file."""
    model = golden_model("mformer_divided")
    assert load_pretrained(model, f"official:{checkpoint_file('mformer_divided')}") == {"missing": [],
                                                                                          "unexpected": []}
    with torch.no_grad():
        assert relative_error(model(model_input("mformer_divided")), expected("mformer_divided")["logits"]) < 1e-10


# ---- DeepSpeed folders -----------------------------------------------------------------------------------------


def test_a_deepspeed_save_folder_is_refused_naming_its_tag_folder():
    save_folder = checkpoint_file("cast_ek100_deepspeed").parent
    refused(golden_model("cast_ek100_deepspeed"), save_folder, "not a DeepSpeed tag folder",
            re.escape(str(save_folder / "checkpoint-1")), layout="cast")


def test_a_link_out_of_the_tag_folder_is_refused(tmp_path):
    outside = tmp_path / "elsewhere.pt"
    shutil.copy(checkpoint_file("cast_ek100_deepspeed") / "mp_rank_00_model_states.pt", outside)
    tag = tmp_path / "checkpoint-1"
    tag.mkdir()
    os.symlink(outside, tag / "mp_rank_00_model_states.pt")
    message = refused(golden_model("cast_ek100_deepspeed"), tag, "leads out of the tag folder", layout="cast")
    assert str(outside) in message
    inside = tmp_path / "checkpoint-2"
    inside.mkdir()
    shutil.copy(outside, inside / "states.pt")
    os.symlink(inside / "states.pt", inside / "mp_rank_00_model_states.pt")  # a link that stays inside: read
    load_released(golden_model("cast_ek100_deepspeed"), inside, "cast")


@pytest.mark.parametrize("other, fragment", [("mp_rank_01_model_states.pt", "model-parallel"),
                                             ("zero_pp_rank_0_mp_rank_00_model_states.pt", "ZeRO stage 3")])
def test_a_deepspeed_checkpoint_spread_over_several_files_is_refused(tmp_path, other, fragment):
    tag = tmp_path / "checkpoint-1"
    shutil.copytree(checkpoint_file("cast_ek100_deepspeed"), tag)
    (tag / other).write_bytes(b"")
    refused(golden_model("cast_ek100_deepspeed"), tag, fragment, layout="cast")
