"""The power rule (docs/tiny_regime_design.md, ``tools.power_rule.AMENDMENT_MARKER``) was fixed before any run of
it: in git history, every commit that added or changed the amendment's text is an ancestor of the commit that
brought each tracked record at the amended design (a tiny run of a generated set tested on a split of another size
than the design first fixed: ``tools.power_rule.amended``). A record at the amended design that no commit holds yet
needs the amendment committed already. Read from git, the repository's own history and small ones built here."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from tools.power_rule import AMENDMENT_MARKER, amended

REPO = Path(__file__).resolve().parents[1]
DESIGN = "docs/tiny_regime_design.md"
RESULTS = "reports/results"


def git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True, check=True).stdout


def amendment_text(design: str) -> str | None:
    """The amendment's text in a version of the design: from its marker to the next numbered amendment or the
    page's end; None where the page has none."""
    start = design.find(AMENDMENT_MARKER)
    if start < 0:
        return None
    after = start + len(AMENDMENT_MARKER)
    following = re.search(r"^\d+\. \*\*", design[after:], re.MULTILINE)
    return design[start:after + following.start()] if following else design[start:]


def amendment_commits(repo: Path) -> list[str]:
    """The commits that added, changed or removed the amendment's text, oldest first."""
    out, before = [], None
    for commit in git(repo, "log", "--reverse", "--format=%H", "--", DESIGN).decode().split():
        shown = subprocess.run(["git", "show", f"{commit}:{DESIGN}"], cwd=repo, capture_output=True)
        text = amendment_text(shown.stdout.decode()) if shown.returncode == 0 else None
        if text != before:
            out.append(commit)
        before = text
    return out


def amended_records(repo: Path) -> list[str]:
    """The tracked record files whose working-tree version runs at the amended design."""
    names = git(repo, "ls-files", "-z", "--", f"{RESULTS}/*.json").decode().split("\0")
    return [name for name in names if name and _is_amended((repo / name).read_bytes())]


def _is_amended(content: bytes) -> bool:
    record = json.loads(content)
    return isinstance(record, dict) and amended(record)


def bringing_commits(repo: Path, names: list[str]) -> dict[str, str | None]:
    """Per record file: the oldest commit whose version of it runs at the amended design (None: none does)."""
    touched: dict[str, list[str]] = defaultdict(list)
    commit = None
    for line in git(repo, "log", "--reverse", "--format=commit %H", "--name-only", "--", RESULTS).decode().split("\n"):
        if line.startswith("commit "):
            commit = line.split()[1]
        elif line:
            touched[line].append(commit)
    asked = [(name, c) for name in names for c in touched[name]]
    blobs = _blobs(repo, [f"{c}:{name}" for name, c in asked])
    out: dict[str, str | None] = dict.fromkeys(names)
    for (name, c), blob in zip(asked, blobs):
        if out[name] is None and blob is not None and _is_amended(blob):
            out[name] = c
    return out


def _blobs(repo: Path, objects: list[str]) -> list[bytes | None]:
    """Each object's content by one ``git cat-file --batch`` (None: missing, a deletion)."""
    if not objects:
        return []
    raw, out, at = git(repo, "cat-file", "--batch", stdin="".join(f"{o}\n" for o in objects).encode()), [], 0
    for _ in objects:
        end = raw.index(b"\n", at)
        header = raw[at:end].split()
        if header[-1] == b"missing":
            out.append(None)
            at = end + 1
            continue
        size = int(header[2])
        out.append(raw[end + 1:end + 1 + size])
        at = end + 1 + size + 1
    return out


