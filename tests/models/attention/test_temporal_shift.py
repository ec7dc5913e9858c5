"""The shift family against literal references written from the papers' equations (tests/models/attention/reference.py):
MSCA (Eq. 17-23) in all 14 variants and with values from the opposite neighbour, X-ViT mixing, TokenShift / TSM
shifts (Eq. 4-9); values and gradients, clip boundaries included; plus the options' validation."""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import Block, create_model
from models.attention import FRAME_ATTENTION_LAYERS, TemporalShift, get_attention, shift_frames
from models.attention.frame import SHIFTED
from models.attention.temporal_shift import Shift
from tests.models.attention.reference import FRAME_REFERENCES, random_attention, temporal_shift_reference

DIM, HEADS = 16, 4
THW = (3, 2, 2)  # three frames: a first, a middle and a last one (both clip boundaries)
VARIANTS = ([("frame", {})]
            + [("msca", {"shifted": s}) for s in SHIFTED]
            + [("msca", {"shifted": s, "shift_along": "tokens", "num_backward": 2, "num_forward": 1}) for s in SHIFTED]
            + [("msca", {"shifted": "KV", "num_backward": 2, "num_forward": 0}),
               ("msca", {"shifted": "QKV", "shift_along": "tokens", "num_backward": 0, "num_forward": 5}),
               # values from the other neighbour than the queries or keys (not in the paper: msca_kv_frames)
               ("msca", {"shifted": "KV", "value_frames": "opposite"}),
               ("msca", {"shifted": "QV", "num_backward": 2, "num_forward": 1, "value_frames": "opposite"}),
               ("msca", {"shifted": "QKV", "shift_along": "tokens", "num_backward": 2, "num_forward": 1,
                         "value_frames": "opposite"}),
               # the heads the authors' code shifts (MSCA.diff): the first from t+1, the last from t-1
               ("msca", {"shifted": "KV", "head_order": "official"}),
               ("msca", {"shifted": "QKV", "num_backward": 2, "num_forward": 1, "head_order": "official"}),
               ("msca", {"shifted": "QV", "num_backward": 0, "num_forward": 2, "head_order": "official"}),
               ("xvit", {}), ("xvit", {"shift_fraction": 1.0}),
               ("xvit", {"shift_fraction": 0.375})])  # 3 channels each way: part of a 4-channel head (SHIFT_DIV 8)


def _variant_id(variant):
    name, opts = variant
    return "-".join([name, *map(str, opts.values())])


def _random_module(name: str, opts: dict, fused: bool) -> torch.nn.Module:
    return random_attention(get_attention(name), DIM, HEADS, fused, **opts)


def _tokens(thw=THW, batch=2, requires_grad=True) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(batch, thw[0] * (1 + thw[1] * thw[2]), DIM, dtype=torch.float64,
                       requires_grad=requires_grad)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _assert_same_function(fast_fn, ref_fn, inputs: dict[str, torch.Tensor]) -> None:
    """Values and gradients (for a random cotangent) agree to 1e-10 relative error; no gradient is zero."""
    fast, ref = fast_fn(), ref_fn()
    assert fast.shape == ref.shape
    assert _rel(fast, ref) < 1e-10
    cotangent = torch.randn_like(ref)
    grads_fast = torch.autograd.grad((fast * cotangent).sum(), list(inputs.values()))
    grads_ref = torch.autograd.grad((ref * cotangent).sum(), list(inputs.values()))
    for label, g_fast, g_ref in zip(inputs, grads_fast, grads_ref):
        assert g_ref.norm() > 0, f"reference gradient of {label} is zero: the test would be vacuous"
        assert _rel(g_fast, g_ref) < 1e-10, label


def test_every_frame_attention_has_a_reference():
    assert set(FRAME_REFERENCES) == set(FRAME_ATTENTION_LAYERS)
    assert {name for name, _ in VARIANTS} == set(FRAME_ATTENTION_LAYERS)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "explicit"])
@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_matches_reference(variant, fused):
    name, opts = variant
    module = _random_module(name, opts, fused)
    x = _tokens()
    inputs = {"x": x, **dict(module.named_parameters())}
    _assert_same_function(lambda: module(x, THW), lambda: FRAME_REFERENCES[name](module, x, THW), inputs)


@pytest.mark.parametrize("variant", VARIANTS, ids=_variant_id)
def test_fused_flag_flip(variant):
    module = _random_module(*variant, fused=True)
    x = _tokens(requires_grad=False)
    fused = module(x, THW)
    module.fused_attn = False
    assert _rel(fused, module(x, THW)) < 1e-12


