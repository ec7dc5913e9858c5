"""A weights file is data: on every route a user can name one (a local file, ``official:``, ``run:`` through a
record, each CAST expert source kind, a resumed ``last.ckpt``), a planted TorchScript archive whose code writes a
file and a pickle whose ``__reduce__`` writes one are refused, naming the file, and nothing is written. With the
``torchscript:`` opt-in (where a source can carry it) the archive's tensors come back, and still nothing is written.

The archive keeps its weights as a ``Dict[str, Tensor]`` state and writes the marker from its own ``__setstate__``,
which ``torch.jit.load`` runs while loading (``test_the_planted_files_run_their_code_when_loaded_as_torch_would``
shows it does, so every test here can fail)."""

import json
import re

import pytest
import torch
from torch import Tensor, nn

import models  # noqa: F401  (repairs torchvision before anything imports timm)
from experiments.__main__ import main
from experiments.harness.execute import execute
from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import RunDir, pretrained_weights
from experiments.harness.tasks import build_model
from lightning_modules.checkpoint_io import SafeCheckpointIO
from models import load_pretrained
from models.cast import build_expert
from models.weights import CheckpointError, UnsafeCheckpointError
from tests.models.cast.test_pretrained import TINY, clip_checkpoint, tiny_cast_model

MICRO = {"optim": {"epochs": 1, "warmup_epochs": 0},
         "data": {"synthetic_params": {"num_train": 16, "num_val": 8, "seed": 0}, "num_workers": 0, "batch_size": 8}}


class Hostile(nn.Module):
    """Scripted, its ``__setstate__`` (code the archive carries) writes ``marker`` with ``torch.save``."""

    marker: torch.jit.Final[str]

    def __init__(self, weights: dict[str, Tensor], marker: str):
        super().__init__()
        self.weights = weights
        self.marker = marker

    def forward(self, x: Tensor) -> Tensor:
        return x

    @torch.jit.export
    def __getstate__(self) -> dict[str, Tensor]:
        return self.weights

    @torch.jit.export
    def __setstate__(self, state: dict[str, Tensor]) -> None:
        torch.save(state, self.marker)
        self.weights = state
        self.training = False


