"""The frame-wise ViT and the shift-family models built from it: an image ViT per frame, equal FLOPs and
parameters across the family, the zero-shift limits, and a forward/backward of every variant."""

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

import models  # noqa: F401  (repairs torchvision before timm is imported)
from models import count_flops, create_model, load_pretrained
from models.attention import FrameAttention, MultiHeadSelfCrossAttention
from models.attention.frame import SHIFTED
from tests.models.attention.reference import joint_reference

# One spec per row type of the MSCA / TokenShift / X-ViT tables: VideoViT overrides of a frame-wise model.
ROWS = {
    "vit": {},
    "tokenshift": dict(temporal_shift="cls", shift_fraction=0.25, shift_before=("attn", "mlp")),
    **{f"msca_{s.lower()}": dict(attn_layer="msca", attn_kwargs=dict(shifted=s, num_backward=1, num_forward=1))
       for s in SHIFTED},
    **{f"msca_p{s.lower()}": dict(attn_layer="msca", attn_kwargs=dict(shifted=s, shift_along="tokens",
                                                                         num_backward=2, num_forward=2))
       for s in SHIFTED},
    "msca_kv_last2": dict(attn_layer="msca", shift_last_blocks=2),
    "xvit_average": dict(attn_layer="xvit"),
    "tsm_vit": dict(temporal_shift="all", shift_fraction=0.25, shift_before=("attn",)),
}
# Extra parameters: only X-ViT's temporal attention aggregation.
ATTENTION_POOLED = {"xvit_attention": dict(attn_layer="xvit", temporal_aggregation="attention"),
                    "tsm_vit_attention": dict(ROWS["tsm_vit"], temporal_aggregation="attention")}
CLIP = (2, 3, 8, 32, 32)


@pytest.fixture(scope="module")
def image_vit() -> VisionTransformer:
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=96, depth=4, num_heads=12, num_classes=10)
    with torch.no_grad():  # timm zero-inits biases and the head; randomise so equalities are not vacuous
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.double().eval()


def test_frame_vit_is_the_image_vit_on_every_frame(image_vit, tmp_path):
    """An ImageNet-layout checkpoint loads through models.pretrained with nothing missing or left over, and the
    clip's logits are the average over a literal loop of the image ViT over the frames."""
    path = tmp_path / "image_vit.pth"
    torch.save({k: v.float() for k, v in image_vit.state_dict().items()}, path)
    model = create_model("vit_tiny_frame", num_classes=10)
    assert set(model.state_dict()) == set(image_vit.state_dict())  # timm's names, nothing else
    assert load_pretrained(model, path) == {"missing": [], "unexpected": []}
    model = model.double().eval()
    video = torch.randn(*CLIP, dtype=torch.float64)
    per_frame = torch.stack([image_vit(video[:, :, t]) for t in range(video.shape[2])])
    torch.testing.assert_close(model(video), per_frame.mean(dim=0), rtol=1e-10, atol=1e-12)


def test_zero_shifts_are_the_frame_vit():
    """MSCA with h_b = h_f = 0 (or N_b = N_f = 0), TokenShift/TSM with fraction 0 and X-ViT with fraction 0 are
    the frame-wise ViT exactly (same weights, bit-identical logits)."""
    torch.manual_seed(0)
    vit = create_model("vit_tiny_frame", num_classes=5).eval()
    video = torch.randn(*CLIP)
    expected = vit(video)
    for overrides in [dict(attn_layer="msca", attn_kwargs=dict(num_backward=0, num_forward=0)),
                      dict(attn_layer="msca", attn_kwargs=dict(shifted="QKV", shift_along="tokens",
                                                               num_backward=0, num_forward=0)),
                      dict(temporal_shift="cls", shift_fraction=0.0), dict(temporal_shift="all", shift_fraction=0.0),
                      dict(attn_layer="xvit", attn_kwargs=dict(shift_fraction=0.0))]:
        model = create_model("vit_tiny_frame", num_classes=5, **overrides).eval()
        model.load_state_dict(vit.state_dict())
        assert torch.equal(model(video), expected), overrides
    shifted = create_model("vit_tiny_frame", num_classes=5, attn_layer="msca").eval()
    shifted.load_state_dict(vit.state_dict())
    assert not torch.allclose(shifted(video), expected), "a real shift must change the logits"


