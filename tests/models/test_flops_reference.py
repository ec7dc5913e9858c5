"""FLOP and parameter columns against explicit arithmetic (one multiply-add = one FLOP, fvcore's convention).

Checked against closed forms written out here, never against the code under test:
- ``models.flops.model_gflops`` of small joint / divided / trajectory video ViTs (both formulations), and of the
  paper-scale divided ViT-B (Motionformer Table 4 prints 185.8; the existing test allows 2%, which hides the whole
  temporal attention of the divided block);
- ``lra_gflops`` of the approximations of Table 5 (Orthoformer, Nystromformer with both pseudo-inverse orders,
  Performer), whose existing test only asks for less than exact attention;
- ``experiments.harness.static``: test views of the "GFLOPs x views" columns, ``changed_inputs`` / ``stale_note``
messages,
  and ``paper_params`` counting every parameter once (frozen included, buffers excluded).
"""

import pytest
import torch
from torch import nn

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from experiments.harness.spec import StaticColumn, table_spec
from experiments.harness.static import (
    cell_inputs,
    changed_inputs,
    inputs_key,
    paper_gflops,
    paper_params,
    stale_note,
    views_inputs,
)
from models import model_gflops
from models.lra_transformer import lra_gflops

# ---- video ViTs: a small configuration, every term written out ------------------------------------------------

# 6 frames of 32x32 in 2x8x8 tubelets: T = 3 token frames of S = 16 patches; D = 48, 6 heads (so nh != T), 2 blocks.
SMALL = dict(img_size=32, num_frames=6, patch_size=8, tubelet_size=2, embed_dim=48, depth=2, num_heads=6,
             mlp_ratio=4.0, num_classes=5)
T, S, D, NH, DEPTH, CLASSES = 3, 16, 48, 6, 2, 5
P = T * S  # patch tokens
N = 1 + P  # with the class token
EMBED = (3 * 2 * 8 * 8) * D * P  # tubelet Conv3d: one (3 x 2 x 8 x 8) . D product per patch token
HEAD = D * CLASSES
# Per block on all N tokens: qkv 3 N D^2, output projection N D^2, MLP 2 * N * D * 4D.
DENSE = 3 * N * D * D + N * D * D + 2 * N * D * 4 * D


def small_gflops(attn_layer, formulation="published", **attn_kwargs):
    return model_gflops("vit_tiny_video", formulation=formulation, attn_layer=attn_layer,
                        attn_kwargs=attn_kwargs or None, **SMALL)


def test_small_joint_attention_counts_qk_and_av_once_over_every_token_with_the_class_token():
    attention = N * N * D + N * N * D  # QK^T and AV: N x N scores, summed over heads = D channels
    expected = DEPTH * (DENSE + attention) + EMBED + HEAD
    assert small_gflops("joint") * 1e9 == pytest.approx(expected, rel=1e-12)


def test_small_divided_attention_counts_both_stages():
    temporal = 3 * P * D * D + P * D * D + 2 * P * T * D  # own qkv and proj on the patches; T x T per location
    cls_query = 2 * N * D  # the class token attends to all N tokens
    spatial = 2 * P * (S + 1) * D  # each patch against its frame's S patches plus the class token
    expected = DEPTH * (DENSE + temporal + cls_query + spatial) + EMBED + HEAD
    assert small_gflops("divided") * 1e9 == pytest.approx(expected, rel=1e-12)


def test_small_trajectory_attention_as_published_and_as_computed():
    stage_one = 2 * P * P * D + 2 * N * D  # every patch query against every patch key (per frame softmax), + CLS
    literal = P * D * D + 2 * P * T * D * D + 2 * P * T * D  # proj_q, proj_kv of T trajectory tokens, 1-D attention
    rearranged = 3 * P * D * D + 2 * NH * T * D * P  # proj_q, W_k^T q~, W_v z (D^2 each); logits and pooling
    published = DEPTH * (DENSE + stage_one + literal) + EMBED + HEAD
    computed = DEPTH * (DENSE + stage_one + rearranged) + EMBED + HEAD
    averaged = DEPTH * (DENSE + stage_one) + EMBED + HEAD  # Avg_T: no stage-two arithmetic
    assert small_gflops("trajectory") * 1e9 == pytest.approx(published, rel=1e-12)
    assert small_gflops("trajectory", "computed") * 1e9 == pytest.approx(computed, rel=1e-12)
    assert small_gflops("trajectory", temporal_pool="average") * 1e9 == pytest.approx(averaged, rel=1e-12)