def test_a_shift_changes_the_output_and_pads_with_zeros():
    """MSCA-KV with every head from t-1: frame 0 sees zero keys and values, so its attention output is 0 and the
    layer returns the projection's bias there; later frames differ from frame-wise attention."""
    shifted = _random_module("msca", {"shifted": "KV", "num_backward": HEADS, "num_forward": 0}, fused=True)
    plain = _random_module("frame", {}, fused=True)
    x = _tokens(requires_grad=False)
    out, per_frame = shifted(x, THW), 1 + THW[1] * THW[2]
    torch.testing.assert_close(out[:, :per_frame], shifted.proj.bias.expand(2, per_frame, -1), rtol=0, atol=1e-12)
    assert _rel(out[:, per_frame:], plain(x, THW)[:, per_frame:]) > 1e-2


def test_values_from_the_opposite_neighbour_are_another_function():
    """The option reaches the shift (the reference alone reading ``value_frames`` would pass either way)."""
    same = _random_module("msca", {"shifted": "KV"}, fused=True)
    opposite = _random_module("msca", {"shifted": "KV", "value_frames": "opposite"}, fused=True)
    opposite.load_state_dict(same.state_dict())
    x = _tokens(requires_grad=False)
    assert _rel(opposite(x, THW), same(x, THW)) > 1e-3


def test_single_frame_clip_shifts_only_zeros():
    """T = 1: both neighbours are outside the clip; MSCA-V then reads zero values in its shifted heads."""
    module = _random_module("msca", {"shifted": "V"}, fused=False)
    x = _tokens((1, 2, 2))
    inputs = {"x": x, **dict(module.named_parameters())}
    _assert_same_function(lambda: module(x, (1, 2, 2)), lambda: FRAME_REFERENCES["msca"](module, x, (1, 2, 2)),
                          inputs)


@pytest.mark.parametrize("order", ["paper", "official"])
@pytest.mark.parametrize("tokens", ["cls", "all"])
@pytest.mark.parametrize("shift_fraction", [0.25, 0.5, 1.0])
def test_temporal_shift_matches_eq_8_9(tokens, shift_fraction, order):
    shift = TemporalShift(DIM, shift_fraction, tokens, order=order)
    x = _tokens()
    _assert_same_function(lambda: shift(x, THW),
                          lambda: temporal_shift_reference(x, THW, shift_fraction, tokens, order), {"x": x})
    assert not shift(x, THW).equal(x)


def test_the_official_order_is_tokshifts_shift_tk():
    """TokShift-Transformer's ``shift_tk`` on (B, T, N, C), written out: ``out[:, :-1, 0, :fold] = x[:, 1:, 0,
    :fold]`` (the first fold from t+1) and ``out[:, 1:, 0, fold:2 fold] = x[:, :-1, 0, fold:2 fold]`` (from t-1),
    zeros at the clip's ends; Eq. 8 of the MSCA paper takes the first fold from t-1 instead."""
    c, frames, fold = 8, 3, 2  # SHIFT_DIV 4: fold = 8 // 4
    x = torch.arange(frames * 2 * c, dtype=torch.float64).view(1, frames, 2, c)  # two tokens per frame
    official = x.clone()
    official[:, :, 0, :2 * fold] = 0
    official[:, :-1, 0, :fold] = x[:, 1:, 0, :fold]
    official[:, 1:, 0, fold:2 * fold] = x[:, :-1, 0, fold:2 * fold]
    ours = TemporalShift(c, 0.5, "cls", order="official")(x.view(1, -1, c), (frames, 1, 1)).view(1, frames, 2, c)
    assert torch.equal(ours, official)
    assert ours[0, 1, 0].tolist() == [32, 33, 2, 3, 20, 21, 22, 23]
    assert TemporalShift(c, 0.5, "cls")(x.view(1, -1, c), (frames, 1, 1)).view(1, frames, 2, c)[0, 1, 0].tolist() == [
        0, 1, 34, 35, 20, 21, 22, 23]


def test_temporal_shift_leaves_its_input_alone():
    x = _tokens(requires_grad=False)
    before = x.clone()
    TemporalShift(DIM, 0.5, "all")(x, THW)
    assert x.equal(before)


