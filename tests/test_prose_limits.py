"""The repository's prose stays readable in size: all hand-written markdown together, and the landing README, are
held to a word budget. Words are counted as ``len(text.split())`` per file. Left out of the total: ``reports/`` (the
generated reports and the reports index), the golden files' notes under ``tests/golden/`` and what is not prose of the
repository (``.git``, ``runs/``, ``.pytest_cache``, other hidden or ignored folders). The paper pages' own limits are in
``tests/test_paper_pages.py``."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOTAL_WORDS = 35_000  # every markdown file counted below, together
README_WORDS = 1_500  # the landing page: read in five minutes
LEFT_OUT = ("reports/", "tests/golden/", "runs/")


def counted(name: str) -> bool:
    parts = Path(name).parts
    return name.endswith(".md") and not name.startswith(LEFT_OUT) and not any(p.startswith(".") for p in parts[:-1])


def markdown_files() -> list[Path]:
    """The markdown files the budget counts: tracked, or new and not ignored (without git: found on disk, hidden and
    run folders left out)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.md"],
                            cwd=REPO, capture_output=True)
    names = [name for name in listed.stdout.decode().split("\0") if name] if listed.returncode == 0 else []
    if not names:
        names = [path.relative_to(REPO).as_posix() for path in REPO.rglob("*.md")]
    return sorted(REPO / name for name in names if counted(name) and (REPO / name).is_file())


def words(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").split())


def test_the_counted_files_are_the_repositorys_prose():
    names = {path.relative_to(REPO).as_posix() for path in markdown_files()}
    assert {"README.md", "docs/tiny_regime_design.md", "data/README.md", "experiments/README.md"} <= names, names
    assert not any(name.startswith(LEFT_OUT) for name in names), sorted(names)
    assert counted("docs/claims_selection.md") and counted("tests/faults/README.md")
    assert not counted("reports/README.md") and not counted("tests/golden/released/README.md")
    assert not counted(".pytest_cache/README.md") and not counted("runs/x/README.md")


def test_all_markdown_outside_the_reports_stays_within_its_word_budget():
    sizes = {path.relative_to(REPO).as_posix(): words(path) for path in markdown_files()}
    total = sum(sizes.values())
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:8]
    assert total <= TOTAL_WORDS, f"{total} words of markdown (budget {TOTAL_WORDS}); the largest: {largest}"


def test_the_landing_readme_is_read_in_five_minutes():
    count = words(REPO / "README.md")
    assert count <= README_WORDS, f"README.md has {count} words (budget {README_WORDS}): move details to docs/"
