"""Parity with the official Motionformer model (facebookresearch/Motionformer): its head and parameter count, and
checkpoints in its key layout loaded through ``load_pretrained("official:FILE")`` (models/released/mformer.py).

The checkpoints are written here in the official layout (``model_state``, ``cfg`` as a YAML string, random
weights under the official names) and the loaded model is compared, in float64, with a literal re-implementation
of the official forward pass (``video_model_builder.VisionTransformer.forward_features`` with
``vit_helper.TrajectoryAttention``) that reads the official names directly.
"""

import math

import pytest
import torch
import torch.nn.functional as F
import yaml

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import pretrained_weights
from experiments.harness.spec import table_spec
from experiments.harness.static import paper_config, paper_params
from experiments.harness.tasks import build_model
from models import create_model, load_pretrained

F64 = torch.float64
OFFICIAL_MFORMER_B = 109_144_720  # parameters of the official Mformer-B (K-400, 400 classes)


# ---- the head and the parameter count ---------------------------------------------------------------------------


def test_mformer_b_parameters_equal_the_official_model_less_its_unused_2d_patch_embed():
    spec = table_spec("mformer_table7")
    unused_patch_embed_2d = 768 * 3 * 16 * 16 + 768  # Conv2d(3, 768, 16, 16), built but unused with tubelets
    assert unused_patch_embed_2d == 590_592
    model = build_model(paper_config(spec, spec.row("mformer_b")), 400, device="meta")
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_MFORMER_B - unused_patch_embed_2d
    assert isinstance(model.pre_logits.act, torch.nn.Tanh) and model.pre_logits.fc.out_features == 768


def test_mformer_h_parameters_explained():
    """ViT-L/336: the official model also has the unused 2-D patch embedding, and a 14x14 position table that it
    interpolates to 21x21 at every forward (ours stores 21x21): with both, the paper's 381.9M."""
    spec = table_spec("mformer_table7")
    ours = paper_params(spec, spec.row("mformer_h")).value * 1e6
    official = ours + (1024 * 3 * 16 * 16 + 1024) - (21 * 21 - 14 * 14) * 1024
    assert round(official / 1e6, 1) == 381.9


def test_pre_logits_only_in_the_paper_presets():
    """Every Motionformer row at paper scale has the official head, as wide as its model; tiny rows have none."""
    widths = {}
    for table_id in ("mformer_table1", "mformer_table2a", "mformer_table2b", "mformer_table3a", "mformer_table3d",
                     "mformer_table4", "mformer_table6a", "mformer_table6c", "mformer_table7", "mformer_table8",
                     "mformer_figure3"):
        spec = table_spec(table_id)
        for row, column in spec.runs():
            paper, tiny = (spec.resolve(row, column, scale, seed=0) for scale in ("paper", "tiny"))
            if paper.model.name not in widths:
                with torch.device("meta"):
                    widths[paper.model.name] = create_model(paper.model.name).embed_dim
            assert paper.model.overrides["representation_size"] == widths[paper.model.name], (table_id, row.key)
            assert "representation_size" not in tiny.model.overrides, (table_id, row.key)


def test_default_model_is_unchanged_by_the_option():
    """Without ``representation_size`` the classifier reads the CLS feature, as before (other papers' models)."""
    torch.manual_seed(0)
    model = create_model("vit_tiny_video", num_classes=3, depth=1).eval()
    assert isinstance(model.pre_logits, torch.nn.Identity)
    x = torch.randn(2, 3, 8, 32, 32)
    features = model.forward_features(x)
    assert torch.equal(model.forward_head(features), model.head(features[:, 0]))
    with_head = create_model("vit_tiny_video", num_classes=3, depth=1, representation_size=64).eval()
    features = with_head.forward_features(x)
    expected = with_head.head(torch.tanh(with_head.pre_logits.fc(features[:, 0])))
    assert torch.allclose(with_head.forward_head(features), expected)
    assert torch.equal(with_head.forward_head(features, pre_logits=True), torch.tanh(
        with_head.pre_logits.fc(features[:, 0])))


# ---- an official checkpoint, written here, and the official forward pass ---------------------------------------

DIM, HEADS, DEPTH, PATCH = 16, 2, 2, 8


