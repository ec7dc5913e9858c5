"""The repository's own experiment: is every synthetic set learnable by the tiny model in minutes on CPU?

Registered like a paper table (``python -m experiments run synthetic_learnability``; the summary with chance
levels is ``python -m experiments.synthetic_learnability``): one row per synthetic set, the tiny Motionformer
(trajectory attention) with the shared tiny preset, so a run identical to a table's (Table 4's Motionformer row on
the object and motion-pair sets) is reused, not retrained.
"""

from __future__ import annotations

import dataclasses

from ..harness.spec import MetricColumn, RowSpec, TableSpec, register_experiment
from ..mformer.tables import TRAJECTORY
from ..presets import TINY, TINY_STAND_INS

# The sets that stand in for Kinetics and SSv2 start from the image stand-in, as the tables' runs on them do (Table
# 4's Motionformer rows are these runs). The verb-noun and pose sets are learned from scratch, the stricter check:
# no image pretraining has seen their objects; the verb-noun set trains 40 epochs, as Table 6c's tiny schedule,
# because its verbs leave a plateau late.
FROM_SCRATCH = {"synth_verbnoun": {"pretrained": None, "optim": {"epochs": 40}}, "synth_pose": {"pretrained": None}}


@register_experiment
def synthetic_learnability() -> TableSpec:
    stand_ins = {data.dataset: data for data in TINY_STAND_INS.values()}  # by the set's own name
    rows = tuple(RowSpec(name, i, f"tiny Motionformer on {name}", TRAJECTORY, dataset=name,
                         scales={"tiny": FROM_SCRATCH[name]} if name in FROM_SCRATCH else {})
                 for i, name in enumerate(stand_ins))
    return TableSpec(
        table_id="synthetic_learnability",
        rows=rows,
        # the verb-noun set logs no top1 but verb, noun and action top-1: columns read from the same run
        metric_columns=(MetricColumn("top-1", "top1"), *(MetricColumn(f"{name} top-1", f"{name}_top1", run="top-1")
                                                         for name in ("verb", "noun", "action"))),
        scales={"tiny": dataclasses.replace(TINY, data=stand_ins)},
        is_paper_table=False,
        notes="Not a paper table: a check that each generated set carries a signal the tiny model learns.",
    )