@pytest.mark.parametrize("tokens", ["cls", "all"])
def test_an_in_place_shift_equals_the_copy_and_is_refused_on_a_tensor_autograd_saved(tokens):
    """``inplace`` (what ``Block`` uses) rewrites a non-leaf stream itself: same outputs and gradients as the copy,
    and autograd's version check stops a backward that needed the overwritten values."""
    x = _tokens()
    copy, in_place = TemporalShift(DIM, 0.5, tokens), TemporalShift(DIM, 0.5, tokens, inplace=True)
    _assert_same_function(lambda: in_place(x * 1.0, THW), lambda: copy(x * 1.0, THW), {"x": x})
    stream = x * 1.0
    assert in_place(stream, THW) is stream  # shifted where it lies
    saved = x.exp()  # exp keeps its output for the backward
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        in_place(saved, THW).sum().backward()


def test_msca_and_xvit_shift_their_projection_where_it_lies(monkeypatch):
    """The q/k/v projection is the attention's own (not the view nn.Linear returns for 3-D input), so the shift
    rewrites it in place instead of copying all of q, k and v."""
    import models.attention.frame as frame

    in_place = []

    def recording(z, *args, **kwargs):
        out = shift_frames(z, *args, **kwargs)
        in_place.append(out is z)
        return out

    monkeypatch.setattr(frame, "shift_frames", recording)
    for name, opts in (("msca", {"shifted": "KV"}), ("msca", {"shifted": "QV", "shift_along": "tokens"}),
                       ("xvit", {})):
        _random_module(name, opts, fused=True)(_tokens(), THW).sum().backward()
    assert in_place == [True, True, True]


@pytest.mark.parametrize("in_place", [False, True], ids=["copy", "in-place"])
def test_a_shift_has_exact_first_and_second_derivatives(in_place):
    """The backward is itself made of differentiable ops (the opposite shift), so double backward works too."""
    shifts = [Shift(at=(slice(None), None), previous=(0, 2), next=(2, 3))]
    x = _tokens()[:, :, :5].detach().requires_grad_(True)
    fn = lambda z: shift_frames(z * 1.0, (2, THW[0], -1, 5), shifts, in_place=in_place)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,)) and torch.autograd.gradgradcheck(fn, (x,))


def test_a_shift_names_what_is_wrong_with_it():
    with pytest.raises(ValueError, match="exactly one axis"):
        Shift(at=(0, slice(None)), previous=(0, 1), next=(1, 2))
    with pytest.raises(ValueError, match=r"previous \(0, 1\) and next \(2, 3\) must be adjacent"):
        Shift(at=(None,), previous=(0, 1), next=(2, 3))


def test_block_shifts_the_residual_stream_as_eq_4_to_7():
    """TokenShift block: z' = Shift(z); z'' = MSA(LN(z')) + z'; z''' = Shift(z''); out = MLP(LN(z''')) + z'''."""
    torch.manual_seed(0)
    block = Block(DIM, HEADS, attn_layer=get_attention("frame"), pre_attn=TemporalShift(DIM, 0.5, "cls"),
                  pre_mlp=TemporalShift(DIM, 0.5, "cls")).double().eval()
    x = _tokens()

    def literal():
        z1 = temporal_shift_reference(x, THW, 0.5, "cls")
        z2 = FRAME_REFERENCES["frame"](block.attn, block.norm1(z1), THW) + z1
        z3 = temporal_shift_reference(z2, THW, 0.5, "cls")
        return block.mlp(block.norm2(z3)) + z3

    _assert_same_function(lambda: block(x, THW), literal, {"x": x, **dict(block.named_parameters())})