def official_state_dict(num_frames: int, tubelet: int, base_size: int, num_classes: int | tuple[int, int],
                         pos_embed: str = "separate", seed: int = 0) -> dict[str, torch.Tensor]:
    """Random float64 weights under the official names and shapes (``VisionTransformer.__init__``)."""
    g = torch.Generator().manual_seed(seed)
    num_t, base_tokens = num_frames // tubelet, (base_size // PATCH) ** 2

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=F64) * (0.5 if len(shape) == 1 else shape[-1] ** -0.5)

    sd = {"patch_embed.proj.weight": rand(DIM, 3, PATCH, PATCH), "patch_embed.proj.bias": rand(DIM),
          "patch_embed_3d.proj.weight": rand(DIM, 3, tubelet, PATCH, PATCH), "patch_embed_3d.proj.bias": rand(DIM),
          "cls_token": rand(1, 1, DIM), "pos_embed": rand(1, base_tokens + 1, DIM)}
    if pos_embed == "separate":
        sd["temp_embed"] = rand(1, num_t, DIM)
    else:
        sd["st_embed"] = rand(1, num_t * base_tokens + 1, DIM)
    for i in range(DEPTH):
        for name, shape in [("norm1", (DIM,)), ("attn.qkv", (3 * DIM, DIM)), ("attn.proj_q", (DIM, DIM)),
                            ("attn.proj_kv", (2 * DIM, DIM)), ("attn.proj", (DIM, DIM)), ("norm2", (DIM,)),
                            ("mlp.fc1", (4 * DIM, DIM)), ("mlp.fc2", (DIM, 4 * DIM))]:
            sd[f"blocks.{i}.{name}.weight"] = rand(*shape) + (1.0 if name.startswith("norm") else 0.0)
            sd[f"blocks.{i}.{name}.bias"] = rand(shape[0])
    sd.update({"norm.weight": rand(DIM) + 1.0, "norm.bias": rand(DIM),
               "pre_logits.fc.weight": rand(DIM, DIM), "pre_logits.fc.bias": rand(DIM)})
    heads = {"head": num_classes} if isinstance(num_classes, int) else dict(zip(("head0", "head1"), num_classes))
    for name, classes in heads.items():
        sd[f"{name}.weight"], sd[f"{name}.bias"] = rand(classes, DIM), rand(classes)
    return sd


def write_official(path, sd, original_code: bool = True, with_cfg: bool = True, tubelet: int = 2) -> str:
    """A training checkpoint as the official ``save_checkpoint`` writes it."""
    checkpoint = {"epoch": 7, "model_state": sd,
                  "optimizer_state": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}}
    if with_cfg:
        checkpoint["cfg"] = yaml.safe_dump({"VIT": {"USE_ORIGINAL_TRAJ_ATTN_CODE": original_code, "USE_MLP": True,
                                                    "HEAD_ACT": "tanh", "PATCH_SIZE_TEMP": tubelet,
                                                    "ATTN_LAYER": "trajectory"}})
    torch.save(checkpoint, path)
    return str(path)


def _linear(x, sd, name):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def _layer_norm(x, sd, name):
    return F.layer_norm(x, x.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-6)


