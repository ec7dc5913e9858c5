"""The generated pages of the repository's markdown, each a whole file under ``reports/generated/`` that a hand-written
page links in one line: tiny-scale results and costs (``tiny_results.md``, from ``reports/README.md``), the synthetic
sets' learnability (``learnability.md``, from ``data/README.md``), MSCA's own experiment on the motion set
(``msca_kv_frames.md``, from ``docs/msca_tiny_scale.md``), the shift family's benchmarks (``shift_benchmarks.md``,
from ``docs/shift_family.md``), the smoke's records (``smoke.md``), its GPU coverage and the loader rates
(``gpu_coverage.md``, ``loader_rates.md``, from ``docs/paper_scale_smoke.md``), the trajectory step's records
(``trajectory_step.md``, from ``docs/mformer_memory.md``) and each paper's released checkpoints
(``released_<paper>.md``, from its page; its catalogue: ``reports.released``), the reruns on other CPU kernels
(``reproducibility.md``, from ``README.md``), and beside them the results as data: ``index.json``, every cell of every
table with its status (``reports.results_index``). They are made from the tracked records the committed reports read,
the benchmark records under ``reports/benchmarks/`` and the catalogues, so the text and the records cannot disagree;
no code edits a hand-written page (``python -m reports readme`` writes them; ``tests/reports/test_tracked_results.py``
checks)."""

from __future__ import annotations

import os
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tabulate import tabulate

from experiments.harness.plan import missing_data
from experiments.harness.provenance import with_paper_batch
from experiments.harness.records import experiment_key
from experiments.harness.spec import TableSpec, implemented_tables, table_spec
from experiments.paper_tables import paper_table

from .benchmarks import shift_tables
from .build import GENERATED_DIR, short_commit
from .cells import aggregate, metric_values
from .records import RESULTS_DIR, table_records
from .statistics import RULE, column_line, table_pairs

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "reports" / "benchmarks"
# each generated page (under reports/generated/, beside the reports it links) and the hand-written page that links it
TINY_RESULTS = GENERATED_DIR / "tiny_results.md"
LEARNABILITY = GENERATED_DIR / "learnability.md"
SHIFT_BENCHMARKS = GENERATED_DIR / "shift_benchmarks.md"
TRAJECTORY_STEP = GENERATED_DIR / "trajectory_step.md"
PAPER_STEPS = GENERATED_DIR / "paper_steps.md"
ATTENTION_TRACKING = GENERATED_DIR / "attention_tracking.md"
ATTENTION_MEASURES = GENERATED_DIR / "attention_windows_and_points.md"
SMOKE_PAGE = GENERATED_DIR / "smoke.md"
GPU_COVERAGE = GENERATED_DIR / "gpu_coverage.md"
LOADER_RATES = GENERATED_DIR / "loader_rates.md"
DATA_README = REPO / "data" / "README.md"
MSCA_EXPERIMENTS = REPO / "docs" / "msca_tiny_scale.md"  # MSCA's own experiments on the motion set
SHIFT_FAMILY = REPO / "docs" / "shift_family.md"
MFORMER_MEMORY = REPO / "docs" / "mformer_memory.md"
SMOKE_DOC = REPO / "docs" / "paper_scale_smoke.md"


