"""Each paper's headline claims, as data: ``experiments/<paper>/claims.yaml``.

A claim quotes the paper's sentence and names the table cells it rests on. Each test is an ordering of cells:
``higher`` (every row of ``rows`` above every row of ``than``, in ``column``), ``lower`` (below: costs), or
``not_worse`` (at most ``margin`` below: parity claims). A test may instead compare columns of one row
(``columns`` against ``than_columns``, for figures whose sweep is our columns). The claims were chosen from the
papers' text before any of our numbers were compared with them (``reports.claims`` does that); a claim stays in
its file whatever its verdict. ``discussed_in`` (optional, added after a verdict) names the section of the paper's
docs that discusses the tiny runs' verdict: a markdown page of this repository and one of its headings.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from data.root_files import read_regular_bytes, read_yaml
from data.schemas import describe

from ..paper_tables import paper_tables, papers
from .provenance import REPO_ROOT
from .spec import table_spec

CLAIMS_FILE = "claims.yaml"
KINDS = ("higher", "lower", "not_worse")
Kind = Literal["higher", "lower", "not_worse"]


@dataclass(frozen=True)
class Comparison:
    """One cell against another: (row, column) of ``table`` should be ``kind`` than (than_row, than_column)."""

    table: str
    row: str
    column: str
    than_row: str
    than_column: str
    kind: Kind
    margin: float = 0.0


@dataclass(frozen=True)
class ClaimTest:
    table: str
    kind: Kind
    rows: tuple[str, ...]
    than: tuple[str, ...] = ()  # rows (a row test)
    column: str | None = None
    columns: tuple[str, ...] = ()  # a column test: columns of each row against ``than_columns``
    than_columns: tuple[str, ...] = ()
    margin: float = 0.0

    def comparisons(self) -> list[Comparison]:
        if self.column is not None:
            return [Comparison(self.table, a, self.column, b, self.column, self.kind, self.margin)
                    for a in self.rows for b in self.than]
        return [Comparison(self.table, row, a, row, b, self.kind, self.margin)
                for row in self.rows for a in self.columns for b in self.than_columns]

    def describe(self) -> str:
        sign = {"higher": ">", "lower": "<", "not_worse": "≥"}[self.kind]
        margin = f" − {self.margin:g}" if self.kind == "not_worse" and self.margin else ""
        if self.column is not None:
            return f"{self.table} {self.column}: {', '.join(self.rows)} {sign} {', '.join(self.than)}{margin}"
        return (f"{self.table} rows {', '.join(self.rows)}: {', '.join(self.columns)} {sign} "
                f"{', '.join(self.than_columns)}{margin}")


@dataclass(frozen=True)
class Claim:
    paper: str
    id: str
    quote: str
    where: str
    statement: str
    stand_in: str
    tests: tuple[ClaimTest, ...]
    discussed_in: str | None = None  # "<page>.md#<heading anchor>", relative to the repository's root


class ClaimsFileError(ValueError):
    """A claims file that cannot be read, or names a table, row or column that does not exist."""


Names = list[StrictStr]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)  # a misspelt key would silently test nothing


class RowTestEntry(_Entry):
    """A test of ``tests``: ``rows`` against ``than``, in ``column``."""

    table: StrictStr
    kind: Kind
    rows: Names
    than: Names
    column: StrictStr
    margin: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 0.0


class ColumnTestEntry(_Entry):
    """A test of ``column_tests``: ``columns`` against ``than_columns``, in each of ``rows``."""

    table: StrictStr
    kind: Kind
    rows: Names
    columns: Names
    than_columns: Names
    margin: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 0.0


class ClaimEntry(_Entry):
    id: StrictStr
    quote: StrictStr
    where: StrictStr
    statement: StrictStr
    stand_in: StrictStr
    tests: list[RowTestEntry] | None = None
    column_tests: list[ColumnTestEntry] | None = None
    discussed_in: StrictStr | None = None


class ClaimsFile(_Entry):
    """The declared schema of a ``claims.yaml``, checked when it is read: a wrong type or an unknown key is one line
    naming the file, the claim and the field, before any test is resolved against the specs."""

    paper: StrictStr
    claims: list[ClaimEntry]


def claims_path(paper: str) -> Path:
    return Path(__file__).resolve().parents[1] / paper / CLAIMS_FILE


def paper_claims(paper: str) -> list[Claim]:
    """The paper's claims, each test checked against the specs; [] for a paper without a claims file."""
    path = claims_path(paper)
    if not path.exists():
        return []
    try:
        data = read_yaml(path)
    except ValueError as err:  # a special or damaged file, broken or too deep YAML: one line naming it
        raise ClaimsFileError(str(err)) from None
    if not isinstance(data, dict) or data.get("paper") != paper or not isinstance(data.get("claims"), list):
        raise ClaimsFileError(f"{path}: expected a mapping with `paper: {paper}` and a list under `claims`")
    try:
        ClaimsFile.model_validate(data)
    except ValidationError as err:
        raise ClaimsFileError(f"{path}: {_claims_error(err, data)}") from None
    claims = [_claim(paper, entry, path, i) for i, entry in enumerate(data["claims"])]
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ClaimsFileError(f"{path}: claim ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    return claims


def _claims_error(err: ValidationError, data: dict[str, Any]) -> str:
    """pydantic's first error as "claim <id>, tests.0.rows: Input should be a valid list (got 5)"."""
    first = err.errors(include_url=False)[0]
    loc = first["loc"]
    if len(loc) >= 2 and loc[0] == "claims" and isinstance(loc[1], int):
        entry = data["claims"][loc[1]]
        named = entry.get("id") if isinstance(entry, dict) and isinstance(entry.get("id"), str) else loc[1] + 1
        return f"claim {named}, {describe(err, most=1).removeprefix(f'claims.{loc[1]}.')}"
    return describe(err, most=1)


def all_claims() -> list[Claim]:
    return [claim for paper in papers() for claim in paper_claims(paper)]


def _claim(paper: str, entry: Any, path: Path, index: int) -> Claim:
    where = f"{path}: claim {index + 1}"
    if not isinstance(entry, dict):
        raise ClaimsFileError(f"{where}: not a mapping")
    missing = [k for k in ("id", "quote", "where", "statement", "stand_in") if not isinstance(entry.get(k), str)]
    if missing:
        raise ClaimsFileError(f"{where}: missing or not text: {', '.join(missing)}")
    where = f"{path}: claim {entry['id']}"
    tests = [_test(t, f"{where}, test {i + 1}") for i, t in enumerate(entry.get("tests") or [])]
    tests += [_test(t, f"{where}, column test {i + 1}", by_column=True)
              for i, t in enumerate(entry.get("column_tests") or [])]
    if not tests:
        raise ClaimsFileError(f"{where}: no test names the cells it rests on")
    discussed_in = entry.get("discussed_in")
    if discussed_in is not None:
        _check_discussion(discussed_in, where)
    return Claim(paper, entry["id"], entry["quote"].strip(), entry["where"], entry["statement"],
                 " ".join(entry["stand_in"].split()), tuple(tests), discussed_in)


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a markdown page: lower case, punctuation dropped, spaces as hyphens,
    a repeated one numbered."""
    anchors: Counter[str] = Counter()
    found = set()
    text = re.sub(r"```.*?```", "", read_regular_bytes(page).decode("utf-8"), flags=re.S)
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.M):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(anchor if not anchors[anchor] else f"{anchor}-{anchors[anchor]}")
        anchors[anchor] += 1
    return found


def _check_discussion(link: Any, where: str, root: Path = REPO_ROOT) -> None:
    """``link`` is "<page>.md#<anchor>": a markdown page inside the repository (no absolute path, nothing above its
    root) and one of that page's headings."""
    page, _, anchor = link.partition("#") if isinstance(link, str) else ("", "", "")
    target = (root / page).resolve()
    if not page.endswith(".md") or not anchor or Path(page).is_absolute() or not target.is_relative_to(root):
        raise ClaimsFileError(f"{where}: discussed_in {link!r} is not '<page>.md#<heading>' inside the repository")
    if not target.is_file():
        raise ClaimsFileError(f"{where}: discussed_in {link!r}: no such page")
    try:
        anchors = heading_anchors(target)
    except (ValueError, UnicodeDecodeError) as err:  # a special file put in its place, bytes that are not UTF-8
        raise ClaimsFileError(f"{where}: discussed_in {link!r}: {str(err).splitlines()[0]}") from None
    if anchor not in anchors:
        raise ClaimsFileError(f"{where}: discussed_in {link!r}: the page has no heading with that anchor")


def _test(entry: Any, where: str, by_column: bool = False) -> ClaimTest:
    if not isinstance(entry, dict):
        raise ClaimsFileError(f"{where}: not a mapping")
    table, kind = entry.get("table"), entry.get("kind")
    spec = table_spec(table) if table in paper_tables() else None
    if spec is None:
        raise ClaimsFileError(f"{where}: no implemented table {table!r}")
    if kind not in KINDS:
        raise ClaimsFileError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    keys = {row.key for row in spec.rows}
    columns = {c.column for c in (*spec.metric_columns, *spec.static_columns, *spec.derived_columns)}
    rows = tuple(entry.get("rows") or ())
    if by_column:
        test = ClaimTest(table, kind, rows, columns=tuple(entry.get("columns") or ()),
                         than_columns=tuple(entry.get("than_columns") or ()), margin=float(entry.get("margin", 0)))
        named_columns = (*test.columns, *test.than_columns)
    else:
        test = ClaimTest(table, kind, rows, than=tuple(entry.get("than") or ()), column=entry.get("column"),
                         margin=float(entry.get("margin", 0)))
        named_columns = (test.column,)
    unknown_rows = [r for r in (*test.rows, *test.than) if r not in keys]
    unknown_columns = [c for c in named_columns if c not in columns]
    if unknown_rows or unknown_columns or not test.comparisons():
        raise ClaimsFileError(f"{where}: {table} has no row(s) {unknown_rows} / column(s) {unknown_columns}, or the "
                              f"test compares nothing; rows: {sorted(keys)}; columns: {sorted(columns)}")
    return test
