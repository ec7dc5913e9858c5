"""What ``python -m experiments`` reads and writes through the reports floor: ``show`` (a table's layout, the paper's
numbers and ours, from the tracked and local records: ``show_json``, ``cmd_show``) and, around ``run``'s training,
the checks its report needs before anything trains (``check_report_step``) and the comparison and report it ends with
(``report_runs``). The command line (``experiments.harness.cli``) sits below this floor: the entry point
(``experiments/__main__.py``) hands these to it. Nothing here trains or reaches the runner."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.harness.checks import check_writable
from experiments.harness.plan import require_spec
from experiments.harness.spec import registered_specs, table_spec, table_status
from experiments.harness.static import NEEDS_GPU
from experiments.paper_tables import paper_table, paper_tables, printed


def show_json(table_id: str, scale: str, runs_root: str, results_root: str | Path | None = "reports/results"
              ) -> dict:
    """The table as one object; ``ours`` holds measured cells at ``scale`` and static cells in the paper's unit, and
    ``static`` says what each static cell is and where it came from (computed, rendered, measured on a device,
    needs GPU). A ``needs GPU`` memory cell is a ratio of activation bytes, not the paper's gigabytes: its ``ours``
    is null and ``static`` holds the ratio (``value``) and the text that says what it is."""
    from .build import ours, static_values
    from .records import RESULTS_DIR

    if results_root == "reports/results":
        results_root = RESULTS_DIR  # the tracked records, wherever the command runs from
    if table_id not in paper_tables() and table_id in registered_specs():
        return own_experiment_json(table_id, scale, runs_root, results_root or None)
    table, spec = paper_table(table_id), table_spec(table_id)
    head = {"id": table.id, "status": table_status(table.id), "paper": table.paper, "label": table.label,
            "caption": table.caption, "scale": scale}
    if spec and not table.rows:  # a figure: no printed rows; its rows are the spec's, its columns the runs'
        columns = list(dict.fromkeys(c.column for c in spec.metric_columns))
        means = _row_means(spec, _metric_values(spec, scale, runs_root, results_root or None))
        rows = [{"label": row.label, "key": row.key, "paper": dict.fromkeys(columns), "ours": means[row.key],
                 "static": {}} for row in spec.rows]
        return {**head, "columns": columns, "rows": rows, "default_seeds": spec.default_seeds(scale)}
    our_rows = ours(table_id, scale=scale, runs_root=runs_root, results_root=results_root or None)
    static = static_values(spec, runs_root, results_root or None) if spec else {}
    released = _released(spec, runs_root, results_root)
    rows = []
    for prow, our in zip(table.rows, our_rows):
        row_spec = next((r for r in spec.rows if r.paper_row == prow.index), None) if spec else None
        cells = {col: cell for (key, col), cell in static.items() if row_spec and key == row_spec.key}
        rows.append({
            "label": row_spec.label if row_spec else table.row_label(prow),
            "key": row_spec.key if row_spec else None,
            "paper": {c: prow.cells.get(c) for c in table.columns},
            "ours": {c: None if c in cells and cells[c].source == NEEDS_GPU else v for c, v in our.items()},
            "static": {col: {"text": cell.text, "source": cell.source, "value": cell.value}
                       for col, cell in cells.items()},
            "released": released.get(row_spec.key, {}) if row_spec else {},
        })
    return {**head, "columns": list(table.columns), "rows": rows,
            "default_seeds": spec.default_seeds(scale) if spec else None}


def _released(spec, runs_root: str, results_root: str | Path | None) -> dict[str, dict[str, dict]]:
    """{row key: {column: {"value", "checkpoint"}}}: the cells evaluated from released weights (any scale), apart
    from the trained runs' ``ours``."""
    from .released import released_records, released_values

    if spec is None:
        return {}
    out: dict[str, dict[str, dict]] = {}
    for (row, column), cell in released_values(spec, released_records(spec.table_id, runs_root,
                                                                      results_root or None)).items():
        out.setdefault(row, {})[column] = {"value": round(cell["value"], 4), "checkpoint": cell["checkpoint"]}
    return out


def _metric_values(spec, scale: str, runs_root: str, results_root: str | Path | None) -> dict[str, dict[str, Any]]:
    """{row key: {column: Cell or None}} at ``scale`` from the tracked and local records."""
    from .build import load_records
    from .cells import aggregate, metric_values

    return metric_values(spec, aggregate(load_records(spec.table_id, runs_root, results_root), scale))