def shown_path(path: Path) -> Path:
    """``path`` as a page names it: relative to the repository when inside it."""
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def results_block(results_root: str | Path = RESULTS_DIR) -> str:
    """Per table and measured column: each row's mean ± std over seeds (n) at tiny scale, from tracked records."""
    lines = []
    for table_id in implemented_tables():
        spec = table_spec(table_id)
        found = table_records(spec, runs_root=None, results_root=results_root)
        if not any(r["scale"] == "tiny" for r in found.records):
            continue
        values = metric_values(spec, aggregate(found.records, "tiny"))
        label = paper_table(table_id).label
        for mc in dict.fromkeys(c.column for c in spec.metric_columns):
            cells = [(row.label, values[row.key][mc]) for row in spec.rows if values[row.key][mc] is not None]
            if not cells:
                continue
            datasets = list(dict.fromkeys(c.dataset for _, c in cells))
            # rows of one column may train on other data (Table 8's SSv2 row): then each row names its own
            shown = "; ".join(f"{name} {c.mean:.1f}" + (f" ± {c.std:.1f}" if c.n > 1 else "")
                              + (f" (`{c.dataset}`)" if len(datasets) > 1 else "") for name, c in cells)
            seeds = sorted({c.n for _, c in cells})
            devices = " / ".join(sorted({c.device for _, c in cells}))
            data = " / ".join(f"`{d}`" for d in datasets)
            # the page lives in reports/generated/, beside the reports it links
            lines.append([f"[{table_id}]({table_id}.md)", label, f"{mc} ({data})", devices,
                          "/".join(map(str, seeds)), shown])
    table = tabulate(lines, headers=["report", "table", "column (data)", "device", "seeds",
                                     "rows: mean ± std over seeds"], tablefmt="github")
    return f"{table}\n\n{costs_table(results_root)}"


SIDE_BY_SIDE = 2  # the quick start's 2 cores: `--jobs auto` trains two runs at a time


@dataclass(frozen=True)
class SeedRuns:
    """A table's distinct tiny runs of one seed (experiment keys) and, for each, the tracked seed-0 record that ran
    it (the record's own ``wall_time_s`` counted once, however many cells the run fills); a run without one is
    missing from ``records``."""

    runs: frozenset[str]
    records: dict[str, dict[str, Any]]

    @property
    def complete(self) -> bool:
        return self.runs <= set(self.records)

    @property
    def seconds(self) -> float | None:
        """The summed wall time of one seed's runs; None while a run has no record."""
        return sum(float(self.records[key]["wall_time_s"]) for key in self.runs) if self.complete else None


def seed_runs(spec: TableSpec, results_root: str | Path = RESULTS_DIR) -> SeedRuns | None:
    """``spec``'s tiny runs of one seed and their tracked seed-0 records; None for a table that trains nothing at
    tiny scale or has no tiny record."""
    found = table_records(spec, runs_root=None, results_root=results_root).records
    cells = {(row.key, column.run_name): with_paper_batch(spec.resolve(row, column, "tiny", seed=0))
             for row, column in spec.runs() if "tiny" in spec.scales and not missing_data(
                 spec.resolve(row, column, "tiny", seed=0))}
    if not cells or not any(r["scale"] == "tiny" for r in found):
        return None
    records = {experiment_key(r["config"]): r for r in found
               if r["scale"] == "tiny" and r["seed"] == 0 and "config" in r}
    runs = frozenset(experiment_key(cfg.to_dict()) for cfg in cells.values())
    return SeedRuns(runs, {key: record for key, record in records.items() if key in runs})


def costs_table(results_root: str | Path = RESULTS_DIR) -> str:
    """Per table: its distinct tiny runs of one seed and their recorded wall times (``seed_runs``), and what
    ``run ID`` with the table's default seeds takes at that rate two at a time. A table with a cell that no record
    fills shows no time."""
    lines = []
    for table_id in implemented_tables():
        spec = table_spec(table_id)
        runs = seed_runs(spec, results_root)
        if runs is None:
            continue
        per_seed, seeds = runs.seconds, spec.default_seeds("tiny")
        lines.append([f"[{table_id}]({table_id}.md)", len(runs.runs),
                      f"{per_seed / 60:.1f}" if per_seed is not None else "—", seeds,
                      f"{per_seed * seeds / SIDE_BY_SIDE / 60:.1f}" if per_seed is not None else "—"])
    return tabulate(lines, headers=["report", "runs a seed", "run time a seed (min, summed)", "default seeds",
                                    f"≈ `run ID` (min, {SIDE_BY_SIDE} side by side)"], tablefmt="github")


