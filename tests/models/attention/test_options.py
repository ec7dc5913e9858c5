"""Constructor options of the exact space-time attentions take effect, checked against values the test states itself.

tests/models/attention/test_attention.py compares each module with loop references that read the module's own
``normalize`` and ``temporal_pool`` attributes, so an option lost between the constructor and those attributes goes
unseen there.
Here the options a Table 4 row asks for are passed to the constructor and the output is compared with:
- the loop reference (tests/models/attention/reference.py) evaluated with those options stated by the test;
- a closed form: with Norm_ST and Avg_T, the mean over t' of the trajectory tokens is joint attention over the
  patch tokens divided by T (the Norm_ST weights of one query sum to one over all (s', t'));
- literal outputs under attention dropout: p = 1 zeroes every attention weight, so each attention stage yields its
  output projection's bias; in eval mode dropout is off, so the output is the reference's; a stand-in dropout
  that halves stage two's weights halves every patch token's pre-projection output, b_v included (Eq. 6 is linear
  in the weights), which is the only way to reach the rearranged form's b_v weighting.
Also: a misspelt ``normalize`` or ``temporal_pool`` is refused when the module is built, and stage two's logits are
recomputed in backward (``checkpoint``) only when there are more heads than frames, as the module doc says.
"""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
import models.attention.trajectory as trajectory_module
from models.attention import DividedSpaceTimeAttention, JointSpaceTimeAttention, TrajectoryAttention
from tests.models.attention.reference import (
    REFERENCES,
    random_attention,
    trajectory_official_values_reference,
    trajectory_reference,
)

DIM, HEADS = 16, 2
THW = (3, 2, 2)
F64 = torch.float64


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _tokens(thw=THW, batch=2, seed=1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1 + thw[0] * thw[1] * thw[2], DIM, dtype=F64, generator=generator)


class _StatedOptions:
    """The module's weights with the options the test states: the reference must not read them off the module."""

    def __init__(self, module: torch.nn.Module, **options):
        self._module, self._options = module, options

    def __getattr__(self, name):
        return self._options[name] if name in self._options else getattr(self._module, name)


TABLE4_TRAJECTORY_ROWS = [("attention", "space"), ("average", "space"), ("attention", "spacetime"),
                          ("average", "spacetime")]


@pytest.mark.parametrize("temporal_pool,normalize", TABLE4_TRAJECTORY_ROWS,
                         ids=[f"{p}-{n}" for p, n in TABLE4_TRAJECTORY_ROWS])
def test_constructor_options_select_the_table4_variant(temporal_pool, normalize):
    module = random_attention(TrajectoryAttention, DIM, HEADS, fused=True, temporal_pool=temporal_pool,
                              normalize=normalize)
    x = _tokens()
    expected = trajectory_reference(_StatedOptions(module, temporal_pool=temporal_pool, normalize=normalize), x, THW)
    assert _rel(module(x, THW), expected) < 1e-10


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
def test_norm_st_average_is_joint_patch_attention_over_num_frames(fused):
    """sum_t' y~_stt' = sum_(s',t') softmax_(s',t')(q.k / sqrt(d)) v_s't', i.e. joint attention of the patch query
    over the patch tokens; Avg_T divides it by T. Written with plain tensor ops, per head."""
    module = random_attention(TrajectoryAttention, DIM, HEADS, fused=fused, temporal_pool="average",
                              normalize="spacetime")
    x = _tokens()
    d = DIM // HEADS
    q, k, v = (x[:, 1:] @ w.T + b for w, b in zip(module.qkv.weight.split(DIM), module.qkv.bias.split(DIM)))
    heads = []
    for h in range(HEADS):
        qh, kh, vh = (z[..., h * d:(h + 1) * d] for z in (q, k, v))
        weights = torch.softmax(qh @ kh.transpose(1, 2) / d ** 0.5, dim=-1)  # over all T*S patch tokens
        heads.append(weights @ vh / THW[0])
    expected_patches = torch.cat(heads, dim=-1) @ module.proj.weight.T + module.proj.bias
    assert _rel(module(x, THW)[:, 1:], expected_patches) < 1e-10


MISSPELT_OPTIONS = [("normalize", "spatial"), ("normalize", "space-time"), ("normalize", "Norm_S"),
                    ("temporal_pool", "avg"), ("temporal_pool", "Att_T")]


@pytest.mark.parametrize("option,misspelt", MISSPELT_OPTIONS, ids=[f"{o}={v}" for o, v in MISSPELT_OPTIONS])
def test_unknown_variant_options_are_refused_at_construction(option, misspelt):
    """A misspelt ``normalize`` would otherwise fall through to the Norm_ST branch without a word, a misspelt
    ``temporal_pool`` build no stage-two projections and fail only at the first forward."""
    with pytest.raises(ValueError, match=f"{option} must be"):
        TrajectoryAttention(DIM, num_heads=HEADS, **{option: misspelt})


