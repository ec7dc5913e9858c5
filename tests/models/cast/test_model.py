"""CAST models: windowed cross-attention against a literal loop (Eq. 7), B-CAST's zero start, freezing, heads,
and the counted complexity at paper scale (built on ``meta``)."""

from __future__ import annotations

import math

import pytest
import torch

from models import create_model, list_models
from models.cast import CAST, WINDOWS, WindowedCrossAttention, count_learnable, set_trainable
from models.cast.complexity import (
    PAPER_CAST_B_PARAMS_M,
    PAPER_GFLOPS_PER_VIEW,
    PAPER_TFLOPS_2X3,
    TABLE1C,
    gflops_per_view,
    learnable_millions,
    measure_training,
    released_s2t_table_excess,
    stage_shapes,
    tflops_views,
)
from models.memory import activation_bytes

VERB_NOUN = {"verb": 3, "noun": 4}


def _window_members(window: str, t: int, n: int) -> list[list[tuple[int, int]]]:
    """The (t, n) cells of every window of one clip, each in the order its positional table indexes them."""
    if window == "time":
        return [[(i, j) for i in range(t)] for j in range(n)]
    if window == "space":
        return [[(i, j) for j in range(n)] for i in range(t)]
    return [[(i, j) for i in range(t) for j in range(n)]]