def learnability_block(results_root: str | Path = RESULTS_DIR) -> str:
    """``experiments.synthetic_learnability``'s summary (seed 0 of each set, test top-1 beside chance), read from the
    tracked records that fill its rows: the tables' identical runs, or its own where no table trains one."""
    from experiments.synthetic_learnability.summary import EXPERIMENT, summary_rows

    spec = table_spec(EXPERIMENT)
    records = {r["row"]: r for r in table_records(spec, runs_root=None, results_root=results_root).records
               if r["scale"] == "tiny" and r["seed"] == 0}
    missing = [row.key for row in spec.rows if row.key not in records]
    if missing:
        raise ValueError(f"{results_root}: no tracked seed-0 record for {EXPERIMENT} row(s) {missing}: run "
                         f"`python -m experiments run {EXPERIMENT}` and `python -m reports track {EXPERIMENT}`")
    lines = [[*summary, records[row.key]["git_commit"][:7]]
             for row in spec.rows for summary in summary_rows(records[row.key])]
    table = tabulate(lines, headers=["set", "metric", "top-1 (%)", "chance (%)", "epochs", "run", "commit"],
                     tablefmt="github")
    return table


def experiment_block(table_id: str, results_root: str | Path = RESULTS_DIR) -> str:
    """An own experiment of one measured column (``msca_kv_frames``: ``experiments/msca/tables.py``):
    each row's value over its default seeds, from the tracked records that fill it (another table's run of the same
    configuration included), the two-row test's verdict on every pair of rows (``reports.statistics``), and what
    the runs took. Records of other seeds are named under the table, not averaged in: every row is read over the
    same seeds."""
    spec = table_spec(table_id)
    (column,) = spec.metric_columns
    tiny = [r for r in table_records(spec, runs_root=None, results_root=results_root).records if r["scale"] == "tiny"]
    seeds = set(range(spec.default_seeds("tiny")))
    records = [r for r in tiny if r["seed"] in seeds]
    extra = sorted(f"{r['row']} seed {r['seed']}" for r in tiny if r["seed"] not in seeds)
    values = metric_values(spec, aggregate(records, "tiny"))
    missing = [row.key for row in spec.rows
               if {r["seed"] for r in records if r["row"] == row.key} != seeds]
    if missing:
        raise ValueError(f"{results_root}: {table_id} row(s) {missing} lack tracked records of seeds "
                         f"{sorted(seeds)}: run `python -m experiments run {table_id}` and `python -m reports "
                         f"track {table_id}`")
    lines = []
    for row in spec.rows:
        own = sorted((r for r in records if r["row"] == row.key), key=lambda r: r["seed"])
        lines.append([row.label, values[row.key][column.column].render(),
                      " / ".join(f"{r['metrics'][column.metric]:.1f}" for r in own),
                      " / ".join(short_commit(r["git_commit"]) for r in own)])
    table = tabulate(lines, headers=[f"{table_id} row", f"{column.column} (%)",
                                     "seeds " + " / ".join(map(str, sorted(seeds))), "commits"], tablefmt="github")
    pairs = table_pairs({column.column: [(row.label, values[row.key][column.column]) for row in spec.rows]})
    verdict = column_line(column.column, pairs)
    minutes = sum(float(r["wall_time_s"]) for r in records) / 60
    cost = (f"Run time, from these {len(records)} records' own wall times: {minutes:.1f} min summed, so "
            f"`python -m experiments run {table_id}` takes about {minutes / SIDE_BY_SIDE:.1f} min "
            f"{SIDE_BY_SIDE} side by side.")
    if extra:  # the page compares rows over the same seeds; a record beyond them is named, not dropped silently
        cost += f" Tracked beyond the default seeds and left out here: {', '.join(extra)}."
    return f"{table}\n\nRule: {RULE}.\n\n{verdict}\n\n{cost}"