class Reduces:
    """Unpickling it calls ``open(marker, "w")``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant(folder, weights: dict[str, Tensor], archive_name: str = "weights.pt", pickle_name: str = "weights.pth"):
    """A hostile TorchScript archive holding ``weights`` and a hostile pickle in a checkpoint's layout, each with the
    file its code would write."""
    folder.mkdir(parents=True, exist_ok=True)
    archive, archive_marker = folder / archive_name, folder / f"{archive_name}.code_ran"
    torch.jit.script(Hostile(weights, str(archive_marker))).save(str(archive))
    pickled, pickle_marker = folder / pickle_name, folder / f"{pickle_name}.code_ran"
    torch.save({"state_dict": {"cls_token": Reduces(pickle_marker)}, "pytorch-lightning_version": "2.6"}, pickled)
    return archive, archive_marker, pickled, pickle_marker


def refused(path, call, error=UnsafeCheckpointError):
    """``call()`` raises ``error`` with one line that names ``path``."""
    with pytest.raises(error, match=re.escape(str(path))) as caught:
        call()
    assert "\n" not in str(caught.value)
    return str(caught.value)


def same(model: nn.Module, weights: dict[str, Tensor], keys) -> None:
    state = model.state_dict()
    for ours, theirs in keys:
        assert torch.equal(state[ours], weights[theirs].to(state[ours].dtype)), ours


def test_the_planted_files_run_their_code_when_loaded_as_torch_would(tmp_path):
    archive, archive_marker, pickled, pickle_marker = plant(tmp_path, {"w": torch.ones(2)})
    torch.jit.load(str(archive))
    assert archive_marker.exists()
    torch.load(pickled, weights_only=False)
    assert pickle_marker.exists()


def through_a_run(source: str, tmp_path, table: str = "mformer_table4", row: str = "joint", classes: int = 4):
    """The model ``run`` builds for ``table``'s ``row`` with ``--pretrained source``: its sources resolved
    (``pretrained_weights``), then loaded (``build_model``), as ``experiments.harness.execute`` does."""
    (cfg,) = resolve_runs(table, rows=[row], overrides={**MICRO, "model": {"pretrained": source}})[:1]
    return build_model(cfg, classes, weights=pretrained_weights(cfg, tmp_path / "runs"))


def random_weights(table: str = "mformer_table4", row: str = "joint", classes: int = 4) -> dict[str, Tensor]:
    (cfg,) = resolve_runs(table, rows=[row], overrides=MICRO)[:1]
    return {k: torch.randn(v.shape) for k, v in build_model(cfg, classes, device="meta").state_dict().items()}


def test_a_local_file(tmp_path):
    weights = random_weights()
    archive, archive_marker, pickled, pickle_marker = plant(tmp_path, weights)
    message = refused(archive, lambda: through_a_run(str(archive), tmp_path))
    assert f"torchscript:{archive}" in message  # the opt-in, named
    for source in (str(pickled), f"torchscript:{pickled}"):
        refused(pickled, lambda source=source: through_a_run(source, tmp_path))
    same(through_a_run(f"torchscript:{archive}", tmp_path), weights, [(k, k) for k in weights])
    assert not archive_marker.exists() and not pickle_marker.exists()


def test_the_command_line_refuses_an_archive_without_the_opt_in_before_anything_runs(tmp_path, capsys):
    archive, archive_marker, _, _ = plant(tmp_path, {"cls_token": torch.zeros(1, 1, 64)})
    for extra in (["--dry-run"], ["--runs-dir", str(tmp_path / "runs")]):
        assert main(["run", "mformer_table4", "--rows", "joint", "--seeds", "1", "--pretrained", str(archive),
                     *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and str(archive) in err and f"torchscript:{archive}" in err, err
    assert not (tmp_path / "runs" / "mformer_table4" / "joint").exists()
    assert not archive_marker.exists()


def test_an_official_checkpoint(tmp_path):
    ours = random_weights("mformer_official", "mformer_b", 8)
    official = {k: v for k, v in ours.items() if k not in ("patch_embed.proj.weight", "patch_embed.proj.bias",
                                                           "time_embed")}
    official |= {"patch_embed_3d.proj.weight": ours["patch_embed.proj.weight"],
                 "patch_embed_3d.proj.bias": ours["patch_embed.proj.bias"], "temp_embed": ours["time_embed"],
                 "patch_embed.proj.weight": torch.randn(64, 3, 8, 8), "patch_embed.proj.bias": torch.randn(64)}
    archive, archive_marker, pickled, pickle_marker = plant(tmp_path, official)
    load = lambda source: through_a_run(source, tmp_path, "mformer_official", "mformer_b", 8)  # noqa: E731
    refused(archive, lambda: load(f"official:{archive}"))
    for source in (f"official:{pickled}", f"official:torchscript:{pickled}"):
        refused(pickled, lambda source=source: load(source))
    same(load(f"official:torchscript:{archive}"), official,
         [("patch_embed.proj.weight", "patch_embed_3d.proj.weight"), ("time_embed", "temp_embed"),
          ("blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.weight"), ("head.weight", "head.weight")])
    assert not archive_marker.exists() and not pickle_marker.exists()


def _record(cfg, **extra) -> str:
    return json.dumps({"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": cfg.seed,
                       "scale": cfg.scale, "config": cfg.to_dict(), "metrics": {"top1": 50.0}, **extra})


def test_a_run_source_through_a_record(tmp_path):
    """``--pretrained run:mformer_table6b/mformer/K-400``, whose record says it reused Table 4's run: the checkpoint
    planted there is refused. A run's checkpoint cannot opt in (a run writes plain checkpoints)."""
    runs, source = tmp_path / "runs", "run:mformer_table6b/mformer/K-400"
    trained = resolve_runs("mformer_table4", rows=["traj_attT_normS"])[0]
    reused = resolve_runs("mformer_table6b", rows=["mformer"])[0]
    RunDir.of(reused, runs).path.mkdir(parents=True)
    origin = RunDir.of(trained, runs).path.relative_to(runs).as_posix()
    (RunDir.of(reused, runs).path / "metrics.json").write_text(_record(reused, reused_from=origin))
    archive, archive_marker, pickled, pickle_marker = plant(RunDir.of(trained, runs).checkpoints_dir, random_weights())
    last = RunDir.of(trained, runs).path / "checkpoints" / "last.ckpt"
    for planted in (archive, pickled):
        planted.rename(last)
        refused(last, lambda: through_a_run(source, tmp_path))
    assert not archive_marker.exists() and not pickle_marker.exists()


def _vit_in21k() -> dict[str, Tensor]:
    return {k: torch.randn(v.shape) for k, v in build_expert("vit_in21k", **TINY).state_dict().items()}


