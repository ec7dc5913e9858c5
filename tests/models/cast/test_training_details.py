"""CAST details that the forward-pass references cannot see, each against literal values or a formula written here
from the official code (KHU-VLL/CAST ``models/bidir_modeling_crossattn.py``, ``util_tools/optim_factory.py``):

- which parameters train when the experts are frozen (adapters, last LayerNorms, AIM's time embedding; not the
  blocks' own LayerNorms, nor ``ln_pre``);
- weight decay: B-CAST's positional tables are exempt (official ``no_weight_decay``);
- stochastic depth: rates rising linearly over the blocks (official ``torch.linspace(0, rate, depth)``), on the
  exchange updates of the class tokens and of the patch grids, and on AIM's time adapter;
- dropout before the classifiers of every head layout;
- B-CAST positional tables drawn as ``head_dim ** -0.5 * randn`` (official ``self.scale * torch.randn``);
- the VideoMAE key mapping ``qkv.bias = [q_bias, 0, v_bias]`` as tensors (a key bias is invisible in any forward
  pass: it shifts all logits of a query alike);
- a CLIP positional table of another grid resampled bicubically with its class-token row kept;
- CAST-B's learnable parameters (Table 1c, B-CAST row) counted exactly, layer by layer.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from timm.optim import param_groups_weight_decay

from models import create_model, load_pretrained
from models.cast import ExpertBlock, WindowedCrossAttention, count_learnable, videomae_to_expert
from models.cast.complexity import learnable_millions
from tests.models.cast.test_model import randomize_matching, tiny_cast
from tests.models.cast.test_pretrained import DIM, PATCH, clip_checkpoint, tiny_cast_model
from tests.models.cast.test_wiring import randomize_parameters

DEPTH = 4  # cast_tiny
VIDEO_SHAPE = (2, 3, 8, 32, 32)


def test_frozen_experts_train_exactly_their_adapters_last_norms_and_time_embedding() -> None:
    """Expert parameters that train with ``train_experts=False``, listed literally for cast_tiny with AIM's time
    adapter: the three adapters of every CLIP block, the two of every VideoMAE block, ``norm`` and ``time_embed``.
    The blocks' norm1 / norm2, CLIP's ln_pre and everything else of the experts stay frozen."""
    model = tiny_cast(time_adapter=True, exchange="none")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad and n.startswith(("spatial.", "temporal."))}
    expected = {"spatial.time_embed", "spatial.norm.weight", "spatial.norm.bias", "temporal.norm.weight",
                "temporal.norm.bias"}
    for expert, adapters in (("spatial", ("attn", "mlp", "time")), ("temporal", ("attn", "mlp"))):
        for i in range(DEPTH):
            for adapter in adapters:
                for layer in ("fc1", "fc2"):
                    expected |= {f"{expert}.blocks.{i}.{adapter}_adapter.{layer}.{w}" for w in ("weight", "bias")}
    assert trainable == expected
    assert not model.spatial.norm_pre.weight.requires_grad and not model.spatial.blocks[0].norm1.weight.requires_grad


def test_bcast_positional_tables_are_exempt_from_weight_decay() -> None:
    """Official ``no_weight_decay``: {clip,vmae}_{time,space}_pos. Ours: query_pos / key_pos of T2S and S2T in every
    block; timm's parameter groups (what the optimizer factory builds) then put them at weight decay 0."""
    model = tiny_cast()
    tables = {f"exchange.{i}.{d}.{q}_pos" for i in range(DEPTH) for d in ("t2s", "s2t") for q in ("query", "key")}
    assert tables <= model.no_weight_decay()
    names = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups_weight_decay(model, weight_decay=0.05, no_weight_decay_list=model.no_weight_decay())
    decayed = {names[id(p)] for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert not tables & decayed
    assert "exchange.0.t2s.q.weight" in decayed  # the groups are not empty: weight matrices do decay


def test_drop_path_rates_rise_linearly_over_the_blocks() -> None:
    """Official ``dpr = torch.linspace(0, drop_path_rate, depth)``: 0, 0.1, 0.2, 0.3 for rate 0.3 over 4 blocks, the
    same rate for block i's exchange update and its adapters (block 0: no DropPath at all)."""
    model = tiny_cast(drop_path_rate=0.3, time_adapter=True)
    expected = [0.0, 0.1, 0.2, 0.3]
    for i, rate in enumerate(expected):
        for module in (model.exchange_drop[i], model.spatial.blocks[i].drop_path, model.temporal.blocks[i].drop_path):
            assert getattr(module, "drop_prob", 0.0) == pytest.approx(rate, abs=1e-12), (i, module)


def _train_features(model: torch.nn.Module, video: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    with torch.no_grad():
        return model.train().forward_features(video)


def test_exchange_drop_path_acts_on_class_token_and_patch_updates() -> None:
    """Eq. 4 under stochastic depth (official ``s_x + drop_path(c_s_x)``, class token included): with B-CAST only in
    the last block and no adapters, the only randomness is the exchange's DropPath. The spatial feature pools class
    tokens, so it varies only if the class-token update is dropped; the temporal feature only if its grid update
    is. Evaluation equals the model without stochastic depth."""
    options = dict(adapters=False, exchange_blocks=(DEPTH - 1,))
    model, plain = tiny_cast(drop_path_rate=0.5, **options), tiny_cast(**options)  # rate 0.5 in the last block
    randomize_parameters(model.exchange)  # the zero-initialised up-projections would make every update zero
    plain.load_state_dict(model.state_dict())
    video = torch.randn(4, *VIDEO_SHAPE[1:], dtype=torch.float64)
    draws = [_train_features(model, video, seed) for seed in (1, 2, 3)]
    for expert in (0, 1):  # 0: class-token update dropped per sample; 1: temporal grid update dropped per sample
        assert any(not torch.equal(draws[0][expert], other[expert]) for other in draws[1:]), expert
    with torch.no_grad():
        assert torch.equal(model.eval()(video), plain.eval()(video))


def test_time_adapter_branch_is_dropped_in_training() -> None:
    """AIM's temporal adapter (official ``x + drop_path(T_Adapter(...))``): with a high rate, two training passes of
    ``attend`` differ, although the MHSA adapter is never dropped."""
    torch.manual_seed(0)
    block = ExpertBlock(DIM, 2, time_adapter=True, drop_path=0.9).double().train()
    randomize_parameters(block)
    x = torch.randn(4 * 3, 5, DIM, dtype=torch.float64)  # B*T rows of 1 + N tokens, T = 3
    draws = []
    with torch.no_grad():
        for seed in (1, 2):
            torch.manual_seed(seed)
            draws.append(block.attend(x, 3))
    assert not torch.equal(*draws)


@pytest.mark.parametrize("fusion", ["split", "add", "concat"])
def test_head_dropout_acts_before_every_classifier(fusion: str) -> None:
    """``head_drop_rate`` (official ``head_dropout`` / ``head_{verb,noun}_dropout``) in every head layout: two
    training passes on the same features differ in each label group, evaluation is deterministic and equals the
    model without dropout."""
    options = {} if fusion == "split" else dict(num_classes=7, fusion=fusion)
    torch.manual_seed(0)
    model = create_model("cast_tiny", **{"num_classes": {"verb": 3, "noun": 4}, **options}, head_drop_rate=0.9)
    model = model.double()
    randomize_matching(model, "head")  # zero-started head adapters would hide a dropout on their output
    torch.manual_seed(1)
    f_s, f_t = torch.randn(3, 96, dtype=torch.float64), torch.randn(3, 96, dtype=torch.float64)
    draws = []
    with torch.no_grad():
        model.train()
        for seed in (1, 2):
            torch.manual_seed(seed)
            draws.append(model.forward_head(f_s, f_t))
        groups = [slice(0, 3), slice(3, 7)] if fusion == "split" else [slice(0, 7)]
        for group in groups:
            assert not torch.equal(draws[0][:, group], draws[1][:, group]), group
        model.eval()
        logits = model.forward_head(f_s, f_t)
        model.head_drop.p = 0.0
        assert torch.equal(logits, model.train().forward_head(f_s, f_t))


def test_bcast_positional_tables_start_at_the_official_scale() -> None:
    """Official ``nn.Parameter(self.scale * torch.randn(L, dim))`` with scale = (384 / 12) ** -0.5 = 0.1768 at CAST-B's
    bottleneck: the tables' standard deviation (8 x 384 and 196 x 384 draws) is that, not 1."""
    torch.manual_seed(0)
    scale = 32 ** -0.5
    for window in ("time", "space"):  # T2S and S2T of CAST-B: 8 steps, 196 patches
        attention = WindowedCrossAttention(384, 12, window, num_steps=8, num_patches=196)
        for table in (attention.query_pos, attention.key_pos):
            assert table.std().item() == pytest.approx(scale, rel=0.1), window
            assert abs(table.mean().item()) < 0.2 * scale, window  # centred, as randn


def test_videomae_qkv_bias_is_q_bias_zero_v_bias() -> None:
    """The official VideoMAE ``Attention``: ``cat(q_bias, zeros_like(v_bias), v_bias)``. A wrong key slot passes
    every forward comparison (softmax is invariant to it), so the tensor itself is checked."""
    checkpoint = {"blocks.0.attn.q_bias": torch.tensor([1.0, 2.0]), "blocks.0.attn.v_bias": torch.tensor([3.0, 4.0]),
                  "blocks.0.attn.qkv.weight": torch.zeros(6, 2), "fc_norm.weight": torch.ones(2),
                  "head.weight": torch.zeros(5, 2)}
    mapped = videomae_to_expert(checkpoint)
    assert torch.equal(mapped["blocks.0.attn.qkv.bias"], torch.tensor([1.0, 2.0, 0.0, 0.0, 3.0, 4.0]))
    assert set(mapped) == {"blocks.0.attn.qkv.bias", "blocks.0.attn.qkv.weight"}


def test_clip_positional_table_of_another_grid_is_resampled_bicubically(tmp_path) -> None:
    """A 2 x 2 CLIP table loaded into a 4 x 4 expert: the class-token row as stored, the patch rows the bicubic
    resampling (align_corners=False; antialias=True, timm's default, i.e. PIL's a = -0.5 kernel) of the row-major
    2 x 2 grid, written here with ``F.interpolate``."""
    sd = clip_checkpoint()
    torch.save(sd, tmp_path / "clip.pt")
    model = tiny_cast_model(img_size=4 * PATCH)
    load_pretrained(model.spatial, f"clip:{tmp_path / 'clip.pt'}")
    stored = sd["visual.positional_embedding"].double()  # (1 + 4, D)
    grid = stored[1:].reshape(1, 2, 2, DIM).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(4, 4), mode="bicubic", align_corners=False, antialias=True)
    expected = expected.permute(0, 2, 3, 1).reshape(16, DIM)
    loaded = model.spatial.pos_embed[0].double()
    assert torch.equal(loaded[0], stored[0])
    assert torch.allclose(loaded[1:], expected, atol=1e-5)
    assert not torch.allclose(loaded[1:], stored[1:].repeat_interleave(2, 0).reshape(2, 4, DIM)
                              .repeat_interleave(2, 0).reshape(16, DIM), atol=1e-3)  # not a nearest copy


def test_cast_b_learnable_parameters_counted_layer_by_layer() -> None:
    """Table 1c's B-CAST row (EPIC heads, 97 verbs + 300 nouns), counted here from the official module list: per
    block four adapters 768 -> 192 -> 768 with biases; B-CAST's two down-projections 768 -> 384, two LayerNorms,
    T2S and S2T (q, kv, output projection, all with biases; 8 x 384 and 196 x 384 tables, two each) and two
    up-projections 384 -> 768; the two heads and the two last LayerNorms. The paper's 44.8 (2% tolerance elsewhere)
    cannot see a dropped bias or a wrong head width; this exact count does."""
    dim, width, hidden, steps, patches, depth = 768, 384, 192, 8, 196, 12
    adapter = dim * hidden + hidden + hidden * dim + dim
    cross_attention = (width * width + width) + (width * 2 * width + 2 * width) + (width * width + width)
    bcast = (2 * (dim * width + width) + 2 * 2 * width + 2 * cross_attention + 2 * steps * width
             + 2 * patches * width + 2 * (width * dim + dim))
    heads = (dim * 97 + 97) + (dim * 300 + 300)
    expected = depth * (4 * adapter + bcast) + heads + 2 * 2 * dim
    assert expected == 44_784_781
    with torch.device("meta"):
        model = create_model("cast_base", num_classes={"verb": 97, "noun": 300})
    assert count_learnable(model) == expected
    assert learnable_millions() == pytest.approx(expected / 1e6, abs=1e-9)  # its default: the EPIC heads