EXPERIMENTS = ("msca_kv_frames",)  # the own experiments with a generated page each: its linking page
EXPERIMENT_PAGES = {"msca_kv_frames": MSCA_EXPERIMENTS}


def shift_benchmarks_block() -> str:
    """The shift family's speed and memory tables, from the records under ``reports/benchmarks/``."""
    return shift_tables()


# tools.trajectory_step's record files the Motionformer note shows, each a section of ``TRAJECTORY_STEP``: its
# heading there
STEP_RECORDS = {"trajectory-step-fused": "trajectory_step_cuda_fused.json",
                "trajectory-step-passes": "trajectory_step_cuda_passes.json",
                "trajectory-step-compiled": "trajectory_step_cuda_compiled.json",
                "trajectory-step": "trajectory_step_cuda_stages.json"}
STEP_HEADINGS = {"trajectory-step-fused": "The fused stage two, the GPU default",
                 "trajectory-step-passes": "Eager: one pass or one frame a pass",
                 "trajectory-step-compiled": "Every block compiled",
                 "trajectory-step": "Where the step's time goes"}
STEP_VARIANTS = {"joint": "joint", "exact_stage_one": "stage one alone (Avg_T)", "exact_one_pass": "exact, one pass",
                 "exact_literal": "exact, literal Eq. 5–6", "exact": "exact, one frame a pass (the memory cells')",
                 "exact_autograd": "exact, autograd form",
                 "exact_fused": "exact, fused stage two (the GPU default)"}  # tools.trajectory_step's, in words


def trajectory_step_block(name: str = "trajectory-step", records_dir: str | Path = BENCHMARKS) -> str:
    """A ``tools.trajectory_step`` record file (``STEP_RECORDS[name]``) as a table: each variant's median step, its
    ratio to joint attention's, the kernels per step and their summed time (``--profile``; left out when not
    recorded), and the peak memory; then the device, command and commit."""
    from .benchmark_schemas import StepFile, read_benchmark

    path = Path(records_dir) / STEP_RECORDS[name]
    data = read_benchmark(path, StepFile, "a record file of `tools.trajectory_step`",
                          f"restore it with `git checkout -- {shown_path(path)}`, or measure again with "
                          f"`python -m tools.trajectory_step` (on a GPU: `tools/gpu/trajectory_step.sh`)")

    def number(record: dict, key: str, digits: int, profile: bool = False) -> str:
        value = (record.get("profile") or {}).get(key) if profile else record.get(key)
        return "—" if value is None else f"{value:.{digits}f}"

    headers = ["variant", "step (ms)", "/ joint", "kernels per step", "GPU busy (ms)", "peak GiB"]
    rows = [[STEP_VARIANTS.get(r["variant"], r["variant"]) + (", compiled blocks" if r["compiled"] else ""),
             number(r, "step_ms", 1), number(r, "over_joint_eager", 2), number(r, "kernels_per_step", 0, True),
             number(r, "per_step_ms", 1, True), number(r, "peak_gib", 1)] for r in data["records"]]
    kept = [i for i in range(len(headers)) if any(row[i] != "—" for row in rows)]
    table = tabulate([[row[i] for i in kept] for row in rows], headers=[headers[i] for i in kept],
                     tablefmt="github")
    source = (f"{data['device_name']}, {data['precision']}, torch {data['torch']}: `{data['command']}` "
              f"(`{shown_path(path)}`, commit "
              f"{data['commit'][:7]}, {data['measured_at']})")
    return f"{table}\n\n{source}"


def trajectory_step_text(records_dir: str | Path = BENCHMARKS) -> str:
    """Every record file of ``STEP_RECORDS``, each under its heading, then the fused step's kernel time by kind."""
    from .gpu_steps import profile_block

    sections = [f"## {STEP_HEADINGS[name]}\n\n{trajectory_step_block(name, records_dir)}" for name in STEP_RECORDS]
    sections.append(f"## Where the fused step's kernel time goes\n\n{profile_block(records_dir)}")
    return "\n\n".join(sections)


