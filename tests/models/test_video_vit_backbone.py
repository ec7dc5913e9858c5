"""VideoViT backbone details the forward/backward and official-parity tests leave open, each checked against a
literal value or a slow loop written here: the tubelet tokens and the position/time tables (every CLS layout) against
a per-token loop over the clip; the position dropout and the head order (pre-logits, dropout, classifier, as the
official Motionformer ``forward``) against masks drawn from the same generator state; the stochastic-depth rates
(timm's and Motionformer's ``torch.linspace(0, rate, depth)``); the initialisation (timm ViT / Motionformer: trunc
normal 0.02, zero biases, time table zero); X-ViT's temporal head shape; the paper-scale entrypoints; the shift
hooks' positions; and the model registry's option checking, duplicate refusal and sorted listing.
"""

import pytest
import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import nn

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import create_model, list_models, registry
from models.attention import TemporalShift
from models.registry import model_options, register_model

F64 = torch.float64


# ---- tokens and positional encodings ----------------------------------------------------------------------------


def _embedding_only(name: str, **overrides) -> nn.Module:
    """A model with no blocks and no final norm: ``forward_features`` returns the embedded tokens (after
    ``pos_drop``). Random tables, so that a missing or misplaced term changes the result."""
    torch.manual_seed(0)
    model = create_model(name, depth=0, num_classes=3, **overrides).double().eval()
    model.norm = nn.Identity()
    with torch.no_grad():
        for table in ("cls_token", "pos_embed", "time_embed"):
            if hasattr(model, table):
                getattr(model, table).normal_()
    return model


