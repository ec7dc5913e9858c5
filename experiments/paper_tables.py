"""The papers and their tables as data: every table of every paper, with its layout and the paper's numbers, and
the one registry of the papers themselves (``papers``).

The tables live in ``experiments/paper_tables.yaml`` (a copy of the project's inventory). Numbers keep the text
they were printed with (``63.0`` stays ``63.0``, ``92.30`` stays ``92.30``) so reports can quote the paper exactly.
A paper is the prefix of its tables' ids (its code) and its tables' ``paper`` (its title) in the inventory, and what
its folder's ``paper.yaml`` says that the inventory does not (``PAPER_FILE``): a paper more is its tables' entries
in the inventory and its folder, ``experiments/<code>/``.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError

from data.root_files import read_yaml

INVENTORY = Path(__file__).with_name("paper_tables.yaml")
PAPER_FILE = "paper.yaml"  # in each paper's folder, experiments/<code>/


class PrintedFloat(float):
    """A float that remembers how the paper printed it (trailing zeros included)."""

    text: str

    def __new__(cls, value: float, text: str) -> PrintedFloat:
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
    def paper_code(self) -> str:
        return paper_code(self.id)

    @property
    def area(self) -> str:
        return papers()[self.paper_code].area

    @property
    def paper_short(self) -> str:
        return papers()[self.paper_code].short_name

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


Names = list[StrictStr] | None


class InventoryRow(BaseModel):
    """A row of a table in the inventory: its cells (the paper's numbers and descriptors, as printed) and marks."""

    model_config = ConfigDict(extra="allow", strict=True)

    cells: dict[StrictStr, Any]
    bold: Names = None
    underline: Names = None
    group: StrictStr | None = None


class InventoryTable(BaseModel):
    """The declared schema of one table of ``paper_tables.yaml``, checked when the inventory is read: a wrong type
    or a missing key is one line naming the file, the table and the field."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: StrictStr
    paper: StrictStr
    source_file: StrictStr
    label: StrictStr
    caption: StrictStr
    kind: StrictStr
    datasets: Names = None
    metrics: Names = None
    columns: Names = None
    rows: list[InventoryRow] | None = None
    notes: StrictStr | None = None
    setup: StrictStr | None = None
    sweep: dict[StrictStr, Any] | None = None
    source_lines: StrictStr | StrictInt | None = None


def _checked_entries(entries: Any) -> list[dict[str, Any]]:
    from data.schemas import describe

    if not isinstance(entries, list):
        raise ValueError(f"{INVENTORY}: not a list of tables")
    for i, entry in enumerate(entries):
        try:
            InventoryTable.model_validate(entry)
        except ValidationError as err:
            named = entry.get("id") if isinstance(entry, dict) and isinstance(entry.get("id"), str) else None
            raise ValueError(f"{INVENTORY}: table {i + 1}{f' ({named})' if named else ''}: "
                             f"{describe(err, most=1)}") from None
    return entries


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
    entries = read_yaml(INVENTORY, _PrintedLoader)  # a special or damaged file: a ValueError naming it
    tables = {}
    for entry in _checked_entries(entries):
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


# ---- the papers ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperGPU:
    """The GPU a paper names: ``name`` and ``memory_gib`` are None where it names none; ``source`` is the sentence
    they are read from (or says that there is none)."""

    name: str | None
    memory_gib: float | None
    source: str


@dataclass(frozen=True)
class Paper:
    """One paper: ``code`` (its folder under experiments/, its table ids' prefix) and ``title`` from the inventory,
    the rest from its folder's ``paper.yaml``; ``tables``: its table ids in the inventory's order."""

    code: str
    title: str
    short_name: str
    area: str
    gpu: PaperGPU
    tables: tuple[str, ...]


def paper_code(table_id: str) -> str:
    """The code of the paper a table id belongs to: its prefix (``mformer_table4`` -> ``mformer``)."""
    return table_id.split("_", 1)[0]


def paper_file(code: str) -> Path:
    return INVENTORY.parent / code / PAPER_FILE


def _read_paper_file(code: str) -> dict[str, Any]:
    """``experiments/<code>/paper.yaml`` checked: every key present with its type, no other key; a missing or bad
    file is one error naming it and what it must hold."""
    path = paper_file(code)
    shape = ("short_name: <str>, area: <str>, gpu: {name: <str or null>, memory_gib: <number or null>, "
             "source: <str>}")
    try:
        data = read_yaml(path)  # a special or damaged file: a ValueError naming it
    except FileNotFoundError:
        raise ValueError(f"{path}: missing; paper {code!r} has tables in {INVENTORY.name}, and its folder says what "
                         f"the inventory does not: {shape}") from None
    except OSError as err:
        raise ValueError(f"{path}: not a readable YAML file ({type(err).__name__}: {err})") from None
    gpu = data.get("gpu") if isinstance(data, dict) else None
    wrong = [] if isinstance(data, dict) and isinstance(gpu, dict) else ["the file is not a mapping with a gpu mapping"]
    if not wrong:
        checks = {"short_name": isinstance(data.get("short_name"), str), "area": isinstance(data.get("area"), str),
                  "gpu.name": gpu.get("name") is None or isinstance(gpu.get("name"), str),
                  "gpu.memory_gib": gpu.get("memory_gib") is None or isinstance(gpu.get("memory_gib"), (int, float)),
                  "gpu.source": isinstance(gpu.get("source"), str)}
        wrong = [key for key, right in checks.items() if not right]
        wrong += [f"unknown key {key!r}" for key in sorted(set(data) - {"short_name", "area", "gpu"})]
        wrong += [f"unknown key 'gpu.{key}'" for key in sorted(set(gpu) - {"name", "memory_gib", "source"})]
    if wrong:
        raise ValueError(f"{path}: {', '.join(wrong)}; it holds {shape}")
    return data


@functools.cache
def papers() -> dict[str, Paper]:
    """Every paper of the inventory, by code, in the order of its first table."""
    tables: dict[str, list[PaperTable]] = {}
    for table in paper_tables().values():
        tables.setdefault(paper_code(table.id), []).append(table)
    out = {}
    for code, mine in tables.items():
        data = _read_paper_file(code)
        gpu = data["gpu"]
        out[code] = Paper(code=code, title=mine[0].paper, short_name=data["short_name"], area=data["area"],
                          gpu=PaperGPU(gpu["name"], None if gpu["memory_gib"] is None else float(gpu["memory_gib"]),
                                       gpu["source"]),
                          tables=tuple(table.id for table in mine))
    return out