def test_family_has_the_frame_vits_flops_and_parameters():
    """ViT-B/16, 8x224x224: every row counts the same GFLOPs (shifts are copies, not arithmetic) and has the same
    parameters; that count is 8 image ViT-B/16 forwards (without their heads)."""
    shape = (1, 3, 8, 224, 224)
    with torch.device("meta"):
        counts = {}
        for row, overrides in ROWS.items():
            model = create_model("vit_base_patch16_frame", **overrides)
            counts[row] = (count_flops(model, shape, "published"), sum(p.numel() for p in model.parameters()))
        image = VisionTransformer(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12, num_classes=0)
        headless = create_model("vit_base_patch16_frame", num_classes=0)
        pooled = create_model("vit_base_patch16_frame", **ATTENTION_POOLED["xvit_attention"])
        image_gflops, headless_gflops = count_flops(image, (1, 3, 224, 224)), count_flops(headless, shape)
        pooled_gflops = count_flops(pooled, shape)
    assert len(set(counts.values())) == 1, counts
    gflops, params = counts["vit"]
    assert headless_gflops == pytest.approx(8 * image_gflops, rel=1e-9)
    assert gflops == pytest.approx(8 * image_gflops + 768 * 400 / 1e9, rel=1e-9)  # one head after the average
    # Attention inside each 197-token frame is counted: 12 blocks x 8 frames x 2 N^2 D multiply-adds.
    explicit_attention = 12 * 8 * 2 * 197 ** 2 * 768 / 1e9
    assert gflops == pytest.approx(8 * 12 * 12 * 768 ** 2 * 197 / 1e9 + explicit_attention + 8 * 768 * 196 * 768
                                   / 1e9 + 768 * 400 / 1e9, rel=1e-9)
    assert params == sum(p.numel() for p in image.parameters()) + 768 * 400 + 400
    assert pooled_gflops > gflops  # the temporal block over 1 + 8 tokens is extra


@pytest.mark.parametrize("row", [*ROWS, *ATTENTION_POOLED])
def test_tiny_forward_backward(row):
    """vit_tiny_video widths, 32x32, 8x8 square patches, 8 frames: shapes, finite values, a gradient for every
    parameter, and the MSCA blocks only where shift_last_blocks puts them."""
    torch.manual_seed(0)
    model = create_model("vit_tiny_frame", num_classes=5, **{**ROWS, **ATTENTION_POOLED}[row])
    video = torch.randn(*CLIP)
    features = model.forward_features(video)
    assert features.shape == (2, 8 * (1 + 16), 96)
    logits = model.forward_head(features)
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    (logits.square().mean() + features.square().mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} received no gradient"
    if row == "msca_kv_last2":
        assert [type(b.attn) for b in model.blocks] == [FrameAttention] * 2 + [MultiHeadSelfCrossAttention] * 2


def test_temporal_attention_aggregation_is_one_block_over_the_frame_tokens():
    """X-ViT pooling, the official VitHead: [c; z_1..z_T] -> x + MSA(LN(x)) -> x + MLP(LN(x)) -> token 0 -> mlp_head
    (LayerNorm at eps 1e-5, Linear, GELU, then the model's dropout and classifier)."""
    torch.manual_seed(0)
    model = create_model("vit_tiny_frame", num_classes=5, **ATTENTION_POOLED["xvit_attention"]).double().eval()
    video = torch.randn(*CLIP, dtype=torch.float64)
    features = model.forward_features(video)
    frames = features.reshape(2, 8, 17, 96)[:, :, 0]
    pool = model.temporal_aggregation
    x = torch.cat([pool.cls_token.expand(2, 1, 96), frames], dim=1)
    x = x + joint_reference(pool.block.attn, pool.block.norm1(x), (9, 1, 1))
    x = x + pool.block.mlp(pool.block.norm2(x))
    head_mlp = F.gelu(F.linear(F.layer_norm(x[:, 0], (96,), pool.norm.weight, pool.norm.bias, 1e-5),
                               pool.fc.weight, pool.fc.bias))
    torch.testing.assert_close(model.forward_head(features), model.head(head_mlp), rtol=1e-10, atol=1e-12)
    assert "temporal_aggregation.cls_token" in model.no_weight_decay()


