"""``python -m reports build [ID ...]``: rebuild the committed reports (``reports/generated/<id>.md``) from the tracked
records; with ``--out-dir DIR``, build reports anywhere else from your own runs (``--runs-dir``).
``python -m reports claims``: write ``reports/generated/claims.md``, each paper's claims against the tracked records.
``python -m reports track ID ...``: commit a table's local runs as tracked records (``reports/results/``), its cells
evaluated from released weights (``python -m experiments evaluate``) too, kept apart from the trained runs.
``python -m reports readme``: write the generated pages under ``reports/generated/`` (tiny-scale results, the
synthetic sets' learnability, MSCA's own experiment, the shift benchmarks, the smoke's records and GPU coverage, the
loader rates, the trajectory step, each paper's released checkpoints) from the records; hand-written pages link them
(``reports.readme``).
``python -m reports loader-workers FILE``: the loader processes per GPU that the presets' rule gives for another
host, from ``python -m tools loader-rate ... --record FILE`` run there (``reports.loader_rates``).
``python -m tools shift-family --record FILE [options]``: run ``tools.shift_family`` with those options and merge
its stamped records into FILE (``reports/benchmarks/shift_*.json``, which the shift tables of
``docs/shift_family.md`` show)."""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from pathlib import Path

import experiments  # noqa: F401  (registers the table specs)
from data.command_line import OneLineParser, printable
from data.root_files import shown
from experiments.harness.checks import check_writable, stdout_closed, write_refused
from experiments.harness.cluster.job_file import pending_runs
from experiments.harness.records import DamagedRecordError
from experiments.harness.spec import registered_specs
from experiments.paper_tables import UnknownTableError, paper_table, paper_tables

