"""``python -m reports build [ID ...]``: regenerate report tables from what runs logged, without training."""

from __future__ import annotations

import argparse
import sys

import experiments  # noqa: F401  (registers the table specs)
from experiments.paper_tables import UnknownTableError, paper_table, paper_tables

from .build import build_index, build_report


RECORD_FIX = ("Delete that file (or move it out of runs/) and build again, or train its run again with "
              "`python -m experiments run <table> --rows <row> --force`.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="rebuild reports/<id>.md (all tables when no id is given)")
    build.add_argument("tables", nargs="*", metavar="ID")
    build.add_argument("--runs-dir", default="runs")
    build.add_argument("--out-dir", default=None, help="default: the reports/ folder of this repository")
    args = parser.parse_args(argv)
    out = {"out_dir": args.out_dir} if args.out_dir else {}
    try:
        ids = args.tables or list(paper_tables())
        for table_id in ids:
            paper_table(table_id)  # fail fast on an unknown id, before writing anything
        for table_id in ids:
            print(build_report(table_id, runs_root=args.runs_dir, **out))
        print(build_index(args.runs_dir, **out))
    except UnknownTableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # an unreadable record (a metrics.json cut short, a run filed under another table)
        print(f"error: {err}\n{RECORD_FIX}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
