"""``python -m experiments list | show | run | static | ...``: the entry point, where a table's runs meet its report.

The command line is ``experiments.harness.cli``; what reads or writes the reports floor above it is
``reports.console``. Only an entry point may use both (tests/test_architecture.py): here ``run`` trains through the
runner and then compares and reports (``run_and_report``), and the command line gets the report side it needs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reports.console import (
    check_report_step,
    cmd_show,
    report_runs,
    reports_out_dir,
    show_json,  # noqa: F401  (a table as one JSON object, beside the command that prints it)
)

from .harness.cli import ReportSide, build_parser  # noqa: F401  (build_parser: the commands' options, for tests)
from .harness.cli import main as command_line
from .harness.provenance import launched_as_global_zero
from .harness.runner import run_table
from .harness.spec import table_spec


def run_and_report(table_id: str, runs_root: str | Path = "runs", reports_dir: str | Path | None = None,
                   echo: Callable[[str], None] = print, **run_options: Any) -> list[dict]:
    """``run``: check what the report needs, train what is missing (``runner.run_table`` with ``run_options``; the
    ETA starts from the tracked records' times), then print the runs' cells beside the tracked records and the paper
    and write the user's report into ``reports_dir`` (default ``<runs_root>/reports/``, created first: a report is
    never lost to a missing folder after hours of training). The committed reports change only through ``python -m
    reports track``."""
    from reports.compare import tracked_seconds
    from reports.records import RESULTS_DIR

    check_report_step(table_id, runs_root, reports_dir)
    spec = table_spec(table_id)
    if spec.is_paper_table:
        reports_out_dir(runs_root, reports_dir).mkdir(parents=True, exist_ok=True)
    took = tracked_seconds(spec, RESULTS_DIR)
    records = run_table(table_id, runs_root=runs_root, echo=echo,
                        expected_s=lambda cfg: took.get((cfg.row, cfg.column, cfg.scale)), **run_options)
    if spec.is_paper_table and launched_as_global_zero():  # each rank of a distributed run gets here; one writes
        report_runs(table_id, runs_root, reports_dir, list(dict.fromkeys(r["scale"] for r in records)), echo)
    return records


def main(argv: list[str] | None = None) -> int:
    return command_line(argv, ReportSide(show=cmd_show, check_report_step=check_report_step,
                                         run_and_report=run_and_report, report_runs=report_runs))


if __name__ == "__main__":
    sys.exit(main())