def smoke_block(records_dir: str | Path = BENCHMARKS) -> str:
    """The paper-scale smoke's records (``reports/benchmarks/smoke_*.json``, ``python -m tools smoke ...
    --record``): one table per device, then the commands, commits and dates that measured them."""
    from .smoke_records import crowded_out, markdown, read_records

    out, papers = [], implemented_tables()
    for path in sorted(Path(records_dir).glob("smoke_*.json")):
        records = read_records(path)
        for device in dict.fromkeys(r["device_name"] for r in records):
            mine = [r for r in records if r["device_name"] == device]
            # sweeps run side by side write their runs interleaved: each table's runs together, the tables in the
            # papers' order (``smoke all``'s), a table not among them after those
            written = list(dict.fromkeys(r["table"] for r in mine))
            order = [t for t in papers if t in written] + [t for t in written if t not in papers]
            mine.sort(key=lambda r: order.index(r["table"]))
            passed = sum(r["status"] == "pass" for r in mine)
            crowded = sum(map(crowded_out, mine))
            tables = len({r["table"] for r in mine})
            sources = dict.fromkeys((r["command"], r["commit"][:7], r["measured_at"], r["torch"]) for r in mine)
            lines = "\n".join(f"- `{command}`: commit {commit}, {date}, torch {torch}"
                               for command, commit, date, torch in sources)
            shrinks = {r["shrink"] for r in mine}
            # a shrunk sweep, or a sweep of more tables than a reader scans run by run: a line per table
            detail = smoke_summary(mine) if tables > 1 and (max(shrinks) > 1 or tables > SWEEP_TABLES) \
                else markdown(mine)
            shown = shown_path(path)
            no_verdict = f"; {crowded} ran out of device memory beside other processes of the sweep, which is no " \
                f"verdict on them" if crowded else ""
            out.append(f"**{device}** (`{shown}`): {passed} of {len(mine)} runs of {tables} "
                       f"table(s) pass{no_verdict}.\n\n{detail}\n\n{lines}{files_read(mine)}")
    return "\n\n".join(out) or "No smoke records yet: `python -m tools smoke ID --record` writes them."


def files_read(records: list[dict[str, Any]]) -> str:
    """A line naming the generated files the runs read, per dataset: frame size and rate, with the runs at each
    (a dataset whose written shape changed between sweeps shows both, so a loader rate is read against its files)."""
    shapes: dict[str, Counter[str]] = {}
    for r in records:
        shape = (r.get("data") or {}).get("shape")
        if shape:
            layout = r["data"].get("layout")
            text = f"{shape['width']}×{shape['height']} at {shape['fps']:g} fps" + (f", {layout}" if layout else "")
            shapes.setdefault(r["dataset"], Counter())[text] += 1
    if not shapes:
        return ""
    each = "; ".join(f"{dataset} " + ", ".join(f"{text} ({n} run{'s' * (n > 1)})" for text, n in found.items())
                     for dataset, found in shapes.items())
    return f"\n\nFiles read, as written for these runs: {each}."


GPU_RECORD = "smoke_cuda.json"


