"""The RGB+pose model's input and output ends (``models.d3da.tokens``, ``model``, ``complexity``) against literal
float64 loops written here: the conv stem frame by frame on non-square frames (token grid in (h, w) order), pose
tokens person-major with their joint and person tables, the positional and temporal tables added to every token
group, the head's pooling of the normalised modal tokens, the CLS merge of one-branch ablations, the stochastic depth
schedule, no-weight-decay names, dropout off in eval, and the complexity helpers' token counts for several people."""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import create_model
from models.d3da.complexity import joint_attention_flops, tokens_per_frame
from models.d3da.tokens import ConvStem, PoseEmbed
from tests.models.d3da.test_reference import BLOCK_LN_EPS, gelu, layer_norm, randomise_parameters

DIM = 8


def _tiny(**overrides) -> torch.nn.Module:
    """A float64 d3da_tiny-like model (12 frames of 32x32, 13 joints) with every parameter random, in eval."""
    model = create_model("d3da_tiny", **dict(embed_dim=16, num_heads=2, depth=2, **overrides)).double()
    for child in model.children():  # the submodules as the reference tests randomise them
        randomise_parameters(child)
    with torch.no_grad():  # the model's own tables (an ablation's spatial table is empty: randomise_parameters cannot)
        for table in model.parameters(recurse=False):
            table.normal_(0.0, 0.5)
    return model.eval()


def _batch(t: int = 12, size: int = 32, joints: int = 13) -> dict:
    gen = torch.Generator().manual_seed(7)
    return {"video": torch.randn(2, 3, t, size, size, generator=gen, dtype=torch.float64),
            "pose": torch.rand(2, t, joints, 2, generator=gen, dtype=torch.float64) * size + 0.5}


# ---- tokens -----------------------------------------------------------------------------------------------------


