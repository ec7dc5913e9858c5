"""VideoViT over the attention registry x tokenization x positional encoding, and the model registry."""

import pytest
import torch

from models import ATTENTION_LAYERS, VideoViT, create_model, list_models

ATTENTIONS = [("joint", {}), ("divided", {}), ("divided_official", {}), ("trajectory", {}),
              ("trajectory", {"temporal_pool": "average"}), ("trajectory", {"normalize": "spacetime"}),
              ("trajectory_approx", {"num_prototypes": 16})]
ATTN_IDS = ["-".join([name, *map(str, opts.values())]) for name, opts in ATTENTIONS]


def test_every_registered_attention_is_covered():
    assert {name for name, _ in ATTENTIONS} == set(ATTENTION_LAYERS)


@pytest.mark.parametrize("pos_embed", ["separate", "joint"])
@pytest.mark.parametrize("tubelet_size", [1, 2], ids=["square", "cubic"])
@pytest.mark.parametrize("attn", ATTENTIONS, ids=ATTN_IDS)
def test_tiny_forward_backward(attn, tubelet_size, pos_embed):
    name, opts = attn
    torch.manual_seed(0)
    # Two blocks suffice: one whose every output matters and the last one, whose patch outputs the head ignores.
    model = create_model("vit_tiny_video", attn_layer=name, attn_kwargs=opts, tubelet_size=tubelet_size,
                         pos_embed=pos_embed, num_classes=5, depth=2)
    t, h, w = model.grid_size
    assert (t, h, w) == (8 // tubelet_size, 4, 4)
    if pos_embed == "separate":
        assert model.pos_embed.shape == (1, 1 + h * w, 64) and model.time_embed.shape == (1, t, 64)
    else:
        assert model.pos_embed.shape == (1, 1 + t * h * w, 64) and not hasattr(model, "time_embed")

    video = torch.randn(2, 3, 8, 32, 32)
    features = model.forward_features(video)
    assert features.shape == (2, 1 + t * h * w, 64)
    logits = model.forward_head(features)
    assert logits.shape == (2, 5)
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()

    params = dict(model.named_parameters())
    grads = torch.autograd.grad(logits.square().mean(), list(params.values()), allow_unused=True, retain_graph=True)
    no_grad = {n for (n, p), g in zip(params.items(), grads) if g is None or not g.abs().sum() > 0}
    # The logits read only the last block's CLS output, and a trajectory CLS query attends over that block's
    # input tokens: the last block's stage-two projections cannot influence the logits (as in the official code).
    last = len(model.blocks) - 1
    expected = {n for n in params if n.startswith((f"blocks.{last}.attn.proj_q.", f"blocks.{last}.attn.proj_kv."))}
    assert no_grad == expected

    # Through all output tokens every trainable parameter receives a gradient.
    (logits.square().mean() + features.square().mean()).backward()
    for pname, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{pname} received no gradient"


@pytest.mark.parametrize("attn", ATTENTIONS, ids=ATTN_IDS)
def test_set_fused_attn_keeps_outputs(attn):
    name, opts = attn
    torch.manual_seed(0)
    model = create_model("vit_tiny_video", attn_layer=name, attn_kwargs=opts).double().eval()
    video = torch.randn(1, 3, 8, 32, 32, dtype=torch.float64)
    fused = model(video)
    model.set_fused_attn(False)
    assert all(not b.attn.fused_attn for b in model.blocks)
    torch.testing.assert_close(model(video), fused, rtol=1e-10, atol=1e-12)


def test_training_mode_with_regularisation():
    model = create_model("vit_tiny_video", drop_rate=0.1, attn_drop_rate=0.1, drop_path_rate=0.2)
    model.train()
    for fused in (True, False):
        model.set_fused_attn(fused)
        logits = model(torch.randn(2, 3, 8, 32, 32))
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", list_models("vit_*"))  # video ViTs; lra_* models: tests/models/test_lra.py
def test_every_registered_model_builds(name):
    """Paper-scale models are built and run on the meta device: shapes only, no memory, no arithmetic."""
    with torch.device("meta"):
        model = create_model(name, num_classes=7)
    assert isinstance(model, VideoViT)
    video = torch.empty(2, 3, model.num_frames, model.img_size, model.img_size, device="meta")
    assert model(video).shape == (2, 7)


def test_paper_configuration():
    with torch.device("meta"):
        model = create_model("vit_base_patch16_video")
    assert (model.embed_dim, len(model.blocks), model.blocks[0].attn.num_heads) == (768, 12, 12)
    assert model.grid_size == (8, 14, 14)
    assert model.patch_embed.proj.weight.shape == (768, 3, 2, 16, 16)
    assert model.head.out_features == 400
    assert type(model.blocks[0].attn).__name__ == "TrajectoryAttention"
    assert {"pos_embed", "cls_token", "time_embed"} <= model.no_weight_decay()


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError, match="vit_tiny_video"):
        create_model("vit_tiny_vidoe")


def test_unknown_attention_and_bad_grid():
    with pytest.raises(ValueError, match="joint"):
        create_model("vit_tiny_video", attn_layer="axial")
    model = create_model("vit_tiny_video")
    with pytest.raises(ValueError, match="grid"):
        model(torch.randn(1, 3, 4, 32, 32))