def test_invalid_options_are_named():
    frame_model = dict(cls_layout="per_frame", tubelet_size=1, depth=1)
    with pytest.raises(ValueError, match="per_frame.*frame attention"):
        create_model("vit_tiny_video", attn_layer="trajectory", **frame_model)
    with pytest.raises(ValueError, match="needs cls_layout='per_frame'"):
        create_model("vit_tiny_video", attn_layer="msca")
    with pytest.raises(ValueError, match="temporal_shift"):
        create_model("vit_tiny_video", attn_layer="joint", temporal_shift="cls")
    with pytest.raises(ValueError, match="temporal_aggregation"):
        create_model("vit_tiny_video", attn_layer="divided", temporal_aggregation="attention")
    with pytest.raises(ValueError, match="unknown option.*'num_backwards'"):
        create_model("vit_tiny_frame", attn_layer="msca", attn_kwargs={"num_backwards": 1})
    with pytest.raises(ValueError, match="shifted must be one of"):
        create_model("vit_tiny_frame", attn_layer="msca", attn_kwargs={"shifted": "KQ"})
    with pytest.raises(ValueError, match="value_frames must be"):
        create_model("vit_tiny_frame", attn_layer="msca", attn_kwargs={"value_frames": "other"})
    with pytest.raises(ValueError, match="must hold V and Q or K, got 'V'"):
        create_model("vit_tiny_frame", attn_layer="msca", attn_kwargs={"shifted": "V", "value_frames": "opposite"})
    with pytest.raises(ValueError, match="exceed num_heads"):
        create_model("vit_tiny_frame", attn_layer="msca", attn_kwargs={"num_backward": 7, "num_forward": 6})
    with pytest.raises(ValueError, match="shift_last_blocks"):
        create_model("vit_tiny_frame", attn_layer="msca", shift_last_blocks=5)
    with pytest.raises(ValueError, match="shift_before"):
        create_model("vit_tiny_frame", temporal_shift="cls", shift_before=("mlp", "norm"))
    with pytest.raises(ValueError, match="shift_fraction"):
        create_model("vit_tiny_frame", temporal_shift="cls", shift_fraction=1.5)
    too_many_rows = create_model("vit_tiny_frame", attn_layer="msca",
                                 attn_kwargs={"shift_along": "tokens", "num_backward": 9, "num_forward": 9})
    with pytest.raises(ValueError, match="token rows exceed the 17 tokens"):
        too_many_rows(torch.randn(1, 3, 8, 32, 32))


def test_benchmark_shows_no_extra_memory():
    """The shifts rewrite activations that nothing saves, in place, so every variant keeps the frame-wise ViT's
    bytes for backward and its peak (tools/shift_family.py, tiny block)."""
    from tools.shift_family import VARIANT_NAMES, measure

    records = measure("tiny", list(VARIANT_NAMES), "block", batch=1, device="cpu", repeats=1, min_seconds=0.0)
    saved = {r["variant"]: r["saved_mib"] for r in records}
    peak = {r["variant"]: r["peak_mib"] for r in records}
    assert len(set(saved.values())) == 1 and saved["vit"] > 0, saved
    assert len(set(peak.values())) == 1, peak


def test_a_shift_adds_few_ops_to_a_step():
    """At batch 1 an eager step waits on each op's dispatch or launch, so a shift's cost is its op count: at most
    7 ops (forward and backward, views apart) each time a block shifts, over the frame-wise ViT's step. (Before
    ``Shift``: 10 for MSCA-KV, 22 for TokenShift's two shifts.)"""
    from tools.shift_family import build_unit, dispatched_ops

    def ops(variant):
        layer, (x, thw) = build_unit("tiny", variant, "block", 1, torch.device("cpu"))
        return dispatched_ops(lambda: layer(x, thw).sum().backward())

    vit = ops("vit")
    shifts_per_block = {"msca_kv": 1, "msca_pkv": 1, "xvit": 1, "tsm": 1, "tokenshift": 2}
    more = {variant: ops(variant) - vit for variant in shifts_per_block}
    assert all(0 < more[v] <= 7 * n for v, n in shifts_per_block.items()), more


