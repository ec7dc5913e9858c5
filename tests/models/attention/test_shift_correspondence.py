"""Which members of the shift family can relate a place in frame t to the same place in frame t-1 or t+1 by their
structure alone, without positional information.

With the position table at zero, a frame attention cannot tell a frame's patches apart except by content: it is
equivariant to permuting them. A variant whose only cross-frame exchange is a whole head's keys *and* values from one
neighbour (MSCA-KV, X-ViT's mixing at SSv2's SHIFT_DIV 4), or the class tokens' channels (TokenShift), reads that
neighbour as an unordered set, so its logits are unchanged when every frame's patches are permuted independently:
such a model can see motion only through the position information its keys and values carry, or through attention
that picks a neighbour's patch by its place. Every variant that pairs an element of frame t with one of a neighbour
at the same token (a key with the other frame's value: K, V, QK, QV; a shifted head's output at that token: Q, QKV;
part of a token's channels: TSM-ViT, X-ViT at SHIFT_DIV 8) changes. The first group is the one that stays at chance
on the tiny motion control (with Q and QKV); docs/tiny_scale_puzzles.md, puzzle 1, has the runs.
"""

import pytest
import torch
from einops import rearrange

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import create_model

MSCA = {"attn_layer": "msca", "attn_kwargs": {"shift_along": "heads", "num_backward": 1, "num_forward": 1}}


def _msca(shifted: str, **extra) -> dict:
    return {**MSCA, "attn_kwargs": {**MSCA["attn_kwargs"], "shifted": shifted, **extra}}


XVIT = {"attn_layer": "xvit", "pos_embed": "separate"}
SET_READERS = {  # blind to the arrangement of a neighbour's patches
    "frame-wise ViT": {},
    "TokenShift": {"temporal_shift": "cls", "shift_fraction": 0.5, "shift_before": ("attn", "mlp")},
    "MSCA-KV": _msca("KV"),
    "MSCA-KV, the authors' head order": _msca("KV", head_order="official"),
    "X-ViT, SHIFT_DIV 4 (SSv2)": {**XVIT, "attn_kwargs": {"shift_fraction": 0.5}},
}
PAIRERS = {  # pair a place of frame t with the same place of a neighbour
    **{f"MSCA-{s}": _msca(s) for s in ("Q", "K", "V", "QK", "QV", "QKV")},
    "MSCA-KV, values from the other neighbour": _msca("KV", value_frames="opposite"),
    "TSM-ViT": {"temporal_shift": "all", "shift_fraction": 0.25, "shift_before": ("attn",), "pos_embed": "separate"},
    "X-ViT, SHIFT_DIV 8 (Kinetics)": {**XVIT, "attn_kwargs": {"shift_fraction": 0.25}},
}


def _logits_of_clip_and_permuted(overrides: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The tiny frame model's logits for a clip and for the same clip with each frame's 4 x 4 patches permuted
    independently; position table at zero, attention far from uniform, float64."""
    torch.manual_seed(0)
    model = create_model("vit_tiny_frame", num_classes=6, **overrides).double().eval()
    with torch.no_grad():
        model.pos_embed.zero_()
        if hasattr(model, "time_embed"):  # one vector per frame, for every token of it: order within a frame stays
            model.time_embed.normal_()
        for block in model.blocks:  # selective attention, so that an exchange shows whatever it pairs
            block.attn.qkv.weight.mul_(20.0)
    video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    patches = rearrange(video, "b c t (h p) (w q) -> b c t (h w) p q", p=8, q=8).clone()
    for t in range(patches.shape[2]):
        patches[:, :, t] = patches[:, :, t, torch.randperm(16)]
    permuted = rearrange(patches, "b c t (h w) p q -> b c t (h p) (w q)", h=4)
    with torch.no_grad():
        return model(video), model(permuted)


def _relative_change(overrides: dict) -> float:
    logits, permuted = _logits_of_clip_and_permuted(overrides)
    return ((logits - permuted).norm() / logits.norm()).item()


@pytest.mark.parametrize("name", SET_READERS)
def test_a_whole_head_of_keys_and_values_from_one_frame_reads_that_frame_as_a_set(name):
    assert _relative_change(SET_READERS[name]) < 1e-10


@pytest.mark.parametrize("name", PAIRERS)
def test_a_shift_that_pairs_frames_at_one_token_sees_their_arrangement(name):
    assert _relative_change(PAIRERS[name]) > 1e-2
