"""``python -m experiments evaluate ID --rows ROW --checkpoint SOURCE --dry-run`` resolves for every cell of every
catalogue entry: the file (written by the test in the authors' layout, at the paper's width, a few kilobytes) is
recognised, holds what the entry says, and fits the row's model with the entry's options at the entry's protocol.
Each refusal (another variant, dataset, layout; a truncated file; a pickle that would run code) is one line naming
the file, and nothing is written."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from experiments.__main__ import main
from experiments.harness.evaluate import resolve_evaluation
from experiments.harness.released_weights import catalogue, find_checkpoint
from tests.faults.test_weights_never_run_code import Reduces

from .released_files import write_released

CELLS = [(entry.full_name, cell.table, cell.row) for entry in catalogue() for cell in entry.cells]


def evaluate_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["evaluate", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name, table, row", CELLS, ids=[f"{n}@{t}/{r}" for n, t, r in CELLS])
def test_the_dry_run_resolves_every_catalogue_cell(name, table, row, tmp_path, capsys):
    entry = find_checkpoint(name)
    evaluation = resolve_evaluation(table, row, name, weights_dir=tmp_path)
    write_released(evaluation, tmp_path, deepspeed=entry.layout == "cast" and "k400" in name)
    code, out, err = evaluate_cli(capsys, table, "--rows", row, "--checkpoint", name, "--weights-dir",
                                  str(tmp_path), "--runs-dir", str(tmp_path / "runs"), "--dry-run")
    assert code == 0, err
    assert f"recognised as layout {entry.layout}" in out and "it fits the row's model" in out
    protocol = entry.protocol
    assert f"views: {protocol.temporal_views} temporal x {protocol.spatial_views} spatial" in out
    assert f"frames of {protocol.crop} x {protocol.crop}" in out
    assert "data: " in out and "missing, pass --data-root" in out  # no --data-root: it says what it would read
    assert not (tmp_path / "runs").exists(), "a dry run writes nothing"


def test_the_evaluation_is_the_rows_paper_configuration_with_the_protocol():
    """The X-ViT SSv2 row (1 x 3 views in its own recipe) evaluated at the released file's 2 x 3 views, its
    offsets and logits; the Motionformer Table 4 trajectory row with the original stage two merged into its
    options; one video a batch, full precision on one device, no pretrained weights to load."""
    xvit = resolve_evaluation("xvit_table2", "xvit_attention", "xvit:xvit_b16_16_ss2").cfg
    assert (xvit.scale, xvit.data.test_clips, xvit.data.test_crops, xvit.data.test_view_average) == (
        "paper", 2, 3, "logits")
    assert xvit.data.options["segment_view_offsets"] == (0.5, 0.0) and "dense_convention" not in xvit.data.options
    assert xvit.data.options["segment_convention"] == "pyslowfast"  # their get_seq_frames' segments
    assert (xvit.data.batch_size, xvit.trainer.devices, xvit.trainer.precision) == (1, 1, "32-true")
    mformer = resolve_evaluation("mformer_table4", "traj_attT_normS", "mformer:k400_motionformer_224_16x4").cfg
    assert mformer.model.overrides["attn_kwargs"] == {"temporal_pool": "attention", "normalize": "space",
                                                      "stage_two_values": "trajectory"}
    assert mformer.model.pretrained is None and mformer.data.options["dense_convention"] == "pyslowfast_pyav"
    assert "segment_convention" not in mformer.data.options
    hr = resolve_evaluation("mformer_table6b", "mformer_hr", "mformer:k400_motionformer_336_16x8").cfg
    assert (hr.data.crop_size, hr.data.frame_stride, hr.data.options["test_short_side"]) == (336, 8, 336)
    tokshift = resolve_evaluation("msca_table2", "tokenshift", "msca:tokshift_b16_8x32x224_k400").cfg
    assert tokshift.model.overrides["shift_order"] == "official"
    assert tokshift.data.options["dense_convention"] == "tokshift" and tokshift.data.test_view_average == "logits"
    with_options = resolve_evaluation("msca_table2", "vit", "msca:vit_b16_8x32x224_k400",
                                      overrides={"trainer": {"devices": 4, "strategy": "ddp"},
                                                 "data": {"batch_size": 2}})
    assert (with_options.cfg.trainer.devices, with_options.cfg.trainer.strategy,
            with_options.cfg.data.batch_size) == (4, "ddp", 2)


def test_a_file_path_takes_the_entry_of_its_cell(tmp_path):
    path = tmp_path / "downloaded.pyth"
    evaluation = resolve_evaluation("mformer_table6c", "mformer_l", str(path))
    assert evaluation.entry.full_name == "mformer:ek_motionformer_224_32x3" and evaluation.source == path
    named = resolve_evaluation("mformer_table4", "joint", str(tmp_path / "ssv2_joint_224_16x4.pyth"))
    assert named.entry.full_name == "mformer:ssv2_joint_224_16x4"  # the file's name picks among the row's entries
    by_column = resolve_evaluation("mformer_table4", "joint", str(path), column="K-400")
    assert by_column.entry.full_name == "mformer:k400_joint_224_16x4"


@pytest.mark.parametrize("args, message", [
    (["mformer_table4", "--rows", "joint", "--checkpoint", "mformer:k400_motionfomer_224_16x4"],
     "no released checkpoint 'mformer:k400_motionfomer_224_16x4' in the catalogue; did you mean "
     "mformer:k400_motionformer_224_16x4"),
    (["mformer_table4", "--rows", "joint", "--checkpoint", "mformer:k400_motionformer_224_16x4"],
     "mformer:k400_motionformer_224_16x4 fills mformer_table6b/mformer/Top-1+Top-5, "),
    (["mformer_table4", "--rows", "avg", "--checkpoint", "x.pyth"], "mformer_table4: unknown row 'avg'"),
    (["mformer_table4", "--rows", "traj_avgT_normS", "--checkpoint", "x.pyth"],
     "x.pyth: no released checkpoint in the catalogue fills mformer_table4 row traj_avgT_normS"),
    (["mformer_table4", "--rows", "joint", "--checkpoint", "x.pyth"], "several released checkpoints"),
    (["mformer_table6b", "--rows", "mformer", "--checkpoint", "mformer:k400_motionformer_224_16x4", "--column",
      "SSv2"], "fills the column(s) Top-1, Top-5 of mformer_table6b row mformer, not 'SSv2'"),
])
def test_a_checkpoint_that_fills_no_such_cell_is_one_line(args, message, capsys, tmp_path):
    code, out, err = evaluate_cli(capsys, *args, "--runs-dir", str(tmp_path / "runs"))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def _refused(capsys, tmp_path, table: str, row: str, name: str, *fragments: str) -> str:
    """``evaluate`` of the entry ``name`` (its file in tmp_path) refuses in one line naming the file and each
    fragment, before anything is written."""
    runs = tmp_path / "runs"
    code, out, err = evaluate_cli(capsys, table, "--rows", row, "--checkpoint", name, "--weights-dir",
                                  str(tmp_path), "--runs-dir", str(runs), "--data-root", str(tmp_path))
    entry = find_checkpoint(name)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert str(tmp_path / entry.file) in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not runs.exists(), "nothing is written on a refusal"
    return err


def _place(evaluation, tmp_path, as_entry: str, **changes):
    """``evaluation``'s file written under the file name of the entry ``as_entry`` (changes: to the evaluation)."""
    path = write_released(dataclasses.replace(evaluation, **changes), tmp_path / "written")
    path.rename(tmp_path / find_checkpoint(as_entry).file)