def descends(repo: Path, commit: str, ancestor: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", ancestor, commit], cwd=repo).returncode == 0


def order_violations(repo: Path) -> list[str]:
    """Each tracked record at the amended design that does not follow every commit of the amendment's text."""
    names = amended_records(repo)
    if not names:
        return []
    changes = amendment_commits(repo)
    if not changes:
        return [f"{name}: at the amended design, but no commit adds the amendment ({AMENDMENT_MARKER}) to {DESIGN}"
                for name in names]
    out = []
    for name, commit in bringing_commits(repo, names).items():
        if commit is None:  # not committed at the amended design yet: whatever commits it follows HEAD
            commit, what = git(repo, "rev-parse", "HEAD").decode().strip(), "HEAD, which it will follow,"
        else:
            what = f"commit {commit[:10]}, which brought it,"
        for change in changes:
            if not descends(repo, commit, change):
                out.append(f"{name}: {what} does not follow commit {change[:10]}, which wrote the amendment")
    return out


def test_the_power_rule_precedes_every_retrained_record():
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=REPO, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout: no history to read")
    assert order_violations(REPO) == []


# ---- the check itself, on histories built here -------------------------------------------------------------------

DESIGN_TEXT = "# The tiny scale\n\n## Amendments\n\n8. **An earlier amendment**: its text.\n"
AMENDMENT = f"9. {AMENDMENT_MARKER} (2026-11-28): the sizes.\n"


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
        git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").decode().strip()


def _record(num_val: int) -> str:
    return json.dumps({"table": "t", "row": "r", "column": "c", "seed": 0, "scale": "tiny",
                       "dataset": "synth_objects", "config": {"data": {"synthetic_params": {"num_val": num_val}}}})


RECORD = f"{RESULTS}/t/r/seed0/tiny-c.json"


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    for key, value in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": os.devnull}.items():
        monkeypatch.setenv(key, value)
    git(tmp_path, "init", "-q")
    _commit(tmp_path, {DESIGN: DESIGN_TEXT, RECORD: _record(400)}, "the design and a record of it")
    return tmp_path


def test_records_of_the_first_design_need_no_amendment(repo):
    assert amended_records(repo) == []
    assert order_violations(repo) == []


def test_a_record_retrained_after_the_amendment_passes(repo):
    amendment = _commit(repo, {DESIGN: DESIGN_TEXT + AMENDMENT}, "the amendment")
    retrained = _commit(repo, {RECORD: _record(4359)}, "retrained")
    assert amendment_commits(repo)[-1] == amendment
    assert bringing_commits(repo, [RECORD]) == {RECORD: retrained}
    assert order_violations(repo) == []
    _commit(repo, {DESIGN: DESIGN_TEXT + AMENDMENT + "10. **A later amendment**: other text.\n"}, "amendment 10")
    assert order_violations(repo) == []  # a later amendment is not this one's text


def test_a_record_retrained_before_the_amendment_fails(repo):
    retrained = _commit(repo, {RECORD: _record(4359)}, "retrained first")
    amendment = _commit(repo, {DESIGN: DESIGN_TEXT + AMENDMENT}, "the amendment after")
    (violation,) = order_violations(repo)
    assert f"commit {retrained[:10]}, which brought it," in violation and amendment[:10] in violation


def test_a_retrained_record_without_any_amendment_fails(repo):
    _commit(repo, {RECORD: _record(4359)}, "retrained, no amendment")
    (violation,) = order_violations(repo)
    assert "no commit adds the amendment" in violation


def test_the_amendment_changed_after_a_retrained_record_fails(repo):
    _commit(repo, {DESIGN: DESIGN_TEXT + AMENDMENT}, "the amendment")
    _commit(repo, {RECORD: _record(4359)}, "retrained")
    changed = _commit(repo, {DESIGN: DESIGN_TEXT + AMENDMENT.replace("the sizes", "other sizes")}, "changed")
    (violation,) = order_violations(repo)
    assert changed[:10] in violation


def test_a_record_not_yet_committed_needs_the_amendment_in_head(repo):
    (repo / RECORD).write_text(_record(4359))  # retrained in the working tree, not committed
    assert amended_records(repo) == [RECORD]
    assert len(order_violations(repo)) == 1
    _commit(repo, {DESIGN: DESIGN_TEXT + AMENDMENT}, "the amendment")
    (repo / RECORD).write_text(_record(4359))
    assert bringing_commits(repo, [RECORD]) == {RECORD: None}
    assert order_violations(repo) == []