def gpu_coverage(records_dir: str | Path = BENCHMARKS) -> dict[str, Any]:
    """How far the GPU smoke has got: of every paper table's runs at paper scale (``smoke all``), those the GPU
    record holds as passed or failed at full frame size (``shrink`` 1); the others, per table, have no verdict yet:
    not yet stepped, or out of device memory beside other processes (``crowded_out``; counted as ``crowded``)."""
    from experiments.harness.plan import resolve_runs

    from .smoke_records import crowded_out, read_records

    path = Path(records_dir) / GPU_RECORD
    records = [r for r in read_records(path) if r["shrink"] == 1] if path.exists() else []
    crowded = sum(map(crowded_out, records))
    status = {(r["table"], r["row"], r["column"]): r["status"] for r in records if not crowded_out(r)}
    runs = {table: [(table, cfg.row, cfg.column) for cfg in resolve_runs(table, "paper", seeds=1)]
            for table in implemented_tables()}
    runs = {table: keys for table, keys in runs.items() if keys}  # tables of static columns only have no runs
    stepped = {table: [status[key] for key in keys if key in status] for table, keys in runs.items()}
    return {"record": path, "devices": list(dict.fromkeys(r["device_name"] for r in records)),
            "runs": sum(map(len, runs.values())), "tables": len(runs),
            "stepped": sum(map(len, stepped.values())), "stepped_tables": sum(map(bool, stepped.values())),
            "full_tables": sum(len(stepped[t]) == len(keys) for t, keys in runs.items()),
            "passed": sum(s.count("pass") for s in stepped.values()), "crowded": crowded,
            "missing": {t: (len(keys) - len(stepped[t]), len(keys)) for t, keys in runs.items()
                        if len(stepped[t]) < len(keys)}}


def gpu_coverage_block(records_dir: str | Path = BENCHMARKS) -> str:
    """``gpu_coverage`` in words, for the smoke's section: the counts, and every table with runs not yet stepped."""
    c = gpu_coverage(records_dir)
    devices = " and ".join(c["devices"]) or "no GPU yet"
    shown = shown_path(c["record"])
    missing = ", ".join(f"{t} ({n} of {total})" for t, (n, total) in c["missing"].items())
    left = c["runs"] - c["stepped"]
    crowded = f"{left - c['crowded']} not yet stepped, {c['crowded']} out of device memory beside other processes " \
        f"of the sweep" if c["crowded"] else "not yet stepped"
    text = (f"**Stepped on a GPU to a verdict** ({devices}; `{shown}`, at full frame size): {c['stepped']} of the "
            f"{c['runs']} runs of the {c['tables']} tables that have runs, in {c['stepped_tables']} tables "
            f"({c['full_tables']} with every run stepped); {c['passed']} pass, {c['stepped'] - c['passed']} fail."
            + (f" **No verdict yet, so not verified on a GPU:** {left} runs ({crowded}): {missing}." if left else ""))
    return textwrap.fill(text, 120, break_long_words=False, break_on_hyphens=False)


SWEEP_TABLES = 10  # records of more tables than this are summarised per table (each run stays in its record file)


def smoke_summary(records: list[dict]) -> str:
    """One line per table of a sweep: runs, those stepped (the others equal a run stepped before), passes, the first
    failure, the frame-size divisor, the slowest step and test batch, and the largest peak at the paper's batch with
    whether it fits the paper's GPU (from runs at the paper's frame size only: a shrunk run's memory is not the
    paper shape's)."""
    from tabulate import tabulate

    from .smoke_records import ERROR_CHARS, crowded_out, fits_text, sharing

    lines = []
    for table in dict.fromkeys(r["table"] for r in records):
        mine = [r for r in records if r["table"] == table]
        failed = [r for r in mine if r["status"] != "pass"]
        first = next((r for r in failed if not crowded_out(r)), failed[0] if failed else None)
        first = "" if first is None else f"{first['row']} / {first['column']}: " + (
            f"no verdict, out of device memory beside {sharing(first) - 1} other processes" if crowded_out(first)
            else first["error"][:ERROR_CHARS])
        steps = [r["step_s"] for r in mine if r.get("step_s") is not None]
        tests = [r["test_s"] for r in mine if r.get("test_s") is not None]
        sizes = ", ".join("paper" if k == 1 else f"1/{k}" for k in sorted({r["shrink"] for r in mine}))
        measured = [r for r in mine if r["shrink"] == 1 and r.get("paper_batch_peak_gib") is not None]
        peak = fits_text(max(measured, key=lambda r: r["paper_batch_peak_gib"])) if measured else "—"
        lines.append([table, len(mine), sum(not r.get("same_as") for r in mine), len(mine) - len(failed),
                      first or "—", sizes,
                      f"{max(steps):.2f}" if steps else "—", f"{max(tests):.1f}" if tests else "—", peak])
    return tabulate(lines, headers=["table", "runs", "stepped", "pass", "first failure", "frame size",
                                    "slowest step (s)", "slowest test batch (s)",
                                    "largest peak at the paper's batch"], tablefmt="github")


