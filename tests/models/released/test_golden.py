"""Proof of conversion: each golden checkpoint of tests/golden/released/, written by the authors' own code with random
weights, loaded through ``models.released`` into the model ``required_model`` names computes the authors' logits
(float64, relative error < 1e-10). The golden logits tell the variants apart: the same weights in a model with the
other stage two, or without X-ViT's shift segments, miss them by far, so these tests can fail."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import models  # noqa: E402,F401  (repairs torchvision before anything imports timm)
import pytest  # noqa: E402
import torch  # noqa: E402

from models.released import DESCRIPTION_KEYS, LAYOUTS, describe_released, load_released  # noqa: E402
from tests.models.released.golden import (GOLDEN, VARIANTS, checkpoint_file, golden_io, golden_model,  # noqa: E402
                                          relative_error)

# What the files themselves tell (their stored cfg and weights), as the official configs and builders set them.
EXPECTED = {
    "mformer_trajectory": {"attention": "trajectory", "stage_two_values": "trajectory", "classes": {"head": 10},
                           "frames": 8, "crop": 32, "grid": [4, 4, 4], "tubelet": 2, "pos_embed": "separate"},
    # every released configuration keeps POS_EMBED "separate", the joint one included
    "mformer_joint": {"attention": "joint", "classes": {"head": 10}, "frames": 8, "crop": 32, "grid": [4, 4, 4],
                      "pos_embed": "separate"},
    "mformer_divided": {"attention": "divided", "attn_layer": "divided_official", "classes": {"head": 10},
                        "frames": 8, "crop": 32},
    "mformer_epic": {"attention": "trajectory", "classes": {"head0": 97, "head1": 300}, "num_classes": 397,
                     "dataset": "epic_kitchens100"},
    "xvit_k600": {"attention": "xvit", "frames": 16, "crop": 32, "shift_segment": 8, "shift_fraction": 0.25,
                  "temporal_table_frames": 8, "unused": ["new_fc.bias", "new_fc.weight"]},
    "xvit_ssv2": {"attention": "xvit", "frames": 16, "shift_segment": 16, "shift_fraction": 0.5,
                  "temporal_table_frames": 8, "dataset": "ssv2"},
}


def test_every_variant_the_proof_needs_has_a_golden_file():
    assert set(VARIANTS) == set(EXPECTED)
    for name in VARIANTS:
        assert (GOLDEN / f"{name}.io.safetensors").is_file(), name
        assert checkpoint_file(name).stat().st_size < 400_000, f"{name}: golden files stay small"


@pytest.mark.parametrize("name", VARIANTS)
def test_golden_checkpoint_gives_the_authors_logits(name):
    video, official, meta = golden_io(name)
    model = golden_model(name)
    description = load_released(model, checkpoint_file(name))
    assert description["layout"] == name.split("_")[0] and set(DESCRIPTION_KEYS) <= set(description)
    with torch.no_grad():
        ours = model(video)
    assert ours.shape == official.shape
    assert relative_error(ours, official) < 1e-10, meta["official_repository"]


@pytest.mark.parametrize("name", VARIANTS)
def test_the_file_describes_itself(name):
    description = describe_released(checkpoint_file(name))
    assert {k: description[k] for k in EXPECTED[name]} == EXPECTED[name]
    assert description["epoch"] == 0 and description["config"] is not None  # the authors' save_checkpoint's entries
    assert "optimizer_state" in description["other_entries"]
    assert LAYOUTS[description["layout"]].recognise(torch.load(checkpoint_file(name), weights_only=True))


def _load_unchecked(model, name):
    """The converted weights loaded without the reader's checks, to see what another variant would compute."""
    layout = LAYOUTS[name.split("_")[0]]
    model.load_state_dict(layout.convert(torch.load(checkpoint_file(name), weights_only=True), model))
    with torch.no_grad():
        return model(golden_io(name)[0])


@pytest.mark.parametrize("name, other", [
    ("mformer_trajectory", {"attn_kwargs": {"stage_two_values": "projected"}}),  # the paper's stage two
    ("xvit_k600", {"attn_kwargs": {"shift_fraction": 0.25}}),  # one segment of 16 frames
    ("xvit_ssv2", {"attn_kwargs": {"shift_fraction": 0.5, "shift_segment": 8}}),
])
def test_the_golden_logits_tell_the_variants_apart(name, other):
    official = golden_io(name)[1]
    assert relative_error(_load_unchecked(golden_model(name), name), official) < 1e-10
    assert relative_error(_load_unchecked(golden_model(name, **other), name), official) > 1e-3


def test_the_tiled_temporal_table_is_the_authors():
    """The authors' X-ViT backbone has 8 temporal entries for 16 frames; frame t adds entry t mod 8."""
    model = golden_model("xvit_k600")
    load_released(model, checkpoint_file("xvit_k600"))
    table = torch.load(checkpoint_file("xvit_k600"), weights_only=True)["model_state"]["base_model.temp_embed"]
    assert table.shape[1] == 8 and model.time_embed.shape[1] == 16
    assert torch.equal(model.time_embed[0, 8:], model.time_embed[0, :8])
    assert torch.equal(model.time_embed[0, :8].float(), table[0, :, 0])
