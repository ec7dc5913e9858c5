"""Shift-family gaps the reference tests leave open, each checked against literals or a slow loop written here:

- ``channels_per_direction`` against TSM's ``fold = C // fold_div`` (literal table and the integer formula);
- the defaults of ``TemporalShift``, ``VideoViT`` and X-ViT mixing against TSM's fold_div 8 and X-ViT's SSv2
  ``SHIFT_DIV: 4`` (literal ``Shift`` ranges);
- the in-place shift: inputs it must not rewrite (leaves, views of other tensors) stay as they were, the stream it
  rewrites differentiates as shifted, and its backward leaves the incoming gradient alone (element-wise loop of
  MSCA Eq. 8-9, ``tests.models.attention.reference.temporal_shift_reference``, and its autograd adjoint);
- the paper rows' shifts (TokenShift SHIFT_DIV 4, TSM fold_div 8, X-ViT SHIFT_DIV 4 on SSv2 and 8 on K-400) as the
  models built from the specs hold them, against literal channel ranges.
"""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import create_model
from models.attention import TemporalShift, get_attention, shift_frames
from models.attention.temporal_shift import Shift, channels_per_direction
from tests.models.attention.reference import temporal_shift_reference

DIM = 16
THW = (3, 2, 2)  # three frames: both clip boundaries and a middle frame
TOKENS = THW[0] * (1 + THW[1] * THW[2])
ALL_TOKENS = Shift(at=(slice(None), None), previous=(0, 4), next=(4, 8))  # TemporalShift(16, 0.5, "all")'s shift


def _random(*shape, requires_grad=False, seed=0):
    torch.manual_seed(seed)
    return torch.randn(*shape, dtype=torch.float64, requires_grad=requires_grad)


def _reference_and_adjoint(x: torch.Tensor, cotangent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 8-9 element by element on every token (fraction 0.5) and its gradient for ``cotangent``, by autograd
    through the slow loop (never through ``shift_frames``)."""
    z = x.detach().clone().requires_grad_(True)
    out = temporal_shift_reference(z, THW, 0.5, "all")
    (grad,) = torch.autograd.grad(out, z, cotangent)
    return out.detach(), grad


@pytest.mark.parametrize("dim, fraction, expected", [
    (768, 0.5, 192), (768, 0.25, 96), (96, 0.25, 12), (96, 0.5, 24), (16, 0.375, 3),
    (10, 0.3, 1), (7, 1.0, 3), (5, 0.2, 0), (9, 0.0, 0),
])
def test_channels_per_direction_rounds_down_as_eq_8(dim, fraction, expected):
    """D_b = D_f = int(C * fraction) // 2: an odd number of moved channels loses one, never gains one."""
    assert channels_per_direction(dim, fraction) == expected


def test_channels_per_direction_is_tsms_fold_for_every_width():
    """TSM / TokShift / X-ViT: ``fold = c // fold_div`` channels each way, which ``shift_fraction = 2 / fold_div``
    must reproduce for every width, odd ones included."""
    for fold_div in (4, 8):
        for dim in range(1, 200):
            assert channels_per_direction(dim, 2 / fold_div) == dim // fold_div, (dim, fold_div)


def test_defaults_are_tsms_and_xvits():
    """TemporalShift and VideoViT: TSM's fold_div 8 (1/8 of the channels each way, the first 1/8 from t-1);
    X-ViT mixing: the official SSv2 SHIFT_DIV 4 (channels [0, C/4) of k and v from t+1, [C/4, C/2) from t-1)."""
    assert TemporalShift(96).shifts == [Shift(at=(0, None), previous=(0, 12), next=(12, 24))]
    model = create_model("vit_tiny_frame", temporal_shift="all")  # 96 channels, shift before attention and MLP
    for block in model.blocks:
        for shift in (block.pre_attn, block.pre_mlp):
            assert shift.shifts == [Shift(at=(slice(None), None), previous=(0, 12), next=(12, 24))]
    mixing = get_attention("xvit")(96, num_heads=12)
    assert mixing.shifts(17) == [Shift(at=(slice(None), slice(1, 3), None), previous=(24, 48), next=(0, 24))]


def test_backward_leaves_the_incoming_gradient_alone():
    """The gradient autograd hands the shift's backward is shared (the caller's cotangent, an add's two inputs):
    shifting it in place would corrupt the other consumers' gradients."""
    x, other = _random(2, TOKENS, DIM, requires_grad=True), _random(2, TOKENS, DIM, requires_grad=True, seed=1)
    other_branch = other * 2.0  # made before the shift, so its backward runs after the shift's
    out = TemporalShift(DIM, 0.5, "all")(x * 1.0, THW) + other_branch  # add: one gradient tensor to both inputs
    cotangent = _random(2, TOKENS, DIM, seed=2)
    kept = cotangent.clone()
    out.backward(cotangent)
    assert cotangent.equal(kept)
    torch.testing.assert_close(other.grad, 2.0 * kept, rtol=0, atol=0)
    torch.testing.assert_close(x.grad, _reference_and_adjoint(x, kept)[1], rtol=0, atol=0)


def test_an_in_place_shift_copies_leaves_and_views_instead_of_rewriting_them():
    """``in_place`` rewrites only a tensor nothing else owns (non-leaf, non-view): a user's leaf, with or without
    gradient, and a view of another tensor keep their values; the output is the shifted copy."""
    shift = TemporalShift(DIM, 0.5, "all", inplace=True)
    leaf = _random(2, TOKENS, DIM)
    before = leaf.clone()
    torch.testing.assert_close(shift(leaf, THW), temporal_shift_reference(before, THW, 0.5, "all"), rtol=0, atol=0)
    assert leaf.equal(before)

    leaf_with_grad = _random(2, TOKENS, DIM, requires_grad=True)
    cotangent = _random(2, TOKENS, DIM, seed=3)
    expected, expected_grad = _reference_and_adjoint(leaf_with_grad, cotangent)
    out = shift(leaf_with_grad, THW)  # a leaf that requires grad may not be rewritten at all
    out.backward(cotangent)
    torch.testing.assert_close(out.detach(), expected, rtol=0, atol=0)
    torch.testing.assert_close(leaf_with_grad.grad, expected_grad, rtol=0, atol=0)

    source = _random(4, TOKENS, DIM, requires_grad=True)
    base = source * 1.0  # non-leaf; its first two clips are a contiguous view of it
    view = base[:2]
    kept = base.detach().clone()
    out = shift(view, THW)
    torch.testing.assert_close(out.detach(), temporal_shift_reference(kept[:2], THW, 0.5, "all"), rtol=0, atol=0)
    assert base.detach().equal(kept)


def test_the_stream_shifted_in_place_differentiates_as_shifted():
    """``Block`` drops its reference to the input, but a caller that keeps one holds the shifted values: its
    gradient must be the shift's adjoint too (autograd told that the input was rewritten)."""
    x = _random(2, TOKENS, DIM, requires_grad=True)
    stream = x * 1.0
    out = shift_frames(stream, (2, THW[0], -1, DIM), [ALL_TOKENS], in_place=True)
    assert out is stream
    cotangent = _random(2, TOKENS, DIM, seed=4)
    expected, expected_grad = _reference_and_adjoint(x, cotangent)
    torch.testing.assert_close(stream.detach(), expected, rtol=0, atol=0)
    (grad,) = torch.autograd.grad(stream, x, cotangent)  # through the kept name, not the returned one
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)


