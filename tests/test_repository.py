"""The repository keeps the user's design card: layout, pinned requirements, README quick start = CI, README a landing
page."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYOUT = {"README.md", "requirements.txt", "experiments", "lightning_modules", "data", "models", "reports", "tools",
          "docs", "tests", ".ci", "pyproject.toml", ".gitignore"}


def tracked_top_level() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout:
        return {p.name for p in REPO.iterdir() if not p.name.startswith(".git")} & LAYOUT
    return {line.split("/", 1)[0] for line in out.stdout.splitlines()}


def test_top_level_layout():
    assert tracked_top_level() <= LAYOUT, tracked_top_level() - LAYOUT


def test_requirements_pin_every_package():
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    reqs = [line for line in lines if line]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+", r) for r in reqs), reqs
    assert "torch==2.13.0" in reqs and "torchvision==0.28.0" in reqs


def quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


SLOW_TESTS = "python -m pytest -m slow"


def test_readme_quick_start_is_two_commands_and_ci_runs_the_second_then_the_slow_tests():
    """CI runs the README's test command (every test but the ``slow`` ones), verbatim, then the command the README
    names for the slow ones, after installing the system packages the real-SLURM test names (and nothing else):
    together, the whole suite."""
    from tests.experiments.harness.cluster.slurm_cluster import PACKAGES

    commands = quick_start_commands()
    assert len(commands) == 2, commands
    assert "python -m experiments run mformer_table4" in commands[0]
    assert commands[1].endswith('python -m pytest -m "not slow" -n 2'), commands[1]
    assert f"`{SLOW_TESTS}`" in (REPO / "README.md").read_text()
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd ", "SUDO="))]
    assert ci[1:] == [commands[1], SLOW_TESTS], ci
    assert len(ci) == 3 and ci[0].endswith(f"apt-get install -y -q {PACKAGES}"), ci


def test_the_readme_is_a_landing_page_without_generated_blocks():
    """README.md stays a few screens (the papers' details live in experiments/<code>/README.md) and holds no block
    that `python -m reports readme` writes: those are whole pages under reports/generated/, linked where they belong."""
    text = (REPO / "README.md").read_text()
    assert len(text.encode()) <= 20 * 1024, len(text.encode())
    assert not re.search(r"<!-- [\w-]+:begin", text)


def test_the_tree_is_clean_under_the_committed_ruff_rules():
    """``python -m ruff check .`` with pyproject.toml's rules (pycodestyle, pyflakes, bugbear, pyupgrade) finds
    nothing: CI runs it through this test, so a finding fails the build with ruff's own report."""
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
