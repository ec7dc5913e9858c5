"""Mutation audit of CAST's core (``models/cast/exchange.py``, ``layers.py``, ``model.py``): what the float64
references of ``tests.models.cast.test_reference`` cannot see because they read every width and every table from the
module under test. Pinned here from the paper and the documented behaviour:

- the B-CAST bottleneck width D * r of Table 1d (1/8, 1/4, 1/2, 1) and its default 1/2, and the adapters' width
  D / 4 (Eq. 2, official ratio 0.25);
- Table 8's switch: ``exchange_pos=False`` removes exactly the T2S (T x D/2) and S2T (N x D/2) tables of every block;
- the head fusions of Table 1a / 1b: "concat" = head([ADAP_s(f_s); ADAP_t(f_t)]) with two separate adapters,
  "ensemble" = log of the mean of the two experts' class probabilities per label;
- layer-wise lr decay: B-CAST module i shares layer i + 1 with the experts' block i.
"""

from __future__ import annotations

import pytest
import torch
from timm.optim import param_groups_layer_decay

from models import create_model
from models.cast import count_learnable
from models.cast.exchange import BlockExchange
from models.cast.layers import Adapter
from tests.models.cast.test_reference import adap

VERB_NOUN = {"verb": 3, "noun": 4}


def _randomize_heads(model: torch.nn.Module) -> None:
    """Random head adapters and classifiers (their W_U start at zero, which would hide an adapter)."""
    torch.manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("head"):
                p.normal_(0.0, 0.3)


# ---- widths --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio, width", [(0.125, 96), (0.25, 192), (0.5, 384), (1.0, 768)])
def test_bcast_bottleneck_width_is_d_times_the_table1d_ratio(ratio: float, width: int) -> None:
    """Table 1d at CAST-B (D = 768): W_D is D x rD and W_U rD x D on both experts, r = 1 included."""
    with torch.device("meta"):
        model = create_model("cast_base", num_classes=VERB_NOUN, down_ratio=ratio)
    for ex in model.exchange.values():
        assert ex.down_s.out_features == ex.down_t.out_features == width
        assert ex.up_s.in_features == ex.up_t.in_features == width
        assert ex.t2s.q.in_features == ex.s2t.q.in_features == width


def test_bcast_default_ratio_is_one_half() -> None:
    """The paper's best ratio 1/2 (Table 1d) is the default of the module as of the model (cast_tiny: 96 -> 48)."""
    ex = BlockExchange(16, 2, 3, 4)
    assert ex.down_s.out_features == ex.down_t.out_features == 8
    model = create_model("cast_tiny", num_classes=5)
    assert {ex.down_s.out_features for ex in model.exchange.values()} == {48}


def test_adapter_hidden_width_is_a_quarter_of_d() -> None:
    """ADAP's hidden width D / 4 (official ratio 0.25): the standalone layer, the experts' and the head adapters."""
    assert Adapter(16, 0.25).fc1.out_features == 4 and Adapter(16, 0.25).fc2.in_features == 4
    assert Adapter(96).fc1.out_features == 24
    model = create_model("cast_tiny", num_classes=5)
    widths = {m.fc1.out_features for name, m in model.named_modules() if isinstance(m, Adapter)}
    assert widths == {24}


# ---- Table 8: B-CAST positional embeddings off ---------------------------------------------------------------


def test_exchange_pos_false_removes_exactly_the_bcast_tables() -> None:
    """Per block: E_s, E_t of T2S (8 x 384 each, time windows) and of S2T (196 x 384 each, space windows) at CAST-B
    (supplementary Table 3); without them no exchange has a positional table."""
    with torch.device("meta"):
        with_pos = create_model("cast_base", num_classes=VERB_NOUN)
        without = create_model("cast_base", num_classes=VERB_NOUN, exchange_pos=False)
    assert count_learnable(with_pos) - count_learnable(without) == 12 * 2 * (8 + 196) * 384
    for ex in without.exchange.values():
        assert ex.t2s.query_pos is None and ex.t2s.key_pos is None
        assert ex.s2t.query_pos is None and ex.s2t.key_pos is None
    assert not [n for n, _ in without.named_parameters() if n.startswith("exchange") and n.endswith("_pos")]


# ---- heads: concat (Table 1b) and ensemble (Table 1a) ----------------------------------------------------------


def test_concat_head_is_the_classifier_of_spatial_then_temporal_adapted_features() -> None:
    """Z = W [ADAP_s(f_s); ADAP_t(f_t)] + b: spatial feature in the first D inputs, each expert its own adapter."""
    torch.manual_seed(0)
    model = create_model("cast_tiny", num_classes=5, fusion="concat", exchange="none").double().eval()
    names = {n for n, _ in model.named_parameters()}
    assert {"head_adapter_spatial.fc1.weight", "head_adapter_temporal.fc1.weight"} <= names  # two, not one shared
    _randomize_heads(model)
    video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        f_s, f_t = model.forward_features(video)
        logits = model.forward_head(f_s, f_t)
        z = torch.cat([adap(f_s, model.head_adapter_spatial), adap(f_t, model.head_adapter_temporal)], dim=-1)
        expected = z @ model.head.weight.T + model.head.bias
    assert torch.allclose(logits, expected, rtol=1e-12, atol=1e-12)