def _paper_model(table_id: str, row: str):
    from experiments.harness.tasks import build_model
    from tests.experiments.msca.test_specs import configs

    cfg = next(c for (r, _), c in sorted(configs(table_id, "paper").items()) if r == row)
    return build_model(cfg, 10, device="meta")  # paper scale (768 channels, 12 heads) without allocating it


def test_paper_rows_shift_the_official_channels():
    """Built from the specs, every block: TokenShift (k400_tokshift_div4: SHIFT_DIV 4, fold = 768 // 4 = 192) moves
    the class token before attention and MLP; TSM-ViT (fold_div 8: 96) every token before attention only; X-ViT
    mixes k and v, 192 channels each way on SSv2 (SHIFT_DIV 4) and 96 on K-400 (SHIFT_DIV 8), [0, fold) from t+1."""
    tokenshift = Shift(at=(0, None), previous=(0, 192), next=(192, 384))
    tsm = Shift(at=(slice(None), None), previous=(0, 96), next=(96, 192))
    xvit_ssv2 = Shift(at=(slice(None), slice(1, 3), None), previous=(192, 384), next=(0, 192))
    xvit_k400 = Shift(at=(slice(None), slice(1, 3), None), previous=(96, 192), next=(0, 96))
    expected = {  # (table, row): (before the attention, before the MLP, inside the attention)
        ("msca_table2", "tokenshift"): ([tokenshift], [tokenshift], []),
        ("xvit_table2", "tsm_vit_average"): ([tsm], None, []),
        ("xvit_table2", "tsm_vit_attention"): ([tsm], None, []),
        ("xvit_table2", "xvit_average"): (None, None, [xvit_ssv2]),
        ("xvit_table2", "xvit_attention"): (None, None, [xvit_ssv2]),
        ("xvit_figure1", "xvit"): (None, None, [xvit_k400]),
    }
    for (table_id, row), (pre_attn, pre_mlp, inside) in expected.items():
        model = _paper_model(table_id, row)
        assert len(model.blocks) == 12 and model.embed_dim == 768, (table_id, row)
        for block in model.blocks:
            found = (block.pre_attn and block.pre_attn.shifts, block.pre_mlp and block.pre_mlp.shifts,
                     block.attn.shifts(197))
            assert found == (pre_attn, pre_mlp, inside), (table_id, row)


def test_a_models_residual_shifts_rewrite_the_stream_where_it_lies(monkeypatch):
    """``VideoViT`` builds its ``TemporalShift`` modules in place (``Block`` replaces its stream), so training keeps
    no second copy of the residual stream: every shift of a step returns the very tensor it was given, but the
    first block's first (the embedding hands it a view, which is copied)."""
    import models.attention.temporal_shift as temporal_shift

    original, in_place = temporal_shift.shift_frames, []

    def recording(z, *args, **kwargs):
        out = original(z, *args, **kwargs)
        in_place.append(out is z)
        return out

    monkeypatch.setattr(temporal_shift, "shift_frames", recording)
    model = create_model("vit_tiny_frame", temporal_shift="cls", shift_fraction=0.5, shift_before=("attn", "mlp"))
    model.train()(torch.randn(1, 3, 8, 32, 32)).sum().backward()
    assert len(in_place) == 2 * len(model.blocks) and all(in_place[1:]), in_place
