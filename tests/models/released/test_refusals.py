"""A released checkpoint that does not fit is refused in one line naming the file and what is wrong, and nothing is
loaded: a checkpoint of another variant, class count, frame count or crop than the model, of another layout than the
one named or of none, a truncated file, a pickle that would run code, a key the strict load would miss."""

import os
import re

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import models  # noqa: E402,F401  (repairs torchvision before anything imports timm)
import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from models.released import (LAYOUTS, ReleasedWeightsError, describe_released, load_released,  # noqa: E402
                             required_model)
from models.weights import CheckpointError  # noqa: E402
from tests.faults.test_weights_never_run_code import Reduces  # noqa: E402
from tests.models.released.golden import checkpoint_file, golden_io, golden_model, relative_error  # noqa: E402


def assert_refused(model, source, *patterns, layout=None):
    """``load_released`` raises one ``ReleasedWeightsError`` line naming ``source`` and matching ``patterns``; the
    model's weights are untouched."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ReleasedWeightsError) as caught:
        load_released(model, source, layout)
    message = str(caught.value)
    assert isinstance(caught.value, CheckpointError)
    assert "\n" not in message and str(source) in message, message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "something was loaded"
    return message


def rewritten(tmp_path, name, weights=None, config=None, drop=(), file_name=None):
    """A golden checkpoint with some weights replaced or dropped and its cfg updated (``config``: section -> keys)."""
    checkpoint = torch.load(checkpoint_file(name), weights_only=True)
    checkpoint["model_state"] = {k: v for k, v in {**checkpoint["model_state"], **(weights or {})}.items()
                                 if k not in drop}
    cfg = yaml.safe_load(checkpoint["cfg"])
    for section, values in (config or {}).items():
        cfg[section].update(values)
    checkpoint["cfg"] = yaml.safe_dump(cfg)
    path = tmp_path / (file_name or f"{name}_rewritten.pyth")
    torch.save(checkpoint, path)
    return path


# ---- another variant, dataset, frame count or crop than the model's ---------------------------------------------


def test_a_joint_checkpoint_into_a_trajectory_model():
    model = golden_model("mformer_joint", attn_layer="trajectory", attn_kwargs={"stage_two_values": "trajectory"})
    assert_refused(model, checkpoint_file("mformer_joint"), r"ATTN_LAYER joint", r"attn_layer='joint'")


def test_a_trajectory_checkpoint_into_the_papers_stage_two():
    model = golden_model("mformer_trajectory", attn_kwargs={"stage_two_values": "projected"})
    assert_refused(model, checkpoint_file("mformer_trajectory"), r"USE_ORIGINAL_TRAJ_ATTN_CODE=True",
                   r"stage_two_values='trajectory'")


def test_a_divided_checkpoint_into_our_one_attention_divided_model():
    model = golden_model("mformer_divided", attn_layer="divided")
    assert_refused(model, checkpoint_file("mformer_divided"), r"ATTN_LAYER divided", r"divided_official")


def test_a_k400_checkpoint_into_an_ssv2_model(tmp_path):
    dim = golden_model("mformer_trajectory").embed_dim
    k400 = rewritten(tmp_path, "mformer_trajectory", {"head.weight": torch.randn(400, dim),
                                                      "head.bias": torch.randn(400)}, {"MODEL": {"NUM_CLASSES": 400}})
    assert describe_released(k400)["dataset"] == "kinetics400"
    assert_refused(golden_model("mformer_trajectory", num_classes=174), k400, r"400 classes \(the model: 174\)")


def test_a_16_frame_checkpoint_into_a_32_frame_model(tmp_path):
    dim = golden_model("mformer_trajectory").embed_dim
    sixteen = rewritten(tmp_path, "mformer_trajectory", {"temp_embed": torch.randn(1, 8, dim)},
                        {"DATA": {"NUM_FRAMES": 16}, "VIT": {"TEMPORAL_RESOLUTION": 8}})
    assert_refused(golden_model("mformer_trajectory", num_frames=32), sixteen, r"16 frames \(the model: 32\)")


def test_a_336_crop_checkpoint_into_a_224_model(tmp_path):
    hr = rewritten(tmp_path, "mformer_trajectory", config={"DATA": {"TRAIN_CROP_SIZE": 336, "TEST_CROP_SIZE": 336}})
    assert_refused(golden_model("mformer_trajectory", img_size=224), hr, r"336 crop \(the model: 224\)")


def test_two_heads_into_one_of_their_class_counts():
    assert_refused(golden_model("mformer_epic", num_classes=97), checkpoint_file("mformer_epic"),
                   r"397 classes \(the model: 97\)")


def test_x_vit_shift_segments_and_fold_must_be_the_checkpoints():
    assert_refused(golden_model("xvit_k600", attn_kwargs={"shift_fraction": 0.25}), checkpoint_file("xvit_k600"),
                   r"XVIT.NUM_SEGMENTS 8", r"shift_segment=8")
    assert_refused(golden_model("xvit_ssv2", attn_kwargs={"shift_fraction": 0.25}), checkpoint_file("xvit_ssv2"),
                   r"XVIT.SHIFT_DIV 4", r"shift_fraction=0.5")
    assert_refused(golden_model("xvit_ssv2", temporal_aggregation="average"), checkpoint_file("xvit_ssv2"),
                   r"temporal_aggregation='attention'")


def test_an_x_vit_state_dict_without_its_configuration(tmp_path):
    bare = tmp_path / "bare.pth"
    torch.save(torch.load(checkpoint_file("xvit_k600"), weights_only=True)["model_state"], bare)
    assert_refused(golden_model("xvit_k600"), bare, r"stores no configuration \(cfg\)", r"SHIFT_DIV")


# ---- another layout, or none ------------------------------------------------------------------------------------


def test_a_file_named_as_another_layout():
    assert_refused(golden_model("xvit_k600"), checkpoint_file("xvit_k600"),
                   r"layout 'mformer' \(Motionformer .*\) was named, but the file is a checkpoint of X-ViT "
                   r"\(1adrianb/video-transformers\), layout 'xvit'", layout="mformer")
    assert_refused(golden_model("mformer_joint"), checkpoint_file("mformer_joint"),
                   r"layout 'xvit' .* the file is a checkpoint of Motionformer", layout="xvit")
    assert_refused(golden_model("mformer_joint"), checkpoint_file("mformer_joint"), r"no released layout 'nonesuch'",
                   layout="nonesuch")


def test_a_file_of_no_released_layout(tmp_path):
    path = tmp_path / "timm_vit.pth"
    torch.save({"model": {"cls_token": torch.zeros(1, 1, 8), "blocks.0.attn.qkv.weight": torch.zeros(24, 8)}}, path)
    assert_refused(golden_model("mformer_joint"), path, r"recognised by none of the released layouts", r"keys model")


def test_each_layout_recognises_only_its_own_files():
    for name in ("mformer_trajectory", "mformer_epic", "xvit_k600"):
        checkpoint = torch.load(checkpoint_file(name), weights_only=True)
        assert [n for n, layout in LAYOUTS.items() if layout.recognise(checkpoint)] == [name.split("_")[0]]


# ---- files that are no weights, or would run code -----------------------------------------------------------------


def test_a_truncated_file(tmp_path):
    path = tmp_path / "k400_motionformer_224_16x4.pyth"
    data = checkpoint_file("mformer_trajectory").read_bytes()
    path.write_bytes(data[:len(data) // 2])
    assert_refused(golden_model("mformer_trajectory"), path, r"not a readable PyTorch checkpoint")


def test_a_missing_file(tmp_path):
    assert_refused(golden_model("mformer_trajectory"), tmp_path / "absent.pyth", r"does not exist")


def test_a_pickle_that_would_run_code(tmp_path):
    path, marker = tmp_path / "k400_joint_224_16x4.pyth", tmp_path / "code_ran"
    weights = torch.load(checkpoint_file("mformer_joint"), weights_only=True)
    weights["model_state"]["cls_token"] = Reduces(marker)
    torch.save(weights, path)
    assert_refused(golden_model("mformer_joint"), path, r"refused: not a plain weights file", r"GLOBAL")
    assert not marker.exists()


# ---- the strict load ----------------------------------------------------------------------------------------------


def test_every_missing_or_unexpected_key_is_named(tmp_path):
    path = rewritten(tmp_path, "mformer_trajectory", {"blocks.1.attn.extra.weight": torch.zeros(2)},
                     drop=("blocks.1.mlp.fc2.bias",))
    assert_refused(golden_model("mformer_trajectory"), path, r"missing 1 key\(s\): blocks.1.mlp.fc2.bias",
                   r"unexpected 1 key\(s\): blocks.1.attn.extra.weight")


def test_x_vit_blocks_that_shift_must_be_a_suffix_for_our_models(tmp_path):
    path = rewritten(tmp_path, "xvit_ssv2", config={"XVIT": {"LOCATIONS_LIST": [0]}})
    description = describe_released(path)
    assert description["shifted_blocks"] == [0]
    with pytest.raises(ValueError, match=r"shifts blocks \[0\]; a model here shifts its last blocks only"):
        required_model(description)
    tail = rewritten(tmp_path, "xvit_ssv2", config={"XVIT": {"LOCATIONS_LIST": [1, 5, 9]}}, file_name="tail.pyth")
    needed = required_model(describe_released(tail))
    assert needed.overrides["shift_last_blocks"] == 1
    model = golden_model("xvit_ssv2", shift_last_blocks=1)
    load_released(model, tail)  # block 0 attends within its frame, block 1 mixes: the authors' LOCATIONS [1]
    assert_refused(golden_model("xvit_ssv2"), tail, r"block 0 does not shift")


def test_the_fine_tuning_route_reads_divided_checkpoints_too():
    """``--pretrained official:FILE`` (``load_pretrained``) starts a divided_official model from the divided file."""
    from models import load_pretrained

    model = golden_model("mformer_divided")
    assert load_pretrained(model, f"official:{checkpoint_file('mformer_divided')}") == {"missing": [],
                                                                                          "unexpected": []}
    video, official, _ = golden_io("mformer_divided")
    with torch.no_grad():
        assert relative_error(model(video), official) < 1e-10
