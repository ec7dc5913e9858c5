"""The cross-modal RGB+pose transformer (``d3da_*`` entrypoints): dict batches forward and backward with a
gradient on every parameter, pose layouts, test clips of another length, fused vs explicit attention, the
memorised M'_CLS, and options rejected by name."""

import pytest
import torch

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from models import create_model, list_models
from models.d3da import CrossModalDeformableTransformer


def _batch(b: int = 2, t: int = 12, size: int = 32, joints: int = 13, people: int | None = None, k: int = 2,
           dtype=torch.float32) -> dict:
    gen = torch.Generator().manual_seed(0)
    person = () if people is None else (people,)
    return {"video": torch.randn(b, 3, t, size, size, generator=gen, dtype=dtype),
            "pose": torch.rand(b, t, *person, joints, k, generator=gen, dtype=torch.float64) * size + 0.5,
            "label": torch.zeros(b, dtype=torch.long)}


def test_entrypoints_are_registered():
    assert {"d3da_tiny", "d3da_base"} <= set(list_models("d3da_*"))


@pytest.mark.parametrize("cover", ["full", "as_printed"])
def test_tiny_model_forward_backward_every_parameter_gets_a_gradient(cover):
    torch.manual_seed(0)
    model = create_model("d3da_tiny", cover=cover)
    logits = model(_batch())
    assert logits.shape == (2, 6) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("cover", ["full", "as_printed"])
def test_trains_under_mixed_precision_autocast(cover):
    """The papers train in mixed precision: under autocast the attention runs in bf16 (fp16 on a GPU) while the
    residual stream stays fp32; every dtype meets its like (the stride attentions' merge once added bf16 windows
    into an fp32 buffer and stopped)."""
    torch.manual_seed(0)
    model = create_model("d3da_tiny", cover=cover)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(_batch())
    assert logits.shape == (2, 6) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 3])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_fused_and_explicit_attention_agree():
    torch.manual_seed(0)
    model = create_model("d3da_tiny", fused_attn=True).double().eval()
    batch = _batch(dtype=torch.float64)
    fused = model(batch)
    model.apply(lambda m: setattr(m, "fused_attn", False) if hasattr(m, "fused_attn") else None)
    assert torch.allclose(model(batch), fused, rtol=0, atol=1e-10)


def test_several_people_and_camera_coordinates():
    model = create_model("d3da_tiny", num_joints=25, num_people=2, pose_dim=3, pose_space="camera", pool="modal")
    assert model(_batch(joints=25, people=2, k=3)).shape == (2, 6)
    with pytest.raises(ValueError, match="num_joints"):
        model(_batch(joints=13, people=2, k=3))


def test_other_test_frame_counts_run_figure_a1():
    """Trained with 12 frames, tested with fewer or more (the temporal table is interpolated)."""
    model = create_model("d3da_tiny").eval()
    for t in (4, 8, 16):
        assert model(_batch(t=t)).shape == (2, 6)
    printed = create_model("d3da_tiny", cover="as_printed").eval()
    with pytest.raises(ValueError, match="cover='full'"):  # T = wnd: the printed loops form no window
        printed(_batch(t=4))


@pytest.mark.parametrize("test_frames", [4, 8, 16, 24])
def test_a_test_clip_reads_the_table_entries_of_its_own_instants(test_frames):
    """Figure A1 tests a model trained on 12 segment-sampled frames with more or fewer: the interpolated table
    must give each test frame the embedding of the instant it shows. A table whose entry i holds the instant
    (as a fraction of the video) that training frame i shows, resampled, must hold each test frame's instant."""
    from data.clip_sampling import uniform_segments
    from models.d3da.tokens import temporal_table

    video_frames, trained = 2 * 96, 12  # segments of whole frames at both lengths

    def instants(t):
        return torch.tensor(uniform_segments(video_frames, 30.0, t, mode="center").frame_indices,
                            dtype=torch.float64) / video_frames

    trained_at, tested_at = instants(trained), instants(test_frames)
    resampled = temporal_table(trained_at.view(1, trained, 1, 1), test_frames).flatten()
    # the table is linear in time, so resampling is exact; beyond its first and last entries, those entries
    assert torch.allclose(resampled, tested_at.clamp(trained_at[0], trained_at[-1]), rtol=0, atol=1e-12)


