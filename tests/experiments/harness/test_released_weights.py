"""The catalogue of released checkpoints (``experiments/<paper>/released_weights.yaml``): it covers every released
file of the four papers with code, reads the paper's numbers from the inventory, and a wrong type, a missing field or
a name the specs do not have is one line naming the file and the entry. ``python -m experiments weights`` lists it."""

from __future__ import annotations

import json

import pytest
import yaml

from experiments.__main__ import main
from experiments.harness import released_weights as catalogue_module
from experiments.harness.released_weights import CatalogueError, catalogue, find_checkpoint, paper_catalogue
from experiments.paper_tables import paper_table

# Every file of the authors' READMEs: Motionformer's 16 (K400 5, K600 3, SSv2 5, EPIC 3), X-ViT's 2, TokShift's 7 (the
# ViT and TokShift 224 x 8 K400 files MSCA's tables start from, and its other sizes), CAST's 3.
RELEASED = {
    "mformer": {"k400_joint_224_16x4", "k400_divided_224_16x4", "k400_motionformer_224_16x4",
                "k400_motionformer_336_16x8", "k400_motionformer_224_32x3", "k600_motionformer_224_16x4",
                "k600_motionformer_336_16x8", "k600_motionformer_224_32x3", "ssv2_joint_224_16x4",
                "ssv2_divided_224_16x4", "ssv2_motionformer_224_16x4", "ssv2_motionformer_336_16x4",
                "ssv2_motionformer_224_32x3", "ek_motionformer_224_16x4", "ek_motionformer_336_16x4",
                "ek_motionformer_224_32x3"},
    "xvit": {"xvit_b16_16_k600", "xvit_b16_16_ss2"},
    "msca": {"vit_b16_8x32x224_k400", "tokshift_b16_8x32x224_k400", "tokshift_b16_8x32x256_k400",
             "tokshift_b16_8x32x384_k400", "tokshift_b16_16x32x224_k400", "tokshift_l16_8x32x384_k400",
             "tokshift_l16_12x32x384_k400"},
    "cast": {"cast_b16_ek100", "cast_b16_ssv2", "cast_b16_k400"},
}


def test_the_catalogue_covers_every_released_file_of_the_four_papers():
    assert {paper: {e.name for e in paper_catalogue(paper)} for paper in RELEASED} == RELEASED
    for entry in catalogue():
        assert entry.link.startswith("https://") and entry.file, entry.full_name
        assert entry.protocol.source, entry.full_name


def test_the_papers_numbers_are_the_inventorys():
    k400 = find_checkpoint("mformer:k400_motionformer_224_16x4")
    assert [c.paper_numbers() for c in k400.cells] == [{"Top-1": 79.7, "Top-5": 94.2}, {"K-400": 79.7},
                                                       {"Top-1": 79.7, "Top-5": 94.2}]
    ek = find_checkpoint("cast:cast_b16_ek100").cells[0].paper_numbers()
    assert list(ek.values()) == [72.5, 60.9, 49.3]
    assert str(find_checkpoint("msca:tokshift_b16_8x32x224_k400").cells[0].paper_numbers()["top-1"]) == "76.37"
    # a cell the paper leaves blank, and a row of this repository's own, keep the README's number beside it
    ssv2 = find_checkpoint("xvit:xvit_b16_16_ss2")
    assert ssv2.cells[0].paper_numbers() == {"Top-1": None} and ssv2.authors_number["value"] == 67.19
    assert paper_table("xvit_table2").rows[3].cells["Top-1"] is None


def test_where_readme_and_config_disagree_the_config_is_followed_and_said():
    hr = find_checkpoint("mformer:k600_motionformer_336_16x8")
    assert hr.config == "configs/K600/motionformer_336_16x4.yaml" and hr.protocol.stride == 4
    assert "16x4" in hr.note and "16x8" in hr.note
    assert find_checkpoint("mformer:k400_motionformer_336_16x8").protocol.stride == 8


def test_each_protocol_combines_views_as_the_authors_code():
    views = {e.full_name: (e.protocol.view_average, e.protocol.temporal_views, e.protocol.spatial_views)
             for e in catalogue()}
    assert views["mformer:k400_motionformer_224_16x4"] == ("probabilities", 10, 3)  # sum of softmax
    assert views["mformer:ssv2_motionformer_224_16x4"] == ("probabilities", 1, 3)
    assert views["xvit:xvit_b16_16_k600"] == ("logits", 1, 3)  # sum of logits
    assert views["xvit:xvit_b16_16_ss2"] == ("logits", 2, 3)
    assert views["msca:tokshift_b16_8x32x224_k400"] == ("logits", 10, 3)  # mean of logits
    assert views["cast:cast_b16_k400"] == ("probabilities", 5, 3)  # mean of softmax
    assert find_checkpoint("cast:cast_b16_ek100").protocol.scoring.startswith("an action is right when the verb")
    assert find_checkpoint("cast:cast_b16_ek100").protocol.mean == (0.485, 0.456, 0.406)