def test_paper_scale_divided_vit_b_is_counted_term_by_term():
    """ViT-B/16, 16x224x224 (T = 8, S = 196), 400 classes: 185.46 GFLOPs, Motionformer Table 4 prints 185.8."""
    t, s, d = 8, 196, 768
    p, n = t * s, 1 + t * s
    block = (12 * n * d * d + 4 * p * d * d  # dense layers on all tokens + the temporal stage's qkv and proj
             + 2 * p * t * d + 2 * n * d + 2 * p * (s + 1) * d)  # temporal, CLS and per-frame spatial attention
    expected = 12 * block + (3 * 2 * 16 * 16) * d * p + d * 400
    assert model_gflops("vit_base_patch16_video", attn_layer="divided") * 1e9 == pytest.approx(expected, rel=1e-12)
    assert expected / 1e9 == pytest.approx(185.8, rel=0.005)


# ---- LRA approximations (Table 5's GFLOPS column) -------------------------------------------------------------

# ListOps' LRA model: width 64, MLP 128, 2 blocks, 2 heads of 32 channels, 10 classes.
LRA_N, LRA_DIM, LRA_HIDDEN, LRA_DEPTH, LRA_HEADS, LRA_D = 128, 64, 128, 2, 2, 32


def lra_expected(per_head_attention):
    dense = LRA_N * (3 * LRA_DIM * LRA_DIM + LRA_DIM * LRA_DIM + 2 * LRA_DIM * LRA_HIDDEN)
    head = LRA_DIM * LRA_HIDDEN + LRA_HIDDEN * 10
    return (LRA_DEPTH * (dense + LRA_HEADS * per_head_attention) + head) / 1e9


def test_orthoformer_counts_four_n_r_d_and_the_greedy_selection():
    r, n, d = 8, LRA_N, LRA_D
    candidates = min(4 * r, 2 * n)  # c R queries and keys subsampled (c = 4)
    # Q P^T, P K^T, Omega2 V, Omega1 (Omega2 V): N R d each; greedy: R - 1 rounds of cosines to all candidates.
    expected = lra_expected(4 * n * r * d + (r - 1) * candidates * d)
    assert lra_gflops("orthoformer", budget=r, seq_len=n) == pytest.approx(expected, rel=1e-12)
    official = lra_expected(4 * n * r * d + (r - 1) * n * d)  # the official rule: every query a candidate
    assert lra_gflops("orthoformer", budget=r, seq_len=n, attn_options={"selection": "official"}) == pytest.approx(
        official, rel=1e-12)


def test_nystrom_counts_landmark_products_and_six_pinv_iterations_in_either_order():
    r, n, d = 16, LRA_N, LRA_D
    pinv = 6 * 4 * r ** 3  # per iteration: A Z, and three R x R products
    kernels = n * r * d + r * r * d + r * n * d  # Omega1, Omega2, Omega3 logits
    values = r * n * d + r * r * d + n * r * d  # Omega1 (Z (Omega3 V))
    queries = n * r * r + r * n * d + n * r * d  # (Omega1 Z) (Omega3 V)
    assert lra_gflops("nystrom", budget=r, seq_len=n) == pytest.approx(lra_expected(kernels + pinv + values),
                                                                       rel=1e-12)
    assert lra_gflops("nystrom", budget=r, seq_len=n, attn_options={"pinv_side": "queries"}) == pytest.approx(
        lra_expected(kernels + pinv + queries), rel=1e-12)


def test_performer_counts_features_numerator_and_denominator():
    m, n, d = 32, LRA_N, LRA_D
    features = 2 * n * m * d  # phi(Q), phi(K): projections on m random directions
    numerator = m * n * d + n * m * d  # phi(K)^T V, then phi(Q) times it
    denominator = n * m  # phi(Q) (phi(K)^T 1)
    expected = lra_expected(features + numerator + denominator)
    assert lra_gflops("performer", budget=m, seq_len=n) == pytest.approx(expected, rel=1e-12)


