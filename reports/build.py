"""Report tables in the paper's layout, rebuilt from the flat records that runs write (``metrics.json``).

The generator never trains and never invents a number: a metric cell is the mean ± std over the seeds found on
disk, tagged with the scale and dataset that produced it, beside the paper's printed value; a computed static
column (GFLOPs) is counted from the model; anything missing is ``—``.
"""

from __future__ import annotations

import json
import statistics
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy.stats import kendalltau
from tabulate import tabulate

from experiments.paper_tables import PaperTable, paper_table, paper_tables, printed
from experiments.spec import SCALES, TableSpec, table_spec, table_status

REPORTS_DIR = Path(__file__).resolve().parent
DATA_STANDS_IN_FOR = {  # what a synthetic set replaces, for the header and the cells
    "synth_appearance": "Kinetics-400 (classes defined by appearance)",
    "synth_motion": "Something-Something V2 (classes defined by motion only)",
}


@dataclass(frozen=True)
class Cell:
    mean: float
    std: float
    n: int
    scale: str
    dataset: str

    def render(self, digits: int = 1) -> str:
        spread = f" ± {self.std:.{digits}f}" if self.n > 1 else ""
        return f"{self.mean:.{digits}f}{spread} (n={self.n}; {self.scale}, {self.dataset})"


