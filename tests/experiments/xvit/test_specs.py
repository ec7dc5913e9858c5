"""X-ViT's specs (supplementary Tables 1-2 and Figure 1): Table 2's rows pair a shift with an aggregation; Figure 1
tests one trained model with more crops; Table 1 measures videos per second."""

import dataclasses

import pytest
import torch

from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import RunDir
from experiments.harness.runner import run_table
from experiments.harness.spec import table_spec
from experiments.xvit import tables as xvit
from tests.experiments.msca.test_specs import MICRO, configs


def test_xvit_table2_rows_pair_the_shift_with_the_aggregation():
    rows = {r: c.model.overrides for (r, _), c in configs("xvit_table2").items()}
    assert rows["tsm_vit_average"]["temporal_shift"] == "all" and "attn_layer" not in rows["tsm_vit_average"]
    assert rows["xvit_attention"]["attn_layer"] == "xvit"
    assert {r: o["temporal_aggregation"] for r, o in rows.items()} == {
        "tsm_vit_average": "average", "xvit_average": "average", "tsm_vit_attention": "attention",
        "xvit_attention": "attention"}


@pytest.mark.slow  # trains and tests the figure's run end to end
def test_figure1_tests_the_one_trained_model_with_more_crops(tmp_path):
    """The evaluation columns load the trained column's checkpoint: with that column's own views, the evaluation
    reproduces its test metrics exactly (a fresh model would not)."""
    runs = tmp_path / "runs"
    records = run_table("xvit_figure1", runs_root=runs, overrides=MICRO, progress_bar=False, echo=lambda _: None)
    assert [r["column"] for r in records] == [f"{k}x3 views" for k in xvit.FIGURE1_CROPS]
    trained = records[0]
    cfg = next(c for c in resolve_runs("xvit_figure1", overrides=MICRO) if c.column == trained["column"])
    again = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, task=xvit.TEST_VIEWS.name))
    checkpoint = RunDir.of(cfg, runs).path / "checkpoints" / "last.ckpt"
    assert {r["provenance"]["accelerator"] for r in records} == {"CPUAccelerator"}  # evaluations name theirs too
    metrics, _ = xvit.TEST_VIEWS.evaluate(again, str(checkpoint), torch.device("cpu"))
    assert metrics["loss"] == pytest.approx(trained["metrics"]["loss"], rel=1e-5)
    assert metrics["top1"] == trained["metrics"]["top1"]
    fresh, _ = xvit.TEST_VIEWS.evaluate(again, None, torch.device("cpu"))
    assert fresh["loss"] != pytest.approx(trained["metrics"]["loss"], rel=1e-5)
    assert all(not (RunDir.of(cfg, runs).path.parent / f"tiny-{k}x3_views" / "checkpoints").exists()
               for k in xvit.FIGURE1_CROPS[1:])  # evaluations train nothing


def test_table1_measures_videos_per_second_and_names_the_device(monkeypatch):
    spec = table_spec("xvit_table1")
    tiny = resolve_runs("xvit_figure1")[0]
    monkeypatch.setattr(xvit, "paper_config", lambda spec, row: tiny)  # the tiny model: seconds, not minutes
    cell = xvit.videos_per_second(spec, spec.rows[-1])
    assert cell.value > 0 and cell.source.startswith("measured on ") and cell.source.endswith(" thread(s)")
    assert "8x32²" in cell.text