def loader_rates_block() -> str:
    """The loader-process rule's inputs and counts (``reports.loader_rates``), for the smoke's section."""
    from .loader_rates import loader_rates_table

    return loader_rates_table()


def released_weights_block(paper: str) -> str:
    """A paper's released checkpoints, for its page (``reports.released``)."""
    from .released import released_weights_text

    return released_weights_text(paper)


def released_page(paper: str) -> Path:
    """The generated page of a paper's released checkpoints."""
    return GENERATED_DIR / f"released_{paper}.md"


def listed(paths: list[Path]) -> str:
    """Files as a page names them, in backticks."""
    names = [f"`{shown_path(path)}`" for path in paths]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names) or "no records yet"


@dataclass(frozen=True)
class Page:
    """A generated page: its title, the records it is made from (in words), its text below those two lines, and the
    hand-written page that links it in one line."""
    title: str
    sources: Callable[[], str]
    body: Callable[[], str]
    linked_from: Path


SMOKE_INTRO = ("One block per device, then the commands, commits and dates that measured them. What the smoke "
               "does, what the columns mean and what the runs found: [experiments/README.md](../../experiments/"
               f"README.md#paper-scale-smoke). A sweep of more than {SWEEP_TABLES} tables, or one at a shrunk frame "
               "size, is summarised one line per table; each run stays in its record file.")


def smoke_text() -> str:
    return f"{textwrap.fill(SMOKE_INTRO, 120, break_long_words=False, break_on_hyphens=False)}\n\n{smoke_block()}"


