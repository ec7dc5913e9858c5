"""Cells evaluated from the authors' released weights (``python -m experiments evaluate``): their records, read apart
from the trained runs', and the report's section that shows them beside the paper's numbers.

A record lies in the run folder ``runs/<table>/<row>/released/<scale>-<column>/`` (local) or, once tracked,
``reports/results/<table>/<row>/released/<scale>-<column>.json``; the trained runs' readers (``reports.records``:
``seed<k>/``) never see it, so a cell from released weights is never mixed with, averaged into or mistaken for one of
our trained cells. For one cell a tracked record wins over a local one, as for trained runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabulate import tabulate

from experiments.harness.evaluate import EVALUATED_FROM
from experiments.harness.records import (
    DamagedRecordError,
)
from experiments.harness.run_dir import RunsTree
from experiments.harness.spec import TableSpec
from experiments.paper_tables import paper_table, paper_tables, printed

from .records import RESULTS_DIR, check_place_fields, forget_scans, own_folder, read_inside, record_fix

HEADING = "## From the released weights"


def _read(root: str | Path, path: Path, source: str) -> dict[str, Any]:
    record = read_inside(root, path, source)[0]
    if record.get("evaluated_from") != EVALUATED_FROM or not isinstance(record.get("released"), dict):
        raise DamagedRecordError(f"{path}: a record under {RunsTree.RELEASED}/ that is not marked as evaluated from "
                                 f"released weights; {record_fix(root, path, source)}")
    return record


def released_records(table_id: str, runs_root: str | Path | None = "runs",
                     results_root: str | Path | None = RESULTS_DIR) -> list[dict[str, Any]]:
    """The table's cells evaluated from released weights, one record per (row, column, scale): tracked first, then
    local; ``_source`` says which. A damaged one raises ``DamagedRecordError`` naming it."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for root, source in ((results_root, "tracked"), (runs_root, "local")):
        if root is None or not Path(root).is_dir():
            continue
        for path in RunsTree(root).released_records(table_id, tracked=source == "tracked"):
            record = _read(root, path, source)
            found.setdefault((record["row"], record["column"], record["scale"]),
                             {**record, "_source": source, "_path": path.as_posix()})
    return [found[key] for key in sorted(found)]


def tracked_released_path(results_root: str | Path, record: dict[str, Any], named_in: str | Path) -> Path:
    """reports/results/<table>/<row>/released/<scale>-<column>.json. A table, row or scale that is no plain name,
    or a scale the specs do not know (``check_place_fields``), raises ``DamagedRecordError`` naming the record file
    and the field; a folder on the way that is a link, one naming that folder (``own_folder``): a record is data and
    never picks where a write goes."""
    check_place_fields(record, named_in, "delete that evaluation's folder, or evaluate it again with --force",
                       ("table", "row", "scale"))
    *folders, name = RunsTree.place(record["table"], record["row"], None, record["scale"], str(record["column"]))
    return own_folder(results_root, folders) / f"{name}.json"


def track_released(spec: TableSpec, runs_root: str | Path, results_root: str | Path = RESULTS_DIR) -> list[Path]:
    """Copy the table's local evaluations from released weights into the tracked folder; returns the files."""
    from data.atomic_write import atomic_write_text

    local = released_records(spec.table_id, runs_root, None)
    paths = [tracked_released_path(results_root, r, r["_path"]) for r in local]
    for record, path in zip(local, paths):
        original = {k: v for k, v in record.items() if not k.startswith("_")}
        atomic_write_text(path, json.dumps(original, indent=2, default=str) + "\n")
    forget_scans()
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
           "released_weights_text", "track_released", "tracked_released_path"]


# ---- each paper's released checkpoints, a generated page (``python -m reports readme``) --------------------------

CONVERSION_RECORD = Path(__file__).resolve().parent / "benchmarks" / "released_conversion.json"


