"""CAST's move to the papers' regime (experiments.cast.regime; the design's amendment 7): a table there reads the
regime's sets and only shipped experts, trains each set's epochs, and keeps its rows and its paper scale. Every CAST
table that trains is there."""

from __future__ import annotations

import pytest

from experiments import table_spec
from experiments.cast.experts import experts
from experiments.cast.presets import SCALES_ABLATION
from experiments.cast.regime import CAST_TINY_REGIME, REGIME_EPOCHS, REGIME_NOTE, in_regime
from experiments.cast.shipped import regime_source
from experiments.harness.plan import resolve_runs
from experiments.presets import REGIME_STAND_INS
from experiments.harness.spec import MetricColumn, RowSpec, TableSpec

CAST_TABLES = [f"cast_table1{c}" for c in "abcdefgh"] + [f"cast_table{i}" for i in (2, 5, 6, 7, 8, 9, 10, 11)]


def _runs(spec: TableSpec, scale: str) -> dict:
    return {(row.key, column.run_name): spec.resolve(row, column, scale, 0, "/datasets") for row, column in spec.runs()}


def _table(*columns: MetricColumn, rows=None, notes: str = "") -> TableSpec:
    rows = rows or (RowSpec("cast", 0, "CAST", scales=experts()),
                    RowSpec("mvd", 1, "CAST + MVD", {"temporal_expert": "mvd"}, scales=experts("clip", "mvd_ek100")))
    return TableSpec(table_id="cast_table7", rows=rows, metric_columns=columns, scales=SCALES_ABLATION, notes=notes)


def test_a_table_in_the_regime_names_the_same_experts_shipped_and_each_set_its_epochs():
    spec = in_regime(_table(MetricColumn("Verb", "verb_top1", dataset="EK-100", run="EK-100"),
                            MetricColumn("SSv2", "top1", dataset="SSv2", run="SSv2")))
    assert spec.scales["tiny"] is CAST_TINY_REGIME and spec.scales["paper"] is SCALES_ABLATION["paper"]
    runs = _runs(spec, "tiny")
    assert runs[("mvd", "EK-100")].model.pretrained == {"spatial": regime_source("clip"),
                                                        "temporal": regime_source("mvd_ek100")}
    assert runs[("cast", "SSv2")].optim.epochs == REGIME_EPOCHS["SSv2"] == 10
    assert runs[("cast", "EK-100")].optim.epochs == REGIME_EPOCHS["EK-100"] == 40
    assert runs[("cast", "SSv2")].data.dataset == REGIME_STAND_INS["SSv2"].dataset == "synth_motion_pairs"
    earlier = _runs(_table(MetricColumn("Verb", "verb_top1", dataset="EK-100", run="EK-100"),
                           MetricColumn("SSv2", "top1", dataset="SSv2", run="SSv2")), "paper")
    assert {key: cfg.to_dict() for key, cfg in earlier.items()} == {
        key: cfg.to_dict() for key, cfg in _runs(spec, "paper").items()}


def test_the_regimes_note_follows_the_tables_own():
    spec = in_regime(_table(MetricColumn("Verb", "verb_top1", dataset="EK-100", run="EK-100"),
                            notes="Our own note."))
    assert spec.notes == f"Our own note. {REGIME_NOTE}"


def test_an_expert_with_no_shipped_stand_in_is_refused_by_name():
    """A tiny source that no earlier expert names (here a local file) has no stand-in in the regime."""
    local = {"tiny": {**experts()["tiny"], "pretrained": {**experts()["tiny"]["pretrained"], "spatial": "my/clip.pt"}}}
    rows = (RowSpec("local", 0, "a local CLIP", scales={**experts(), **local}),)
    with pytest.raises(ValueError, match="cast_table7: row 'local'.*'my/clip.pt' has no shipped expert"):
        in_regime(_table(MetricColumn("Verb", "verb_top1", dataset="EK-100", run="EK-100"), rows=rows))


@pytest.mark.parametrize("table_id", CAST_TABLES)
def test_every_cast_table_trains_in_the_regime_on_shipped_experts(table_id):
    assert table_spec(table_id).scales["tiny"] is CAST_TINY_REGIME
    for cfg in resolve_runs(table_id, "tiny"):
        for source in cfg.model.pretrained.values():
            assert source.split(":", 1)[0] in ("tiny_image", "tiny_expert"), (table_id, cfg.row, source)
        assert cfg.data.dataset == REGIME_STAND_INS[cfg.column].dataset
