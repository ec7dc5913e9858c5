"""Table 4's and Figure 3's divided row: at paper scale the official block (``divided_official``), what the authors'
``configs/*/divided_224_16x4.yaml`` builds, the model behind the paper's numbers and the released divided
checkpoints (its parameters and optimizer groups against the authors' model: tests/parity/test_mformer_optim.py); at
tiny scale Eq. 3's block (``divided``), the experiment its tracked records hold, so they still fill the row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from experiments.harness.plan import resolve_runs
from experiments.harness.records import experiment_key
from models import create_model
from models.attention.divided import DividedSpaceTimeAttention, OfficialDividedSpaceTimeAttention

RESULTS = Path(__file__).resolve().parents[3] / "reports" / "results"
TABLES = ("mformer_table4", "mformer_figure3")


@pytest.mark.parametrize("table", TABLES)
def test_the_paper_scale_divided_row_trains_the_official_block(table):
    runs = resolve_runs(table, "paper", rows=["divided"], data_root="/datasets")
    assert runs and {c.model.overrides["attn_layer"] for c in runs} == {"divided_official"}
    cfg = runs[0]
    with torch.device("meta"):
        official = create_model(cfg.model.name, **cfg.model.overrides)
        eq3 = create_model(cfg.model.name, **{**cfg.model.overrides, "attn_layer": "divided"})
    assert all(isinstance(b.attn, OfficialDividedSpaceTimeAttention) for b in official.blocks)
    # the temporal stage is a residual branch of its own, with its own LayerNorm (the authors' norm3)
    assert all(isinstance(b.pre_attn.norm, torch.nn.LayerNorm) for b in official.blocks)
    names = {n for n, _ in official.named_parameters()}
    assert len(names) - len(list(eq3.parameters())) == 2 * len(official.blocks)  # norm3's weight and bias
    assert {n for n in names if ".norm3" in n or "pre_attn.norm." in n} == {
        f"blocks.{i}.pre_attn.norm.{w}" for i in range(len(official.blocks)) for w in ("weight", "bias")}


@pytest.mark.parametrize("table", TABLES)
def test_the_tiny_divided_row_is_the_experiment_of_its_tracked_records(table):
    runs = {(c.column, c.seed): c for c in resolve_runs(table, "tiny", rows=["divided"], seeds=5)}
    assert {c.model.overrides["attn_layer"] for c in runs.values()} == {"divided"}
    records = [json.loads(p.read_text()) for p in sorted((RESULTS / table / "divided").glob("seed*/tiny-*.json"))]
    assert records, f"no tracked record of {table}/divided"
    for record in records:
        cfg = runs[(record["column"], record["seed"])]
        assert experiment_key(record["config"]) == experiment_key(cfg.to_dict()), (record["column"], record["seed"])
    with torch.device("meta"):
        model = create_model(cfg.model.name, **cfg.model.overrides)
    assert all(isinstance(b.attn, DividedSpaceTimeAttention) and b.pre_attn is None for b in model.blocks)