def _broken(tmp_path, monkeypatch, change) -> str:
    """The message of reading the Motionformer catalogue with ``change`` applied to its data."""
    data = yaml.safe_load(catalogue_module.catalogue_path("mformer").read_text())
    change(data)
    folder = tmp_path / "mformer"
    folder.mkdir()
    (folder / catalogue_module.CATALOGUE_FILE).write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setattr(catalogue_module, "catalogue_path", lambda paper: tmp_path / paper /
                        catalogue_module.CATALOGUE_FILE)
    catalogue_module.paper_catalogue.cache_clear()
    try:
        with pytest.raises(CatalogueError) as caught:
            paper_catalogue("mformer")
    finally:
        catalogue_module.paper_catalogue.cache_clear()
    message = str(caught.value)
    assert "\n" not in message and str(folder / catalogue_module.CATALOGUE_FILE) in message
    return message


@pytest.mark.parametrize("change, fragment", [
    (lambda d: d["checkpoints"][0].pop("link"), "checkpoint k400_joint_224_16x4: missing link"),
    (lambda d: d["checkpoints"][0].update(file=3), "file is int, expected text"),
    (lambda d: d["checkpoints"][0].update(fils=[]), "unknown field(s) ['fils']"),
    (lambda d: d["checkpoints"][0]["expects"].update(variant="traj"), "variant 'traj' is none of the mformer"),
    (lambda d: d["checkpoints"][0]["expects"].update(classes="400"), "classes must be a count"),
    (lambda d: d["checkpoints"][0].update(protocol="kinetic"), "protocol 'kinetic' is none of the file's"),
    (lambda d: d["protocols"]["kinetics"].update(view_average="sum"), "view_average 'sum' is none of"),
    (lambda d: d["protocols"]["kinetics"].update(views={"temporal": 10}), "views must be"),
    (lambda d: d["protocols"]["kinetics"].update(dense_convention="slowfast"), "dense_convention 'slowfast'"),
    (lambda d: d["protocols"]["ssv2"].update(segment_view_offsets=[0.5, 0.0]), "one offset in [0, 1) per"),
    (lambda d: d["protocols"]["kinetics"].update(short_side=200), "short_side 200 is below the crop 224"),
    (lambda d: d["protocols"]["epic"].update(channels="rgb"), "channels 'rgb' is none of RGB, BGR"),
    (lambda d: d["protocols"]["kinetics"].update(crop_axis="height"), "crop_axis 'height' is none of long_side, width"),
    (lambda d: d["protocols"]["epic"].update(segment_placement="slowfast"), "segment_placement 'slowfast' is none"),
    (lambda d: d["protocols"]["ssv2"].update(segment_placement="epic_slowfast"), "places dense clips of dense_conv"),
    (lambda d: d["checkpoints"][0]["fills"][0].update(table="mformer_table44"), "no implemented table"),
    (lambda d: d["checkpoints"][0]["fills"][0].update(row="jointt"), "unknown row 'jointt'"),
    (lambda d: d["checkpoints"][0]["fills"][0].update(columns=["K-400", "SSv2"]), "filled by different runs"),
    (lambda d: d["checkpoints"][1].update(name="k400_joint_224_16x4"), "checkpoint names repeat"),
    (lambda d: d["checkpoints"][2].update(authors_number={"value": "high"}), "authors_number needs a numeric"),
])
def test_a_catalogue_error_is_one_line_naming_the_file_and_the_entry(change, fragment, tmp_path, monkeypatch):
    assert fragment in _broken(tmp_path, monkeypatch, change)


def test_the_weights_command_lists_every_entry_with_its_cells_numbers_protocol_and_link(capsys):
    assert main(["weights", "--paper", "cast"]) == 0
    out = capsys.readouterr().out
    assert "cast:cast_b16_k400" in out and "paper SSV2 & K400 Top-1 / K400 85.3" in out
    assert "5x3 views, crop 224 of short side 224, dense, 16 frames at stride 4, view placement videomae" in out
    assert "cast_k400.pth  <- https://drive.google.com/file/d/16ndsBVNjRuJMRM40P0-a3Q1JVA8tNLK7" in out
    assert main(["weights", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == sum(map(len, RELEASED.values()))
    xvit = next(e for e in listed if e["name"] == "xvit:xvit_b16_16_ss2")
    assert xvit["cells"][0]["paper"] == {"Top-1": None} and xvit["authors_number"]["value"] == 67.19
