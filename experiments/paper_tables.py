"""The papers' tables as data: every table of the five papers, with its layout and the paper's numbers.

The facts live in ``experiments/paper_tables.yaml`` (a copy of the project's inventory). Numbers keep the text
they were printed with (``63.0`` stays ``63.0``, ``92.30`` stays ``92.30``) so reports can quote the paper exactly.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

INVENTORY = Path(__file__).with_name("paper_tables.yaml")

# Which later piece of work owns each paper's tables (used in "not implemented" messages).
AREAS = {
    "mformer": "Motionformer (trajectory attention, Orthoformer)",
    "msca": "shift family (MSCA, TokenShift, X-ViT)",
    "xvit": "shift family (MSCA, TokenShift, X-ViT)",
    "cast": "CAST (B-CAST spatial/temporal experts)",
    "d3da": "cross-modal pose (RGB+pose 3D deformable attention)",
}


class PrintedFloat(float):
    """A float that remembers how the paper printed it (trailing zeros included)."""

    text: str

    def __new__(cls, value: float, text: str) -> "PrintedFloat":
        obj = super().__new__(cls, value)
        obj.text = text
        return obj

    def __str__(self) -> str:
        return self.text


class _PrintedLoader(yaml.SafeLoader):
    pass


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    return PrintedFloat(yaml.SafeLoader.construct_yaml_float(loader, node), node.value)


_PrintedLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def printed(value: Any) -> str:
    """The paper's cell as printed; blank cells are '—'."""
    return "—" if value is None else str(value)


@dataclass(frozen=True)
class PaperRow:
    index: int
    cells: dict[str, Any]
    bold: tuple[str, ...] = ()
    underline: tuple[str, ...] = ()
    group: str | None = None


@dataclass(frozen=True)
class PaperTable:
    id: str
    paper: str
    source_file: str
    label: str
    caption: str
    kind: str
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[PaperRow, ...]
    notes: str = ""
    setup: str = ""
    sweep: dict[str, Any] | None = None
    source_lines: str = ""

    @property
    def area(self) -> str:
        return AREAS[self.id.split("_", 1)[0]]

    @property
    def paper_short(self) -> str:
        return {"mformer": "Motionformer", "msca": "MSCA", "xvit": "X-ViT", "cast": "CAST", "d3da": "3D-Deformable"}[
            self.id.split("_", 1)[0]
        ]

    def numeric_columns(self) -> list[str]:
        """Columns holding at least one number: results, not row descriptors."""
        return [c for c in self.columns if any(isinstance(r.cells.get(c), (int, float)) and not isinstance(
            r.cells.get(c), bool) for r in self.rows)]

    def descriptor_columns(self) -> list[str]:
        numeric = set(self.numeric_columns())
        return [c for c in self.columns if c not in numeric]

    def row_label(self, row: PaperRow) -> str:
        """A readable label from the descriptor cells (e.g. 'Trajectory | Cubic (2x16^2)')."""
        parts = [str(row.cells[c]) for c in self.descriptor_columns() if row.cells.get(c) is not None]
        return " | ".join(parts) if parts else f"row {row.index + 1}"


def _parse(entry: dict[str, Any]) -> PaperTable:
    rows = tuple(
        PaperRow(
            index=i,
            cells=dict(r["cells"]),
            bold=tuple(r.get("bold") or ()),
            underline=tuple(r.get("underline") or ()),
            group=r.get("group"),
        )
        for i, r in enumerate(entry.get("rows") or [])
    )
    return PaperTable(
        id=entry["id"],
        paper=entry["paper"],
        source_file=entry["source_file"],
        label=entry["label"],
        caption=entry["caption"],
        kind=entry["kind"],
        datasets=tuple(entry.get("datasets") or ()),
        metrics=tuple(entry.get("metrics") or ()),
        columns=tuple(entry.get("columns") or ()),
        rows=rows,
        notes=entry.get("notes") or "",
        setup=entry.get("setup") or "",
        sweep=entry.get("sweep"),
        source_lines=str(entry.get("source_lines", "")),
    )


@functools.cache
def paper_tables() -> dict[str, PaperTable]:
    """All tables of the inventory, in inventory order."""
    with open(INVENTORY, encoding="utf-8") as fh:
        entries = yaml.load(fh, Loader=_PrintedLoader)  # noqa: S506 - SafeLoader subclass
    tables = {}
    for entry in entries:
        table = _parse(entry)
        if table.id in tables:
            raise ValueError(f"{INVENTORY}: duplicate table id {table.id!r}")
        tables[table.id] = table
    return tables


class UnknownTableError(KeyError):
    """An id that names no table. Suggests ids only when they are really close (a typo, or the start of an id);
    otherwise it points to ``python -m experiments list`` rather than printing every id."""

    def __init__(self, table_id: str, valid: list[str], shown: int = 6):
        close = close_ids(table_id, valid)
        more = f" (and {len(close) - shown} more)" if len(close) > shown else ""
        hint = f" Did you mean: {', '.join(close[:shown])}{more}?" if close else ""
        super().__init__(f"unknown table id {table_id!r}.{hint} Every id: `python -m experiments list`.")
        self.table_id, self.close_matches = table_id, close

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


def close_ids(table_id: str, valid: list[str]) -> list[str]:
    """Valid ids a mistyped ``table_id`` probably meant: the nearest spellings if they are near-identical
    (``mformer_tabel4`` -> ``mformer_table4``), and the ids it begins (``mformer_table3`` -> ``mformer_table3a`` ...
    ``3d``). Nothing for a string that merely looks alike (``nonexistent_table``)."""
    ratios = {v: difflib.SequenceMatcher(None, table_id, v).ratio() for v in valid}
    best = max(ratios.values(), default=0.0)
    close = [v for v in valid if ratios[v] >= max(0.8, best - 0.03)]  # a typo's target, not its neighbours
    if len(table_id) >= 4:
        close += [v for v in valid if v.startswith(table_id) and v not in close]
    return close


def paper_table(table_id: str) -> PaperTable:
    tables = paper_tables()
    if table_id not in tables:
        raise UnknownTableError(table_id, list(tables))
    return tables[table_id]