def test_a_checkpoint_of_another_variant_is_refused(tmp_path, capsys):
    joint = resolve_evaluation("mformer_table4", "joint", "mformer:k400_joint_224_16x4")
    _place(joint, tmp_path, "mformer:k400_motionformer_224_16x4")
    _refused(capsys, tmp_path, "mformer_table6b", "mformer", "mformer:k400_motionformer_224_16x4",
             "variant joint in the file, trajectory expected")


def test_a_checkpoint_of_another_dataset_is_refused(tmp_path, capsys):
    k600 = resolve_evaluation("mformer_table6d", "mformer", "mformer:k600_motionformer_224_16x4")
    _place(k600, tmp_path, "mformer:k400_motionformer_224_16x4")
    _refused(capsys, tmp_path, "mformer_table6b", "mformer", "mformer:k400_motionformer_224_16x4",
             "classes 600 in the file, 400 expected")


def test_the_other_tokshift_network_is_refused_by_its_entry_and_its_file_name(tmp_path, capsys):
    """TokShift's ViT and TokShift files differ in no weight, so what tells them apart is the catalogue: a name,
    or the authors' file name, of the other network's entry is refused on the row, naming the file."""
    code, _, err = evaluate_cli(capsys, "msca_table2", "--rows", "tokenshift", "--checkpoint",
                                "msca:vit_b16_8x32x224_k400", "--runs-dir", str(tmp_path / "runs"))
    assert code == 2 and "msca:vit_b16_8x32x224_k400 fills msca_table2/vit/top-1+top-5" in err
    vit = resolve_evaluation("msca_table2", "vit", "msca:vit_b16_8x32x224_k400", weights_dir=tmp_path)
    path = write_released(vit, tmp_path)
    code, _, err = evaluate_cli(capsys, "msca_table2", "--rows", "tokenshift", "--checkpoint", str(path),
                                "--runs-dir", str(tmp_path / "runs"))
    assert code == 2 and err.count("\n") == 1 and str(path) in err, err
    assert "the file name of msca:vit_b16_8x32x224_k400, which fills msca_table2/vit" in err
    assert not (tmp_path / "runs").exists()