def _row_means(spec, values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{row key: {column: mean over seeds (4 digits) or None}}."""
    return {row.key: {c: None if v is None else round(v.mean, 4) for c, v in values[row.key].items()}
            for row in spec.rows}


OWN_EXPERIMENT = "the repository's own experiment, not a paper table"


def own_experiment_json(table_id: str, scale: str, runs_root: str, results_root: str | Path | None) -> dict:
    """``show_json`` for an experiment without a paper layout: its rows and our cells (mean over seeds, and the
    cell as a report renders it), from the tracked and local records that fill them."""
    spec = table_spec(table_id)
    values = _metric_values(spec, scale, runs_root, results_root)
    means = _row_means(spec, values)
    columns = [c.column for c in spec.metric_columns]
    released = _released(spec, runs_root, results_root)
    rows = [{"label": row.label, "key": row.key, "ours": {c: means[row.key][c] for c in columns},
             "cells": {c: None if values[row.key][c] is None else values[row.key][c].render() for c in columns},
             "released": released.get(row.key, {})}
            for row in spec.rows]
    return {"id": table_id, "status": OWN_EXPERIMENT, "notes": spec.notes, "scale": scale, "columns": columns,
            "rows": rows, "default_seeds": spec.default_seeds(scale)}


def cmd_show(args: argparse.Namespace) -> int:
    obj = show_json(args.table, args.scale, args.runs_dir, args.results_dir)
    if args.json:
        print(json.dumps(obj, ensure_ascii=False, indent=1))
        return 0
    if obj["status"] == OWN_EXPERIMENT:
        print(f"{obj['id']}: {OWN_EXPERIMENT}\n{obj['notes']}\n")
        columns = table_spec(obj["id"]).metric_columns
        shares_run = {c.column: [o.column for o in columns if o.run_name == c.run_name and o is not c] for c in columns}
        for row in obj["rows"]:
            print(f"- {row['label']} (--rows {row['key']})")
            for column, cell in row["cells"].items():
                if cell is None and any(row["cells"][other] for other in shares_run[column]):
                    continue  # its run finished without logging this metric (synth_verbnoun has no top1)
                print(f"    {column:<28} ours ({args.scale} runs): {cell or '—'}")
                _print_released(row, column)
        print(f"\n`run` trains {obj['default_seeds']} seed(s) per row at {args.scale} scale unless --seeds says "
              f"otherwise.")
        return 0
    table = paper_table(args.table)
    print(f"{table.id}: {table.paper_short} {table.label} [{obj['status']}]\n{table.caption}\n")
    if not table.rows:  # a figure: the paper draws its values and prints none
        print("The paper plots these values without printing them; each line is ours.\n")
    for row in obj["rows"]:
        key = f" (--rows {row['key']})" if row["key"] else ""
        print(f"- {row['label']}{key}")
        for column in obj["columns"]:
            ours_value = row["ours"][column]
            if column in row["static"]:  # not a run at any scale: say where the cell came from
                cell = row["static"][column]
                ours_text = f"   ours ({cell['source']}): {cell['text']}"
            elif ours_value is None:
                ours_text = ""
            else:
                ours_text = f"   ours ({args.scale} runs): {ours_value:.2f}"
            shown = f"paper: {printed(row['paper'][column]):<12}{ours_text}" if table.rows else ours_text.strip()
            print(f"    {column:<28} {shown}")
            _print_released(row, column)
    if table.setup:
        print(f"\nPaper setup: {table.setup}")
    if obj["default_seeds"]:
        print(f"\n`run` trains {obj['default_seeds']} seed(s) per row at {args.scale} scale unless --seeds says "
              f"otherwise.")
    return 0



def _print_released(row: dict, column: str) -> None:
    """A cell evaluated from released weights: its own line, under the trained cell, never in place of it."""
    cell = row.get("released", {}).get(column)
    if cell:
        print(f"    {'':<28} ours from released weights ({cell['checkpoint']}): {cell['value']:.2f}")

def reports_out_dir(runs_root: str | Path, reports_dir: str | Path | None) -> Path:
    """Where ``run`` writes the user's report: ``--reports-dir``, else ``<runs_root>/reports``."""
    return Path(reports_dir) if reports_dir is not None else Path(runs_root) / "reports"


def check_report_step(table_id: str, runs_root: str | Path, reports_dir: str | Path | None) -> None:
    """What the report at the end of ``run`` needs, checked before anything trains: a folder other than the
    committed reports/ that takes files, and the table's records (tracked and local) readable, since the report
    and the comparison read them all (a damaged record of another table is no part of this one's report)."""
    from .build import GENERATED_DIR, REPORTS_DIR
    from .records import RESULTS_DIR, table_records

    spec = require_spec(table_id)
    out_dir = reports_out_dir(runs_root, reports_dir)
    if spec.is_paper_table:
        if out_dir.resolve() in (GENERATED_DIR, REPORTS_DIR):
            raise ValueError(f"--reports-dir {reports_dir}: reports/generated/ holds the committed reports, built "
                             f"from the tracked records, and reports/ the code that builds them; `python -m reports "
                             f"track {table_id}` commits your runs there")
        check_writable(out_dir, "--reports-dir")
    table_records(spec, runs_root, RESULTS_DIR)


def report_runs(table_id: str, runs_root: str | Path, reports_dir: str | Path | None, scales: list[str],
                echo: Callable[[str], None] = print) -> Path | None:
    """After ``run`` trained (its runs at ``scales``), or once every job of ``run --submit`` is done: print the
    runs' cells beside the tracked records and the paper, per scale, and write the user's report from the runs under
    ``runs_root`` into ``reports_dir`` (default ``<runs_root>/reports/``); returns its path (None: the table is not a
    paper's, and has no report). The committed reports (``reports/generated/``) are never written here: they change
    only through ``python -m reports track``."""
    from .build import build_report
    from .compare import LEGEND, compare_cells, comparison_table, summary
    from .records import RESULTS_DIR

    spec = table_spec(table_id)
    if not spec.is_paper_table:
        return None
    out_dir = reports_out_dir(runs_root, reports_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for scale in scales:
        cells = compare_cells(spec, runs_root, RESULTS_DIR, scale)
        if cells:
            echo(f"\nYour {scale} runs beside the tracked records (reports/results/) and the paper:\n"
                 f"{comparison_table(cells)}\n{summary(cells)}\n{LEGEND}")
    report = build_report(table_id, runs_root=runs_root, out_dir=out_dir, results_root=None, index=False)
    echo(f"\nyour report: {report} (from your runs; reports/generated/{table_id}.md keeps the tracked records: "
         f"`python -m reports track {table_id}` commits yours)")
    return report
