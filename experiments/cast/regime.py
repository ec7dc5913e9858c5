"""CAST's tables in the papers' regime (docs/tiny_regime_design.md, amendment 7).

Every CAST table that trains is there (since 2026-11-26): it returns ``in_regime(spec)``. Its tiny scale becomes
``CAST_TINY_REGIME`` (the regime's sets), every tiny expert source of its rows and columns becomes the shipped one of
the same name (``experiments.cast.shipped``), a column on another set than EK-100's trains that set's epochs, and the
regime's note follows the table's own. The rows themselves, the paper scale and the columns' paper entries do not
change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..presets import REGIME_STAND_INS, TINY_REGIME
from ..harness.spec import MetricColumn, RowSpec, ScalePreset, TableSpec
from .experts import TINY_EXPERTS, expert_source
from .presets import CAST_TINY
from .shipped import SHIPPED, SHIPPED_NOTE, SPATIAL_STAND_INS, regime_source

# Principle 3, the plateau measured outside the table: each set trains the epochs Motionformer's tables in the
# regime train on it (Table 6c on synth_verbnoun; the shared preset on the other two).
REGIME_EPOCHS = {"EK-100": 40, "SSv2": TINY_REGIME.optim.epochs, "K-400": TINY_REGIME.optim.epochs}

CAST_TINY_REGIME = dataclasses.replace(
    CAST_TINY,
    description="tiny: CAST with 96-d experts of 4 blocks and 6 heads, 8x32x32 clips in 8x8 patches, experts from "
                "the shipped stand-ins (experiments/tiny_pretraining/weights/), frozen except adapters, B-CAST, last "
                "LayerNorms and heads; AdamW, cosine schedule, 40 epochs on synth_verbnoun and 10 on the other "
                "sets, on CPU",
    data={key: REGIME_STAND_INS[key] for key in REGIME_EPOCHS},
    optim=dataclasses.replace(CAST_TINY.optim, epochs=REGIME_EPOCHS["EK-100"]),  # its official warm-up and end
    papers_regime=True,
)

REGIME_NOTE = (
    f"{SHIPPED_NOTE} Every row trains {REGIME_EPOCHS['EK-100']} epochs on `synth_verbnoun`, past the ~20-epoch "
    f"plateau of its verbs, and {REGIME_EPOCHS['SSv2']} on `synth_motion_pairs` and `synth_objects`: the epochs "
    f"Motionformer's tables in the regime train on each set (docs/tiny_regime_design.md, amendment 7).")

# Each earlier tiny expert's source -> its name, so that the same expert is named at the new scale.
_EARLIER_NAMES = {expert_source(name): name for name in TINY_EXPERTS}


def _regime_pretrained(pretrained: Any, where: str) -> Any:
    if isinstance(pretrained, Mapping):
        return {part: _regime_pretrained(source, f"{where}.{part}") for part, source in pretrained.items()}
    name = _EARLIER_NAMES.get(pretrained)
    if name is None or (name not in SPATIAL_STAND_INS and name not in SHIPPED):
        raise ValueError(f"{where}: the tiny source {pretrained!r} has no shipped expert in the regime")
    return regime_source(name)


def _regime_entry(scales: Mapping[str, Mapping[str, Any]], where: str, data_key: str | None = None
                  ) -> dict[str, Mapping[str, Any]]:
    """A row's or column's per-scale entries with its tiny sources shipped ones and, for a column, its set's
    epochs."""
    entry = dict(scales.get("tiny", {}))
    if "pretrained" in entry:
        entry["pretrained"] = _regime_pretrained(entry["pretrained"], where)
    if data_key is not None and REGIME_EPOCHS[data_key] != CAST_TINY_REGIME.optim.epochs:
        entry["optim"] = {**entry.get("optim", {}), "epochs": REGIME_EPOCHS[data_key]}
    return {**scales, "tiny": entry} if entry else dict(scales)


def _regime_column(column: MetricColumn, rows: tuple[RowSpec, ...], table_id: str) -> MetricColumn:
    data_keys = {column.data_key(row) for row in rows}
    if len(data_keys) != 1:
        raise ValueError(f"{table_id}: column {column.column!r} reads several sets {sorted(data_keys)}")
    where = f"{table_id}: column {column.column!r}"
    return dataclasses.replace(column, scales=_regime_entry(column.scales, where, data_keys.pop()))


def in_regime(spec: TableSpec) -> TableSpec:
    """``spec`` at the tiny scale of the papers' regime (module doc), its notes followed by the regime's."""
    rows = tuple(dataclasses.replace(row, scales=_regime_entry(row.scales, f"{spec.table_id}: row {row.key!r}"))
                 for row in spec.rows)
    columns = tuple(_regime_column(column, rows, spec.table_id) for column in spec.metric_columns)
    scales: dict[str, ScalePreset] = {**spec.scales, "tiny": CAST_TINY_REGIME}
    return dataclasses.replace(spec, rows=rows, metric_columns=columns, scales=scales,
                               notes=f"{spec.notes} {REGIME_NOTE}".strip())
