"""The repository's own experiment: is every synthetic set learnable by the tiny model in minutes on CPU?

Registered like a paper table (``python -m experiments run synthetic_learnability``; the summary with chance
levels is ``python -m experiments.synthetic_learnability``): one row per synthetic set, the tiny Motionformer
(trajectory attention) with the shared tiny preset, so a run identical to a table's (Table 4's Motionformer row on
the appearance and motion sets, Table 6c's on the verb-noun set) is reused, not retrained.
"""

from __future__ import annotations

import dataclasses

from ..mformer.tables import TRAJECTORY
from ..presets import REGIME_STAND_INS, TINY, TINY_REGIME, TINY_STAND_INS
from ..harness.spec import MetricColumn, RowSpec, TableSpec, register_experiment

# The verb-noun set trains 40 epochs, as Motionformer Table 6c's tiny schedule: verbs leave a plateau late. The sets
# of the tiny scale in the papers' regime start from its image stand-in, as Table 4's runs on them do.
SCHEDULES = {"synth_verbnoun": {"optim": {"epochs": 40}},
             **{data.dataset: {"pretrained": TINY_REGIME.model.pretrained} for key, data in REGIME_STAND_INS.items()
                if data is not TINY_STAND_INS[key]}}


@register_experiment
def synthetic_learnability() -> TableSpec:
    # keyed by the set's own name: the earlier tiny scale's sets, then the regime's new ones
    stand_ins = {data.dataset: data for data in (*TINY_STAND_INS.values(), *REGIME_STAND_INS.values())}
    rows = tuple(RowSpec(name, i, f"tiny Motionformer on {name}", TRAJECTORY, dataset=name,
                         scales={"tiny": SCHEDULES[name]} if name in SCHEDULES else {})
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
