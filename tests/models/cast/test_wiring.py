"""CAST's wiring at model level, where a swapped argument passes the isolated-layer tests: T2S takes its queries
from the spatial expert and its keys / values from the temporal one (S2T the reverse), Eq. 6's add-fusion head, and
stochastic depth where the official code puts it (FFN adapter, exchange, a fine-tuned VideoMAE's main branches)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models import create_model
from models.cast import CAST

B, T, N, D = 2, 4, 16, 96  # cast_tiny: 4 time steps of 4 x 4 patches, 96-d experts


def _tiny(**overrides) -> CAST:
    torch.manual_seed(0)
    return create_model("cast_tiny", num_classes={"verb": 3, "noun": 4}, **overrides).double().eval()


def randomize_parameters(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.05)


def _grid_updates(model: CAST, s_grid: torch.Tensor, t_grid: torch.Tensor, s_cls: torch.Tensor,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The block-0 exchange's updates to both experts' patch grids, (B, T, N, D) each, through ``CAST._exchange``
    on tokens in the experts' own layouts."""
    tokens = [model.spatial.merge(s_cls, s_grid), model.temporal.merge(None, t_grid)]
    with torch.no_grad():
        out_s, out_t = model._exchange(0, tokens, B)
    return model.spatial.split(out_s, B)[1] - s_grid, model.temporal.split(out_t, B)[1] - t_grid


def _changed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, T, N) cells whose update differs."""
    return (a - b).abs().amax(dim=-1) > 1e-12


def _cells(batch: int, cells: set[tuple[int, int]]) -> torch.Tensor:
    mask = torch.zeros(B, T, N, dtype=torch.bool)
    for t, n in cells:
        mask[batch, t, n] = True
    return mask


@pytest.mark.parametrize("kind", ["bcast", "xattn", "xattn_adapter"])
def test_t2s_queries_come_from_the_spatial_expert_and_s2t_from_the_temporal(kind: str) -> None:
    """T2S attends along time: the spatial update at (t, n) reads the temporal tokens at patch n of every step
    (keys / values) and only its own spatial token (query). S2T attends along space: the temporal update at (t, n)
    reads the spatial tokens of step t (keys / values) and only its own temporal token. A swap of the two
    experts' roles in ``BlockExchange`` (queries from the other expert) inverts these patterns."""
    model = _tiny(exchange=kind)
    randomize_parameters(model.exchange["0"])
    torch.manual_seed(1)
    s_grid, t_grid = torch.randn(B, T, N, D, dtype=torch.float64), torch.randn(B, T, N, D, dtype=torch.float64)
    s_cls = torch.randn(B, T, D, dtype=torch.float64)
    d_s, d_t = _grid_updates(model, s_grid, t_grid, s_cls)
    t0, n0, b0 = 1, 5, 1
    every_step, every_patch, own = {(t, n0) for t in range(T)}, {(t0, n) for n in range(N)}, {(t0, n0)}

    t_moved = t_grid.clone()
    t_moved[b0, t0, n0] += torch.randn(D, dtype=torch.float64)  # not a constant: LayerNorm removes one
    e_s, e_t = _grid_updates(model, s_grid, t_moved, s_cls)
    assert torch.equal(_changed(e_s, d_s), _cells(b0, every_step))  # T2S keys / values: temporal, along time
    assert torch.equal(_changed(e_t, d_t), _cells(b0, own))  # S2T query: the temporal token itself

    s_moved = s_grid.clone()
    s_moved[b0, t0, n0] += torch.randn(D, dtype=torch.float64)
    e_s, e_t = _grid_updates(model, s_moved, t_grid, s_cls)
    assert torch.equal(_changed(e_s, d_s), _cells(b0, own))  # T2S query: the spatial token itself
    assert torch.equal(_changed(e_t, d_t), _cells(b0, every_patch))  # S2T keys / values: spatial, along space


def _adapter(adapter: torch.nn.Module, f: torch.Tensor) -> torch.Tensor:
    """ADAP(f) = GELU(f W_D) W_U (Eq. 2), written out."""
    return F.linear(F.gelu(F.linear(f, adapter.fc1.weight, adapter.fc1.bias)), adapter.fc2.weight, adapter.fc2.bias)