def test_stochastic_depth_drops_a_samples_branch_on_its_tokens_and_modal_tokens_alike():
    """One residual branch updates two token groups: each sample keeps or drops it in both (attention and FFN)."""
    from models.d3da.model import BranchBlock

    class Ones(torch.nn.Module):
        def forward(self, tokens, modal):
            return torch.ones_like(tokens), torch.ones_like(modal)

    torch.manual_seed(0)
    block = BranchBlock(Ones(), dim=8, mlp_ratio=1.0, drop_path=0.5, drop=0.0).train()
    fc2 = block.mlp.fc2
    torch.nn.init.zeros_(fc2.weight)
    torch.nn.init.ones_(fc2.bias)  # the FFN's update is 1 too, so each output counts the branches kept
    tokens, modal = block(torch.zeros(64, 3, 2, 2, 8), torch.zeros(64, 3, 2, 8))
    kept_on_tokens, kept_on_modal = tokens.flatten(1).unique(dim=1), modal.flatten(1).unique(dim=1)
    assert kept_on_tokens.shape[1] == kept_on_modal.shape[1] == 1  # one value per sample in each group
    assert torch.equal(kept_on_tokens, kept_on_modal)
    assert set(kept_on_tokens.unique().tolist()) == {0.0, 2.0, 4.0}  # none, either one (1/keep), both: all drawn
    assert torch.equal(block.eval()(torch.zeros(2, 3, 2, 2, 8), torch.zeros(2, 3, 2, 8))[0],
                       torch.full((2, 3, 2, 2, 8), 2.0))


def test_pose_branch_reads_the_memorised_cls_token():
    """M'_CLS is the CLS modal token the block received: changing the RGB branch's CLS output must not change
    the pose branch's CLS output."""
    torch.manual_seed(0)
    model = create_model("d3da_tiny").double().eval()
    block = model.blocks[0]
    seen = []
    block.pose.register_forward_hook(lambda mod, args, out: seen.append(args[1][:, :, 1].clone()))
    z, p, modal, hw = model.tokens(_batch(dtype=torch.float64)["video"], _batch()["pose"].double())
    block(z, p, modal, hw)
    assert torch.equal(seen[0], modal[:, :, 2])  # pose branch got the block's input M_CLS as M'_CLS


def test_paper_size_model_builds():
    with torch.device("meta"):
        model = create_model("d3da_base")
    assert model.grid_size == (12, 28, 28) and model.embed_dim == 256
    assert 5e6 < sum(p.numel() for p in model.parameters()) < 20e6


@pytest.mark.parametrize("options, name", [
    ({"joint_wnd": 1}, "joint_wnd"), ({"temporal_wnd": 0}, "temporal_wnd"), ({"cover": "shifted"}, "cover"),
    ({"embed_dim": 66}, "embed_dim"), ({"img_size": 30}, "img_size"), ({"pose_dim": 4}, "pose_dim"),
    ({"pose_space": "world"}, "pose_space"), ({"pool": "mean"}, "pool"), ({"num_people": 0}, "num_people"),
    ({"offset_kernel": 4}, "offset_kernel"), ({"window": 4}, "window"),
])
def test_options_are_rejected_by_name(options, name):
    with pytest.raises(ValueError, match=name):
        create_model("d3da_tiny", **options)


def test_input_must_be_a_dict_of_video_and_pose():
    model = create_model("d3da_tiny")
    with pytest.raises(TypeError, match="dict"):
        model(_batch()["video"])
    with pytest.raises(ValueError, match="img_size"):
        model(_batch(size=64))


def test_pixel_coordinates_are_normalised_by_the_clip_size():
    embed = CrossModalDeformableTransformer(img_size=32, num_frames=2, embed_dim=16, depth=1, num_heads=2,
                                            num_classes=0).pose_embed
    with torch.no_grad():
        embed.proj.weight.copy_(torch.eye(16)[:, :2])
        embed.proj.bias.zero_(), embed.joint_embed.zero_(), embed.person_embed.zero_()
    joints = torch.tensor([[0.5, 0.5], [32.5, 32.5], [16.5, 16.5]] + [[1.0, 1.0]] * 10).view(1, 1, 13, 2)
    out = embed(joints, (32, 32))[0, 0, :3, :2]  # pixel edges -> -1 and 1, the centre -> 0
    assert torch.allclose(out, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))
    # a 16-high, 48-wide clip: x by the width, y by the height; (48.5, 16.5) bottom-right, (24.5, 8.5) the centre
    joints = torch.tensor([[48.5, 16.5], [24.5, 8.5], [0.5, 0.5]] + [[1.0, 1.0]] * 10).view(1, 1, 13, 2)
    out = embed(joints, (16, 48))[0, 0, :3, :2]
    torch.testing.assert_close(out, torch.tensor([[1.0, 1.0], [0.0, 0.0], [-1.0, -1.0]]))