def _own_layout() -> dict[str, Tensor]:
    return {k: torch.randn(v.shape) for k, v in build_expert("clip", **TINY).state_dict().items()}


def _videomae() -> dict[str, Tensor]:
    return {k: torch.randn(v.shape) for k, v in build_expert("videomae", **TINY).state_dict().items()
            if not k.startswith("norm.")}


# kind -> (the expert it loads into, its weights in the kind's layout, (expert key, checkpoint key) pairs to compare)
EXPERT_KINDS = {
    "clip:": (lambda: tiny_cast_model().spatial, clip_checkpoint,
              [("blocks.1.attn.qkv.weight", "visual.transformer.resblocks.1.attn.in_proj_weight"),
               ("patch_embed.proj.weight", "visual.conv1.weight")]),
    "videomae:": (lambda: tiny_cast_model().temporal, _videomae,
                  [("blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.weight"), ("blocks.1.mlp.fc2.bias",
                                                                              "blocks.1.mlp.fc2.bias")]),
    "vit:": (lambda: tiny_cast_model(spatial_expert="vit_in21k").spatial, _vit_in21k,
             [("pos_embed", "pos_embed"), ("blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.weight")]),
    "": (lambda: tiny_cast_model().spatial, _own_layout, [("cls_token", "cls_token"), ("norm_pre.weight",
                                                                                       "norm_pre.weight")]),
}


@pytest.mark.parametrize("kind", list(EXPERT_KINDS), ids=["clip", "videomae", "vit", "own_layout"])
def test_each_cast_expert_source_kind(tmp_path, kind):
    expert, layout, compared = EXPERT_KINDS[kind]
    weights = layout()
    archive, archive_marker, pickled, pickle_marker = plant(tmp_path, weights)
    message = refused(archive, lambda: load_pretrained(expert(), f"{kind}{archive}"))
    assert f"torchscript:{archive}" in message
    for source in (f"{kind}{pickled}", f"{kind}torchscript:{pickled}"):
        refused(pickled, lambda source=source: load_pretrained(expert(), source))
    loaded = expert()
    load_pretrained(loaded, f"{kind}torchscript:{archive}")
    same(loaded, weights, compared)
    assert not archive_marker.exists() and not pickle_marker.exists()


def test_a_resumed_last_checkpoint(tmp_path):
    """The runner checks ``last.ckpt`` before resuming, and Lightning reads it through ``SafeCheckpointIO``: both
    refuse the planted files by name and the run records nothing."""
    cfg = resolve_runs("mformer_table4", rows=["joint"], overrides=MICRO)[0]
    runs = tmp_path / "runs"
    archive, archive_marker, pickled, pickle_marker = plant(RunDir.of(cfg, runs).path / "checkpoints", random_weights())
    last = RunDir.of(cfg, runs).path / "checkpoints" / "last.ckpt"
    for planted in (archive, pickled):
        planted.rename(last)
        message = refused(last, lambda: execute(cfg, runs, progress_bar=False, echo=lambda _: None))
        assert "torchscript:" not in message  # a run's checkpoint cannot opt in: the message says what to do instead
        refused(last, lambda: SafeCheckpointIO().load_checkpoint(last))
    assert not (RunDir.of(cfg, runs).path / "metrics.json").exists()
    assert not archive_marker.exists() and not pickle_marker.exists()


def test_a_crafted_archive_that_keeps_its_state_through_its_own_code_is_refused_even_with_the_opt_in(tmp_path):
    """An archive whose ``__setstate__`` takes something other than a dict of attributes has tensors without
    names: the opt-in reads nothing from it, and runs nothing."""

    class Tupled(nn.Module):
        marker: torch.jit.Final[str]

        def __init__(self, marker: str):
            super().__init__()
            self.register_buffer("cls_token", torch.zeros(1, 1, 64))
            self.marker = marker

        def forward(self, x: Tensor) -> Tensor:
            return x

        @torch.jit.export
        def __getstate__(self) -> tuple[Tensor, bool]:
            return (self.cls_token, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[Tensor, bool]) -> None:
            torch.save(state[0], self.marker)
            self.cls_token = state[0]
            self.training = state[1]

    archive, marker = tmp_path / "tupled.pt", tmp_path / "code_ran"
    torch.jit.script(Tupled(str(marker))).save(str(archive))
    message = refused(archive, lambda: through_a_run(f"torchscript:{archive}", tmp_path), CheckpointError)
    assert "own __setstate__ code, which is not run" in message
    assert not marker.exists()
