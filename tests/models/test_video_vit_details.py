"""Mutation audit of ``models/video_vit.py`` and ``models/registry.py``: details the backbone tests leave open.

Stochastic depth on both residual branches and in the frame-wise blocks before ``shift_last_blocks``; the position
dropout with per-frame class tokens; ``head_drop_rate=0`` overriding ``drop_rate``; the dropout rates and q/k/v
bias the frame-wise blocks and the attentions receive; the temporal head's MLP width; ``representation_size``
different from D; ``forward_head(pre_logits=True)``; ``shift_last_blocks`` equal to the depth; and the default
class-token shift (TokenShift: a quarter of the channels, before both branches).
"""

import pytest
import torch
from timm.layers import DropPath
from torch import nn

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import create_model
from models.video_vit import Block

F64 = torch.float64


def test_a_block_with_drop_path_one_drops_both_residual_branches_in_training_and_none_in_eval():
    """Rate 1 drops every sample's attention and MLP branch: the block is the identity (pre_attn/pre_mlp absent).
    In eval the block is the plain pre-norm block x + attn(LN x), then + mlp(LN x)."""
    torch.manual_seed(0)
    block = Block(8, 2, drop_path=1.0).double()
    x = torch.randn(2, 5, 8, dtype=F64)
    block.train()
    torch.testing.assert_close(block(x, (5, 1, 1)), x, rtol=0, atol=0)
    block.eval()
    hidden = x + block.attn(block.norm1(x), (5, 1, 1))
    expected = hidden + block.mlp(block.norm2(hidden))
    torch.testing.assert_close(block(x, (5, 1, 1)), expected, rtol=1e-12, atol=1e-12)


def test_frame_wise_blocks_before_the_mixing_ones_keep_the_linear_drop_path_and_qkv_bias():
    """``shift_last_blocks`` changes only the attention of the early blocks: their stochastic-depth rate is still
    rate * i / (depth - 1) and they take the model's ``qkv_bias``."""
    model = create_model("vit_tiny_frame", attn_layer="msca", shift_last_blocks=1, drop_path_rate=0.3,
                         qkv_bias=False)
    assert [b.drop_path.drop_prob for b in model.blocks[1:]] == pytest.approx([0.1, 0.2, 0.3], abs=1e-12)
    assert all(isinstance(b.drop_path, DropPath) for b in model.blocks[1:])
    assert all(b.attn.qkv.bias is None for b in model.blocks)


def test_attentions_drop_attention_weights_at_attn_drop_rate_and_projections_at_drop_rate():
    model = create_model("vit_tiny_frame", attn_layer="msca", shift_last_blocks=2, drop_rate=0.3,
                         attn_drop_rate=0.1)
    for block in model.blocks:  # two frame-wise blocks, two MSCA blocks
        assert (block.attn.attn_drop.p, block.attn.proj_drop.p) == pytest.approx((0.1, 0.3))


@pytest.mark.parametrize("name", ["vit_tiny_video", "vit_tiny_frame"])
def test_position_dropout_at_rate_one_zeroes_every_embedded_token_of_either_cls_layout(name):
    """With no blocks and no final norm, ``forward_features`` is the position dropout's output: at p = 1 all zero
    in training (the per-frame class tokens too), untouched in eval."""
    model = create_model(name, depth=0, num_classes=3, drop_rate=1.0).double()
    model.norm = nn.Identity()
    video = torch.randn(1, 3, 8, 32, 32, dtype=F64)
    model.train()
    tokens = model.forward_features(video)
    assert tokens.shape[1] == (65 if name == "vit_tiny_video" else 8 * 17)
    assert torch.count_nonzero(tokens) == 0
    model.eval()
    assert torch.count_nonzero(model.forward_features(video)) == tokens.numel()


def test_an_explicit_zero_head_drop_rate_is_kept_when_drop_rate_is_not_zero():
    model = create_model("vit_tiny_video", drop_rate=0.5, head_drop_rate=0.0)
    assert model.head_drop.p == 0.0
    assert create_model("vit_tiny_video", drop_rate=0.5).head_drop.p == 0.5


def test_the_temporal_attention_head_block_follows_the_models_mlp_ratio():
    model = create_model("vit_tiny_frame", attn_layer="xvit", temporal_aggregation="attention", mlp_ratio=2.0)
    assert model.temporal_aggregation.block.mlp.fc1.out_features == 2 * 96
    assert model.blocks[0].mlp.fc1.out_features == 2 * 96


def test_a_representation_size_other_than_d_feeds_the_classifier_and_pre_logits_returns_the_tanh_features():
    """timm's ``representation_size``: Linear(D, size) -> tanh, then the classifier reads ``size`` features;
    ``forward_head(pre_logits=True)`` stops before the classifier."""
    torch.manual_seed(0)
    model = create_model("vit_tiny_video", depth=1, num_classes=5, representation_size=24).double().eval()
    assert model.num_features == 24 and model.head.in_features == 24
    features = model.forward_features(torch.randn(2, 3, 8, 32, 32, dtype=F64))
    hidden = torch.tanh(features[:, 0] @ model.pre_logits.fc.weight.T + model.pre_logits.fc.bias)
    torch.testing.assert_close(model.forward_head(features, pre_logits=True), hidden, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.forward_head(features), hidden @ model.head.weight.T + model.head.bias,
                               rtol=1e-12, atol=1e-12)


def test_shift_last_blocks_may_equal_the_depth_and_then_every_block_mixes():
    model = create_model("vit_tiny_frame", attn_layer="msca", shift_last_blocks=4)
    reference = create_model("vit_tiny_frame", attn_layer="msca")
    assert [type(b.attn) for b in model.blocks] == [type(b.attn) for b in reference.blocks]
    assert type(model.blocks[0].attn) is not type(create_model("vit_tiny_frame").blocks[0].attn)
    with pytest.raises(ValueError, match="shift_last_blocks"):
        create_model("vit_tiny_frame", attn_layer="msca", shift_last_blocks=5)


def test_the_default_class_token_shift_is_tokenshifts_quarter_before_both_branches():
    """TokenShift's defaults (Eq. 4-9, MSCA Eq. 8 order): every block shifts before the attention and the MLP;
    each frame's class token takes channels [0, D/8) from frame t-1 and [D/8, D/4) from t+1, zeros at the clip's
    ends; patch tokens stay. Loop over frames with D = 96: 12 channels each way."""
    model = create_model("vit_tiny_frame", temporal_shift="cls")
    assert all(b.pre_attn is not None and b.pre_mlp is not None for b in model.blocks)
    frames, per_frame, dim = 8, 17, 96
    tokens = torch.randn(2, frames * per_frame, dim, dtype=F64)
    expected = tokens.clone()
    for t in range(frames):
        cls = t * per_frame
        expected[:, cls, :12] = tokens[:, cls - per_frame, :12] if t > 0 else 0
        expected[:, cls, 12:24] = tokens[:, cls + per_frame, 12:24] if t < frames - 1 else 0
    for hook in (model.blocks[0].pre_attn, model.blocks[0].pre_mlp):
        torch.testing.assert_close(hook(tokens.clone(), (8, 4, 4)), expected, rtol=0, atol=0)