def load_records(table_id: str, runs_root: str | Path = "runs") -> list[dict[str, Any]]:
    """Every finished run of a table (each ``metrics.json`` under ``runs/<table>/``); unreadable files raise."""
    records = []
    for path in sorted(Path(runs_root, table_id).glob("**/metrics.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        if record.get("table") != table_id:
            raise ValueError(f"{path}: record of table {record.get('table')!r} found under runs/{table_id}")
        records.append(record)
    return records


def aggregate(records: list[dict[str, Any]], scale: str) -> dict[tuple[str, str], dict[str, Cell]]:
    """(row, column) -> {metric: Cell} over the seeds of one scale."""
    values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    datasets: dict[tuple[str, str], str] = {}
    for r in records:
        if r["scale"] != scale:
            continue
        datasets[(r["row"], r["column"])] = r["dataset"]
        for metric, value in r["metrics"].items():
            values[(r["row"], r["column"], metric)].append(float(value))
    cells: dict[tuple[str, str], dict[str, Cell]] = defaultdict(dict)
    for (row, column, metric), vals in values.items():
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        cells[(row, column)][metric] = Cell(statistics.fmean(vals), std, len(vals), scale, datasets[(row, column)])
    return cells


def static_values(spec: TableSpec) -> dict[tuple[str, str], float]:
    """Computed columns (e.g. GFLOPs at paper configuration) for every row."""
    out = {}
    for col in spec.static_columns:
        for row in spec.rows:
            out[(row.key, col.column)] = col.compute(spec, row)
    return out


def ours(table_id: str, scale: str = "tiny", runs_root: str | Path = "runs") -> list[dict[str, Any]]:
    """Per paper row: {column: our value or None} (static columns + mean over seeds of logged metrics)."""
    table, spec = paper_table(table_id), table_spec(table_id)
    result = [{c: None for c in table.columns} for _ in table.rows]
    if spec is None:
        return result
    cells = aggregate(load_records(table_id, runs_root), scale)
    static = static_values(spec)
    for row in spec.rows:
        target = result[row.paper_row]
        for col in spec.static_columns:
            target[col.column] = round(static[(row.key, col.column)], col.digits + 2)
        for mc in spec.metric_columns:
            cell = cells.get((row.key, mc.column), {}).get(mc.metric)
            target[mc.column] = None if cell is None else round(cell.mean, 4)
    return result


def _tau(ours_values: list[float | None], paper_values: list[Any]) -> str:
    pairs = [(o, float(p)) for o, p in zip(ours_values, paper_values)
             if o is not None and isinstance(p, (int, float))]
    if len(pairs) < 2:
        return f"n/a ({len(pairs)} row(s) with both numbers)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input -> nan, reported as such
        tau = kendalltau([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return f"{tau:+.2f} over {len(pairs)} rows" if tau == tau else f"undefined (ties) over {len(pairs)} rows"


def _scale_header(spec: TableSpec, scale: str, records: list[dict[str, Any]]) -> list[str]:
    preset = spec.scales[scale]
    lines = [f"**Scale: {scale}** — {preset.description}."]
    for mc in spec.metric_columns:
        dataset = preset.data[mc.column].dataset
        if dataset in DATA_STANDS_IN_FOR:
            lines.append(f"- Column **{mc.column}** is filled from `{dataset}`, generated videos standing in for "
                         f"{DATA_STANDS_IN_FOR[dataset]}. These numbers are NOT comparable to the paper's.")
        else:
            lines.append(f"- Column **{mc.column}** is filled from `{dataset}`.")
    runs = [r for r in records if r["scale"] == scale]
    commits = sorted({_short_commit(r.get("git_commit", "unknown")) for r in runs})
    seeds = sorted({r["seed"] for r in runs})
    lines.append(f"- Runs found: {len(runs)} (seeds {seeds or '—'}; commits {', '.join(commits) or '—'}).")
    return lines


def _short_commit(commit: str) -> str:
    """12 hex digits, keeping a '-dirty' marker: numbers from uncommitted code must say so."""
    sha, _, dirty = commit.partition("-")
    return sha[:12] + (f"-{dirty}" if dirty else "")


def render_report(table_id: str, runs_root: str | Path = "runs") -> str:
    table = paper_table(table_id)
    spec = table_spec(table_id)
    out = [f"# {table.paper_short} — {table.label}", "", f"*{table.paper}*", "", f"> {table.caption}", ""]
    if spec is None:
        out += [f"Status: **{table_status(table_id)}** (belongs to the {table.area} work). The paper's numbers:", ""]
        out += [_paper_only(table), ""]
        return "\n".join(out)

    records = load_records(table_id, runs_root)
    static = static_values(spec)
    scales = [s for s in SCALES if any(r["scale"] == s for r in records)] or ["tiny"]
    for scale in scales:
        cells = aggregate(records, scale)
        out += _scale_header(spec, scale, records) + [""]
        body, ours_by_column = [], defaultdict(list)
        for prow in table.rows:
            row = next((r for r in spec.rows if r.paper_row == prow.index), None)
            line = []
            for column in table.columns:
                paper_value = prow.cells.get(column)
                static_col = next((c for c in spec.static_columns if c.column == column), None)
                metric_col = next((c for c in spec.metric_columns if c.column == column), None)
                if row is not None and static_col is not None:
                    value = static[(row.key, column)]
                    ours_by_column[column].append(value)
                    line.append(f"{value:.{static_col.digits}f} (computed) · paper {printed(paper_value)}")
                elif row is not None and metric_col is not None:
                    cell = cells.get((row.key, column), {}).get(metric_col.metric)
                    ours_by_column[column].append(cell.mean if cell else None)
                    line.append(f"{cell.render() if cell else '—'} · paper {printed(paper_value)}")
                else:
                    line.append(printed(paper_value))
            body.append(line)
        out.append(tabulate(body, headers=list(table.columns), tablefmt="github"))
        out += ["", "Rank agreement with the paper's row order (Kendall's tau, ours vs paper):", ""]
        for column in [c.column for c in spec.static_columns] + [c.column for c in spec.metric_columns]:
            paper_values = [prow.cells.get(column) for prow in table.rows
                            if any(r.paper_row == prow.index for r in spec.rows)]
            out.append(f"- {column}: {_tau(ours_by_column[column], paper_values)}")
        out.append("")
    for col in spec.static_columns:
        out.append(f"{col.column}: {col.note}.")
    out += ["", f"Rows: {', '.join(f'`{r.key}` = {r.label}' for r in spec.rows)}.", "",
            f"Regenerate: `python -m experiments run {table_id}` (trains what is missing) or "
            f"`python -m reports build {table_id}` (from the runs already logged under `{runs_root}/`).", ""]
    return "\n".join(out)


def _paper_only(table: PaperTable) -> str:
    if not table.rows:
        sweep = table.sweep or {}
        return f"(figure sweep, no printed values: {sweep.get('axis', 'n/a')})"
    body = [[printed(r.cells.get(c)) for c in table.columns] for r in table.rows]
    return tabulate(body, headers=list(table.columns), tablefmt="github")


def build_report(table_id: str, runs_root: str | Path = "runs", out_dir: str | Path = REPORTS_DIR) -> Path:
    path = Path(out_dir) / f"{table_id}.md"
    path.write_text(render_report(table_id, runs_root))
    build_index(runs_root, out_dir)
    return path


def build_index(runs_root: str | Path = "runs", out_dir: str | Path = REPORTS_DIR) -> Path:
    rows = []
    for table in paper_tables().values():
        status = table_status(table.id)
        report = Path(out_dir) / f"{table.id}.md"
        n_runs = len(list(Path(runs_root, table.id).glob("**/metrics.json")))
        rows.append([table.id, table.paper_short, table.label, table.kind, status,
                     f"[{table.id}.md]({table.id}.md)" if report.exists() else "—", n_runs])
    text = "\n".join([
        "# Reports", "",
        "One report per paper table, in the paper's layout, rebuilt by `python -m reports build [ID ...]` from the",
        "`metrics.json` records under `runs/`. Every metric cell names the scale and data that produced it.", "",
        tabulate(rows, headers=["id", "paper", "label", "kind", "status", "report", "runs found"],
                 tablefmt="github"), "",
    ])
    path = Path(out_dir) / "README.md"
    path.write_text(text)
    return path
