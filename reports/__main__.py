"""``python -m reports build [ID ...]``: regenerate report tables from what runs logged, without training.
``python -m reports track ID ...``: commit a table's local runs as tracked records (``reports/results/``).
``python -m reports readme``: rewrite the generated blocks (tiny-scale results in ``reports/tiny_results.md``,
learnability in ``data/README.md``, MSCA's own experiments and the shift benchmarks in
``experiments/msca/README.md``) from the reports' records.
``python -m reports benchmark-shift FILE [options]``: run ``models.benchmark_shift`` with those options and merge
its stamped records into FILE (``reports/benchmarks/shift_*.json``, which the shift tables of
``experiments/msca/README.md`` show)."""

from __future__ import annotations

import argparse
import sys

import experiments  # noqa: F401  (registers the table specs)
from experiments.paper_tables import UnknownTableError, paper_table, paper_tables
from experiments.spec import registered_specs

from .build import REPORTS_DIR, build_index, build_report
from .records import RESULTS_DIR, results_root_for

RECORD_FIX = ("Delete that file (or move it out of runs/) and build again, or train its run again with "
              "`python -m experiments run <table> --rows <row> --force`.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="rebuild reports/<id>.md (all tables when no id is given)")
    build.add_argument("tables", nargs="*", metavar="ID")
    build.add_argument("--runs-dir", default="runs")
    build.add_argument("--out-dir", default=None, help="default: the reports/ folder of this repository")
    build.add_argument("--results-dir", default=None,
                       help="tracked records (default: reports/results/ when building into reports/, else none; "
                            "'' for none)")
    build.add_argument("--prefer", choices=("tracked", "local"), default="tracked",
                       help="which record fills a cell and seed that both have (default: tracked)")
    track = sub.add_parser("track", help="copy a table's local records (runs/) into reports/results/, then "
                                         "rebuild its report")
    track.add_argument("tables", nargs="+", metavar="ID")
    track.add_argument("--runs-dir", default="runs")
    readme = sub.add_parser("readme", help="rewrite the generated blocks of the markdown files (tiny results, "
                                           "learnability, MSCA's own experiments, shift benchmarks) from the "
                                           "records")
    readme.add_argument("--check", action="store_true", help="exit 1 if a block differs; write nothing")
    bench = sub.add_parser("benchmark-shift", help="measure the shift family (models.benchmark_shift) and merge the "
                                                   "stamped records into FILE",
                           description="Options after FILE go to `python -m models.benchmark_shift` (its --help "
                                       "lists them); then run `python -m reports readme`.")
    bench.add_argument("file", metavar="FILE", help="e.g. reports/benchmarks/shift_cpu.json")
    bench.add_argument("options", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "benchmark-shift":
        return _benchmark_shift(args.file, args.options)
    if args.command == "readme":
        try:
            return _readme(args.check)
        except ValueError as err:  # a file lacks its generated block: nothing about run records to fix
            print(f"error: {err}", file=sys.stderr)
            return 2
    try:
        ids = args.tables or list(paper_tables())
        # `track` also takes the repository's own experiments (synthetic_learnability); any other id must name a
        # paper table: fail fast on an unknown one, before writing anything
        own = set(registered_specs()) - set(paper_tables()) if args.command == "track" else set()
        for table_id in ids:
            if table_id not in own:
                paper_table(table_id)
        if args.command == "track":
            return _track(ids, args.runs_dir)
        out = {"out_dir": args.out_dir} if args.out_dir else {}
        sources = {"results_root": results_root_for(args.out_dir, args.results_dir), "prefer": args.prefer}
        for table_id in ids:
            print(build_report(table_id, runs_root=args.runs_dir, **out, **sources, index=False))
        print(build_index(args.runs_dir, **out, **sources))
    except UnknownTableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # an unreadable record (a metrics.json cut short, a run filed under another table)
        print(f"error: {err}\n{RECORD_FIX}", file=sys.stderr)
        return 2
    return 0


def _track(ids: list[str], runs_dir: str) -> int:
    from experiments.spec import table_spec

    from .records import track

    for table_id in ids:
        spec = table_spec(table_id)
        if spec is None:
            print(f"error: {table_id} is not implemented: nothing to track", file=sys.stderr)
            return 2
        written = track(spec, runs_dir, RESULTS_DIR)
        print(f"{table_id}: {len(written)} record(s) -> {RESULTS_DIR.relative_to(REPORTS_DIR.parent)}/")
        if spec.is_paper_table:  # the others have no paper layout: generated blocks show them (reports.readme)
            print(build_report(table_id, runs_root=runs_dir, results_root=RESULTS_DIR))
    return 0


def _readme(check: bool) -> int:
    from .readme import rewrite_generated_blocks

    changed = rewrite_generated_blocks(write=not check)
    if check and any(changed.values()):
        for path in (path for path, differs in changed.items() if differs):
            print(f"{path}: a generated block differs from the records; run `python -m reports readme`",
                  file=sys.stderr)
        return 1
    for path, differs in changed.items():
        print(f"{path}: generated blocks {'rewritten' if differs else 'already up to date'}")
    return 0


def _benchmark_shift(file: str, options: list[str]) -> int:
    from .benchmarks import record_shift_benchmark

    try:
        new = record_shift_benchmark(file, options)
    except ValueError as err:  # a malformed records file: named, and left as it was
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{file}: {len(new)} record(s) merged; `python -m reports readme` shows them in "
          f"experiments/msca/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
