"""CAST's shipped tiny temporal experts (docs/tiny_regime_design.md, amendment 7): each file is what its
record says, trained to the end of its decay, and loads into its expert; its source names the file by digest; the
validation that the record reads draws its masks without touching the random state training draws from."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import save_file

from experiments.cast.experts import tiny_source
from experiments.cast.shipped import (
    CONVERGED_RELATIVE,
    SHIPPED,
    pretrain_and_ship,
    resolve_shipped_source,
    shipped_path,
    shipped_source,
)
from experiments.harness.spec import _plain, with_defaults
from experiments.harness.tasks import check_source_early
from experiments.tiny_pretraining.images import CAST_SPATIAL, CAST_SPATIAL_IN21K, file_digest, tiny_image_source
from lightning_modules.expert_pretraining import MaskedVideoPretraining
from models.cast import build_expert
from models.cast.checkpoints import load_expert

MAX_SHIPPED_BYTES = 3_000_000  # the design's bound for a shipped stand-in (amendment 1)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_expert_is_what_its_record_says_and_ends_at_its_best(name):
    path = shipped_path(name)
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["sha256"] == file_digest(path) and path.stat().st_size < MAX_SHIPPED_BYTES
    # a data field added since (at its default) is no change: the record's data section is completed with defaults
    assert with_defaults(record["config"]) == _plain(dataclasses.asdict(SHIPPED[name])), \
        f"{name}: its pretraining has changed"
    losses = [epoch["val_loss"] for epoch in record["epochs"]]
    assert len(losses) == record["epochs_trained"] == SHIPPED[name].epochs
    assert losses[-1] <= min(losses) * (1 + CONVERGED_RELATIVE), (name, losses[-1], min(losses))
    expert = build_expert(SHIPPED[name].arch, "tiny")
    assert load_expert(expert, str(path)) == {"missing": [], "unexpected": []}


def test_the_tiny_sources_name_each_shipped_file_by_digest():
    assert tiny_source("clip") == tiny_image_source(CAST_SPATIAL)
    for name in SHIPPED:
        assert tiny_source(name) == f"tiny_expert:{name}@{file_digest(shipped_path(name))[:12]}"
        assert check_source_early(tiny_source(name)) is True
    assert tiny_source("vit_in21k") == tiny_image_source(CAST_SPATIAL_IN21K)
    with pytest.raises(ValueError, match="no shipped tiny expert 'clip_l14'"):
        tiny_source("clip_l14")


def test_a_shipped_source_refuses_another_file_and_names_the_command_of_a_missing_one(tmp_path):
    save_file({"w": torch.zeros(2)}, str(shipped_path("videomae_k400", tmp_path)))
    source = shipped_source("videomae_k400", tmp_path)
    assert resolve_shipped_source(source.split(":", 1)[1], tmp_path) == str(shipped_path("videomae_k400", tmp_path))
    with pytest.raises(ValueError, match="has changed since this run was configured"):
        resolve_shipped_source("videomae_k400@000000000000", tmp_path)
    with pytest.raises(FileNotFoundError, match="pretrain-experts videomae_ssv2"):
        resolve_shipped_source("videomae_ssv2", tmp_path)


def test_validation_draws_the_same_masks_every_epoch_and_leaves_the_random_state_alone():
    torch.manual_seed(0)
    system = MaskedVideoPretraining(build_expert("videomae", "tiny"))
    logged = []
    system.log = lambda name, value, **kwargs: logged.append((name, float(value)))
    batch = {"video": torch.randn(2, 3, 8, 32, 32)}
    state = torch.random.get_rng_state()
    system.validation_step(batch, 3)
    system.validation_step(batch, 3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert logged[0] == logged[1] and logged[0][0] == "val/loss"


def test_pretrain_and_ship_writes_loadable_weights_and_each_epochs_loss(tmp_path, monkeypatch):
    small = dataclasses.replace(SHIPPED["videomae_ek100"], epochs=2, data=dataclasses.replace(
        SHIPPED["videomae_ek100"].data, synthetic_params={"num_train": 32, "num_val": 16, "seed": 0}))
    monkeypatch.setitem(SHIPPED, "videomae_ek100", small)
    path = pretrain_and_ship("videomae_ek100", tmp_path / "out")
    record = json.loads(path.with_suffix(".json").read_text())
    assert [epoch["epoch"] for epoch in record["epochs"]] == [1, 2] and record["sha256"] == file_digest(path)
    assert record["command"] == "python -m experiments pretrain-experts videomae_ek100"
    assert load_expert(build_expert("videomae", "tiny"), str(path)) == {"missing": [], "unexpected": []}