def test_ensemble_logits_are_the_log_of_the_mean_probabilities() -> None:
    """Per label head (3 verbs, then 4 nouns): log((softmax(z_s) + softmax(z_t)) / 2), the softmax written out."""
    torch.manual_seed(0)
    model = create_model("cast_tiny", num_classes=VERB_NOUN, exchange="none", fusion="ensemble").double().eval()
    _randomize_heads(model)
    f_s, f_t = torch.randn(2, 2, 96, dtype=torch.float64).unbind(0)
    with torch.no_grad():
        out = model.forward_head(f_s, f_t)
        z_s = f_s @ model.head_spatial.weight.T + model.head_spatial.bias
        z_t = f_t @ model.head_temporal.weight.T + model.head_temporal.bias
    expected = torch.empty(2, 7, dtype=torch.float64)
    for lo, hi in ((0, 3), (3, 7)):
        p_s = torch.exp(z_s[:, lo:hi]) / torch.exp(z_s[:, lo:hi]).sum(-1, keepdim=True)
        p_t = torch.exp(z_t[:, lo:hi]) / torch.exp(z_t[:, lo:hi]).sum(-1, keepdim=True)
        expected[:, lo:hi] = torch.log((p_s + p_t) / 2)
    assert torch.allclose(out, expected, rtol=1e-12, atol=1e-12)


# ---- layer-wise lr decay ----------------------------------------------------------------------------------------


def test_bcast_module_i_decays_with_expert_block_i() -> None:
    """cast_tiny (4 blocks): layers 0 (stem), 1..4 (block i and B-CAST i at i + 1), 5 (heads, last norms);
    lr scale 0.8 ** (5 - layer), as the official ``get_num_layer_for_vit``."""
    model = create_model("cast_tiny", num_classes=5)
    params = dict(model.named_parameters())
    scale_of = {}
    for group in param_groups_layer_decay(model, weight_decay=0.05, layer_decay=0.8):
        for p in group["params"]:
            scale_of[id(p)] = group["lr_scale"]
    for i in range(4):
        expected = 0.8 ** (5 - (i + 1))
        for name in (f"exchange.{i}.down_s.weight", f"exchange.{i}.t2s.query_pos", f"exchange.{i}.up_t.bias",
                     f"spatial.blocks.{i}.attn_adapter.fc1.weight", f"temporal.blocks.{i}.mlp_adapter.fc2.weight"):
            assert scale_of[id(params[name])] == pytest.approx(expected), name
    assert scale_of[id(params["head.weight"])] == pytest.approx(1.0)


# ---- skip_unread: training only --------------------------------------------------------------------------------


@pytest.mark.parametrize("training, rows_tokens", [(False, (2 * 4, 1 + 16)), (True, (2 * 4, 1))])
def test_last_frame_expert_ffn_sees_every_token_in_evaluation(training: bool, rows_tokens: tuple) -> None:
    """Evaluation runs the whole network even with autograd on (the paper counts it so): the last CLIP block's FFN
    reads 2 clips x 4 frames rows of 1 + 16 tokens; only a training forward keeps the class token alone."""
    model = create_model("cast_tiny", num_classes=5).train(training)
    seen = []
    model.spatial.blocks[-1].mlp.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    model(torch.randn(2, 3, 8, 32, 32))  # grad enabled
    assert seen == [(*rows_tokens, 96)]


# ---- stochastic depth of the exchange branch of block i ---------------------------------------------------------


@pytest.mark.parametrize("block", [1, 2, 3])
def test_exchange_of_block_i_goes_through_block_is_drop_path(block: int) -> None:
    """B = Y + DropPath_i(Phi): the exchange of block i (0-based) uses rate 0.3 * i / 3 (linear over 4 blocks), the
    rate of its own block, and no other block's DropPath."""
    model = create_model("cast_tiny", num_classes=5, drop_path_rate=0.3, exchange_blocks=(block,)).eval()
    called = []
    for j, module in enumerate(model.exchange_drop):
        module.register_forward_hook(lambda module, args, out, j=j: called.append(j))
    with torch.no_grad():
        model(torch.randn(1, 3, 8, 32, 32))
    assert set(called) == {block}
    assert model.exchange_drop[block].drop_prob == pytest.approx(0.3 * block / 3)


# ---- cast_tiny's structure (its tiny experts are pretrained standalone at these dimensions) ---------------------


def test_cast_tiny_has_the_documented_heads_everywhere() -> None:
    """6 heads in every expert MHSA and every B-CAST cross-attention (48 / 6 = 8 channels per head); a head count
    does not change a state dict's shapes, so a pretrained 6-head tiny expert would load silently into another."""
    model = create_model("cast_tiny", num_classes=5)
    for expert in (model.spatial, model.temporal):
        assert [block.attn.num_heads for block in expert.blocks] == [6] * 4
    for ex in model.exchange.values():
        assert ex.t2s.num_heads == ex.s2t.num_heads == 6
        assert ex.t2s.scale == pytest.approx(8 ** -0.5)