def _official_trajectory_attention(x, sd, prefix, num_t, original_code):
    """``vit_helper.TrajectoryAttention.forward`` (exact attention), written out."""
    b, n, c = x.shape
    d = c // HEADS
    scale = d ** -0.5
    q, k, v = (z.reshape(b, n, HEADS, d).transpose(1, 2) for z in _linear(x, sd, f"{prefix}.qkv").chunk(3, -1))
    cls = (torch.softmax(scale * q[:, :, :1] @ k.transpose(-2, -1), -1) @ v).transpose(1, 2).reshape(b, 1, c)
    q, k, v = q[:, :, 1:], k[:, :, 1:], v[:, :, 1:]
    nq, s = n - 1, (n - 1) // num_t
    space = torch.softmax((scale * q @ k.transpose(-2, -1)).reshape(b, HEADS, nq, num_t, s), -1)
    traj = torch.einsum("bhqts,bhtsd->bqthd", space, v.reshape(b, HEADS, num_t, s, d))  # per query and frame
    own_frame = traj[:, torch.arange(nq), torch.arange(nq) // s]  # (b, nq, h, d): the query's own frame
    q2 = _linear(own_frame.reshape(b, nq, c), sd, f"{prefix}.proj_q").reshape(b, nq, HEADS, d) * scale
    kv2 = _linear(traj.reshape(b, nq, num_t, c), sd, f"{prefix}.proj_kv")
    k2, v2 = (z.reshape(b, nq, num_t, HEADS, d) for z in kv2.chunk(2, -1))
    weights = torch.softmax(torch.einsum("bqhd,bqthd->bqht", q2, k2), -1)
    pooled = torch.einsum("bqht,bqthd->bqhd", weights, traj if original_code else v2).reshape(b, nq, c)
    return _linear(torch.cat([cls, pooled], 1), sd, f"{prefix}.proj")


def official_forward(sd, video, tubelet, pos_embed="separate", original_code=True):
    """``VisionTransformer.forward_features`` + head (logits, before the eval-time softmax)."""
    b, _, frames = video.shape[:3]
    if tubelet > 1:
        w = sd["patch_embed_3d.proj.weight"]
        x = F.conv3d(video, w, sd["patch_embed_3d.proj.bias"], stride=w.shape[2:]).flatten(2).transpose(1, 2)
    else:  # square tokens: the 2-D patch embedding on every frame
        per_frame = video.transpose(1, 2).reshape(b * frames, *video.shape[1:2], *video.shape[3:])
        x = F.conv2d(per_frame, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=PATCH)
        x = x.flatten(2).transpose(1, 2).reshape(b, -1, DIM)
    num_t = frames // tubelet
    x = torch.cat([sd["cls_token"].expand(b, -1, -1), x], 1)
    if pos_embed == "joint":
        x = x + sd["st_embed"]
    else:
        pos, n_base = sd["pos_embed"], sd["pos_embed"].shape[1] - 1
        npatch = (x.shape[1] - 1) // num_t
        if npatch != n_base:  # other crops: the 14x14 table interpolated at every forward
            side = math.isqrt(n_base)
            grid = F.interpolate(pos[:, 1:].reshape(1, side, side, DIM).permute(0, 3, 1, 2),
                                 scale_factor=math.sqrt(npatch / n_base), mode="bicubic")
            pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, DIM)], 1)
        spatial = pos[:, 1:].repeat(1, num_t, 1) + sd["temp_embed"].repeat_interleave(npatch, 1)
        x = x + torch.cat([sd["pos_embed"][:, :1], spatial], 1)
    for i in range(DEPTH):
        x = x + _official_trajectory_attention(_layer_norm(x, sd, f"blocks.{i}.norm1"), sd, f"blocks.{i}.attn",
                                               num_t, original_code)
        h = _linear(_layer_norm(x, sd, f"blocks.{i}.norm2"), sd, f"blocks.{i}.mlp.fc1")
        x = x + _linear(F.gelu(h), sd, f"blocks.{i}.mlp.fc2")
    x = torch.tanh(_linear(_layer_norm(x, sd, "norm")[:, 0], sd, "pre_logits.fc"))
    if "head0.weight" in sd:
        return torch.cat([_linear(x, sd, "head0"), _linear(x, sd, "head1")], -1)
    return _linear(x, sd, "head")


def our_model(num_frames, tubelet, img_size, num_classes, pos_embed="separate", stage_two_values="trajectory",
               representation_size=DIM):
    return create_model("vit_tiny_video", img_size=img_size, num_frames=num_frames, patch_size=PATCH,
                        tubelet_size=tubelet, embed_dim=DIM, depth=DEPTH, num_heads=HEADS, num_classes=num_classes,
                        pos_embed=pos_embed, attn_layer="trajectory",
                        attn_kwargs={"stage_two_values": stage_two_values},
                        representation_size=representation_size).double().eval()


# (frames, tubelet, checkpoint crop, model crop, classes, pos_embed, official USE_ORIGINAL_TRAJ_ATTN_CODE)
CASES = {
    "cubic": (4, 2, 16, 16, 5, "separate", True),
    "square": (2, 1, 16, 16, 5, "separate", True),
    "joint_pos": (4, 2, 16, 16, 5, "joint", True),
    "higher_crop": (4, 2, 16, 24, 5, "separate", True),  # Mformer-HR: the table resampled as the official forward
    "epic_heads": (4, 2, 16, 16, (3, 4), "separate", True),  # head0 (verbs) + head1 (nouns)
    "improved_stage_two": (4, 2, 16, 16, 5, "separate", False),  # USE_ORIGINAL_TRAJ_ATTN_CODE: False
}


