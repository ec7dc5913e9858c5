"""Official Motionformer checkpoints (models/released/mformer.py) in the layouts the main parity test does not
write, each checked against the official forward pass re-implemented in ``tests/experiments/mformer/test_official.py``
or against the refusal the module documents:

- a ``cfg`` without ``VIT.USE_ORIGINAL_TRAJ_ATTN_CODE`` (a configuration dumped before the flag existed) means the
  official default, ``True`` (``slowfast/config/defaults.py``), i.e. ``stage_two_values="trajectory"``;
- the order of the keys in the file does not matter: the unused spatial ``pos_embed`` beside a joint ``st_embed``,
  and the unused 2-D ``patch_embed`` beside the tubelet ``patch_embed_3d``, never reach the model, whichever comes
  last (``torch.save`` keeps a dict's order, and a re-saved or converted checkpoint need not have the official one);
- a joint table of square tokens over another number of frames is refused, not read as a square image table and
  resampled (with 4 frames of 2 x 2 tokens, 16 = 4 x 4);
- a file with no ``model_state`` and non-tensor entries is refused naming where the weights are expected;
- a bare state dict (no ``cfg``) is refused by a model of another tubelet: ``patch_embed_3d``'s kernel holds
  ``PATCH_SIZE_TEMP``;
- a trajectory checkpoint is refused by a joint-attention model, and a joint-attention checkpoint (no ``proj_q``,
  ``proj_kv``) by a trajectory model: either would run another function, with layers left at their initialisation.

Checkpoints are written here, in the official key layout, into pytest's tmp_path.
"""

import pytest
import torch
import yaml

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import create_model, load_pretrained
from tests.experiments.mformer.test_official import (
    DEPTH,
    DIM,
    F64,
    HEADS,
    PATCH,
    official_forward,
    official_state_dict,
    our_model,
    write_official,
)

NUM_CLASSES = 5


def _relative_error(ours: torch.Tensor, official: torch.Tensor) -> float:
    return ((ours - official).norm() / official.norm()).item()


