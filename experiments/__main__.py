"""``python -m experiments list | show ID [--json] | run ID [...]``: paper tables by name."""

from __future__ import annotations

import argparse
import json
import sys


from .paper_tables import UnknownTableError, paper_table, paper_tables, printed
from .runner import MissingDataError, TableNotImplementedError, describe_runs, resolve_runs, run_table
from .spec import SCALES, table_spec, table_status


def cmd_list(args: argparse.Namespace) -> int:
    for table in paper_tables().values():
        print(f"{table.id:<18} {table.paper_short:<14} {table.label:<12} {table.kind:<10} {table_status(table.id)}")
    return 0


def show_json(table_id: str, scale: str, runs_root: str) -> dict:
    from reports.build import ours

    table, spec = paper_table(table_id), table_spec(table_id)
    our_rows = ours(table_id, scale=scale, runs_root=runs_root)
    rows = []
    for prow, our in zip(table.rows, our_rows):
        row_spec = next((r for r in spec.rows if r.paper_row == prow.index), None) if spec else None
        rows.append({
            "label": row_spec.label if row_spec else table.row_label(prow),
            "key": row_spec.key if row_spec else None,
            "paper": {c: prow.cells.get(c) for c in table.columns},
            "ours": our,
        })
    return {"id": table.id, "status": table_status(table.id), "paper": table.paper, "label": table.label,
            "caption": table.caption, "scale": scale, "columns": list(table.columns), "rows": rows}


def cmd_show(args: argparse.Namespace) -> int:
    obj = show_json(args.table, args.scale, args.runs_dir)
    if args.json:
        print(json.dumps(obj, ensure_ascii=False, indent=1))
        return 0
    table = paper_table(args.table)
    print(f"{table.id}: {table.paper_short} {table.label} [{obj['status']}]\n{table.caption}\n")
    for row in obj["rows"]:
        key = f" (--rows {row['key']})" if row["key"] else ""
        print(f"- {row['label']}{key}")
        for column in obj["columns"]:
            ours_value = row["ours"][column]
            if ours_value is None:
                ours_text = ""
            elif isinstance(ours_value, str):
                ours_text = f"   ours: {ours_value}"
            else:
                ours_text = f"   ours ({args.scale}): {ours_value:.2f}"
            print(f"    {column:<28} paper: {printed(row['paper'][column]):<12}{ours_text}")
    if table.setup:
        print(f"\nPaper setup: {table.setup}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    overrides = {
        "model": {"pretrained": args.pretrained},
        "optim": {"epochs": args.epochs},
        "data": {"batch_size": args.batch_size, "num_workers": args.num_workers},
        "trainer": {"accelerator": args.accelerator, "devices": args.devices, "num_nodes": args.num_nodes,
                    "strategy": args.strategy, "precision": args.precision},
    }
    if args.dry_run:
        configs = resolve_runs(args.table, args.scale, args.rows, args.seeds, args.data_root, overrides)
        print(describe_runs(configs, args.runs_dir))
        print(f"# {len(configs)} run(s); nothing trained (--dry-run)")
        return 0
    run_table(args.table, args.scale, args.rows, args.seeds, args.data_root, args.runs_dir, overrides,
              force=args.force, progress_bar=not args.no_progress_bar, reports_dir=args.reports_dir)
    return 0


def _devices(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="one line per table: id, paper, label, kind, status").set_defaults(fn=cmd_list)

    show = sub.add_parser("show", help="a table's layout, rows, the paper's numbers and ours")
    show.add_argument("table")
    show.add_argument("--json", action="store_true", help="one JSON object: id, status, columns, rows")
    show.add_argument("--scale", choices=SCALES, default="tiny", help="which runs fill 'ours' (default: tiny)")
    show.add_argument("--runs-dir", default="runs")
    show.set_defaults(fn=cmd_show)

    run = sub.add_parser("run", help="train and test each row (each seed), then rebuild the report")
    run.add_argument("table")
    run.add_argument("--scale", choices=SCALES, default="tiny", help="tiny = embedded default (CPU, minutes)")
    run.add_argument("--rows", nargs="+", metavar="ROW", help="row keys (see `show`); default: all")
    run.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per row (default 1)")
    run.add_argument("--data-root", help="folder holding one sub-folder per dataset (kinetics400/, ssv2/, ...)")
    run.add_argument("--dry-run", action="store_true", help="print every resolved run configuration, train nothing")
    run.add_argument("--runs-dir", default="runs", help="where runs are logged (default: runs/)")
    run.add_argument("--reports-dir", default="reports", help="where the table's report is rebuilt (default: reports/)")
    run.add_argument("--force", action="store_true", help="re-run rows that already have metrics.json")
    run.add_argument("--pretrained", help="initial weights: a local checkpoint file or timm:<model name>")
    run.add_argument("--epochs", type=int, help="override the schedule length")
    run.add_argument("--batch-size", type=int)
    run.add_argument("--num-workers", type=int)
    run.add_argument("--accelerator", help="Lightning accelerator: cpu, gpu, auto")
    run.add_argument("--devices", type=_devices, help="Lightning devices: N or auto")
    run.add_argument("--num-nodes", type=int)
    run.add_argument("--strategy", help="Lightning strategy: ddp, fsdp, deepspeed_stage_2, ...")
    run.add_argument("--precision", help="Lightning precision: 32-true, 16-mixed, bf16-mixed")
    run.add_argument("--no-progress-bar", action="store_true")
    run.set_defaults(fn=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (UnknownTableError, TableNotImplementedError, MissingDataError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