def released_weights_text(paper: str, results_root: str | Path = RESULTS_DIR) -> str:
    """What a paper's generated page holds (``reports.readme``, linked from its page): each released checkpoint
    (its file and link, the cells it fills and the paper's numbers there, ours from it where a tracked record has
    it, the command), the protocols as the authors' code runs them, and the conversion's proof (the golden cases and
    the paper-width record)."""
    from experiments.harness.released_weights import paper_catalogue

    entries = paper_catalogue(paper)
    body = [[f"[`{e.full_name}`]({e.link})", "; ".join(_cell_text(cell) for cell in e.cells),
             _ours_text(e, results_root), e.protocol.label(),
             f"`python -m experiments evaluate {e.cells[0].table} --rows {e.cells[0].row} --checkpoint "
             f"{e.full_name} --weights-dir DIR --data-root DIR`"] for e in entries]
    lines = [tabulate(body, headers=["checkpoint (link)", "fills: paper's numbers", "ours from it", "protocol",
                                     "command"], tablefmt="github", disable_numparse=True), ""]
    protocols: dict[str, Any] = {}
    for e in sorted(entries, key=lambda e: bool(e.protocol.changes)):  # each named protocol as it is named
        protocols.setdefault(e.protocol.name, e)
    lines.append(_wrapped("Protocols, as the authors' code tests (views temporal x spatial; the authors' sum of the "
                          "views' scores and our mean of them predict alike):"))
    lines.append("")
    for e in protocols.values():
        p = e.protocol
        lines.append(_wrapped(f"- `{p.label()}`: {p.summary()}; mean {list(p.mean)}, std {list(p.std)}, {p.channels}"
                              + (f"; {p.scoring}" if p.scoring else "") + f" ({p.source}).", indent="  "))
    by_note: dict[str, list[str]] = {}
    for e in entries:
        if e.note:
            by_note.setdefault(e.note, []).append(f"`{e.full_name}`")
    notes = [_wrapped(f"- {', '.join(names)}: {note}", indent="  ") for note, names in by_note.items()]
    lines += ["", *notes] if notes else []
    lines += ["", _wrapped(_conversion_text({e.layout for e in entries}))]
    return "\n".join(lines)


def _cell_text(cell: Any) -> str:
    numbers = ", ".join(f"{column} {printed(value)}" for column, value in cell.paper_numbers().items())
    return f"{cell.table} `{cell.row}` ({numbers})"


def _ours_text(entry: Any, results_root: str | Path) -> str:
    """Ours from the entry's tracked evaluations, or why there is none."""
    found = []
    for cell in entry.cells:
        records = [r for r in released_records(cell.table, None, results_root) if r["row"] == cell.row
                   and r["released"].get("name") == entry.full_name]
        found += [f"{cell.table} {k} {v:.1f}" for r in records for k, v in r["metrics"].items() if "top1" in k]
    shown = "; ".join(found) or "not evaluated yet"
    if entry.authors_number:
        shown += f" (authors' README: {entry.authors_number['value']})"
    return shown


def read_conversion_record(path: str | Path = CONVERSION_RECORD) -> dict[str, Any]:
    """The paper-width conversion record, checked against its schema (``reports.benchmark_schemas``)."""
    from .benchmark_schemas import ConversionFile, read_benchmark

    return read_benchmark(path, ConversionFile, "a conversion record",
                          f"restore it with `git checkout -- {path}`, or make it again with "
                          f"`tools/released_golden/<layout>.py` (its docstring)")


def _conversion_text(layouts: set[str], path: str | Path = CONVERSION_RECORD) -> str:
    """The proof of conversion for ``layouts``: golden cases and the paper-width record's figures."""
    records = [r for r in read_conversion_record(path)["records"] if r["layout"] in layouts]
    figures = "; ".join(f"{r['layout']} {r['variant']}: {r['max_relative_difference']:.1e}" for r in records)
    makers = ", ".join(f"`tools/released_golden/{layout}.py`" for layout in sorted(layouts))
    return ("Conversion proven against the authors' code: golden cases the official code wrote at a small width "
            f"(`tests/golden/released/`, matched to 1e-10 in float64), and at the released width in float32 a max "
            f"relative difference of the logits of {figures} (`reports/benchmarks/released_conversion.json`); both "
            f"made by {makers} from a checkout of the authors' repository (the commands: its docstring and "
            f"`tests/golden/released/README.md`).")


def _wrapped(text: str, indent: str = "") -> str:
    import textwrap

    return textwrap.fill(text, 120, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
