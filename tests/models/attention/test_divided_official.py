"""The official Motionformer divided space-time block (``attn_layer="divided_official"``) against its literal
reference (tests/models/attention/reference.py), values and gradients in float64, on both attention paths; its
parameters, which the official checkpoint names ``norm3``, ``timeattn`` and ``attn``."""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import Block, create_model, get_attention
from models.attention.divided import OfficialDividedTemporalStage
from tests.models.attention.reference import divided_official_block_reference

DIM, HEADS = 16, 2


def _random_block(fused: bool) -> Block:
    torch.manual_seed(0)
    block = Block(DIM, HEADS, attn_layer=get_attention("divided_official"), attn_kwargs={"fused_attn": fused}).double()
    with torch.no_grad():
        for name, p in block.named_parameters():
            p.normal_(1.0 if "norm" in name and name.endswith("weight") else 0.0,
                      0.5 if p.ndim == 1 else p.shape[-1] ** -0.5)
    return block.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
@pytest.mark.parametrize("thw", [(3, 2, 2), (2, 3, 2)], ids=["3x2x2", "2x3x2"])
def test_block_matches_the_official_block_literally(fused, thw):
    block = _random_block(fused)
    torch.manual_seed(1)
    num_tokens = 1 + thw[0] * thw[1] * thw[2]
    x = torch.randn(2, num_tokens, DIM, dtype=torch.float64, requires_grad=True)
    cotangent = torch.randn_like(x)
    params = dict(block.named_parameters())
    fast, ref = block(x, thw), divided_official_block_reference(block, x, thw)
    assert _rel(fast, ref) < 1e-10
    fast_grads = torch.autograd.grad((fast * cotangent).sum(), [x, *params.values()])
    ref_grads = torch.autograd.grad((ref * cotangent).sum(), [x, *params.values()])
    for label, g_fast, g_ref in zip(["x", *params], fast_grads, ref_grads):
        assert g_ref.norm() > 0, f"reference gradient of {label} is zero: the test would be vacuous"
        assert _rel(g_fast, g_ref) < 1e-10, label


def test_every_block_holds_the_temporal_stage_before_its_attention():
    model = create_model("vit_tiny_video", attn_layer="divided_official", depth=2)
    assert all(isinstance(b.pre_attn, OfficialDividedTemporalStage) for b in model.blocks)
    names = {n.removeprefix("blocks.0.") for n, _ in model.named_parameters() if n.startswith("blocks.0.")}
    assert names == {f"{m}.{p}" for m in ("norm1", "attn.qkv", "attn.proj", "pre_attn.norm", "pre_attn.qkv",
                                          "pre_attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
                     for p in ("weight", "bias")}


def test_attention_dropout_is_refused_as_the_official_block_applies_none():
    with pytest.raises(ValueError, match="applies no attention dropout"):
        create_model("vit_tiny_video", attn_layer="divided_official", attn_drop_rate=0.1)