def test_a_checkpoint_of_another_layout_is_refused(tmp_path, capsys):
    xvit = resolve_evaluation("xvit_table2", "xvit_attention", "xvit:xvit_b16_16_ss2")
    _place(xvit, tmp_path, "mformer:ssv2_motionformer_224_16x4")
    _refused(capsys, tmp_path, "mformer_table6a", "mformer", "mformer:ssv2_motionformer_224_16x4",
             "layout 'mformer'", "the file is a checkpoint of X-ViT")


def test_a_truncated_file_is_refused(tmp_path, capsys):
    evaluation = resolve_evaluation("cast_table2", "cast", "cast:cast_b16_ssv2")
    path = write_released(evaluation, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    _refused(capsys, tmp_path, "cast_table2", "cast", "cast:cast_b16_ssv2", "not a readable PyTorch checkpoint")


def test_a_pickle_that_would_run_code_is_refused_and_runs_none(tmp_path, capsys):
    entry = find_checkpoint("xvit:xvit_b16_16_k600")
    marker = tmp_path / "code_ran"
    torch.save({"model_state": {"base_model.cls_token": Reduces(marker)}, "cfg": ""}, tmp_path / entry.file)
    _refused(capsys, tmp_path, "xvit_kinetics600", "xvit", entry.full_name, "refused")
    assert not marker.exists()


def test_a_missing_file_says_where_to_get_it(tmp_path, capsys):
    _refused(capsys, tmp_path, "xvit_kinetics600", "xvit", "xvit:xvit_b16_16_k600", "no such file",
             "https://www.adrianbulat.com/downloads/NeurIPS2021/models/xvit_b16_16_k600.pth")


def test_missing_data_stops_the_evaluation_before_anything_is_written(tmp_path, capsys):
    evaluation = resolve_evaluation("xvit_table2", "xvit_attention", "xvit:xvit_b16_16_ss2", weights_dir=tmp_path)
    write_released(evaluation, tmp_path)
    code, _, err = evaluate_cli(capsys, "xvit_table2", "--rows", "xvit_attention", "--checkpoint",
                                "xvit:xvit_b16_16_ss2", "--weights-dir", str(tmp_path), "--runs-dir",
                                str(tmp_path / "runs"), "--data-root", str(tmp_path / "data"))
    assert code == 2 and err.count("\n") == 1, err
    assert f"xvit:xvit_b16_16_ss2 is tested on ssv2, not found at {tmp_path / 'data' / 'ssv2'}" in err
    assert not (tmp_path / "runs").exists()
