"""X-ViT's space-time mixing within shift segments (``shift_segment``, the official ``XVIT.NUM_SEGMENTS``): the
official Kinetics configurations shift inside two segments of 8 of their 16 frames. Against the literal reference
(tests/models/attention/reference.py), values and gradients in float64, on both attention paths."""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import create_model, get_attention
from tests.models.attention.reference import random_attention, xvit_reference

DIM, HEADS = 16, 4
THW = (6, 2, 1)  # three segments of two frames, or two of three


def _tokens(requires_grad: bool = True) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, THW[0] * (1 + THW[1] * THW[2]), DIM, dtype=torch.float64, requires_grad=requires_grad)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
@pytest.mark.parametrize("segment", [2, 3, 6])
@pytest.mark.parametrize("shift_fraction", [0.25, 0.5])
def test_mixing_within_segments_matches_the_reference(segment, shift_fraction, fused):
    module = random_attention(get_attention("xvit"), DIM, HEADS, fused, shift_fraction=shift_fraction,
                              shift_segment=segment)
    x = _tokens()
    params = dict(module.named_parameters())
    fast, ref = module(x, THW), xvit_reference(module, x, THW)
    assert _rel(fast, ref) < 1e-10
    cotangent = torch.randn_like(ref)
    for label, g_fast, g_ref in zip(["x", *params],
                                    torch.autograd.grad((fast * cotangent).sum(), [x, *params.values()]),
                                    torch.autograd.grad((ref * cotangent).sum(), [x, *params.values()])):
        assert g_ref.norm() > 0, label
        assert _rel(g_fast, g_ref) < 1e-10, label


def test_segments_are_another_function_than_the_whole_clip_unless_one_segment():
    x = _tokens(requires_grad=False)
    outputs = {segment: random_attention(get_attention("xvit"), DIM, HEADS, True, shift_segment=segment)(x, THW)
               for segment in (None, 6, 3)}
    assert torch.equal(outputs[None], outputs[6])
    per_frame = 1 + THW[1] * THW[2]
    first_segment = slice(0, 2 * per_frame)  # frames 0-1 read only frames 0-2 either way
    assert torch.equal(outputs[None][:, first_segment], outputs[3][:, first_segment])
    assert not torch.allclose(outputs[None], outputs[3])  # frames 2 and 3 no longer see each other


def test_a_segment_that_does_not_divide_the_clip_is_named():
    module = get_attention("xvit")(DIM, num_heads=HEADS, shift_segment=4)
    with pytest.raises(ValueError, match="shift_segment 4 does not divide the clip's 6 frames"):
        module(_tokens(requires_grad=False).float(), THW)
    with pytest.raises(ValueError, match="shift_segment"):
        get_attention("xvit")(DIM, num_heads=HEADS, shift_segment=0)


def test_the_model_takes_the_option():
    model = create_model("vit_tiny_frame", attn_layer="xvit", num_frames=8,
                         attn_kwargs={"shift_fraction": 0.25, "shift_segment": 4})
    assert all(b.attn.shift_segment == 4 for b in model.blocks)
    assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, 400)