@pytest.mark.slow
def test_shift_blocks_compile_whole_and_compute_what_eager_does():
    """``torch.compile`` (the remedy for launch-bound batch-1 steps, ``shift_family --compile``) traces the
    in-place shift's autograd function without a graph break and gives eager's output and gradients.

    Compiled in a fresh inductor cache: torch keys cached CPU kernels on neither the vector ISA
    (``ATEN_CPU_CAPABILITY``) nor the thread count (pytorch#184444), and kernels cached under other settings
    corrupted memory here (an abort in the next test)."""
    from torch._inductor.utils import fresh_cache

    from tools.shift_family import build_unit

    for variant in ("tokenshift", "msca_kv"):
        layer, (x, thw) = build_unit("tiny", variant, "block", 2, torch.device("cpu"))
        assert torch._dynamo.explain(layer)(x.detach(), thw).graph_break_count == 0
        compiled = torch.compile(layer)
        results = []
        with fresh_cache():
            for run in (layer, compiled):
                layer.zero_grad(set_to_none=True)
                inp = x.detach().clone().requires_grad_(True)
                out = run(inp, thw)
                out.square().sum().backward()
                results.append([out, inp.grad, *(p.grad for p in layer.parameters())])
        for eager, traced in zip(*results):
            torch.testing.assert_close(traced, eager, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("temporal_shift, shift_before, shift_last_blocks", [
    ("cls", ("attn", "mlp"), None),  # TokenShift (Eq. 4-7)
    ("all", ("attn",), None),  # TSM-ViT (X-ViT supp. Eq. 1-3)
    ("cls", ("mlp",), 2),  # a shift before the MLP only, in the last 2 of 4 blocks
], ids=["tokenshift", "tsm_vit", "mlp_only_last_2"])
@pytest.mark.parametrize("order", ["paper", "official"])
def test_a_shift_model_applies_each_shift_where_its_rows_say(temporal_shift, shift_before, shift_last_blocks, order):
    """The whole ``VideoViT`` against a loop that applies the literal shift (``temporal_shift_reference``) before
    the attention and/or the MLP of the blocks its options name, around the model's own attention and MLP
    (each checked against its equations above): which tokens move, and where, is the model's wiring."""
    torch.manual_seed(0)
    fraction = 0.5
    model = create_model("vit_tiny_frame", temporal_shift=temporal_shift, shift_fraction=fraction, shift_order=order,
                         shift_before=shift_before, shift_last_blocks=shift_last_blocks).double().eval()
    video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    thw = model.grid_size
    x, _ = model.patch_embed(video)
    x = model._pos_embed(x, thw)
    first_shifted = len(model.blocks) - (shift_last_blocks or len(model.blocks))
    for i, block in enumerate(model.blocks):
        shifts_here = shift_before if i >= first_shifted else ()
        if "attn" in shifts_here:
            x = temporal_shift_reference(x, thw, fraction, temporal_shift, order)
        x = x + block.attn(block.norm1(x), thw)
        if "mlp" in shifts_here:
            x = temporal_shift_reference(x, thw, fraction, temporal_shift, order)
        x = x + block.mlp(block.norm2(x))
    expected = model.forward_head(model.norm(x))
    assert _rel(model(video), expected) < 1e-10


def test_with_a_temporal_table_every_token_of_a_frame_gets_its_entry_class_token_included():
    """X-ViT's official backbone adds ``temp_embed`` (1, T, 1, C) to all tokens of frame t: with per-frame class
    tokens, each class token too, so that the temporal-attention pooling sees the frames' order."""
    torch.manual_seed(0)
    model = create_model("vit_tiny_frame", attn_layer="xvit", pos_embed="separate",
                         temporal_aggregation="attention").double().eval()
    torch.nn.init.normal_(model.time_embed)
    patches = torch.randn(2, 8 * 16, 96, dtype=torch.float64)
    tokens = model._pos_embed(patches, model.grid_size).view(2, 8, 17, 96)
    expected_cls = model.cls_token + model.pos_embed[:, :1] + model.time_embed.unsqueeze(2)  # (1, T, 1, C)
    torch.testing.assert_close(tokens[:, :, :1], expected_cls.expand(2, -1, -1, -1), rtol=0, atol=1e-12)
    expected_patches = (patches.view(2, 8, 16, 96) + model.pos_embed[:, 1:].unsqueeze(1)
                        + model.time_embed.unsqueeze(2))
    torch.testing.assert_close(tokens[:, :, 1:], expected_patches, rtol=0, atol=1e-12)
    assert model.temporal_aggregation.block.attn.qkv.bias is None  # the official VitHead's Block: qkv_bias=False

    # Frame attention alone is equivariant to the frames' order and the pooling invariant to it: only the table
    # lets the clip feature depend on the order.
    frames = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    for pos_embed, order_matters in (("spatial", False), ("separate", True)):
        torch.manual_seed(0)
        frame_wise = create_model("vit_tiny_frame", pos_embed=pos_embed, temporal_aggregation="attention").double()
        if pos_embed == "separate":
            torch.nn.init.normal_(frame_wise.time_embed)
        assert (_rel(frame_wise.eval()(frames.flip(2)), frame_wise(frames)) > 1e-6) is order_matters


def test_the_official_head_order_shifts_heads_with_their_keys_frame_only():
    """The authors' code (MSCA.diff) moves whole heads, keys and values from one frame: other uses are refused."""
    from models.attention.frame import MultiHeadSelfCrossAttention

    for bad in ({"shift_along": "tokens"}, {"shifted": "KV", "value_frames": "opposite"}):
        with pytest.raises(ValueError, match="head_order='official' places shifted heads as the authors' code"):
            MultiHeadSelfCrossAttention(DIM, HEADS, head_order="official", **bad)
    with pytest.raises(ValueError, match="head_order must be 'paper' or 'official', got 'first'"):
        MultiHeadSelfCrossAttention(DIM, HEADS, head_order="first")