@pytest.mark.parametrize("aggregation", ["average", "attention"])
def test_frame_dropout_drops_each_frames_class_token_before_the_aggregation(aggregation):
    """X-ViT's official DROPOUT_RATE: Dropout in place of the backbone's classifier, on every frame's feature,
    then the consensus; ``head_drop_rate`` drops before the classifier alone. Checked with the mask drawn from the
    same generator state: aggregation(mask * frames / (1 - p)), then the classifier."""
    torch.manual_seed(0)
    p = 0.5
    model = create_model("vit_tiny_frame", num_classes=5, temporal_aggregation=aggregation, frame_drop_rate=p,
                         head_drop_rate=0.0).double()
    video = torch.randn(*CLIP, dtype=torch.float64)
    features = model.eval().forward_features(video)
    frames = features.reshape(2, 8, 17, 96)[:, :, 0]
    model.train()
    torch.manual_seed(1)
    trained = model.forward_head(features)
    torch.manual_seed(1)
    mask = F.dropout(torch.ones_like(frames), p, training=True)
    torch.testing.assert_close(trained, model.head(model.temporal_aggregation(frames * mask)), rtol=1e-10,
                               atol=1e-12)
    assert 0 < int((mask == 0).sum()) < mask.numel()  # some, not all, entries dropped: the check is not vacuous
    torch.testing.assert_close(model.eval().forward_head(features),
                               model.head(model.temporal_aggregation(frames)), rtol=1e-10, atol=1e-12)


def test_head_drop_rate_defaults_to_drop_rate_and_frame_dropout_needs_per_frame_tokens():
    assert create_model("vit_tiny_frame", drop_rate=0.1).head_drop.p == 0.1
    assert create_model("vit_tiny_frame", drop_rate=0.1, head_drop_rate=0.5).head_drop.p == 0.5
    with pytest.raises(ValueError, match=r"frame_drop_rate=0.5 drops per-frame class tokens and needs "
                                         r"cls_layout='per_frame'"):
        create_model("vit_tiny_video", frame_drop_rate=0.5)


def test_the_temporal_head_keeps_torchs_default_initialisation_as_the_official_one():
    """The official XVIT initialises only its timm backbone: VitHead's class token is zeros and its Linear layers
    keep torch's default (uniform, std 1 / sqrt(3 fan_in)), not the backbone's trunc_normal(0.02)."""
    torch.manual_seed(0)
    model = create_model("vit_tiny_frame", num_classes=5, **ATTENTION_POOLED["xvit_attention"])
    pool = model.temporal_aggregation
    assert torch.count_nonzero(pool.cls_token) == 0
    for linear in (pool.block.attn.qkv, pool.block.attn.proj, pool.block.mlp.fc1, pool.fc):
        bound = linear.in_features ** -0.5
        assert abs(linear.weight.std().item() - bound / 3 ** 0.5) < 0.1 * bound, linear
        assert linear.weight.abs().max() <= bound
    assert abs(model.blocks[0].attn.qkv.weight.std().item() - 0.02) < 0.002  # the backbone: timm's init


def test_existing_models_are_unchanged():
    """The shift-family options default to the Motionformer models' layout: same parameters, no hooks."""
    model = create_model("vit_tiny_video")
    assert not hasattr(model, "temporal_aggregation")
    assert all(b.pre_attn is None and b.pre_mlp is None for b in model.blocks)
    assert {n for n in model.state_dict() if not n.startswith("blocks.")} == {
        "cls_token", "pos_embed", "time_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight",
        "norm.bias", "head.weight", "head.bias"}