def _literal_cross_attention(module: WindowedCrossAttention, q_grid: torch.Tensor,
                             kv_grid: torch.Tensor) -> torch.Tensor:
    """Eq. 7 one window, one head, one query at a time: softmax over the keys of the query's window."""
    b, t, n, c = q_grid.shape
    heads, d = module.num_heads, c // module.num_heads
    out = torch.zeros_like(q_grid)
    for bi in range(b):
        for cells in _window_members(module.window, t, n):
            xs_q = [q_grid[bi, i, j] + (module.query_pos[p] if module.query_pos is not None else 0)
                    for p, (i, j) in enumerate(cells)]
            xs_kv = [kv_grid[bi, i, j] + (module.key_pos[p] if module.key_pos is not None else 0)
                     for p, (i, j) in enumerate(cells)]
            keys = [x @ module.kv.weight[:c].T + module.kv.bias[:c] for x in xs_kv]
            values = [x @ module.kv.weight[c:].T + module.kv.bias[c:] for x in xs_kv]
            for (i, j), xq in zip(cells, xs_q):
                q = xq @ module.q.weight.T + module.q.bias
                per_head = []
                for h in range(heads):
                    sl = slice(h * d, (h + 1) * d)
                    logits = torch.stack([torch.dot(q[sl], k[sl]) / math.sqrt(d) for k in keys])
                    weights = torch.softmax(logits, dim=0)
                    per_head.append(sum(w * v[sl] for w, v in zip(weights, values)))
                out[bi, i, j] = torch.cat(per_head) @ module.proj.weight.T + module.proj.bias
    return out


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("fused", [True, False])
def test_windowed_cross_attention_equals_literal_loop(window: str, fused: bool) -> None:
    torch.manual_seed(0)
    b, t, n, c = 2, 3, 4, 8
    module = WindowedCrossAttention(c, 2, window, t, n, fused_attn=fused).double()
    q_grid = torch.randn(b, t, n, c, dtype=torch.float64, requires_grad=True)
    kv_grid = torch.randn(b, t, n, c, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(b, t, n, c, dtype=torch.float64)
    leaves = [q_grid, kv_grid, *module.parameters()]

    fast = module(q_grid, kv_grid)
    fast_grads = torch.autograd.grad((fast * upstream).sum(), leaves)
    slow = _literal_cross_attention(module, q_grid, kv_grid)
    slow_grads = torch.autograd.grad((slow * upstream).sum(), leaves)

    assert _rel_err(fast, slow) < 1e-10
    for fast_g, slow_g in zip(fast_grads, slow_grads):
        assert _rel_err(fast_g, slow_g) < 1e-10


def test_windows_differ() -> None:
    """The three window shapes are different functions (the loop comparison would pass a shape-blind bug)."""
    torch.manual_seed(0)
    grids = torch.randn(2, 1, 3, 4, 8).unbind(0)
    outputs = []
    for window in WINDOWS:
        torch.manual_seed(1)
        module = WindowedCrossAttention(8, 2, window, 3, 4, pos=False)
        outputs.append(module(*grids))
    assert not torch.allclose(outputs[0], outputs[1]) and not torch.allclose(outputs[1], outputs[2])


def tiny_cast(**overrides) -> CAST:
    torch.manual_seed(0)
    return create_model("cast_tiny", num_classes=VERB_NOUN, **overrides).double()


def randomize_matching(model: CAST, pattern: str, prefix: str = "") -> None:
    """Random values for every parameter whose name starts with ``prefix`` and contains ``pattern`` (e.g. the
    zero-initialised adapters)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(prefix) and pattern in name:
                p.normal_(0, 0.05)


@pytest.mark.parametrize("options", [
    {}, {"directions": "t2s"}, {"directions": "s2t"}, {"exchange": "xattn"}, {"exchange": "xattn_adapter"},
    {"exchange": "lateral"}, {"t2s_window": "space_time", "s2t_window": "space_time"},
    {"spatial_expert": "videomae", "temporal_expert": "clip"},
])
def test_exchange_starts_as_identity(options: dict) -> None:
    """With its zero-initialised last layer, an exchange leaves both experts' outputs exactly as without it; with
    that layer non-zero it changes both (or the one receiving expert)."""
    model = tiny_cast(**options)
    for expert in ("spatial.", "temporal."):  # the experts' own adapters active: a non-trivial comparison
        randomize_matching(model, "adapter", prefix=expert)
    plain = tiny_cast(exchange="none", **{k: v for k, v in options.items() if k.endswith("expert")})
    plain.load_state_dict(model.state_dict(), strict=False)
    video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        f_s, f_t = model.forward_features(video)
        p_s, p_t = plain.forward_features(video)
    assert torch.equal(f_s, p_s) and torch.equal(f_t, p_t)

    randomize_matching(model, "exchange")
    with torch.no_grad():
        g_s, g_t = model.forward_features(video)
    direction = options.get("directions", "both")
    assert (direction == "s2t") == torch.allclose(g_s, p_s)
    assert (direction == "t2s") == torch.allclose(g_t, p_t)


# The official code's _init_adpater_weight: layers whose output is added to an expert's tokens start at zero.
_ZERO_STARTED = ("adapter.fc2", "adapter_spatial.fc2", "adapter_temporal.fc2", "adapter_s.fc2", "adapter_t.fc2",
                 "up_s", "up_t", "t_to_s", "s_to_t")


@pytest.mark.parametrize("options", [
    {}, {"exchange": "xattn"}, {"exchange": "xattn_adapter"}, {"exchange": "lateral"},
    {"exchange": "none", "time_adapter": True, "fusion": "ensemble"}, {"exchange": "none", "fusion": "concat"},
])
def test_trainable_linear_layers_start_as_the_official_init(options: dict) -> None:
    """Every linear layer that trains in a frozen-expert CAST (adapters, exchange, heads) starts as the official
    code's ``_init_weights``: weight ~ trunc_normal(std 0.02), bias 0; or all zero where the official code zeroes it
    (and the full-width cross-attention's output projection, which feeds an expert directly)."""
    model = create_model("cast_base", num_classes=VERB_NOUN, **options)  # 768-wide layers: a tight std estimate
    checked = 0
    for name, layer in model.named_modules():
        if not isinstance(layer, torch.nn.Linear) or not layer.weight.requires_grad:
            continue
        checked += 1
        assert layer.bias is None or not layer.bias.any(), f"{name}: bias not zero"
        zero = name.endswith(_ZERO_STARTED) or (options.get("exchange") == "xattn" and name.endswith("proj"))
        if zero:
            assert not layer.weight.any(), f"{name}: weight not zero"
        else:
            w = layer.weight  # timm's trunc_normal_ (the official one) clamps at +-2, not at +-2 std
            assert w.abs().max() <= 2 and abs(w.std().item() - 0.02) < 0.001, f"{name}: std {w.std():.4f}"
    assert checked >= 2 * 12 * 2 + 2  # at least the experts' two adapters per block, both experts, and the heads


def test_gradients_reach_only_trainable_parameters() -> None:
    model = tiny_cast()
    randomize_matching(model, "exchange")  # zero up-projections would stop gradients before the cross-attention
    randomize_matching(model, "adapter")
    model(torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)).square().sum().backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # Unused by construction: in the last block the spatial patches' T2S update reaches no head (the head reads
    # class tokens), so a training forward skips it (``skip_unread``). A key bias gets an exactly-zero gradient
    # in exact arithmetic (it shifts every logit of a query alike), so only its value half is checked.
    unused = ("exchange.3.t2s.",)
    for name, p in model.named_parameters():
        if name not in trainable or name.startswith(unused):
            assert p.grad is None, name
            continue
        assert p.grad is not None, name
        grad = p.grad[p.numel() // 2:] if name.endswith("kv.bias") else p.grad  # [key | value]: value half
        assert grad.abs().sum() > 0, name
    frozen = {n for n in dict(model.named_parameters()) if n not in trainable}
    assert all(".blocks." in n or "patch_embed" in n or n.endswith(("cls_token", "pos_embed")) or "norm_pre" in n
               for n in frozen)
    assert {"spatial.norm.weight", "temporal.norm.weight", "head_spatial.weight", "head_temporal.weight",
            "exchange.0.up_s.weight", "spatial.blocks.0.attn_adapter.fc1.weight"} <= trainable
    assert not any("attn.qkv" in n or "mlp.fc1" in n and "adapter" not in n for n in trainable)
    assert set(set_trainable(model, train_experts=True)) == set(dict(model.named_parameters()))


@pytest.mark.parametrize("options", [{}, {"spatial_expert": "clip", "temporal_expert": "clip"},
                                     {"exchange": "lateral"}, {"exchange": "xattn"}])
def test_skipping_unread_work_changes_no_logit_or_gradient(options: dict) -> None:
    """``skip_unread`` (the last block's FFN and exchange update on a frame expert's patch tokens are skipped in
    training) gives the same logits and gradients as running everything."""
    results = []
    for skip in (True, False):
        model = tiny_cast(skip_unread=skip, **options)
        randomize_matching(model, "exchange")
        randomize_matching(model, "adapter")
        torch.manual_seed(2)
        logits = model(torch.randn(2, 3, 8, 32, 32, dtype=torch.float64))
        logits.square().sum().backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        results.append((logits, grads))
    (fast, fast_grads), (full, full_grads) = results
    assert _rel_err(fast, full) < 1e-12
    for name, grad in full_grads.items():
        assert _rel_err(fast_grads[name], grad) < 1e-12 if name in fast_grads else grad.abs().max() < 1e-12, name


def test_frozen_experts_save_fewer_activations() -> None:
    """Frozen weights need no saved inputs for their own gradients: the frozen model saves less for backward."""
    frozen, full = tiny_cast().float(), tiny_cast(train_experts=True).float()
    shape = (2, 3, 8, 32, 32)
    assert activation_bytes(frozen, shape) < 0.85 * activation_bytes(full, shape)


def test_verb_noun_head_layout() -> None:
    """Logits are [verbs | nouns]; verbs come from the temporal expert, nouns from the spatial one."""
    model = tiny_cast()
    as_int = create_model("cast_tiny", num_classes=7, num_verbs=3)
    assert as_int.head_temporal.out_features == 3 and as_int.head_spatial.out_features == 4
    video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        before = model(video)
        model.head_temporal.bias.add_(1.0)
        after_verb = model(video)
        model.head_spatial.bias.add_(1.0)
        after_noun = model(video)
    assert before.shape == (2, 7)
    assert not torch.allclose(after_verb[:, :3], before[:, :3]) and torch.equal(after_verb[:, 3:], before[:, 3:])
    assert torch.equal(after_noun[:, :3], after_verb[:, :3]) and not torch.allclose(after_noun[:, 3:], before[:, 3:])


def test_ensemble_averages_probabilities_and_assembles_from_single_experts() -> None:
    model = tiny_cast(exchange="none", time_adapter=True, fusion="ensemble")
    video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        f_s, f_t = model.forward_features(video)
        z_s, z_t = model.head_spatial(f_s), model.head_temporal(f_t)
        probs = model(video)
    for part, a, b in zip(probs.split([3, 4], -1), z_s.split([3, 4], -1), z_t.split([3, 4], -1)):
        assert torch.allclose(part.softmax(-1), (a.softmax(-1) + b.softmax(-1)) / 2)
    single = {k for e in ("spatial", "temporal")
              for k in tiny_cast(experts=e, time_adapter=True).state_dict()}
    assert single == set(model.state_dict())


def test_single_label_head_adds_adapted_features() -> None:
    model = create_model("cast_tiny", num_classes=5)
    assert model.fusion == "add" and model(torch.randn(1, 3, 8, 32, 32)).shape == (1, 5)
    concat = create_model("cast_tiny", num_classes=5, fusion="concat", exchange="none")
    assert concat.head.in_features == 2 * 96


def test_fused_and_explicit_attention_agree() -> None:
    model = tiny_cast()
    randomize_matching(model, "exchange")
    video = torch.randn(1, 3, 8, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        fused = model(video)
        model.set_fused_attn(False)
        explicit = model(video)
    assert _rel_err(fused, explicit) < 1e-10


def test_bad_options_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="t2s_window"):
        create_model("cast_tiny", num_classes=5, t2s_window="diagonal")
    with pytest.raises(ValueError, match="EVA"):
        create_model("cast_tiny", num_classes=5, spatial_expert="eva")
    with pytest.raises(ValueError, match="verb"):
        create_model("cast_tiny", num_classes=5, fusion="split")
    with pytest.raises(ValueError, match="exchange_blocks"):
        create_model("cast_tiny", num_classes=5, exchange_blocks=(4,))
    with pytest.raises(ValueError, match="video"):
        create_model("cast_tiny", num_classes=5)(torch.randn(1, 3, 16, 32, 32))


def test_registered() -> None:
    assert {"cast_base", "cast_tiny"} <= set(list_models("cast_*"))


# ---- counted complexity at paper scale (meta device) ----------------------------------------------------------


@pytest.mark.parametrize("row", ["identity", "bcast"])
def test_table1c_learnable_parameters_match_paper(row: str) -> None:
    options, paper = TABLE1C[row]
    assert learnable_millions(**options) == pytest.approx(paper, rel=0.02)


@pytest.mark.parametrize("row", ["xattn", "xattn_adapter"])
def test_full_width_rows_differ_from_paper_by_the_released_s2t_table(row: str) -> None:
    """Ours keep B-CAST's positional tables; the paper's counts match with the released code's space-time S2T
    table (docs/cast_paper_scale.md, Counted, not copied). Both halves are asserted, so the explanation stays true."""
    options, paper = TABLE1C[row]
    ours = learnable_millions(**options)
    assert ours != pytest.approx(paper, rel=0.02)
    assert ours + released_s2t_table_excess() / 1e6 == pytest.approx(paper, rel=0.002)


def test_cast_b_single_label_parameters_and_flops() -> None:
    assert learnable_millions(num_classes=174) == pytest.approx(PAPER_CAST_B_PARAMS_M, rel=0.02)
    assert gflops_per_view() == pytest.approx(PAPER_GFLOPS_PER_VIEW, rel=0.02)
    assert tflops_views(2, 3) == pytest.approx(PAPER_TFLOPS_2X3, rel=0.02)


def test_every_table1_row_builds_on_meta() -> None:
    rows = [{"exchange": "none", "adapters": False, "train_experts": True}, {"exchange": "lateral"},
            {"exchange": "none", "fusion": "concat"}, {"down_ratio": 0.125}, {"down_ratio": 1.0},
            {"exchange_blocks": (9, 10, 11)}, {"exchange_pos": False}, {"spatial_expert": "vit_in21k"},
            {"temporal_expert": "mvd"}, {"spatial_expert": "clip", "temporal_expert": "clip"},
            {"experts": "temporal"}]
    with torch.device("meta"):
        for options in rows:
            model = create_model("cast_base", num_classes=VERB_NOUN, **options)
            assert count_learnable(model) > 0
    with torch.device("meta"):
        assert count_learnable(create_model("cast_base", num_classes=VERB_NOUN, exchange_blocks=(9, 10, 11))) < \
            count_learnable(create_model("cast_base", num_classes=VERB_NOUN))


def test_stage_shapes_trace_supplementary_table3() -> None:
    """Table 3 with B = 2: T2S windows B*196 x 8 x 384, S2T windows B*8 x 196 x 384, tables 8 x 384 and 196 x 384,
    bottleneck 384 = 768 / 2 on both experts."""
    shapes = {(stage, expert): shape for stage, expert, shape in stage_shapes(batch=2)}
    assert shapes[("input of B-CAST", "spatial")] == (2, 8, 196, 768)
    assert shapes[("input of B-CAST (class tokens)", "spatial")] == (2, 8, 768)
    assert shapes[("down projection", "temporal")] == (2, 8, 196, 384)
    assert shapes[("cross-attention windows (queries)", "spatial")] == (2 * 196, 8, 384)
    assert shapes[("cross-attention windows (queries)", "temporal")] == (2 * 8, 196, 384)
    assert shapes[("positional embeddings", "spatial")] == (8, 384)
    assert shapes[("positional embeddings", "temporal")] == (196, 384)
    assert shapes[("up projection", "spatial")] == (2, 8, 196, 768)


def test_frozen_experts_train_with_less_memory_than_the_same_model_all_trainable() -> None:
    """``measure_training`` on the tiny model (CPU): the frozen experts keep fewer bytes for backward and a lower peak,
    and only the adapters, B-CAST, last LayerNorms and heads count as trained."""
    cost = measure_training("cast_tiny", batch=1, repeats=1)
    frozen, full = cost["frozen"], cost["full"]
    assert frozen["saved_for_backward_mib"] < 0.85 * full["saved_for_backward_mib"]
    assert frozen["peak_mib"] < full["peak_mib"]
    assert full["trainable_params"] == full["total_params"] == frozen["total_params"]
    assert cost["trained_fraction"] == pytest.approx(frozen["trainable_params"] / frozen["total_params"])
    assert 0.1 < cost["trained_fraction"] < 0.4
    assert frozen["step_ms"] > 0 and full["step_ms"] > 0


def test_a_verb_noun_model_receives_the_datas_verb_and_noun_counts_checked():
    """The runner hands a model the data's {"verb": V, "noun": N}: CAST's split heads get them, and a configured
    num_verbs that differs is an error naming the row, both counts; a one-head model (Motionformer's EPIC rows)
    gets V + N logits, which the classifier splits at the data's V."""
    from experiments.harness.plan import resolve_runs
    from experiments.harness.tasks import build_model

    cast = resolve_runs("cast_table1c", "paper", ["cast"], 1, "/datasets")[0]
    assert cast.model.overrides["num_verbs"] == 97
    model = build_model(cast, {"verb": 97, "noun": 300}, device="meta")
    assert (model.head_temporal.out_features, model.head_spatial.out_features) == (97, 300)
    with pytest.raises(ValueError, match=r"^cast_table1c/cast: model num_verbs=97 but the data \(epic_kitchens100 "
                                         r"from /datasets/epic_kitchens100\) has 98 verbs and 4 nouns"):
        build_model(cast, {"verb": 98, "noun": 4}, device="meta")
    mformer = resolve_runs("mformer_table6c", "paper", ["mformer"], 1, "/datasets")[0]
    assert build_model(mformer, {"verb": 97, "noun": 300}, device="meta").head.out_features == 397
