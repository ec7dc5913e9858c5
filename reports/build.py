"""Report tables in the paper's layout, rebuilt from the flat records that runs write.

The generator only reads: it never trains, builds no model and never invents a number. A metric cell is the
mean ± std over the seeds found on disk, tagged with the scale and dataset that produced it, beside the paper's
printed value; a static cell (GFLOPs, parameters, memory) comes from the table's static record
(``runs/<table>/static.json``, written when the table ran) and says where it came from; anything missing is ``—``.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from tabulate import tabulate

from experiments.harness.cluster.job_file import pending_note
from experiments.harness.provenance import data_left_out
from experiments.harness.records import DamagedRecordError
from experiments.harness.run_dir import RunDir
from experiments.harness.spec import SCALES, Computed, MetricColumn, RowSpec, TableSpec, table_spec, table_status
from experiments.harness.static import read_static, stale_note, static_record_path, tracked_static_fix
from experiments.paper_tables import PaperTable, paper_table, paper_tables, printed

from .cells import Cell, aggregate, metric_values
from .chance import TOP_K_CHANCE_BOUND, chance_level, unread_top_k
from .plots import plot_sweep
from .records import Prefer, TableRecords, table_records
from .released import released_records, released_section
from .statistics import RULE, Pair, column_line, table_pairs

REPORTS_DIR = Path(__file__).resolve().parent
GENERATED_DIR = REPORTS_DIR / "generated"  # the committed reports, their index and figures, as built


def load_records(table_id: str, runs_root: str | Path | None = "runs", results_root: str | Path | None = None,
                 prefer: Prefer = "tracked") -> list[dict[str, Any]]:
    """The records a table's report uses (``reports.records.table_records``): its own runs and any run configured
    as one of its cells, local under ``runs_root`` and tracked under ``results_root``; unreadable files raise."""
    spec = table_spec(table_id)
    return [] if spec is None else table_records(spec, runs_root, results_root, prefer).records


def static_values(spec: TableSpec, runs_root: str | Path | None = "runs", results_root: str | Path | None = None,
                  prefer: Prefer = "tracked") -> dict[tuple[str, str], Computed]:
    """(row, column) -> the stored static cell, from the table's static record (the tracked one unless
    ``prefer="local"`` or none is tracked); absent cells are left out. A cell made for another configuration than
    the row's today says so in its text."""
    local = read_static(static_record_path(runs_root, spec.table_id)) if runs_root is not None else None
    tracked_file = Path(results_root, spec.table_id, "static.json") if results_root is not None else None
    tracked = read_static(tracked_file, tracked_static_fix(tracked_file)) if tracked_file else None
    record = (tracked or local if prefer == "tracked" else local or tracked) or {"cells": {}}
    out = {}
    for row in spec.rows:
        for col in spec.static_columns:
            cell = record["cells"].get(row.key, {}).get(col.column)
            if cell is not None:
                stale = stale_note(col, spec, row, record, cell)
                text = f"{cell['text']} ⚠ {stale}" if stale else cell["text"]
                out[(row.key, col.column)] = Computed(cell["value"], text, cell["source"])
    return out


def static_text(computed: Computed | None, table_id: str) -> str:
    """A static cell as shown: its text, tagged with its source unless the text already says it."""
    if computed is None:
        return f"— (not computed: `python -m experiments static {table_id}`)"
    said = computed.source.removeprefix("measured on ")  # a measured cell names its device
    if computed.source == "rendered" or said in computed.text:
        return computed.text
    return f"{computed.text} [{computed.source}]"