@pytest.mark.parametrize("case", CASES)
def test_official_checkpoint_loads_and_computes_the_official_function(case, tmp_path):
    frames, tubelet, base, crop, classes, pos_embed, original = CASES[case]
    sd = official_state_dict(frames, tubelet, base, classes, pos_embed)
    path = write_official(tmp_path / "checkpoint_epoch_00007.pyth", sd, original, tubelet=tubelet)
    num_classes = classes if isinstance(classes, int) else sum(classes)
    model = our_model(frames, tubelet, crop, num_classes, pos_embed, "trajectory" if original else "projected")
    result = load_pretrained(model, f"official:{path}")
    assert result == {"missing": [], "unexpected": []}
    video = torch.randn(2, 3, frames, crop, crop, dtype=F64, generator=torch.Generator().manual_seed(1))
    ours, official = model(video), official_forward(sd, video, tubelet, pos_embed, original)
    assert ours.shape == (2, num_classes)
    assert ((ours - official).norm() / official.norm()).item() < 1e-10


def test_bare_state_dict_without_cfg_assumes_the_official_default(tmp_path, caplog):
    sd = official_state_dict(4, 2, 16, 5)
    torch.save(sd, tmp_path / "weights.pth")
    model = our_model(4, 2, 16, 5)
    with caplog.at_level("WARNING"):
        assert load_pretrained(model, f"official:{tmp_path / 'weights.pth'}")["missing"] == []
    assert "USE_ORIGINAL_TRAJ_ATTN_CODE=True" in caplog.text
    assert torch.equal(model.time_embed, sd["temp_embed"])
    assert torch.equal(model.patch_embed.proj.weight, sd["patch_embed_3d.proj.weight"])


def test_incompatible_models_are_refused(tmp_path):
    sd = official_state_dict(4, 2, 16, 5)
    path = write_official(tmp_path / "ckpt.pyth", sd, original_code=True)
    with pytest.raises(ValueError, match="stage_two_values='trajectory'"):  # the paper's stage two: other function
        load_pretrained(our_model(4, 2, 16, 5, stage_two_values="projected"), f"official:{path}")
    with pytest.raises(ValueError, match="representation_size"):  # no pre-logits layer to hold pre_logits.fc
        load_pretrained(our_model(4, 2, 16, 5, representation_size=None), f"official:{path}")
    with pytest.raises(ValueError, match="PATCH_SIZE_TEMP=2"):  # its trained tokenizer is the 3-D one
        load_pretrained(our_model(2, 1, 16, 5), f"official:{path}")
    with pytest.raises(ValueError, match="separate space-time position"):
        load_pretrained(our_model(4, 2, 16, 5, pos_embed="joint"), f"official:{path}")
    divided = {**sd, "blocks.0.timeattn.qkv.weight": torch.zeros(3 * DIM, DIM, dtype=F64)}
    path = write_official(tmp_path / "divided.pyth", divided)
    with pytest.raises(ValueError, match="divided"):
        load_pretrained(our_model(4, 2, 16, 5), f"official:{path}")


def test_cli_source_official_file(tmp_path):
    """``python -m experiments run mformer_official --pretrained official:FILE``: the runner resolves the source and
    builds the run's model from the checkpoint (the path ``runner.execute`` takes)."""
    (cfg,) = resolve_runs("mformer_official", "tiny", rows=["mformer_b"], overrides={
        "model": {"pretrained": f"official:{tmp_path / 'k400.pyth'}"}})[:1]
    model = build_model(cfg, 8, device="meta")  # the tiny official-shaped model: 64-d, 4 blocks, 8x32x32 clips
    sd = {k: torch.randn(v.shape, dtype=torch.float32) for k, v in model.state_dict().items()}
    sd["patch_embed_3d.proj.weight"], sd["patch_embed_3d.proj.bias"] = sd.pop("patch_embed.proj.weight"), \
        sd.pop("patch_embed.proj.bias")
    sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"] = torch.randn(64, 3, 8, 8), torch.randn(64)
    sd["temp_embed"] = sd.pop("time_embed")
    write_official(tmp_path / "k400.pyth", sd)
    weights = pretrained_weights(cfg, tmp_path / "runs")
    assert weights == f"official:{tmp_path / 'k400.pyth'}"
    model = build_model(cfg, 8, weights=weights)
    assert torch.equal(model.patch_embed.proj.weight, sd["patch_embed_3d.proj.weight"])
    assert torch.equal(model.time_embed, sd["temp_embed"])
    assert torch.equal(model.pre_logits.fc.weight, sd["pre_logits.fc.weight"])
    assert torch.equal(model.head.weight, sd["head.weight"])