def generated_pages() -> dict[Path, Page]:
    """Every generated page, by path."""
    from experiments.harness.released_weights import CATALOGUE_FILE, catalogue_papers
    from experiments.paper_tables import papers

    from .attention_measures import measures_text, tracked_records
    from .attention_tracking import tracked_record, tracking_text
    from .benchmarks import SHIFT_FILES
    from .gpu_steps import PAPER_STEP_RECORDS, PROFILE_RECORD, paper_step_text
    from .released import CONVERSION_RECORD
    from .results_index import REPRODUCIBILITY, REPRODUCIBILITY_PAGE, reproducibility_text

    tracked = "the tracked records under `reports/results/`"
    pages = {
        TINY_RESULTS: Page("Tiny-scale results and costs", lambda: tracked, results_block,
                           REPO / "reports" / "README.md"),
        LEARNABILITY: Page("The synthetic sets' learnability (`synthetic_learnability`, seed 0)",
                           lambda: tracked + " that fill `synthetic_learnability`'s rows", learnability_block,
                           DATA_README),
        **{GENERATED_DIR / f"{table_id}.md": Page(f"The experiment `{table_id}` at tiny scale",
                                                  lambda table_id=table_id: f"{tracked} that fill `{table_id}`",
                                                  partial(experiment_block, table_id), EXPERIMENT_PAGES[table_id])
           for table_id in EXPERIMENTS},
        SHIFT_BENCHMARKS: Page("Speed and memory of the shift family",
                               lambda: listed(sorted(BENCHMARKS.glob(SHIFT_FILES))), shift_benchmarks_block,
                               SHIFT_FAMILY),
        TRAJECTORY_STEP: Page("A Motionformer training step on a GPU (`tools.trajectory_step`)",
                              lambda: listed([BENCHMARKS / name for name in [*STEP_RECORDS.values(), PROFILE_RECORD]]),
                              trajectory_step_text, MFORMER_MEMORY),
        PAPER_STEPS: Page("Each paper's training step on a GPU, ours against the authors' code (`tools.paper_step`)",
                          lambda: listed([BENCHMARKS / name for name in PAPER_STEP_RECORDS]), paper_step_text,
                          REPO / "README.md"),
        ATTENTION_TRACKING: Page("Does the attention track? Motionformer Figures 1 and 4, measured",
                                 lambda: listed([tracked_record()]), tracking_text,
                                 REPO / "experiments" / "mformer" / "README.md"),
        ATTENTION_MEASURES: Page("Where CAST and 3D-Deformable attend: Figure 3(c) and Figures A3-A5, measured",
                                 lambda: listed([p for p in tracked_records() if p.exists()]), measures_text,
                                 REPO / "experiments" / "cast" / "README.md"),
        SMOKE_PAGE: Page("The paper-scale smoke's records", lambda: listed(sorted(BENCHMARKS.glob("smoke_*.json"))),
                         smoke_text, SMOKE_DOC),
        GPU_COVERAGE: Page("The paper-scale smoke's GPU coverage", lambda: listed([BENCHMARKS / GPU_RECORD]),
                           gpu_coverage_block, SMOKE_DOC),
        LOADER_RATES: Page("Loader processes a GPU needs", lambda: "the loader rates " + listed(
            [BENCHMARKS / "loader_cpu.json", BENCHMARKS / "loader_cpu_repeat.json"]) + ", with the fastest step of the "
                           "smoke's and the shift family's GPU records", loader_rates_block, SMOKE_DOC),
        REPRODUCIBILITY_PAGE: Page("Reruns on other CPU kernels against the tracked records",
                                   lambda: f"the records under `{shown_path(REPRODUCIBILITY).as_posix()}/` and "
                                           f"{tracked}", reproducibility_text, REPO / "README.md")}
    for paper in catalogue_papers():  # each paper's released checkpoints (reports.released), linked from its page
        pages[released_page(paper)] = Page(
            f"{papers()[paper].short_name}'s released checkpoints (`{paper}`)", lambda paper=paper: listed(
                [REPO / "experiments" / paper / CATALOGUE_FILE, CONVERSION_RECORD]) + f", and {tracked}",
            partial(released_weights_block, paper), REPO / "experiments" / paper / "README.md")
    return pages


def page_text(page: Page) -> str:
    """A generated page whole: its title, the line that names its records, its text."""
    made = textwrap.fill(f"Generated by `python -m reports readme` from {page.sources()}; do not edit.", 120,
                         break_long_words=False, break_on_hyphens=False)
    return f"# {page.title}\n\n{made}\n\n{page.body()}\n"


def page_link(path: Path) -> str:
    """The relative link to a generated page from the hand-written page that links it, as a markdown link."""
    target = Path(os.path.relpath(path, generated_pages()[path].linked_from.parent)).as_posix()
    return f"[{shown_path(path).as_posix()}]({target})"


def rewrite_generated_pages(write: bool = True) -> dict[Path, bool]:
    """Make every generated page (``generated_pages``) and the results index (``reports.results_index``); returns,
    per file, whether it changed (a file not yet written counts as changed). Every file is made before any is
    written, so records that cannot be read leave all of them as they were."""
    from .records import one_scan
    from .results_index import INDEX, index_text

    with one_scan():
        new = {path: page_text(page) for path, page in generated_pages().items()}
        new[INDEX] = index_text()
    changed = {path: not path.is_file() or text != path.read_text() for path, text in new.items()}
    if write:
        from data.atomic_write import atomic_write_text

        for path, text in new.items():
            if changed[path]:
                atomic_write_text(path, text)
    return changed
