"""3D deformable attention (supplementary Algorithm A3): the 3D token search against a literal transcription of
A3's sampling loop, zero offsets returning the tokens at the reference points, gradients reaching the offset
network, and the attention against an explicit computation."""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models.d3da.deformable import DeformableAttention3D, TokenSearch3D

DIM, HEADS = 8, 2


def token_search_reference(z: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """A3's 3DTS loop: for every point p = (p_x, p_y, p_z) (token units, 0-based), z~ = sum over all grid
    positions r of g(p_x, r_x) g(p_y, r_y) g(p_z, r_z) Z[:, r_z, r_y, r_x], g(a, b) = max(0, 1 - |a - b|).
    z (C, T, H, W), points (T~, H~, W~, 3) -> (C, T~, H~, W~)."""
    _, t, h, w = z.shape

    def g(a, b):
        return torch.clamp(1 - (a - b).abs(), min=0)

    out = torch.zeros(z.shape[0], *points.shape[:3], dtype=z.dtype)
    for pt in range(points.shape[0]):
        for py in range(points.shape[1]):
            for px in range(points.shape[2]):
                p_x, p_y, p_z = points[pt, py, px]
                acc = torch.zeros(z.shape[0], dtype=z.dtype)
                for rz in range(t):
                    for ry in range(h):
                        for rx in range(w):
                            acc = acc + g(p_x, rx) * g(p_y, ry) * g(p_z, rz) * z[:, rz, ry, rx]
                out[:, pt, py, px] = acc
    return out


def _zero_offsets(search: TokenSearch3D) -> None:
    with torch.no_grad():
        search.offset_net[-1].weight.zero_()


def test_zero_offsets_return_the_tokens_at_the_reference_points():
    torch.manual_seed(0)
    z = torch.randn(2, DIM, 3, 4, 5, dtype=torch.float64)
    search = TokenSearch3D(DIM).double()
    _zero_offsets(search)
    assert torch.equal(search.offsets(z), torch.zeros(2, 3, 4, 5, 3, dtype=torch.float64))
    assert torch.allclose(search(z), z, rtol=0, atol=1e-12)
    strided = TokenSearch3D(DIM, offset_stride=2).double()  # a coarser offset map: every other token
    _zero_offsets(strided)
    assert torch.allclose(strided(z), z[:, :, ::2, ::2, ::2], rtol=0, atol=1e-12)


def test_sampling_equals_the_literal_loop_of_algorithm_a3():
    """Random offsets of up to 2.5 cells (points beyond the grid included: they see zeros)."""
    torch.manual_seed(1)
    z = torch.randn(1, 3, 3, 4, 5, dtype=torch.float64)
    search = TokenSearch3D(3).double()
    t, h, w = z.shape[2:]
    cells = torch.rand(1, t, h, w, 3, dtype=torch.float64) * 5 - 2.5  # offsets (x, y, t) in token cells
    delta = cells * torch.tensor([2 / w, 2 / h, 2 / t], dtype=torch.float64)  # -> normalised coordinates
    grid_t, grid_y, grid_x = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    points = torch.stack([grid_x, grid_y, grid_t], dim=-1).double() + cells[0]  # p + Delta p, token units
    expected = token_search_reference(z[0], points)
    assert (expected == 0).sum() < expected.numel()  # not all outside
    assert torch.allclose(search.sample(z, delta)[0], expected, rtol=0, atol=1e-12)


def test_offsets_are_tanh_scaled_to_offset_range_cells():
    torch.manual_seed(2)
    z = torch.randn(1, DIM, 3, 4, 6, dtype=torch.float64)
    search = TokenSearch3D(DIM, offset_range=1.5).double()
    raw = torch.tanh(search.offset_net(z)).movedim(1, -1)
    cells = search.offsets(z) / torch.tensor([2 / 6, 2 / 4, 2 / 3], dtype=torch.float64)
    assert torch.allclose(cells, 1.5 * raw, atol=1e-12)
    printed = TokenSearch3D(DIM, offset_range=None).double()  # tanh added to normalised coordinates as printed
    assert torch.allclose(printed.offsets(z), torch.tanh(printed.offset_net(z)).movedim(1, -1))


def test_gradients_reach_the_offset_network():
    torch.manual_seed(3)
    attn = DeformableAttention3D(DIM, HEADS).double()
    z = torch.randn(2, 3, 4, 4, DIM, dtype=torch.float64)
    modal = torch.randn(2, 3, 2, DIM, dtype=torch.float64)
    dz, dm = attn(z, modal)
    (dz.square().sum() + dm.sum()).backward()
    for name, p in attn.search.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_attention_equals_explicit_computation():
    """Queries from [Z || modal], keys and values from [Z~ || modal], one softmax per head over all keys."""
    torch.manual_seed(4)
    attn = DeformableAttention3D(DIM, HEADS, fused_attn=True).double().eval()
    z = torch.randn(1, 2, 3, 3, DIM, dtype=torch.float64)
    modal = torch.randn(1, 2, 2, DIM, dtype=torch.float64)
    dz, dm = attn(z, modal)
    deformed = attn.search(z.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1).reshape(1, -1, DIM)
    x = torch.cat([z.reshape(1, -1, DIM), modal.reshape(1, -1, DIM)], dim=1)[0]
    x_def = torch.cat([deformed, modal.reshape(1, -1, DIM)], dim=1)[0]
    q, kv = attn.q(x), attn.kv(x_def)
    k, v = kv[:, :DIM], kv[:, DIM:]
    d = DIM // HEADS
    heads = [torch.softmax(q[:, i * d:(i + 1) * d] @ k[:, i * d:(i + 1) * d].T / d ** 0.5, -1) @ v[:, i * d:(i + 1) * d]
             for i in range(HEADS)]
    out = attn.proj(torch.cat(heads, dim=-1))
    assert torch.allclose(dz.reshape(-1, DIM), out[:18], atol=1e-12)
    assert torch.allclose(dm.reshape(-1, DIM), out[18:], atol=1e-12)


@pytest.mark.parametrize("kwargs, option", [({"offset_kernel": 2}, "offset_kernel"),
                                            ({"offset_range": 0.0}, "offset_range"),
                                            ({"offset_stride": 0}, "offset_stride")])
def test_options_are_validated(kwargs, option):
    with pytest.raises(ValueError, match=option):
        TokenSearch3D(DIM, **kwargs)
