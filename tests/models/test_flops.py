"""GFLOPs (one multiply-add = one FLOP, attention included) of the paper's ViT-B variants, counted on meta."""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import count_flops, create_model, model_gflops

VIT_B = "vit_base_patch16_video"
CLIP = (1, 3, 16, 224, 224)

# (overrides, expected GFLOPs): ViT-B/16, 16x224x224 (8x224x224 for square tokens), 400 classes, separate pos.
EXPECTED = [
    ({"attn_layer": "joint"}, 180.6),
    ({"attn_layer": "divided"}, 185.8),
    ({"attn_layer": "trajectory"}, 369.5),
    ({"attn_layer": "trajectory", "attn_kwargs": {"temporal_pool": "average"}}, 180.6),
    ({"attn_layer": "joint", "tubelet_size": 1, "num_frames": 8}, 179.7),
    ({"attn_layer": "trajectory", "tubelet_size": 1, "num_frames": 8}, 368.5),
]


@pytest.mark.parametrize("overrides,expected", EXPECTED,
                         ids=["joint", "divided", "trajectory", "trajectory-avgT", "joint-square", "traj-square"])
def test_paper_gflops(overrides, expected):
    """The paper counts trajectory stage two as printed: formulation="published" (also the default)."""
    assert model_gflops(VIT_B, formulation="published", **overrides) == pytest.approx(expected, rel=0.02)
    assert model_gflops(VIT_B, **overrides) == model_gflops(VIT_B, formulation="published", **overrides)


def test_joint_matches_analytic_count():
    """Per block 12 D^2 N (qkv, proj, MLP) + 2 N^2 D (QK^T, AV); plus tubelet embedding and head."""
    d, n, patches = 768, 1 + 8 * 14 * 14, 8 * 14 * 14
    analytic = 12 * (12 * d * d * n + 2 * n * n * d) + (3 * 2 * 16 * 16) * d * patches + d * 400
    assert model_gflops(VIT_B, attn_layer="joint") == pytest.approx(analytic / 1e9, rel=1e-6)


def test_trajectory_extra_cost_is_stage_two():
    """Trajectory minus Avg_T: per block proj_kv over N*T trajectory tokens (2 N T D^2), proj_q (N D^2) and the
    1-D temporal attention (2 N T D)."""
    d, t, patches = 768, 8, 8 * 14 * 14
    extra = 12 * (2 * patches * t * d * d + patches * d * d + 2 * patches * t * d)
    full = model_gflops(VIT_B, attn_layer="trajectory")
    avg = model_gflops(VIT_B, attn_layer="trajectory", attn_kwargs={"temporal_pool": "average"})
    assert full - avg == pytest.approx(extra / 1e9, rel=1e-6)


def test_computed_trajectory_gflops():
    """What the default rearranged stage two runs. Per block and patch token: proj_q D^2, u = W_k^T q~ D^2,
    W_v z D^2, logits u.y and z = sum a y nh T D each: 3 D^2 + 2 nh T D (instead of D^2 + 2 T D^2 + 2 T D).
    ViT-B, 16x224: 12 * 1568 * (3 * 768^2 + 2 * 12 * 8 * 768) = 36.07 GFLOPs over Avg_T's 180.46, so 216.53;
    the band 216.53 +- 0.1% leaves room for rounding only."""
    d, t, nh, patches = 768, 8, 12, 8 * 14 * 14
    extra = 12 * patches * (3 * d * d + 2 * nh * t * d)
    computed = model_gflops(VIT_B, attn_layer="trajectory", formulation="computed")
    avg = model_gflops(VIT_B, attn_layer="trajectory", attn_kwargs={"temporal_pool": "average"},
                       formulation="computed")
    assert computed - avg == pytest.approx(extra / 1e9, rel=1e-6)
    assert computed == pytest.approx(216.53, rel=1e-3)
    # Everything but trajectory stage two counts the same under both formulations.
    assert avg == model_gflops(VIT_B, attn_layer="trajectory", attn_kwargs={"temporal_pool": "average"})
    assert model_gflops(VIT_B, attn_layer="joint", formulation="computed") == model_gflops(VIT_B, attn_layer="joint")


def test_unknown_formulation_is_named():
    with pytest.raises(ValueError, match="formulation"):
        model_gflops("vit_tiny_video", formulation="measured")


def test_count_flops_leaves_a_real_model_untouched():
    model = create_model("vit_tiny_video", attn_layer="trajectory")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gflops = count_flops(model, (1, 3, 8, 32, 32))
    assert gflops == pytest.approx(model_gflops("vit_tiny_video", attn_layer="trajectory"))
    assert all(b.attn.fused_attn for b in model.blocks), "fused flags must be restored"
    assert all(b.attn.stage_two == "rearranged" for b in model.blocks), "stage_two must be restored"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.training


def test_input_shape_sets_the_clip():
    assert model_gflops(VIT_B, input_shape=CLIP, attn_layer="joint") == model_gflops(VIT_B, attn_layer="joint")
    assert model_gflops(VIT_B, input_shape=(1, 3, 8, 224, 224), attn_layer="joint") < 100