def test_conv_stem_equals_a_frame_by_frame_loop_on_non_square_frames():
    """Each frame alone: three (stride-2 3x3 conv, BatchNorm with its running statistics, exact GELU) layers;
    token (t, i, j) is row i, column j of frame t's map. H != W so a swapped (h, w) layout changes the shape."""
    stem = randomise_parameters(ConvStem(3, DIM))
    with torch.no_grad():  # running statistics away from (0, 1): the eval BatchNorm must use them
        for bn in (m for m in stem.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.normal_(0.0, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    video = torch.randn(2, 3, 3, 16, 24, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    convs = [m for m in stem.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in stem.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    expected = torch.empty(2, 3, 2, 3, DIM, dtype=torch.float64)
    for b in range(2):
        for t in range(3):
            x = video[b, :, t][None]  # (1, 3, H, W): this frame only
            for conv, bn in zip(convs, norms):
                x = torch.nn.functional.conv2d(x, conv.weight, None, stride=2, padding=1)
                x = (x - bn.running_mean.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + bn.eps)
                x = gelu(x * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1))
            for i in range(2):
                for j in range(3):
                    expected[b, t, i, j] = x[0, :, i, j]
    out = stem(video)
    assert out.shape == (2, 3, 2, 3, DIM)
    assert torch.allclose(out, expected, rtol=0, atol=1e-12)


def test_pose_tokens_are_person_major_with_their_joint_and_person_tables():
    """Token r = person * J + joint holds Linear(joint's coordinates) + joint_embed[joint] + person_embed[person]."""
    people, joints = 2, 3
    embed = randomise_parameters(PoseEmbed(joints, people, 3, DIM, pose_space="camera"))
    pose = torch.randn(2, 4, people, joints, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = embed(pose, (32, 32))
    assert out.shape == (2, 4, people * joints, DIM)
    for person in range(people):
        for joint in range(joints):
            token = pose[:, :, person, joint] @ embed.proj.weight.T + embed.proj.bias
            token = token + embed.joint_embed[joint] + embed.person_embed[person]
            assert torch.allclose(out[:, :, person * joints + joint], token, rtol=0, atol=1e-12), (person, joint)


def test_pixel_pose_with_depth_normalises_x_and_y_only():
    """pose_space="pixel", k = 3: x by the width, y by the height ((2 v - 1) / size - 1), the third coordinate as is."""
    embed = PoseEmbed(1, 1, 3, 3, pose_space="pixel").double()
    with torch.no_grad():
        embed.proj.weight.copy_(torch.eye(3, dtype=torch.float64))
        embed.proj.bias.zero_(), embed.joint_embed.zero_(), embed.person_embed.zero_()
    pose = torch.tensor([[48.5, 4.5, 2.75]], dtype=torch.float64).view(1, 1, 1, 3)
    out = embed(pose, (16, 48))[0, 0, 0]
    assert torch.allclose(out, torch.tensor([1.0, -0.5, 2.75], dtype=torch.float64), rtol=0, atol=1e-12)


def test_model_tokens_add_the_spatial_and_temporal_tables_to_every_group():
    """Z = stem + pos_embed[s] + time_embed[t]; P = pose embedding + time_embed[t]; modal = modal_tokens +
    time_embed[t] (T = the trained length: the table as is)."""
    model = _tiny()
    batch = _batch()
    z, p, modal, grid_hw = model.tokens(batch["video"], batch["pose"])
    assert grid_hw == (4, 4)
    stem = model.stem(batch["video"])  # (B, T, 4, 4, C)
    pose = model.pose_embed(batch["pose"], (32, 32))
    time, pos = model.time_embed[0, :, 0], model.pos_embed[0, 0]  # (T, C), (S, C)
    for t in range(12):
        for i in range(4):
            for j in range(4):
                assert torch.allclose(z[:, t, 4 * i + j], stem[:, t, i, j] + pos[4 * i + j] + time[t], atol=1e-12)
        assert torch.allclose(p[:, t], pose[:, t] + time[t], atol=1e-12)
        for k in range(3):
            assert torch.allclose(modal[:, t, k], model.modal_tokens[0, 0, k] + time[t], atol=1e-12)


# ---- head ---------------------------------------------------------------------------------------------------------


def _features_by_hand(model, batch) -> torch.Tensor:
    """The modal tokens after every block, before the final LayerNorm: (B, T, 3, C) = [M_RGB, M_pose, M_CLS]."""
    z, p, modal, grid_hw = model.tokens(batch.get("video"), batch.get("pose"))
    for block in model.blocks:
        z, p, modal = block(z, p, modal, grid_hw)
    return modal


@pytest.mark.parametrize("pool", ["cls", "modal"])
def test_head_pools_the_normalised_modal_tokens(pool):
    """cls: head(frame mean of LN(M_CLS)); modal: head([mean LN(M_RGB) || mean LN(M_pose) || mean LN(M_CLS)])."""
    model = _tiny(pool=pool)
    batch = _batch()
    with torch.no_grad():
        modal = _features_by_hand(model, batch)
        normed = layer_norm(modal, model.norm.weight, model.norm.bias, BLOCK_LN_EPS)
        means = [sum(normed[:, t, k] for t in range(12)) / 12 for k in range(3)]  # M_RGB, M_pose, M_CLS
        pooled = means[2] if pool == "cls" else torch.cat(means, dim=-1)
        expected = pooled @ model.head.weight.T + model.head.bias
        assert torch.allclose(model(batch), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("modalities", ["rgb", "pose"])
def test_a_one_branch_ablation_keeps_that_branchs_cls_output(modalities):
    """Step 3 with one branch: the temporal stride attention receives that branch's M_CLS output unchanged."""
    model = _tiny(modalities=modalities)
    batch = {k: v for k, v in _batch().items() if k == ("video" if modalities == "rgb" else "pose")}
    block = model.blocks[0]
    branch = block.rgb if modalities == "rgb" else block.pose
    seen = {}

    def keep(key, value):  # a forward hook that returns None leaves the module's output as it is
        seen[key] = value.clone()

    branch.register_forward_hook(lambda mod, args, out: keep("branch", out[1][:, :, 1]))  # [M_x, M_CLS] outputs
    block.temporal.register_forward_hook(lambda mod, args, out: keep("temporal", args[0][:, :, -1]))  # N's M_CLS
    with torch.no_grad():
        model(batch)
    assert torch.allclose(seen["temporal"], seen["branch"], rtol=0, atol=1e-12)


# ---- options ----------------------------------------------------------------------------------------------------


def test_stochastic_depth_rises_linearly_from_zero_over_the_blocks():
    model = create_model("d3da_tiny", depth=3, drop_path_rate=0.2)
    expected = [0.0, 0.1, 0.2]
    for block, rate in zip(model.blocks, expected):
        assert [block.rgb.drop_prob, block.pose.drop_prob, block.temporal.drop_prob] == pytest.approx([rate] * 3)


def test_no_weight_decay_names_every_table():
    assert create_model("d3da_tiny").no_weight_decay() == {
        "pos_embed", "time_embed", "modal_tokens", "pose_embed.joint_embed", "pose_embed.person_embed"}
    assert create_model("d3da_tiny", modalities="rgb").no_weight_decay() == {"pos_embed", "time_embed", "modal_tokens"}


def test_tables_are_initialised_with_std_0_02():
    model = create_model("d3da_base", embed_dim=64, num_heads=4)  # 784 * 64 spatial entries: a tight estimate
    for name in ("pos_embed", "modal_tokens", "time_embed"):
        table = getattr(model, name).detach()
        assert 0.015 < table.std().item() < 0.025, name


def test_attention_dropout_is_off_in_eval():
    """In eval, attn_drop_rate must not change the logits (all three attentions, fused and explicit)."""
    batch = _batch()
    for fused in (True, False):
        plain = _tiny(fused_attn=fused)
        dropped = _tiny(fused_attn=fused, attn_drop_rate=0.5)
        dropped.load_state_dict(plain.state_dict())
        with torch.no_grad():
            assert torch.allclose(dropped(batch), plain(batch), rtol=0, atol=1e-12), fused


# ---- complexity helpers -------------------------------------------------------------------------------------------


def test_tokens_per_frame_counts_every_person():
    assert tokens_per_frame(224, 13) == 28 * 28 + 13 + 3
    assert tokens_per_frame(224, 25, 2) == 28 * 28 + 50 + 3
    assert tokens_per_frame(40, 25, 4) == 5 * 5 + 100 + 3


def test_joint_flops_count_all_people_s_joints():
    """Full attention over T (R + 2) tokens, R = people x joints: 2 (T (R + 2))^2 C multiply-adds in QK^T and AV."""
    t, c = 4, 16
    full = joint_attention_flops(25, t, which="full", num_people=2, dim=c, num_heads=2)
    assert full["attention"] == 2 * (t * (50 + 2)) ** 2 * c
    assert full["projections"] == 4 * t * (50 + 2) * c * c
