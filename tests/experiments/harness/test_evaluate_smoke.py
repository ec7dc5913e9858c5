"""A paper-shape smoke of ``evaluate``, one per layout, on the CPU: the row's model at the paper's width with random
weights, saved by the test in the authors' layout, tested through the real path (the released reader, the task's data
module, the LightningModule's multi-view test on a Lightning Trainer, the TensorBoard logger, the record) on
generated videos of the dataset's published shape, at the entry's protocol and views, but at a crop of 16 (one patch
a frame; the frames shrunk 1/14, as ``experiments smoke --shrink 14``) and on two videos. The numbers mean nothing
(random weights); the test is that everything runs at the real shapes, and that the record is marked, found and
reported apart from the trained runs.

With ``--evaluate-device cuda`` (``tools/gpu/evaluate.sh``, on a lent GPU) the same runs on one GPU at each entry's
own crop, on frames of the published size: ``evaluate`` at paper shape on a GPU, every layout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from experiments.harness.evaluate import EVALUATED_FROM, evaluate, resolve_evaluation
from experiments.harness.released_weights import find_checkpoint
from experiments.harness.spec import table_spec
from reports.released import HEADING, released_records, released_section

from .released_files import write_released

SHRINK, CROP, VIDEOS = 14, 16, 2
# One entry per layout: Kinetics (PySlowFast views), SSv2 (X-ViT's two segment offsets, logits), Kinetics
# (TokShift's clipped starts, logits), EPIC-KITCHENS-100 (CAST's verb and noun heads, from a DeepSpeed tag folder)
SMOKES = {"mformer": ("mformer_table6b", "mformer", "mformer:k400_motionformer_224_16x4"),
          "xvit": ("xvit_table2", "xvit_attention", "xvit:xvit_b16_16_ss2"),
          "tokshift": ("msca_table2", "tokenshift", "msca:tokshift_b16_8x32x224_k400"),
          "cast": ("cast_table2", "cast", "cast:cast_b16_ek100")}


@pytest.fixture(scope="module")
def device(request) -> str:
    return request.config.getoption("--evaluate-device")


@pytest.fixture(scope="module")
def paper_shape(tmp_path_factory, device):
    """{dataset: its generated root} for two validation videos (EPIC: action segments) each."""
    from data.synthetic.paper_shape import ensure_paper_shape

    cache = tmp_path_factory.mktemp("paper_shape")
    shrink = SHRINK if device == "cpu" else 1
    return lambda dataset: ensure_paper_shape(dataset, cache, num_train=1, num_val=VIDEOS, shrink=shrink)


@pytest.mark.slow
@pytest.mark.parametrize("layout", SMOKES)
def test_evaluate_runs_each_layout_at_paper_shape(layout, tmp_path, paper_shape, device):
    table, row, name = SMOKES[layout]
    entry = find_checkpoint(name)
    tested = entry if device == "cuda" else dataclasses.replace(
        entry, protocol=dataclasses.replace(entry.protocol, crop=CROP, short_side=CROP))
    trainer = {"accelerator": "cpu"} if device == "cpu" else {"accelerator": "gpu", "devices": 1}
    folder = tmp_path / "weights"
    source = folder / entry.file
    data_root = tmp_path / "data"
    data_root.mkdir()
    probe = resolve_evaluation(table, row, str(source), entry=tested)
    (data_root / probe.cfg.data.dataset).symlink_to(paper_shape(probe.cfg.data.dataset))
    evaluation = resolve_evaluation(table, row, str(source), data_root=data_root, entry=tested,
                                    overrides={"trainer": trainer, "data": {"num_workers": 0}})
    write_released(evaluation, folder, tiny=False, deepspeed=layout == "cast")
    record = evaluate(evaluation, runs_root=tmp_path / "runs", progress_bar=False, echo=lambda _: None)

    assert record["evaluated_from"] == EVALUATED_FROM and record["test_videos"] == VIDEOS
    released = record["released"]
    assert (released["name"], released["layout"], released["file"]) == (name, layout, str(source))
    assert len(released["sha256"]) == 64 and released["protocol"]["temporal_views"] == entry.protocol.temporal_views
    assert record["provenance"]["test_views"]["per_video"] == entry.protocol.temporal_views * \
        entry.protocol.spatial_views
    cell = evaluation.cell
    expected = {"top1"} if layout != "cast" else {"verb_top1", "noun_top1", "action_top1"}
    assert expected <= set(record["metrics"]) and record["column"] == cell.run
    run_dir = evaluation.folder(tmp_path / "runs").path
    assert run_dir == tmp_path / "runs" / table / row / "released" / f"paper-{Path(run_dir).name.split('-', 1)[1]}"
    assert (run_dir / "metrics.json").is_file() and list(run_dir.glob("events.out.tfevents.*"))
    found = released_records(table, tmp_path / "runs", None)
    assert [r["released"]["name"] for r in found] == [name]
    section = "\n".join(released_section(table_spec(table), found))
    assert section.startswith(HEADING) and f"`{name}`" in section
    again = evaluate(evaluation, runs_root=tmp_path / "runs", progress_bar=False, echo=lambda _: None)
    assert again.get("cached") and again["metrics"] == record["metrics"]
