"""The synthetic-learnability experiment's runs and its summary: one configuration per synthetic set, and each
record's test top-1 beside chance (read by ``python -m experiments.synthetic_learnability`` and by the data README's
generated table, ``reports.readme``)."""

from __future__ import annotations

from ..harness.plan import resolve_runs
from ..harness.spec import RunConfig, table_spec

EXPERIMENT = "synthetic_learnability"


def synthetic_sets() -> list[str]:
    return [row.key for row in table_spec(EXPERIMENT).rows]


def run_config(name: str, seed: int = 0, epochs: int | None = None) -> RunConfig:
    """The tiny Motionformer on one synthetic set, configured exactly as the tables' rows are."""
    if name not in synthetic_sets():
        raise KeyError(f"unknown synthetic set {name!r}; choose from {', '.join(synthetic_sets())}")
    (cfg,) = resolve_runs(EXPERIMENT, "tiny", [name], seeds=seed + 1, overrides={"optim": {"epochs": epochs}})[seed:]
    return cfg


def summary_rows(record: dict) -> list[list]:
    """[set, metric, top-1, chance, epochs, run] per head (verb, noun and action for a verb-noun set)."""
    classes = record["data"]["num_classes"]
    heads = {"top1": classes} if isinstance(classes, int) else {
        "verb_top1": classes["verb"], "noun_top1": classes["noun"], "action_top1": classes["verb"] * classes["noun"]}
    source = record.get("reused_from") or f"{EXPERIMENT}/{record['row']}"
    return [[record["row"], metric, f"{record['metrics'][metric]:.1f}", f"{100 / k:.1f}",
             record["config"]["optim"]["epochs"], source] for metric, k in heads.items()]
