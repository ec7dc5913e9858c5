"""The tiny experts' pretraining (``lightning_modules.expert_pretraining``) against the official VideoMAE code and
plain loops written here.

- ``patchify``: each target value read pixel by pixel in a loop, VideoMAE's ``engine_for_pretraining.py`` order
  ``b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2 c)``.
- ``normalized_pixels``: VideoMAE's per-patch, per-channel target with the unbiased variance, in float64 loops.
- ``masked_mse``: the mean over hidden tokens of each token's mean squared error (VideoMAE's ``nn.MSELoss`` on the
  masked tokens), in a loop.
- ``MaskedVideoPretraining``: the forward against VideoMAE's ``PretrainVisionTransformer.forward`` composed here
  (encoder on the visible tokens, its last norm, ``encoder_to_decoder``, then ``[visible + table, mask token +
  table]`` with the visible tokens first, as the official code orders them); the loss target chosen by
  ``normalize_target``; ``training_step`` drawing a tube mask over the expert's (T, N) grid with its own ratio.
- ``FramePretraining.training_step``: every frame a separate image carrying its own clip's label.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_modules.expert_pretraining import (
    FramePretraining,
    MaskedVideoPretraining,
    masked_mse,
    normalized_pixels,
    patchify,
    tube_mask,
)
from models.cast import build_expert
from tests.models.cast.test_pretrained import official_sinusoid

F64 = torch.float64


def _patch_loop(video: Tensor, tubelet: int, patch: int) -> Tensor:
    """(B, C, F, H, W) -> (B, T*N, tubelet*p*p*C): token (t, h, w) row-major, value (dt, ph, pw, c) row-major."""
    b, c, f, h, w = video.shape
    steps, rows, cols = f // tubelet, h // patch, w // patch
    out = torch.empty(b, steps * rows * cols, tubelet * patch * patch * c, dtype=video.dtype)
    for i in range(b):
        for t in range(steps):
            for r in range(rows):
                for q in range(cols):
                    token = (t * rows + r) * cols + q
                    for dt in range(tubelet):
                        for ph in range(patch):
                            for pw in range(patch):
                                value = ((dt * patch + ph) * patch + pw) * c  # then the c channels
                                out[i, token, value:value + c] = video[i, :, t * tubelet + dt, r * patch + ph,
                                                                       q * patch + pw]
    return out


def _videomae_normalized_loop(patches: Tensor, channels: int = 3, eps: float = 1e-6) -> Tensor:
    """VideoMAE's target: per token and channel, (x - mean) / (unbiased std + eps), pixels of one channel being every
    ``channels``-th value (channel last)."""
    out = torch.empty_like(patches, dtype=F64)
    for i in range(patches.shape[0]):
        for n in range(patches.shape[1]):
            for c in range(channels):
                x = patches[i, n, c::channels].double()
                mean = x.sum() / len(x)
                var = ((x - mean) ** 2).sum() / (len(x) - 1)  # unbiased, as ``var(unbiased=True)``
                out[i, n, c::channels] = (x - mean) / (var.sqrt() + eps)
    return out


def _mae_system(mask_ratio: float = 0.75, normalize_target: bool = False, **expert_options) -> MaskedVideoPretraining:
    torch.manual_seed(0)
    system = MaskedVideoPretraining(build_expert("videomae", "tiny", **expert_options), mask_ratio=mask_ratio,
                                    normalize_target=normalize_target)
    with torch.no_grad():  # off the zero init of the mask token's neighbours and LayerNorm affines
        for param in system.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return system


def test_patchify_reads_every_pixel_in_videomae_order():
    video = torch.randn(2, 3, 4, 6, 4, dtype=F64, generator=torch.Generator().manual_seed(0))  # 2 x 3 x 2 tokens
    torch.testing.assert_close(patchify(video, 2, 2), _patch_loop(video, 2, 2), rtol=0, atol=0)


def test_normalized_pixels_is_videomae_per_patch_per_channel_target_with_unbiased_variance():
    # 4 pixels per channel: the unbiased std is sqrt(4/3) times the biased one.
    patches = 10 * torch.randn(2, 3, 4 * 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    patches[..., 1::3] += 5.0  # a per-channel offset the target must remove per channel
    torch.testing.assert_close(normalized_pixels(patches), _videomae_normalized_loop(patches), rtol=1e-12, atol=0)


def test_normalized_pixels_add_eps_to_the_std_as_videomae_not_to_the_variance():
    """A near-flat patch (std 1.07e-3) tells the two apart: (x - mean) / (std + 1e-6) is +-0.935 here, the image MAE
    form (x - mean) / sqrt(var + 1e-6) would give +-0.683."""
    patches = torch.zeros(1, 1, 8 * 3, dtype=F64)
    patches[0, 0, 0::3] = 1e-3 * torch.tensor([1.0, -1.0] * 4, dtype=F64)
    torch.testing.assert_close(normalized_pixels(patches), _videomae_normalized_loop(patches), rtol=1e-12, atol=0)
    assert normalized_pixels(patches)[0, 0, 0].item() == pytest.approx(1e-3 / ((8e-6 / 7) ** 0.5 + 1e-6), rel=1e-12)


def test_masked_mse_is_the_mean_over_hidden_tokens_of_their_mean_squared_error():
    generator = torch.Generator().manual_seed(2)
    prediction = torch.randn(2, 6, 5, dtype=F64, generator=generator)
    target = torch.randn(2, 6, 5, dtype=F64, generator=generator)
    hidden = torch.tensor([[True, False, True, False, False, True], [False, True, True, True, False, False]])
    total, count = 0.0, 0
    for i in range(2):
        for n in range(6):
            if hidden[i, n]:
                total += sum((prediction[i, n, p].item() - target[i, n, p].item()) ** 2 for p in range(5)) / 5
                count += 1
    assert masked_mse(prediction, target, hidden).item() == pytest.approx(total / count, rel=1e-12)


def _videomae_pretraining_forward(system: MaskedVideoPretraining, video: Tensor, hidden: Tensor) -> Tensor:
    """Official ``PretrainVisionTransformer.forward`` on this system's weights: predictions of the hidden tokens
    (B, num_hidden, P), in the order of their positions."""
    expert, b = system.expert, video.shape[0]
    x = F.conv3d(video, expert.patch_embed.proj.weight, expert.patch_embed.proj.bias,
                 stride=expert.patch_embed.proj.stride).flatten(2).transpose(1, 2)
    x = x + official_sinusoid(x.shape[1], x.shape[2]).to(x.dtype)
    x_vis = x[~hidden].reshape(b, -1, x.shape[-1])
    for block in expert.blocks:
        x_vis = block(x_vis, expert.num_steps)
    x_vis = system.encoder_to_decoder(expert.norm(x_vis))
    table = official_sinusoid(x.shape[1], x_vis.shape[-1]).to(x.dtype).expand(b, -1, -1)
    pos_vis, pos_mask = table[~hidden].reshape(b, -1, x_vis.shape[-1]), table[hidden].reshape(b, -1, x_vis.shape[-1])
    x_full = torch.cat([x_vis + pos_vis, system.mask_token + pos_mask], dim=1)  # visible first, as the official code
    for block in system.decoder:
        x_full = block(x_full)
    return system.decoder_head(system.decoder_norm(x_full[:, -pos_mask.shape[1]:]))


def test_masked_video_forward_matches_the_official_videomae_pretraining_forward():
    system = _mae_system().double().eval()
    expert = system.expert
    video = torch.randn(2, 3, expert.num_frames, expert.img_size, expert.img_size, dtype=F64,
                        generator=torch.Generator().manual_seed(3))
    hidden = tube_mask(2, expert.num_steps, expert.num_patches, 0.75, generator=torch.Generator().manual_seed(4))
    width = system.decoder_head.out_features  # tubelet * p * p * 3 pixel values per token
    with torch.no_grad():
        ours = system(video, hidden)[hidden].reshape(2, -1, width)
        reference = _videomae_pretraining_forward(system, video, hidden)
    assert ours.shape == reference.shape == (2, hidden[0].sum().item(), width)
    torch.testing.assert_close(ours, reference, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("normalize_target", [False, True], ids=["raw_pixels", "normalized_pixels"])
def test_masked_video_loss_targets_the_hidden_patches_pixels_as_configured(normalize_target: bool):
    system = _mae_system(normalize_target=normalize_target).double().eval()
    expert = system.expert
    video = 3 * torch.randn(2, 3, expert.num_frames, expert.img_size, expert.img_size, dtype=F64,
                            generator=torch.Generator().manual_seed(5))
    hidden = tube_mask(2, expert.num_steps, expert.num_patches, 0.75, generator=torch.Generator().manual_seed(6))
    target = _patch_loop(video, 2, expert.patch_size)
    if normalize_target:
        target = _videomae_normalized_loop(target)
    with torch.no_grad():
        prediction = system(video, hidden)
        expected = ((prediction - target) ** 2)[hidden].mean()  # every hidden token has the same P values
        assert system.loss(video, hidden).item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_tube_mask_hides_videomaes_count_rounded_down():
    """VideoMAE's TubeMaskingGenerator hides int(ratio x N) positions: 0.9 x 64 = 57.6 hides 57, not 58."""
    hidden = tube_mask(4, 2, 64, 0.9, generator=torch.Generator().manual_seed(0)).view(4, 2, 64)
    assert hidden[:, 0].sum(1).tolist() == [57] * 4