def _video(frames: int, crop: int) -> torch.Tensor:
    return torch.randn(2, 3, frames, crop, crop, dtype=F64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("stage_two_values, loads", [("trajectory", True), ("projected", False)])
def test_cfg_without_the_trajectory_flag_means_the_official_default(tmp_path, stage_two_values, loads):
    """The flag came with the fix of the stage-two typo: a configuration without it ran the original code."""
    sd = official_state_dict(4, 2, 16, NUM_CLASSES)
    vit = {"USE_MLP": True, "HEAD_ACT": "tanh", "PATCH_SIZE_TEMP": 2, "ATTN_LAYER": "trajectory"}
    path = tmp_path / "old_cfg.pyth"
    torch.save({"epoch": 3, "model_state": sd, "cfg": yaml.safe_dump({"VIT": vit})}, path)
    model = our_model(4, 2, 16, NUM_CLASSES, stage_two_values=stage_two_values)
    if not loads:
        with pytest.raises(ValueError, match="USE_ORIGINAL_TRAJ_ATTN_CODE=True.*stage_two_values='trajectory'"):
            load_pretrained(model, f"official:{path}")
        return
    assert load_pretrained(model, f"official:{path}") == {"missing": [], "unexpected": []}
    video = _video(4, 16)
    official = official_forward(sd, video, tubelet=2, original_code=True)
    assert _relative_error(model(video), official) < 1e-10


@pytest.mark.parametrize("pos_embed", ["separate", "joint"])
def test_key_order_of_the_checkpoint_does_not_change_the_loaded_function(tmp_path, pos_embed):
    """Keys written in reverse: ``patch_embed_3d`` before the unused 2-D ``patch_embed``, ``st_embed`` before the
    unused spatial ``pos_embed``; the model must still compute the official function."""
    sd = official_state_dict(4, 2, 16, NUM_CLASSES, pos_embed)
    reversed_sd = dict(reversed(list(sd.items())))
    assert list(reversed_sd).index("patch_embed_3d.proj.weight") < list(reversed_sd).index("patch_embed.proj.weight")
    path = write_official(tmp_path / "reordered.pyth", reversed_sd, tubelet=2)
    model = our_model(4, 2, 16, NUM_CLASSES, pos_embed)
    assert load_pretrained(model, f"official:{path}") == {"missing": [], "unexpected": []}
    # the tubelet kernel itself, not the 2-D kernel inflated to a tubelet
    assert torch.equal(model.patch_embed.proj.weight, sd["patch_embed_3d.proj.weight"])
    video = _video(4, 16)
    official = official_forward(sd, video, tubelet=2, pos_embed=pos_embed)
    assert _relative_error(model(video), official) < 1e-10


def test_square_token_joint_table_of_another_frame_count_is_refused(tmp_path):
    """4 frames of 2 x 2 square tokens: st_embed holds 1 + 16 rows, which a spatial-table reading would take for a
    4 x 4 image grid and resample to the 2-frame model's 2 x 2 grid without any error."""
    sd = official_state_dict(4, 1, 16, NUM_CLASSES, "joint")
    assert sd["st_embed"].shape[1] == 1 + 4 * 4
    path = write_official(tmp_path / "square_joint.pyth", sd, tubelet=1)
    model = our_model(2, 1, 16, NUM_CLASSES, "joint")
    with pytest.raises(ValueError, match="pos_embed"):
        load_pretrained(model, f"official:{path}")


def test_file_without_model_state_is_refused_naming_it(tmp_path):
    """A training checkpoint that nests its weights under another key: the weights cannot be found, and the message
    says where an official checkpoint keeps them (instead of a later, misleading pre-logits complaint)."""
    sd = official_state_dict(4, 2, 16, NUM_CLASSES)
    path = tmp_path / "other_nesting.pyth"
    torch.save({"epoch": 7, "weights": sd}, path)
    with pytest.raises(ValueError, match="'model_state'"):
        load_pretrained(our_model(4, 2, 16, NUM_CLASSES), f"official:{path}")


def test_a_bare_state_dict_of_another_tubelet_is_refused(tmp_path):
    """Trained on tubelets of 2 frames, loaded into a square-token model of 2 frames: the model's tokenizer would be
    the official 2-D ``patch_embed``, which a tubelet model never trains."""
    path = tmp_path / "bare.pth"
    torch.save(official_state_dict(4, 2, 16, NUM_CLASSES), path)
    with pytest.raises(ValueError, match="PATCH_SIZE_TEMP=2 frames; the model has tubelet_size=1"):
        load_pretrained(our_model(2, 1, 16, NUM_CLASSES), f"official:{path}")


def test_an_attention_of_another_kind_is_refused_either_way(tmp_path):
    sd = official_state_dict(4, 2, 16, NUM_CLASSES)
    trajectory = write_official(tmp_path / "trajectory.pyth", sd)
    joint_model = create_model("vit_tiny_video", img_size=16, num_frames=4, patch_size=PATCH, tubelet_size=2,
                               embed_dim=DIM, depth=DEPTH, num_heads=HEADS, num_classes=NUM_CLASSES,
                               attn_layer="joint", representation_size=DIM).double()
    with pytest.raises(ValueError, match=r"ATTN_LAYER trajectory\) has other weights than the model's "
                                         r"\(JointSpaceTimeAttention\): only in the checkpoint \['blocks.0.attn"):
        load_pretrained(joint_model, f"official:{trajectory}")

    joint_sd = {k: v for k, v in sd.items() if ".attn.proj_q." not in k and ".attn.proj_kv." not in k}
    joint = tmp_path / "joint.pyth"
    torch.save({"model_state": joint_sd, "cfg": yaml.safe_dump({"VIT": {"ATTN_LAYER": "joint", "USE_MLP": True,
                                                                        "PATCH_SIZE_TEMP": 2}})}, joint)
    with pytest.raises(ValueError, match=r"ATTN_LAYER joint\) has other weights than the model's "
                                         r"\(TrajectoryAttention\): only in the checkpoint \[\], only in the model"):
        load_pretrained(our_model(4, 2, 16, NUM_CLASSES), f"official:{joint}")