def _loop_tokens(model: nn.Module, video: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """The embedded tokens, one at a time: every (tubelet x patch x patch) cube projected by the conv weights, plus
    its spatial entry (or joint entry), plus its frame's time entry; class token(s) with the CLS slot."""
    weight, bias = model.patch_embed.proj.weight, model.patch_embed.proj.bias
    pos, layout, kind = model.pos_embed[0], model.cls_layout, model.pos_embed_type
    time = model.time_embed[0] if kind == "separate" else None
    num_t, num_h, num_w = video.shape[2] // tubelet, video.shape[3] // patch, video.shape[4] // patch
    clips = []
    for b in range(video.shape[0]):
        tokens = [model.cls_token[0, 0] + pos[0]] if layout == "single" else []
        for t in range(num_t):
            if layout == "per_frame":  # each frame's class token: CLS slot, plus the frame's time entry
                tokens.append(model.cls_token[0, 0] + pos[0] + (time[t] if time is not None else 0))
            for i in range(num_h):
                for j in range(num_w):
                    cube = video[b, :, t * tubelet:(t + 1) * tubelet, i * patch:(i + 1) * patch,
                                 j * patch:(j + 1) * patch]
                    token = torch.einsum("dcthw,cthw->d", weight, cube) + bias
                    if kind == "joint":
                        token = token + pos[1 + (t * num_h + i) * num_w + j]
                    else:
                        token = token + pos[1 + i * num_w + j] + (time[t] if time is not None else 0)
                    tokens.append(token)
        clips.append(torch.stack(tokens))
    return torch.stack(clips)


# (entrypoint, overrides, tubelet, patch): one case per CLS layout x table kind
EMBEDDING_CASES = {
    "single_separate_cubic": ("vit_tiny_video", dict(pos_embed="separate"), 2, 8),
    "single_joint_cubic": ("vit_tiny_video", dict(pos_embed="joint"), 2, 8),
    "single_separate_square": ("vit_tiny_video", dict(pos_embed="separate", tubelet_size=1), 1, 8),
    "per_frame_separate": ("vit_tiny_frame", dict(pos_embed="separate"), 1, 8),  # X-ViT's temp_embed
    "per_frame_spatial": ("vit_tiny_frame", dict(pos_embed="spatial"), 1, 8),
}


@pytest.mark.parametrize("case", EMBEDDING_CASES)
def test_tokens_and_position_tables_match_a_per_token_loop(case):
    name, overrides, tubelet, patch = EMBEDDING_CASES[case]
    model = _embedding_only(name, **overrides)
    video = torch.randn(2, 3, 8, 32, 32, dtype=F64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model.forward_features(video), _loop_tokens(model, video, tubelet, patch), rtol=1e-10,
                               atol=1e-10)


def test_position_dropout_drops_the_embedded_tokens():
    """``drop_rate`` drops the tokens after the tables are added (timm's and the official ``pos_drop``)."""
    model = _embedding_only("vit_tiny_video", drop_rate=0.5)
    video = torch.randn(1, 3, 8, 32, 32, dtype=F64)
    tokens = model.forward_features(video)
    model.train()
    torch.manual_seed(3)
    dropped = model.forward_features(video)
    torch.manual_seed(3)
    mask = F.dropout(torch.ones_like(tokens), 0.5, training=True)
    assert 0 < int((mask == 0).sum()) < mask.numel()  # some, not all, entries dropped
    torch.testing.assert_close(dropped, tokens * mask, rtol=1e-12, atol=1e-12)


# ---- head ---------------------------------------------------------------------------------------------------------


def test_head_is_pre_logits_then_dropout_then_classifier():
    """Official Motionformer: ``forward_features`` ends with ``pre_logits``; ``forward`` applies ``head_drop`` then
    ``head``. Checked with the dropout mask drawn from the same generator state."""
    torch.manual_seed(0)
    model = create_model("vit_tiny_video", depth=1, num_classes=5, representation_size=64,
                         head_drop_rate=0.5).double().eval()
    features = model.forward_features(torch.randn(2, 3, 8, 32, 32, dtype=F64))
    model.train()
    torch.manual_seed(1)
    logits = model.forward_head(features)
    torch.manual_seed(1)
    mask = F.dropout(torch.ones(2, 64, dtype=F64), 0.5, training=True)
    hidden = torch.tanh(features[:, 0] @ model.pre_logits.fc.weight.T + model.pre_logits.fc.bias)
    torch.testing.assert_close(logits, (hidden * mask) @ model.head.weight.T + model.head.bias, rtol=1e-10,
                               atol=1e-12)


def test_xvit_temporal_head_has_the_official_shape():
    """VitHead: a zero class token, one block whose q/k/v projection has no bias, mlp_head's LayerNorm and
    Linear(D, D); every LayerNorm of the head at torch's default eps (the official head_helper.py builds its Block
    without a norm_layer, so nn.LayerNorm's 1e-5). Parameters counted by hand for D = 96, MLP ratio 4."""
    model = create_model("vit_tiny_frame", attn_layer="xvit", temporal_aggregation="attention", num_classes=5)
    pool = model.temporal_aggregation
    assert pool.block.attn.qkv.bias is None
    assert pool.norm.eps == pool.block.norm1.eps == pool.block.norm2.eps == 1e-5
    assert model.blocks[0].norm1.eps == 1e-6  # the backbone keeps timm ViT's
    d = 96
    block = 2 * 2 * d + 3 * d * d + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    assert sum(p.numel() for p in pool.parameters()) == d + block + 2 * d + (d * d + d)


def test_head_bias_names():
    """The biases the optimizer exempts from weight decay: the classifier's, plus X-ViT's mlp_head LN and Linear."""
    plain = create_model("vit_tiny_video", num_classes=5)
    pooled = create_model("vit_tiny_frame", attn_layer="xvit", temporal_aggregation="attention", num_classes=5)
    headless = create_model("vit_tiny_video", num_classes=0)
    assert plain.head_bias_names() == {"head.bias"}
    assert pooled.head_bias_names() == {"head.bias", "temporal_aggregation.norm.bias", "temporal_aggregation.fc.bias"}
    assert pooled.head_bias_names() <= dict(pooled.named_parameters()).keys()
    assert headless.head_bias_names() == set()


# ---- stochastic depth and initialisation -------------------------------------------------------------------------


def test_drop_path_rates_rise_linearly_from_zero_to_the_rate():
    """timm and the official Motionformer: ``torch.linspace(0, drop_path_rate, depth)``; rate 0 is no module."""
    model = create_model("vit_tiny_video", depth=4, drop_path_rate=0.3)
    assert isinstance(model.blocks[0].drop_path, nn.Identity)
    assert all(isinstance(b.drop_path, DropPath) for b in model.blocks[1:])
    assert [b.drop_path.drop_prob for b in model.blocks[1:]] == pytest.approx([0.1, 0.2, 0.3], abs=1e-12)


def test_initialisation_is_timms_and_the_official_models():
    """Official Motionformer ``_init_weights``: every Linear trunc_normal(std 0.02) with zero bias (the classifier
    too), LayerNorms ones/zeros, pos_embed and cls_token trunc_normal(0.02), ``temp_embed`` left at zeros."""
    torch.manual_seed(0)
    model = create_model("vit_tiny_video", num_classes=400)  # 400 x 64 head weights: a tight std estimate
    assert torch.count_nonzero(model.time_embed) == 0
    for table in (model.pos_embed, model.cls_token):
        assert torch.count_nonzero(table) == table.numel()
        assert 0.012 < table.std().item() < 0.028, table.shape
    assert abs(model.pos_embed.std().item() - 0.02) < 0.002  # 1088 draws
    assert abs(model.head.weight.std().item() - 0.02) < 0.001
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.bias is not None:
            assert torch.count_nonzero(module.bias) == 0, name
        if isinstance(module, nn.LayerNorm):
            assert torch.all(module.weight == 1) and torch.count_nonzero(module.bias) == 0, name


def _official_init_loop(model: nn.Module) -> None:
    """The loop the official codes write out (and these models did before timm's ``init_weights_vit_timm``): the
    position tables and tokens, then each Linear and LayerNorm in module order; X-ViT's head left alone."""
    if hasattr(model, "modal_tokens"):  # the RGB+pose model
        tables = [model.pos_embed, model.time_embed, model.modal_tokens]
        tables += [model.pose_embed.joint_embed, model.pose_embed.person_embed] if model.pose_embed else []
    else:
        tables = [model.pos_embed, model.cls_token]
    for table in tables:
        trunc_normal_(table, std=0.02)
    kept = {id(sub) for m in model.modules() if getattr(m, "keeps_default_init", False) for sub in m.modules()}
    for m in model.modules():
        if id(m) in kept:
            continue
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@pytest.mark.parametrize("name, options", [("vit_tiny_video", {}), ("vit_tiny_frame", {}),
                                           ("vit_tiny_frame", {"temporal_aggregation": "attention"}),
                                           ("d3da_tiny", {}), ("d3da_tiny", {"modalities": "rgb"})])
def test_the_initialisation_draws_what_the_official_loop_draws(monkeypatch, name, options):
    """timm's ``init_weights_vit_timm`` (``models.video_vit.init_vit_weights``) gives, from one seed, the very
    parameters of the official loop: the same draws in the same order."""
    torch.manual_seed(0)
    ours = create_model(name, **options)
    monkeypatch.setattr(type(ours), "_init_weights", _official_init_loop)
    torch.manual_seed(0)
    official = create_model(name, **options)
    assert ours.state_dict().keys() == official.state_dict().keys()
    for key, value in ours.state_dict().items():
        assert torch.equal(value, official.state_dict()[key]), key


# ---- entrypoints and the block hooks -----------------------------------------------------------------------------


def test_paper_scale_entrypoints():
    with torch.device("meta"):
        large = create_model("vit_large_patch16_video")
        frame = create_model("vit_base_patch16_frame")
    assert (large.embed_dim, len(large.blocks), large.blocks[0].attn.num_heads) == (1024, 24, 16)
    assert large.grid_size == (8, 14, 14) and large.head.out_features == 400
    assert (frame.embed_dim, len(frame.blocks), frame.grid_size) == (768, 12, (8, 14, 14))
    assert frame.cls_layout == "per_frame" and frame.pos_embed.shape == (1, 197, 768)
    assert not hasattr(frame, "time_embed")


def test_shift_hooks_sit_where_shift_before_puts_them():
    """TSM-ViT shifts before the attention only; TokenShift before both (Eq. 4-7)."""
    tsm = create_model("vit_tiny_frame", temporal_shift="all", shift_before=("attn",))
    assert all(isinstance(b.pre_attn, TemporalShift) and b.pre_mlp is None for b in tsm.blocks)
    mlp_only = create_model("vit_tiny_frame", temporal_shift="cls", shift_before=("mlp",))
    assert all(b.pre_attn is None and isinstance(b.pre_mlp, TemporalShift) for b in mlp_only.blocks)


# ---- registry ------------------------------------------------------------------------------------------------------


def test_unknown_override_is_refused_with_the_valid_options():
    with pytest.raises(ValueError, match=r"model 'vit_tiny_video': unknown option\(s\) 'drop_path'; valid options: .*"
                                         r"drop_path_rate"):
        create_model("vit_tiny_video", drop_path=0.1)
    assert {"drop_path_rate", "pos_embed", "cls_layout"} <= set(model_options("vit_tiny_video"))


def test_registering_a_taken_name_is_refused(monkeypatch):
    # a copy of the registry: should registration wrongly succeed, the real entrypoint is not replaced for later tests
    monkeypatch.setattr(registry, "_MODEL_ENTRYPOINTS", dict(registry._MODEL_ENTRYPOINTS))

    def vit_tiny_video(**overrides):  # same name as the registered entrypoint
        raise AssertionError("must not be called")

    with pytest.raises(ValueError, match="already registered"):
        register_model(vit_tiny_video)
    assert create_model("vit_tiny_video", depth=1).embed_dim == 64  # the original entrypoint is kept


def test_list_models_is_sorted():
    assert list_models("vit_tiny_*") == ["vit_tiny_frame", "vit_tiny_l_video", "vit_tiny_video"]