def ours(table_id: str, scale: str = "tiny", runs_root: str | Path = "runs", results_root: str | Path | None = None
         ) -> list[dict[str, Any]]:
    """Per paper row: {column: our value or None} (static columns + mean over seeds of logged metrics)."""
    table, spec = paper_table(table_id), table_spec(table_id)
    result = [{c: None for c in table.columns} for _ in table.rows]
    if spec is None:
        return result
    values = metric_values(spec, aggregate(load_records(table_id, runs_root, results_root), scale))
    static = static_values(spec, runs_root, results_root)
    for row in spec.rows:
        if row.paper_row >= len(result):
            continue  # a figure: no printed rows to align with
        target = result[row.paper_row]
        for col in spec.static_columns:
            c = static.get((row.key, col.column))
            if c is not None:
                target[col.column] = round(c.value, col.digits + 2) if c.value is not None else c.text
        for column, value in values[row.key].items():
            if isinstance(value, Cell):
                value = value.mean
            target[column] = None if value is None else round(value, 4)
    return result


def _tau(ours_values: list[float | None], paper_values: list[Any]) -> str:
    pairs = [(o, float(p)) for o, p in zip(ours_values, paper_values)
             if o is not None and isinstance(p, (int, float))]
    if len(pairs) < 2:
        return f"n/a ({len(pairs)} row(s) with both numbers)"
    from scipy.stats import kendalltau

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input -> nan, reported as such
        tau = kendalltau([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return f"{tau:+.2f} over {len(pairs)} rows" if tau == tau else f"undefined (ties) over {len(pairs)} rows"


def _datasets_used(spec: TableSpec, scale: str) -> dict[str, str]:
    """data key -> dataset name of every run at this scale."""
    preset = spec.scales[scale]
    used = {}
    for row, column in spec.runs():
        key = column.data_key(row)
        if key in preset.data:
            used[key] = preset.data[key].dataset
    return used


def _scale_header(spec: TableSpec, scale: str, found: TableRecords) -> list[str]:
    from data import SYNTHETIC_SETS, generated_locally

    preset = spec.scales[scale]
    lines = [f"**Scale: {scale}** — {preset.description}."]
    runs = [r for r in found.records if r["scale"] == scale]
    for key, dataset in _datasets_used(spec, scale).items():
        chance = chance_level([r for r in runs if r.get("data", {}).get("dataset") == dataset])
        # each run records whether it generated its data; without runs, the spec says where the data comes from
        recorded = [r for r in runs if r["dataset"] == dataset and "synthetic" in (r.get("data") or {})]
        generated = sorted({f"{r['row']} · {r['column']}" for r in recorded if r["data"]["synthetic"]})
        real = any(not r["data"]["synthetic"] for r in recorded)
        if dataset in SYNTHETIC_SETS:
            lines.append(f"- **{key}** results come from `{dataset}`, generated data standing in for "
                         f"{SYNTHETIC_SETS[dataset].stands_in_for}. These numbers are NOT comparable to the "
                         f"paper's.{chance}")
        elif generated and real:
            lines.append(f"- **{key}** results come from `{dataset}`: the real dataset, except in "
                         f"{', '.join(generated)}: generated locally with the benchmark's own generator.{chance}")
        elif generated or (not recorded and generated_locally(dataset, preset.data[key].root)):
            lines.append(f"- **{key}** results come from `{dataset}`, generated locally with the benchmark's own "
                         f"generator at the size stated in the spec (smaller than the paper's at tiny scale).{chance}")
        else:
            lines.append(f"- **{key}** results come from `{dataset}` (the real dataset).{chance}")
    commits = sorted({short_commit(r.get("git_commit", "unknown")) for r in runs})
    seeds = sorted({r["seed"] for r in runs})
    tracked = sum(r["_source"] == "tracked" for r in runs)
    lines.append(f"- Runs found: {len(runs)} (seeds {seeds or '—'}; commits {', '.join(commits) or '—'}): "
                 f"{tracked} tracked in `reports/results/`, {len(runs) - tracked} local.")
    if runs:
        lines.append(hardware_line(runs))
    lines += _data_losses(runs)
    reused = sorted({r["reused_from"] for r in runs if r.get("reused_from")})
    if reused:
        lines.append(f"- {sum(1 for r in runs if r.get('reused_from'))} of them reuse a run with an identical "
                     f"configuration trained for another table: " + ", ".join(f"`{p}`" for p in reused) + ".")
    if len(commits) > 1:
        by_commit: dict[str, set[str]] = defaultdict(set)
        for r in runs:
            by_commit[short_commit(r.get("git_commit", "unknown"))].add(f"{r['row']} · {r['column']}")
        lines.append("- The runs come from more than one commit; cells (row · column) by commit: " + "; ".join(
            f"`{c}`: {', '.join(sorted(cells))}" for c, cells in sorted(by_commit.items())) + ".")
    passed = [r for r in found.passed_over if r["scale"] == scale]
    if passed and passed[0]["_source"] == "local":
        lines.append(f"- {len(passed)} local record(s) of the same cells and seeds were passed over for the tracked "
                     f"ones (`python -m reports build {spec.table_id} --prefer local` shows local runs; "
                     f"`python -m reports track {spec.table_id}` commits them).")
    elif passed:
        lines.append(f"- {len(passed)} tracked record(s) of the same cells and seeds were passed over for the local "
                     f"ones (`--prefer local`; `python -m reports build {spec.table_id}` shows the tracked ones, "
                     f"`python -m reports track {spec.table_id}` replaces them with these).")
    beyond = [r for r in found.beyond_seeds if r["scale"] == scale]
    if beyond:
        lines.append(f"- {len(beyond)} record(s) of seeds from {spec.tiny_seeds} on left out: the table reads seeds 0 "
                     f"to {spec.tiny_seeds - 1}, the power rule's count (docs/tiny_regime_design.md, amendment 9).")
    differing = sorted({f"{r['row']} · {r['column']}" for r in found.differing if r["scale"] == scale})
    if differing:
        lines.append(f"- Cells filled by runs configured otherwise than the row is today (options given on the "
                     f"command line, or a spec changed since): {', '.join(differing)}.")
    lines += setup_differences(runs)
    return lines


# What can move a number between two runs of one configuration, read from each record's ``provenance``
# (experiments.harness.provenance); "not recorded" for records written before it existed.
SETUP_FIELDS = {
    "precision": lambda p: p.get("precision"),
    "devices": lambda p: f"{p['world_size']} × {p['devices'][0]}" if p.get("devices") else None,
    "CPU kernels": lambda p: cpu_kernels_label(p.get("cpu_kernels")),
    "global batch": lambda p: (p.get("batch") or {}).get("global_batch"),
    "torch threads": lambda p: p.get("torch_threads"),
    "deterministic": lambda p: p.get("deterministic"),
    "decoder": lambda p: (p.get("decoder") or {}).get("av"),
    **{name: (lambda p, name=name: (p.get("libraries") or {}).get(name)) for name in ("torch", "lightning", "timm")},
}


# always in the header; the rest only when they differ
HARDWARE_FIELDS = ("devices", "CPU kernels", "precision", "global batch")


def cpu_kernels_label(kernels: dict[str, Any] | None) -> str | None:
    """"AVX512", or "AVX2 (ATEN_CPU_CAPABILITY=avx2)" when a switch chose them; None when not recorded."""
    if not kernels:
        return None
    switches = ", ".join(f"{k}={v}" for k, v in sorted((kernels.get("switches") or {}).items()))
    return kernels.get("capability", "?") + (f" ({switches})" if switches else "")


def _setup_counts(runs: list[dict[str, Any]], field: str) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in runs:
        value = SETUP_FIELDS[field](r["provenance"]) if r.get("provenance") else None
        counts["not recorded" if value is None else str(value)] += 1
    return counts


def hardware_line(runs: list[dict[str, Any]]) -> str:
    """Where and how the runs trained, whatever the scale: devices (world size × name), precision, global batch
    against the paper's; runs per value where they differ."""
    parts = []
    for field in HARDWARE_FIELDS:
        counts = _setup_counts(runs, field)
        parts.append(f"{field} " + (next(iter(counts)) if len(counts) == 1 else
                                    " / ".join(f"{v} ({n} runs)" for v, n in sorted(counts.items()))))
    paper = {str(((r.get("provenance") or {}).get("batch") or {}).get("paper_global_batch") or "not stated")
             for r in runs}
    return f"- Ran on: {'; '.join(parts)} (the paper's global batch: {' / '.join(sorted(paper))})."


def _data_losses(runs: list[dict[str, Any]]) -> list[str]:
    """One header line naming every cell whose runs used less than their annotations list (bad lines, missing or
    corrupt videos, clips skipped), per seed and split: such a number comes from part of its split."""
    losses: dict[str, list[str]] = defaultdict(list)
    for r in runs:
        if lost := data_left_out(r.get("data_report") or {}):
            losses[f"{r['row']} · {r['column']}"].append(f"seed {r['seed']} ({lost})")
    if not losses:
        return []
    return [f"- Data left out (these cells' numbers come from part of their splits; each run's `{RunDir.RECORD}` lists "
            "the files): " + "; ".join(f"{cell}: {', '.join(seeds)}" for cell, seeds in sorted(losses.items())) + "."]


def setup_differences(runs: list[dict[str, Any]]) -> list[str]:
    """One header line naming each other setup field in which the aggregated runs differ, with how many runs had
    each value (two torch builds, ...); nothing when they agree."""
    parts = []
    for field in SETUP_FIELDS:
        counts = _setup_counts(runs, field)
        if field not in HARDWARE_FIELDS and len(counts) > 1:
            parts.append(f"{field} " + " / ".join(f"{v} ({n})" for v, n in sorted(counts.items())))
    return [f"- The runs differ in setup (runs per value): {'; '.join(parts)}."] if parts else []


def short_commit(commit: str) -> str:
    """12 hex digits, keeping a '-dirty' marker: numbers from uncommitted code must say so."""
    sha, _, dirty = commit.partition("-")
    return sha[:12] + (f"-{dirty}" if dirty else "")


def _missing_cell(spec: TableSpec, row: RowSpec, mc: MetricColumn, scale: str, read: set[str]) -> str:
    """A cell no run filled: 'needs data' where its dataset is real and no run at this scale read it (``read``: the
    datasets they did), else a dash: not run yet. The report does not know the data root, and the runner records
    no skipped run, so a real dataset that other cells ran on was there: only the cell's run is missing."""
    from data import generated_locally

    try:
        cfg = spec.resolve(row, mc, scale, seed=0)
    except KeyError:
        return "—"
    if generated_locally(cfg.data.dataset, cfg.data.root) or cfg.data.dataset in read:
        return "—"
    return f"needs data (`{cfg.data.dataset}`)"


def render_report(table_id: str, runs_root: str | Path = "runs", out_dir: str | Path = GENERATED_DIR,
                  results_root: str | Path | None = None, prefer: Prefer = "tracked") -> str:
    table = paper_table(table_id)
    spec = table_spec(table_id)
    out = [f"# {table.paper_short} — {table.label}", "", f"*{table.paper}*", "", f"> {table.caption}", ""]
    if spec is None:
        out += [f"Status: **{table_status(table_id)}** (belongs to the {table.area} work). The paper's numbers:", ""]
        out += [_paper_only(table), ""]
        return "\n".join(out)

    out += pending_note(runs_root, table_id)  # runs submitted as jobs that have not finished
    found = table_records(spec, runs_root, results_root, prefer)
    records = found.records
    static = static_values(spec, runs_root, results_root, prefer)
    scales = [s for s in SCALES if any(r["scale"] == s for r in records)] or ["tiny"]
    cited = [prow for prow in table.rows if not any(r.paper_row == prow.index for r in spec.rows)]
    for scale in scales:
        values = metric_values(spec, aggregate(records, scale))
        if spec.metric_columns:
            out += _scale_header(spec, scale, found) + [""]
        if table.rows:
            read = {r["dataset"] for r in records if r["scale"] == scale}
            out += _paper_layout(table, spec, scale, static, values, read, unread_top_k(records, scale))
            out += _sweep_plot(table, spec, scale, values, static, Path(out_dir))
        else:
            out += _figure_layout(table, spec, scale, values, static, Path(out_dir))
    out += released_section(spec, released_records(table_id, runs_root, results_root))
    out += _notes(table, spec, cited)
    out += ["", f"Rows: {', '.join(f'`{r.key}` = {r.label}' for r in spec.rows)}.", "",
            f"Regenerate: `python -m reports build {table_id}` (this report, from the tracked records in "
            f"`reports/results/`); `python -m experiments run {table_id}` trains the runs again and writes your own "
            f"report under `runs/reports/`.", ""]
    return "\n".join(out)


def extra_columns(table: PaperTable, spec: TableSpec) -> list[str]:
    """Columns a spec adds that the paper's table does not have (a control dataset, a GFLOPs check), in spec order;
    reports show them after the paper's columns, marked as ours."""
    names = [c.column for c in (*spec.metric_columns, *spec.static_columns, *spec.derived_columns)]
    return [c for c in dict.fromkeys(names) if c not in table.columns]


EXTRA_MARK = " †"


def _paper_layout(table: PaperTable, spec: TableSpec, scale: str, static: dict, values: dict,
                  read: set[str], unread: dict[tuple[str, str], dict[str, str]]) -> list[str]:
    """The paper's table with our cells beside its numbers; ``read``: the datasets the runs at this scale read;
    ``unread``: the top-k cells left out, and why (``unread_top_k``)."""
    body, ours_by_column, cells_by_column = [], defaultdict(list), defaultdict(list)
    metric_cols = {c.column: c for c in spec.metric_columns}
    static_cols = {c.column for c in spec.static_columns}
    derived_cols = {c.column: c for c in spec.derived_columns}
    extras = extra_columns(table, spec)
    for prow in table.rows:
        row = next((r for r in spec.rows if r.paper_row == prow.index), None)
        line = []
        for i, column in enumerate([*table.columns, *extras]):
            paper_value = prow.cells.get(column)
            ours_only = column in extras  # no paper value beside it, no rank line for it
            paper_text = "" if ours_only else f" · paper {printed(paper_value)}"
            ours_values = ours_by_column[column] if not ours_only else []
            if row is None:
                line.append("" if ours_only else printed(paper_value) + (" ‡" if i == 0 else ""))
            elif column in static_cols:
                computed = static.get((row.key, column))
                ours_values.append(computed.value if computed else None)
                line.append(f"{static_text(computed, table.id)}{paper_text}")
            elif column in metric_cols:
                cell, mc = values[row.key][column], metric_cols[column]
                ours_values.append(cell.mean if cell else None)
                cells_by_column[column].append((row.label, cell))
                why_unread = unread.get((row.key, mc.run_name), {}).get(mc.metric)
                shown = cell.render() if cell else why_unread or _missing_cell(spec, row, mc, scale, read)
                line.append(f"{shown}{paper_text}")
            elif column in derived_cols:
                value = values[row.key][column]
                ours_values.append(value)
                line.append(f"{'—' if value is None else f'{value:.1f}'}{paper_text}")
            else:
                line.append(printed(paper_value))
        body.append(line)
    headers = [*table.columns, *(c + EXTRA_MARK for c in extras)]
    out = [tabulate(body, headers=headers, tablefmt="github"), ""]
    if any(unread.values()):
        out += [f"A top-5 cell is *not read* where guessing scores more on it than the {100 * TOP_K_CHANCE_BOUND:.1f}% "
                "it scores in the papers' own top-5 column with the fewest classes (Something-Something V2's 174): "
                "over a stand-in's few classes the top five hold an eighth of them or more. The records keep the "
                f"number (`{RunDir.RECORD}`, TensorBoard).", ""]
    if extras:
        out += [f"{EXTRA_MARK.strip()} Not in the paper's table: a column this repository adds "
                f"({', '.join(f'`{c}`' for c in extras)}); see the notes below.", ""]
    pairs = row_pairs(table, spec, values)
    labels = {row.key: row.label for row in spec.rows}
    ranked = [c for c in table.columns if c in ours_by_column and any(v is not None for v in ours_by_column[c])]
    if ranked:
        out += ["Rank agreement with the paper's row order (Kendall's tau, ours vs paper):", ""]
        for column in ranked:
            paper_values = [prow.cells.get(column) for prow in table.rows
                            if any(r.paper_row == prow.index for r in spec.rows)]
            line = f"- {column}: {_tau(ours_by_column[column], paper_values)}"
            printed_rows = {row.key for row in spec.rows if row.paper_row < len(table.rows)
                            and isinstance(table.rows[row.paper_row].cells.get(column), (int, float))}
            outcomes = [p.outcome for p in pairs if p.column == column and {p.a, p.b} <= printed_rows]
            if any(o != "one seed" for o in outcomes):
                unknown = outcomes.count("one seed") + outcomes.count("untested")
                line += (f"; of its {len(outcomes)} row pairs {outcomes.count('within')} are within noise"
                         + (f", {unknown} cannot be tested (one seed or no spread)" if unknown else ""))
            out.append(line)
        out.append("")
    comparable = [column for column in cells_by_column
                  if any(p.column == column and p.outcome != "one seed" for p in pairs)]
    if comparable:
        out += [f"Differences beyond the noise over seeds ({RULE}; each pair as difference [95% CI], p, q; every "
                f"pair's in `index.json`):", "", *(column_line(column, pairs, labels=labels) for column in comparable),
                ""]
    elif any(cell for labelled in cells_by_column.values() for _, cell in labelled):
        out += ["Noise: one seed per row, so no difference between rows can be told from the spread over seeds "
                "(`--seeds 3` gives it).", ""]
    return out


def row_pairs(table: PaperTable, spec: TableSpec, values: dict[str, dict[str, Any]]) -> list[Pair]:
    """The pairs a table's report tests, by row key: every two rows of the paper's layout with trained cells in a
    metric column, the table's pairs one family (``reports.statistics.table_pairs``)."""
    metric = {c.column for c in spec.metric_columns}
    columns: dict[str, list[tuple[str, Any]]] = {}
    for column in dict.fromkeys([*table.columns, *extra_columns(table, spec)]):
        if column in metric:
            columns[column] = [(row.key, values[row.key][column]) for prow in table.rows
                               for row in spec.rows if row.paper_row == prow.index]
    return table_pairs(columns)


def _figure_layout(table: PaperTable, spec: TableSpec, scale: str, values: dict, static: dict,
                   out_dir: Path) -> list[str]:
    """A figure has no printed values: our numbers as a table, and the plot when a spec draws one."""
    headers = ["Row", *[c.column for c in spec.metric_columns]]
    body = [[row.label, *[values[row.key][c.column].render() if values[row.key][c.column] else "—"
                          for c in spec.metric_columns]] for row in spec.rows]
    return [tabulate(body, headers=headers, tablefmt="github"), ""] + _sweep_plot(table, spec, scale, values,
                                                                                  static, out_dir)


def _sweep_plot(table: PaperTable, spec: TableSpec, scale: str, values: dict, static: dict,
                out_dir: Path) -> list[str]:
    """The spec's plot (if it has one) of our metric means and static values, saved beside the report. A plot of
    static columns only (measured costs, whose growth exponent is a slope) gets log-log axes and no scale in its
    name: static cells come from fixed sizes, not from a training scale."""
    if spec.plot is None:
        return []
    static_columns = {c.column for c in spec.static_columns}
    costs = all(c in static_columns for columns in spec.plot.panels.values() for c in columns)
    image = out_dir / (f"{table.id}.png" if costs else f"{table.id}-{scale}.png")
    plain = {row.key: {**{c.column: (values[row.key][c.column].mean if values[row.key][c.column] else None)
                          for c in spec.metric_columns},
                       **{c: static[(row.key, c)].value for c in static_columns if (row.key, c) in static}}
             for row in spec.rows}
    spreads = {row.key: {c.column: values[row.key][c.column].std for c in spec.metric_columns
                         if values[row.key][c.column] and values[row.key][c.column].n > 1}
               for row in spec.rows}
    plot_sweep(spec.plot, [(row.key, row.label) for row in spec.rows], plain, image, log=costs, spreads=spreads)
    out = [f"![{table.label}{'' if costs else f', {scale} scale'}]({image.name})", ""]
    if any(spreads.values()):
        out += ["Bars: ± one standard deviation over seeds, on each point with more than one seed (the table's "
                f"n){'; the margins have none' if spec.plot.reference_row else ''}.", ""]
    return out


def _notes(table: PaperTable, spec: TableSpec, cited: list) -> list[str]:
    out = []
    if cited:
        out.append("‡ The paper's citation of other work, printed as published; only the other rows are ours.")
    notes = []
    for col in [*spec.static_columns, *spec.derived_columns]:
        if col.note and col.note not in notes:
            notes.append(col.note)
    out += [f"- {note}." for note in notes]
    if spec.notes:
        out += ["", spec.notes]
    return out


def _paper_only(table: PaperTable) -> str:
    if not table.rows:
        sweep = table.sweep or {}
        return f"(figure sweep, no printed values: {sweep.get('axis', 'n/a')})"
    body = [[printed(r.cells.get(c)) for c in table.columns] for r in table.rows]
    return tabulate(body, headers=list(table.columns), tablefmt="github")


def build_report(table_id: str, runs_root: str | Path = "runs", out_dir: str | Path = GENERATED_DIR,
                 results_root: str | Path | None = None, prefer: Prefer = "tracked", index: bool = True) -> Path:
    """Write ``<out_dir>/<table_id>.md`` and (``index``) the index, from the local runs and (given ``results_root``)
    the tracked records."""
    from data.atomic_write import atomic_write_text

    path = Path(out_dir) / f"{table_id}.md"
    atomic_write_text(path, render_report(table_id, runs_root, out_dir, results_root, prefer))
    if index:
        build_index(runs_root, out_dir, results_root, prefer)
    return path


_COMMITTED_INDEX = [
    "One report per paper table, in the paper's layout, rebuilt by `python -m reports build [ID ...]` from the",
    "tracked records under `reports/results/` (each report's header says which runs fill it). Every metric cell",
    "names the scale and data that produced it. Your own runs' reports: `runs/reports/` (written by",
    "`python -m experiments run ID`). The papers' claims against these records: [claims.md](claims.md)."]


def build_index(runs_root: str | Path = "runs", out_dir: str | Path = GENERATED_DIR,
                results_root: str | Path | None = None, prefer: Prefer = "tracked") -> Path:
    rows = []
    for table in paper_tables().values():
        status = table_status(table.id)
        report = Path(out_dir) / f"{table.id}.md"
        spec = table_spec(table.id)
        try:
            used = table_records(spec, runs_root, results_root, prefer).records if spec is not None else []
            count = f"{len(used)} ({sum(r['_source'] == 'tracked' for r in used)} tracked)" if used else 0
        except DamagedRecordError:  # that table's own build names the file; the index of the others stands
            count = f"a damaged record: `python -m reports build {table.id}` names it"
        rows.append([table.id, table.paper_short, table.label, table.kind, status,
                     f"[{table.id}.md]({table.id}.md)" if report.exists() else "—", count])
    text = "\n".join([
        "# Reports", "",
        *(_COMMITTED_INDEX if runs_root is None else [
            f"One report per paper table, in the paper's layout, from the runs under `{Path(runs_root).as_posix()}/`"
            + (" and the tracked records" if results_root is not None else "") + " (`python -m reports build ID "
            "--out-dir DIR`). Every metric cell names the scale and data that produced it."]), "",
        tabulate(rows, headers=["id", "paper", "label", "kind", "status", "report", "runs used"],
                 tablefmt="github"), "",
    ])
    from data.atomic_write import atomic_write_text

    path = Path(out_dir) / "README.md"
    atomic_write_text(path, text)
    return path