@pytest.mark.parametrize("num_frames, mask_ratio, hidden_per_step", [(4, 0.75, 12), (6, 0.5, 8)])
def test_masked_video_training_step_draws_a_tube_over_the_experts_grid_at_its_ratio(num_frames, mask_ratio,
                                                                                   hidden_per_step):
    system = _mae_system(mask_ratio=mask_ratio, num_frames=num_frames)
    steps, patches = system.expert.num_steps, system.expert.num_patches
    assert (steps, patches) == (num_frames // 2, 16)  # a grid where (T, N) and (N, T) differ
    seen = []
    system.loss = lambda video, hidden: seen.append(hidden) or torch.zeros(())  # capture the drawn mask
    system.log = lambda *args, **kwargs: None  # no trainer attached
    video = torch.randn(3, 3, num_frames, system.expert.img_size, system.expert.img_size)
    system.training_step({"video": video}, 0)
    per_step = seen[0].view(3, steps, patches)
    assert torch.equal(per_step, per_step[:, :1].expand_as(per_step))  # the same positions at every step
    assert (per_step[:, 0].sum(dim=1) == hidden_per_step).all()


def test_frame_pretraining_labels_every_frame_with_its_own_clip():
    torch.manual_seed(0)
    system = FramePretraining(build_expert("clip", "tiny", num_frames=2), num_classes=4).double().eval()
    system.log = lambda *args, **kwargs: None  # no trainer attached
    video = torch.randn(2, 3, 3, 32, 32, dtype=F64, generator=torch.Generator().manual_seed(7))
    label = torch.tensor([1, 3])
    terms = []
    with torch.no_grad():
        for i in range(2):
            for t in range(3):
                logits = system(video[i:i + 1, :, t])
                terms.append(F.cross_entropy(logits, label[i:i + 1], label_smoothing=0.1))  # the default 0.1
        loss = system.training_step({"video": video, "label": label}, 0)
    assert loss.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-9)
