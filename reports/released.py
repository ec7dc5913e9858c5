"""Cells evaluated from the authors' released weights (``python -m experiments evaluate``): their records, read apart
from the trained runs', and the report's section that shows them beside the paper's numbers.

A record lies under ``runs/<table>/<row>/released/<scale>-<column>/metrics.json`` (local) or, once tracked,
``reports/results/<table>/<row>/released/<scale>-<column>.json``; the trained runs' readers (``reports.records``:
``seed<k>/``) never see it, so a cell from released weights is never mixed with, averaged into or mistaken for one of
our trained cells. For one cell a tracked record wins over a local one, as for trained runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabulate import tabulate

from experiments.evaluate import EVALUATED_FROM, RELEASED_DIR
from experiments.paper_tables import paper_table, paper_tables, printed
from experiments.records import (DamagedRecordError, check_record_shape, local_record_fix, read_json,
                                 tracked_record_fix)
from experiments.spec import TableSpec, column_slug

from .records import RESULTS_DIR

HEADING = "## From the released weights"


def _read(path: Path, fix: str) -> dict[str, Any]:
    record = check_record_shape(read_json(path, fix), path, fix=fix)
    if record.get("evaluated_from") != EVALUATED_FROM or not isinstance(record.get("released"), dict):
        raise DamagedRecordError(f"{path}: a record under {RELEASED_DIR}/ that is not marked as evaluated from "
                                 f"released weights; {fix}")
    return record


def released_records(table_id: str, runs_root: str | Path | None = "runs",
                     results_root: str | Path | None = RESULTS_DIR) -> list[dict[str, Any]]:
    """The table's cells evaluated from released weights, one record per (row, column, scale): tracked first, then
    local; ``_source`` says which. A damaged one raises ``DamagedRecordError`` naming it."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for root, pattern, source in ((results_root, f"{table_id}/*/{RELEASED_DIR}/*.json", "tracked"),
                                  (runs_root, f"{table_id}/*/{RELEASED_DIR}/*/metrics.json", "local")):
        if root is None or not Path(root).is_dir():
            continue
        for path in sorted(Path(root).glob(pattern)):
            fix = tracked_record_fix(path, table_id) if source == "tracked" else local_record_fix(path.parent)
            record = _read(path, fix)
            found.setdefault((record["row"], record["column"], record["scale"]),
                             {**record, "_source": source, "_path": path.as_posix()})
    return [found[key] for key in sorted(found)]


def tracked_released_path(results_root: str | Path, record: dict[str, Any], named_in: str | Path) -> Path:
    """reports/results/<table>/<row>/released/<scale>-<column>.json; a name that would leave ``results_root``
    raises ``DamagedRecordError`` naming the record file."""
    named = (record["table"], record["row"])
    path = Path(results_root) / named[0] / named[1] / RELEASED_DIR / \
        f"{record['scale']}-{column_slug(record['column'])}.json"
    if any(part in ("", ".", "..") or "/" in part or "\\" in part for part in named) or \
            not path.resolve().is_relative_to(Path(results_root).resolve()):
        raise DamagedRecordError(f"{named_in}: table {named[0]!r} / row {named[1]!r} would be tracked at {path}, "
                                 f"outside {results_root}; delete that evaluation's folder")
    return path


def track_released(spec: TableSpec, runs_root: str | Path, results_root: str | Path = RESULTS_DIR) -> list[Path]:
    """Copy the table's local evaluations from released weights into the tracked folder; returns the files."""
    from data.atomic_write import atomic_write_text

    local = released_records(spec.table_id, runs_root, None)
    paths = [tracked_released_path(results_root, r, r["_path"]) for r in local]
    for record, path in zip(local, paths):
        original = {k: v for k, v in record.items() if not k.startswith("_")}
        atomic_write_text(path, json.dumps(original, indent=2, default=str) + "\n")
    return paths


def released_values(spec: TableSpec, records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """{(row key, metric column): {"value", "checkpoint", "paper", "record"}} for each column a record fills."""
    out = {}
    for record in records:
        for column in spec.metric_columns:
            if column.run_name == record["column"] and column.metric in record["metrics"]:
                out[(record["row"], column.column)] = {
                    "value": record["metrics"][column.metric], "checkpoint": record["released"].get("name"),
                    "paper": paper_number(spec, record["row"], column.column), "record": record}
    return out


def paper_number(spec: TableSpec, row: str, column: str) -> Any:
    """The paper's number for a cell, as printed (None: blank, or a row of this repository's own)."""
    if spec.table_id not in paper_tables() or not paper_table(spec.table_id).rows:
        return None
    return paper_table(spec.table_id).rows[spec.row(row).paper_row].cells.get(column)


def released_section(spec: TableSpec, records: list[dict[str, Any]]) -> list[str]:
    """The report's section: one line per cell evaluated from released weights, beside the paper's number; nothing
    when there is none."""
    values = released_values(spec, records)
    if not values:
        return []
    labels = {row.key: row.label for row in spec.rows}
    body = []
    for (row, column), cell in values.items():
        record = cell["record"]
        protocol = record["released"].get("protocol") or {}
        views = f"{protocol.get('temporal_views', '?')} x {protocol.get('spatial_views', '?')}"
        videos = record.get("test_videos")
        body.append([labels.get(row, row), column, printed(cell["paper"]),
                     f"{cell['value']:.1f} ({videos} videos, {record['scale']}, {record['dataset']})",
                     f"`{cell['checkpoint']}`", views, record["_source"]])
    return [HEADING, "", "Ours from the authors' released checkpoints, tested at the paper's protocol without training "
            "(`python -m experiments evaluate`): a separate line per cell, never mixed with the trained cells "
            "above.", "", tabulate(body, headers=["Row", "Column", "paper", "ours from released weights",
                                                  "checkpoint", "views (T x S)", "record"], tablefmt="github",
                     disable_numparse=True), ""]


__all__ = ["HEADING", "paper_number", "released_records", "released_section", "released_values",
           "track_released", "tracked_released_path"]