ATTENTIONS = {"joint": JointSpaceTimeAttention, "divided": DividedSpaceTimeAttention, "trajectory": TrajectoryAttention}


@pytest.mark.parametrize("name", list(ATTENTIONS))
def test_attention_dropout_is_off_in_eval(name):
    """attn_drop = 0.5 in eval mode: the output is the dropout-free reference's."""
    module = random_attention(ATTENTIONS[name], DIM, HEADS, fused=True, attn_drop=0.5)
    x = _tokens()
    assert _rel(module(x, THW), REFERENCES[name](module, x, THW)) < 1e-10


def test_joint_attention_dropout_one_leaves_the_projection_bias():
    """attn_drop = 1 in training: every attention weight is zero, so every token's output is proj.bias."""
    module = random_attention(JointSpaceTimeAttention, DIM, HEADS, fused=False, attn_drop=1.0).train()
    out = module(_tokens(), THW)
    assert torch.equal(out, module.proj.bias.expand_as(out))


def test_divided_attention_dropout_one_reaches_both_stages():
    """attn_drop = 1 in training: the temporal stage gives temporal_proj.bias on patches (0 on CLS, which it
    skips), the spatial stage proj.bias everywhere; the module returns their sum."""
    module = random_attention(DividedSpaceTimeAttention, DIM, HEADS, fused=False, attn_drop=1.0).train()
    out = module(_tokens(), THW)
    temporal = torch.cat([torch.zeros(1, DIM, dtype=F64), module.temporal_proj.bias.expand(out.shape[1] - 1, -1)])
    expected = (temporal + module.proj.bias).expand_as(out)
    assert _rel(out, expected) < 1e-12


@pytest.mark.parametrize("heads,frames,recomputed", [(2, 3, False), (2, 2, False), (4, 2, True)],
                         ids=["fewer-heads", "as-many-heads", "more-heads"])
def test_stage_two_logits_recomputed_only_with_more_heads_than_frames(heads, frames, recomputed, monkeypatch):
    """The module doc: the autograd form (``memory_lean=False``) recomputes u in backward when nh > T; otherwise it
    is cheaper to keep."""
    calls = []

    def recording_checkpoint(fn, *args, **kwargs):
        calls.append(fn.__name__)
        return torch.utils.checkpoint.checkpoint(fn, *args, **kwargs)

    monkeypatch.setattr(trajectory_module, "checkpoint", recording_checkpoint)
    module = TrajectoryAttention(DIM, num_heads=heads, qkv_bias=True, memory_lean=False).double()
    thw = (frames, 2, 2)
    module(_tokens(thw).requires_grad_(), thw).sum().backward()
    assert calls == (["_rearranged_logits"] if recomputed else [])



@pytest.mark.parametrize("stage_two", ["rearranged", "literal"])
@pytest.mark.parametrize("values", ["projected", "trajectory"])
def test_stage_two_dropout_scales_the_pooled_values_bias_included(stage_two, values, monkeypatch):
    """``attn_drop_placement="all"``, training, with a stand-in dropout that multiplies stage two's weights (the
    only ones whose last axis has T = 3 entries; S = 4, 1 + T*S = 13) by 1/2 and leaves the rest alone. Eq. 6 is
    linear in those weights, b_v included (sum_t' a_t' (W_v y_t' + b_v)), so every patch token's pre-projection
    output halves: out = (ref - b) / 2 + b for proj's bias b; the CLS token keeps the reference's output. (The
    default placement never drops stage two's weights, so only this placement reaches the rearranged form's b_v
    weighting.)"""
    num_frames = THW[0]
    factor = 0.5

    def halve_stage_two_weights(x, p=0.5, training=True, inplace=False):
        return x * factor if training and p > 0 and x.shape[-1] == num_frames else x

    monkeypatch.setattr(torch.nn.functional, "dropout", halve_stage_two_weights)
    module = random_attention(TrajectoryAttention, DIM, HEADS, fused=False, attn_drop=0.3, stage_two=stage_two,
                              stage_two_values=values, attn_drop_placement="all")
    x = _tokens()
    reference_of = trajectory_reference if values == "projected" else trajectory_official_values_reference
    reference = reference_of(module, x, THW)
    out = module.train()(x, THW)
    bias = module.proj.bias
    assert _rel(out[:, 0], reference[:, 0]) < 1e-10
    assert _rel(out[:, 1:], (reference[:, 1:] - bias) * factor + bias) < 1e-10