from .build import GENERATED_DIR, REPORTS_DIR, build_index, build_report
from .records import RESULTS_DIR, one_scan, results_root_for


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m reports", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="rebuild the committed reports/generated/<id>.md from the tracked records "
                                         "(all tables when no id is given); --out-dir DIR: from your runs, elsewhere")
    build.add_argument("tables", nargs="*", metavar="ID")
    build.add_argument("--out-dir", default=None,
                       help="build here from the runs under --runs-dir (default: the repository's "
                            "reports/generated/, from the tracked records only)")
    build.add_argument("--runs-dir", default=None, help="with --out-dir: where the runs are (default: runs/)")
    build.add_argument("--results-dir", default=None,
                       help="with --out-dir: tracked records to read beside the runs (default: none)")
    build.add_argument("--prefer", choices=("tracked", "local"), default=None,
                       help="with --out-dir and --results-dir: which record fills a cell and seed that both have "
                            "(default: tracked)")
    track = sub.add_parser("track", help="copy a table's local records (runs/: trained runs and cells evaluated "
                                         "from released weights) into reports/results/, then rebuild its report")
    track.add_argument("tables", nargs="+", metavar="ID")
    track.add_argument("--runs-dir", default="runs")
    compare = sub.add_parser("compare", help="runs (or another records folder) beside the tracked records and the "
                                             "paper, each cell marked = / ≈ / ≠ (what `experiments run` prints)")
    compare.add_argument("table", metavar="ID")
    where = compare.add_mutually_exclusive_group()
    where.add_argument("--runs-dir", default=None, help="runs to compare (default: runs/)")
    where.add_argument("--records", default=None, help="a folder of records in the tracked layout, e.g. "
                                                       "reports/reproducibility/avx2")
    compare.add_argument("--scale", default="tiny")
    claims = sub.add_parser("claims", help="write reports/generated/claims.md: each paper's claims against the "
                                           "tracked records")
    claims.add_argument("--check", action="store_true",
                        help="exit 1 if reports/generated/claims.md differs; write nothing")
    readme = sub.add_parser("readme", help="write the generated pages under reports/generated/ (tiny results, "
                                           "learnability, MSCA's own experiment, shift benchmarks, smoke, loader "
                                           "rates, trajectory step, released checkpoints) from the records")
    readme.add_argument("--check", action="store_true", help="exit 1 if a page differs; write nothing")
    workers = sub.add_parser("loader-workers", help="the loader processes per GPU that the presets' rule gives "
                                                    "for another host, from its loader-rate records")
    workers.add_argument("file", metavar="FILE", help="written on that host by `python -m tools loader-rate "
                                                      "all --record FILE`")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # one command reads the records folders once; `track` writes into them, so it scans afresh
        with one_scan() if args.command != "track" else nullcontext():
            return _dispatch(args)
    except BrokenPipeError:  # the reader of stdout went away (`| head`): nothing is wrong, nothing to say
        return stdout_closed()
    # an unknown id, options that do not go together, a damaged record or static record (each names the file and
    # what to do, which differs for a tracked and a local one), a folder that takes no files
    except (UnknownTableError, BuildOptionError, ValueError) as err:
        print(f"error: {printable(str(err))}", file=sys.stderr)
        return 2
    except OSError as err:
        if write_refused(err) is None:
            raise
        print(f"error: {printable(write_refused(err))}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "compare":
        return _compare(args)
    if args.command == "claims":
        return _claims(args.check)
    if args.command == "readme":
        return _readme(args.check)
    if args.command == "loader-workers":
        from .loader_rates import host_workers_table

        print(host_workers_table(args.file))
        return 0
    ids = args.tables or list(paper_tables())
    # `track` also takes the repository's own experiments (synthetic_learnability); any other id must name a paper
    # table: fail fast on an unknown one, before writing anything
    own = set(registered_specs()) - set(paper_tables()) if args.command == "track" else set()
    for table_id in ids:
        if table_id not in own:
            paper_table(table_id)
    if args.command == "track":
        return _track(ids, args.runs_dir)
    return _build(ids, args)


def _build(ids: list[str], args: argparse.Namespace) -> int:
    """Each report, then the index; a table with a damaged record is refused with one line naming the file, and
    the others are built all the same (exit status 2 when any was refused)."""
    out, sources = _build_sources(args)
    check_writable(out.get("out_dir", GENERATED_DIR), "--out-dir")
    refused = 0
    for table_id in ids:
        try:
            print(shown(build_report(table_id, **out, **sources, index=False)))
            if sources["runs_root"] is not None and (pending := pending_runs(sources["runs_root"], table_id)):
                print(f"  {len(pending)} submitted run(s) of {table_id} still pending, noted in the report: "
                      f"`python -m experiments status {table_id}`")
        except DamagedRecordError as err:
            print(f"error: {printable(str(err))}", file=sys.stderr)
            refused += 1
    print(shown(build_index(**out, **sources)))
    return 2 if refused else 0


def _build_sources(args: argparse.Namespace) -> tuple[dict, dict]:
    """Where ``build`` writes and what it reads. The committed reports (no ``--out-dir``) show the tracked records
    only, so a user's runs never change a committed file; ``--out-dir`` builds from the runs under ``--runs-dir``
    (and, with ``--results-dir``, the tracked records beside them)."""
    if args.out_dir is None or Path(args.out_dir).resolve() == GENERATED_DIR:
        given = [flag for flag, value in (("--runs-dir", args.runs_dir), ("--results-dir", args.results_dir),
                                          ("--prefer", args.prefer)) if value is not None]
        if given:
            raise BuildOptionError(
                f"{', '.join(given)} only with --out-dir DIR: reports/generated/ holds the committed reports, built "
                f"from the tracked records alone (your runs: `python -m reports build ID --out-dir runs/reports`)")
        return {}, {"runs_root": None, "results_root": RESULTS_DIR}
    return ({"out_dir": args.out_dir},
            {"runs_root": args.runs_dir or "runs", "results_root": results_root_for(args.out_dir, args.results_dir),
             "prefer": args.prefer or "tracked"})


class BuildOptionError(ValueError):
    """Options of ``build`` that do not go together."""


def _track(ids: list[str], runs_dir: str) -> int:
    from experiments.harness.spec import table_spec

    from .records import track
    from .released import track_released

    for folder in (RESULTS_DIR, GENERATED_DIR):  # the tracked records, and the report rebuilt from them
        check_writable(folder, None)
    for table_id in ids:
        spec = table_spec(table_id)
        if spec is None:
            print(f"error: {table_id} is not implemented: nothing to track", file=sys.stderr)
            return 2
        written = track(spec, runs_dir, RESULTS_DIR)
        released = track_released(spec, runs_dir, RESULTS_DIR)
        print(f"{table_id}: {len(written)} record(s)" + (f" and {len(released)} evaluated from released weights"
                                                         if released else "")
              + f" -> {RESULTS_DIR.relative_to(REPORTS_DIR.parent)}/")
        if spec.is_paper_table:  # the others have no paper layout: generated pages show them (reports.readme)
            print(build_report(table_id, runs_root=None, results_root=RESULTS_DIR))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from experiments.harness.spec import table_spec

    from .compare import LEGEND, compare_records, comparison_table, summary
    from .records import table_records

    try:
        spec = table_spec(paper_table(args.table).id)
    except UnknownTableError as err:
        print(f"error: {printable(str(err))}", file=sys.stderr)
        return 2
    if spec is None:
        print(f"error: {args.table} is not implemented: no runs to compare", file=sys.stderr)
        return 2
    mine = (table_records(spec, None, args.records) if args.records
            else table_records(spec, args.runs_dir or "runs", None)).records
    cells = compare_records(spec, mine, table_records(spec, None, RESULTS_DIR).records, args.scale)
    if not cells:
        where = shown(args.records or args.runs_dir or "runs")
        print(f"no {printable(args.scale)} record of {args.table} under {where}")
        return 1
    print(f"{comparison_table(cells)}\n{summary(cells)}\n{LEGEND}")
    return 0


def _claims(check: bool) -> int:
    from experiments.harness.claims import ClaimsFileError

    from .claims import CLAIMS_PAGE, claims_page_text, write_claims_page

    try:
        if check:
            fresh = claims_page_text()
            if not CLAIMS_PAGE.exists() or CLAIMS_PAGE.read_text(encoding="utf-8") != fresh:
                print(f"{CLAIMS_PAGE}: differs from the claims and the tracked records; run `python -m reports "
                      f"claims`", file=sys.stderr)
                return 1
            print(f"{CLAIMS_PAGE}: up to date")
            return 0
        print(write_claims_page())
    except ClaimsFileError as err:
        print(f"error: {printable(str(err))}", file=sys.stderr)
        return 2
    return 0


def _readme(check: bool) -> int:
    from .readme import rewrite_generated_pages

    changed = rewrite_generated_pages(write=not check)
    if check and any(changed.values()):
        for path in (path for path, differs in changed.items() if differs):
            print(f"{path}: the generated page differs from the records; run `python -m reports readme`",
                  file=sys.stderr)
        return 1
    for path, differs in changed.items():
        print(f"{path}: generated page {'rewritten' if differs else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