# ---- experiments.harness.static ------------------------------------------------------------------------------------


@pytest.mark.parametrize("table_id,clips,crops", [("mformer_table6a", 1, 3), ("mformer_table6b", 10, 3)])
def test_views_columns_record_the_test_protocol(table_id, clips, crops):
    """Motionformer Table 6 prints 369.5x3x1 on SSv2 and 369.5x3x10 on K-400: 3 crops, 1 or 10 clips."""
    spec = table_spec(table_id)
    column = spec.static_columns[0]
    inputs = cell_inputs(column, spec, spec.row("mformer"))
    assert (inputs["test_clips"], inputs["test_crops"]) == (clips, crops)
    assert inputs == views_inputs(spec.metric_columns[0].dataset)(spec, spec.row("mformer"))


def test_changed_inputs_names_added_removed_and_nested_options():
    recorded = {"model": "vit", "drop_path_rate": 0.2, "attn_kwargs": {"temporal_pool": "attention"}, "gone": 1}
    today = {"model": "vit", "drop_path_rate": 0.2, "attn_kwargs": {"temporal_pool": "average"}, "new": [1, 2]}
    assert changed_inputs(recorded, today) == [
        'attn_kwargs.temporal_pool "attention" → "average"',
        "gone 1 → (absent)",
        "new (absent) → [1, 2]",
    ]
    assert changed_inputs(recorded, dict(recorded)) == []
    # an option set to {} is still an input: dropping it is a change
    assert changed_inputs({"model": "vit", "attn_kwargs": {}}, {"model": "vit"}) == ["attn_kwargs {} → (absent)"]
    assert changed_inputs({}, {"model": "vit"}) == ['model (absent) → "vit"']  # not a phantom "" key


def test_changed_inputs_completes_config_sections_with_todays_defaults():
    # A record written before OptimConfig.warmup_steps existed: the field at its default (None) is no change, the
    # field set to anything else is; a key that is not a config section gets no default.
    recorded = {"optim": {"lr": 1e-3}, "data": {"batch_size": 6}, "other": {"a": 1}}
    assert changed_inputs(recorded, {**recorded, "optim": {"lr": 1e-3, "warmup_steps": None}}) == []
    assert changed_inputs(recorded, {**recorded, "optim": {"lr": 1e-3, "warmup_steps": 100}}) == [
        "optim.warmup_steps null → 100"]
    assert changed_inputs(recorded, {**recorded, "other": {"a": 1, "b": None}}) == ["other.b (absent) → null"]


def test_stale_note_of_a_computed_cell():
    spec = table_spec("mformer_table4")
    row, column = spec.row("joint"), StaticColumn("GFLOPS", paper_gflops)
    today = cell_inputs(column, spec, row)
    older = {**today, "num_frames": 8}
    record = {"configurations": {inputs_key(today): today, inputs_key(older): older}}
    assert stale_note(column, spec, row, record, {"source": "computed", "configuration": inputs_key(today)}) is None
    assert stale_note(column, spec, row, record, {"source": "computed", "configuration": inputs_key(older)}) == (
        "computed for another configuration: num_frames 8 → 16; `python -m experiments static mformer_table4` "
        "makes it again")
    assert stale_note(column, spec, row, record, {"source": "computed"}) == (
        "computed before static records kept their configuration; `python -m experiments static mformer_table4` "
        "makes it again")


class _PartlyFrozen(nn.Module):
    """10 x 4 + 4 trainable, 4 x 3 + 3 frozen, a tied copy of the first weight, and a 100-element buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.trained = nn.Linear(10, 4)
        self.frozen = nn.Linear(4, 3).requires_grad_(False)
        self.tied = nn.Linear(10, 4, bias=False)
        self.tied.weight = self.trained.weight
        self.register_buffer("table", torch.zeros(100))


def test_paper_params_counts_every_parameter_once_and_no_buffer(monkeypatch):
    import experiments.harness.static as static

    monkeypatch.setattr(static, "build_model", lambda *args, **kwargs: _PartlyFrozen())
    spec = table_spec("mformer_table7")
    cell = paper_params(spec, spec.row("mformer_b"))
    assert cell.value * 1e6 == pytest.approx(10 * 4 + 4 + 4 * 3 + 3, abs=1e-9)
