"""No test reads or writes the user's checkout: the suite's command-line tests pass in a copy of the checkout where a
quick start has left its runs, and leave them as they were.

The copy's ``runs/`` holds what ``python -m experiments run mformer_table4`` leaves behind, made from the tracked
records: every run of the table finished, half of them written for another configuration than today's spec (a
quick start of an older commit, or one run with ``--set``), each with a checkpoint, and the user's report. A test
that reads the default ``runs/`` of the checkout finds a finished run where it expected to train, or a run "written
for another run" (exit 2); ``tests/conftest.py`` gives every test its own folder so that none does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

TABLE = "mformer_table4"
# The tests that run the commands (in this process or another) with their default folders.
CLI_TESTS = ("tests/experiments/harness/test_cli_options.py", "tests/experiments/harness/test_run_guards.py",
             "tests/reports/test_cli.py")

pytestmark = [pytest.mark.slow,  # a second pytest over three files: ~2 min on 2 idle cores
              pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git checkout to list its files")]


def copy_of_the_checkout(target: Path) -> Path:
    """The checkout's files as git lists them (tracked, and new files not ignored), without runs or caches."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def leave_a_quick_start(checkout: Path) -> None:
    """``runs/`` as the quick start leaves it: a finished run per tracked record of the table (every other one for a
    configuration the spec no longer resolves to), a checkpoint in each, and the user's report."""
    records = sorted((checkout / "reports" / "results" / TABLE).glob("*/seed*/*.json"))
    assert records, f"no tracked records of {TABLE}"
    for i, path in enumerate(records):
        record = json.loads(path.read_text())
        if i % 2:
            record["config"]["optim"]["lr"] *= 2  # another run's record in this run's folder
        run_dir = (checkout / "runs" / TABLE / path.parent.parent.name / path.parent.name
                   / path.name.removesuffix(".json"))
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / "metrics.json").write_text(json.dumps(record))
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"a checkpoint of the user's")
    (checkout / "runs" / "reports").mkdir()
    (checkout / "runs" / "reports" / f"{TABLE}.md").write_text("the user's report\n")


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_command_line_tests_pass_beside_a_users_quick_start_and_leave_it_as_it_was(tmp_path):
    checkout = copy_of_the_checkout(tmp_path / "checkout")
    leave_a_quick_start(checkout)
    users_runs, top_level = digest(checkout / "runs"), sorted(p.name for p in checkout.iterdir())
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow",
                           *CLI_TESTS], cwd=checkout, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert digest(checkout / "runs") == users_runs
    assert sorted(p.name for p in checkout.iterdir()) == top_level  # no .cache/, lightning_logs/, ... of a test's