def test_single_label_head_is_eq6_with_both_adapted_features() -> None:
    """Eq. 6: logits = head(ADAP_s(f_s) + ADAP_t(f_t)), with non-zero (randomised) head adapters so that each
    expert's term counts."""
    torch.manual_seed(0)
    model = create_model("cast_tiny", num_classes=5).double().eval()
    assert model.fusion == "add"
    for adapter in (model.head_adapter_spatial, model.head_adapter_temporal):
        randomize_parameters(adapter)
    torch.manual_seed(1)
    f_s, f_t = torch.randn(3, D, dtype=torch.float64), torch.randn(3, D, dtype=torch.float64)
    expected = F.linear(_adapter(model.head_adapter_spatial, f_s) + _adapter(model.head_adapter_temporal, f_t),
                        model.head.weight, model.head.bias)
    with torch.no_grad():
        logits = model.forward_head(f_s, f_t)
        video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
        assert torch.equal(model(video), model.forward_head(*model.forward_features(video)))
    assert torch.allclose(logits, expected, rtol=0, atol=1e-12)
    for moved in (model.forward_head(f_s + 1, f_t), model.forward_head(f_s, f_t + 1)):  # both terms are read
        assert not torch.allclose(moved, logits)


def _two_train_forwards(model: CAST, video: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The two experts' pooled features (f_s, f_t; None for a missing expert) of two train-mode forwards with other
    random draws."""
    draws = []
    with torch.no_grad():
        model.train()
        for seed in (1, 2):
            torch.manual_seed(seed)
            draws.append(model.forward_features(video))
    return draws


# The rows whose VideoMAE expert trains, with no adapter branch: Table 1a row 1 and VideoMAE*.
FULLY_FINE_TUNED_VIDEOMAE = [
    {"exchange": "none", "adapters": False, "train_experts": True},
    {"experts": "temporal", "adapters": False, "train_experts": True},
]


@pytest.mark.parametrize("options", FULLY_FINE_TUNED_VIDEOMAE)
def test_drop_path_acts_on_a_fully_fine_tuned_videomae_expert(options: dict) -> None:
    """With ``train_experts`` the VideoMAE expert's MHSA and FFN branches are dropped in training, as VideoMAE's
    fine-tuning (a high rate makes two train-mode forwards differ); evaluation is deterministic and equals the
    model without stochastic depth."""
    model, plain = _tiny(drop_path_rate=0.9, **options), _tiny(**options)
    video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    (_, first), (_, second) = _two_train_forwards(model, video)
    assert not torch.equal(first, second)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(video), model(video))
        assert torch.equal(model(video), plain(video))


@pytest.mark.parametrize("options", [{"experts": "spatial", "adapters": False, "train_experts": True},
                                     {"exchange": "none", "adapters": False, "train_experts": True}])
def test_a_fully_fine_tuned_clip_expert_has_no_stochastic_depth(options: dict) -> None:
    """The official CLIP fine-tuning block (``clip_modelling_finetune.py`` without adapters) drops nothing: the
    spatial feature of two train-mode forwards is the same, beside a VideoMAE expert that does drop."""
    model = _tiny(drop_path_rate=0.9, **options)
    video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    (s_first, t_first), (s_second, t_second) = _two_train_forwards(model, video)
    assert torch.equal(s_first, s_second)
    if t_first is not None:
        assert not torch.equal(t_first, t_second)


def test_drop_path_spares_the_mhsa_adapter_and_drops_the_ffn_adapter() -> None:
    """As the official block (``bidir_modeling_crossattn.py``): X + MHSA + ADAP(MHSA) keeps every sample, the FFN
    adapter's branch is dropped per sample."""
    from models.cast import ExpertBlock

    torch.manual_seed(0)
    block = ExpertBlock(D, 6, drop_path=0.9).double().train()
    randomize_parameters(block)  # the adapters' second layers start at zero
    x = torch.randn(8, 17, D, dtype=torch.float64)
    with torch.no_grad():
        outputs = {}
        for step in ("attend", "feed_forward"):
            draws = []
            for seed in (1, 2):
                torch.manual_seed(seed)
                draws.append(block.attend(x, 1) if step == "attend" else block.feed_forward(x))
            outputs[step] = draws
    assert torch.equal(*outputs["attend"])
    assert not torch.equal(*outputs["feed_forward"])


def test_drop_path_leaves_frozen_experts_main_branches_alone() -> None:
    """A frozen expert without adapters has no branch that trains: the rate drops nothing, as before."""
    model = _tiny(experts="spatial", adapters=False, drop_path_rate=0.9).train()
    video = torch.randn(2, 3, 8, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.manual_seed(1)
        first = model(video)
        torch.manual_seed(2)
        assert torch.equal(first, model(video))
