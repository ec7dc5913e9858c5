"""What a table command means before anything trains: the runs a table resolves to with the user's options
(``resolve_runs``), which of them lack data and where it was expected, what ``run`` would do with each
(``planned_steps``: ``RunDir.next_step`` told of the data's absence; ``runs_to_train``), the checks ``run`` and
``--dry-run`` share (``check_resolved``: folders, launch, Lightning's options, the table's static record, and every
model built on the ``meta`` device by ``check_buildable``). Imports no torch at import time."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from data.root_files import shown

from ..paper_tables import paper_table
from .checks import check_mixed_batch, check_trainer_options, check_writable
from .overrides import apply_overrides, given_options
from .provenance import check_multi_node_launch, with_paper_batch
from .records import comparable_config
from .run_dir import RunDir, RunsTree, Step
from .run_sources import check_run_sources, run_sources
from .spec import RunConfig, TableSpec, table_spec
from .static import read_static, static_record_path
from .tasks import build_model, check_data_options, check_source_early, get_task, source_kinds

# The most seeds `run --seeds N` takes. A report cell is a mean ± std over seeds: the papers report 1 to 3; the quick
# start's 3 seeds of mformer_table4 take 11 minutes on 2 cores, so 100 take about 6 hours. A larger N is taken for a
# typo, not planned: resolving and dry-running 100000 seeds would itself take hours.
MAX_SEEDS = 100


class TableNotImplementedError(RuntimeError):
    pass


class MissingDataError(RuntimeError):
    """No run of the requested table can start: every dataset it needs is absent."""


def require_spec(table_id: str) -> TableSpec:
    spec = table_spec(table_id)  # unknown ids raise with close matches
    if spec is None:
        table = paper_table(table_id)
        raise TableNotImplementedError(
            f"{table_id} ({table.paper_short} {table.label}) is listed but not implemented yet; it belongs to the "
            f"{table.area} work. Implemented tables: `python -m experiments list`."
        )
    return spec


def resolve_runs(
    table_id: str,
    scale: str = "tiny",
    rows: Sequence[str] | None = None,
    seeds: int = 1,
    data_root: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    settings: Iterable[tuple[str, Any]] = (),
) -> list[RunConfig]:
    """Every run a table needs at a scale, rows in the paper's order, with the user's options applied
    (``given_options``: the option flags ``overrides``, then the ``--set`` pairs ``settings``)."""
    if not 1 <= seeds <= MAX_SEEDS:
        raise ValueError(f"--seeds {seeds}: takes 1 to {MAX_SEEDS} seeds per row")
    given = given_options(overrides, settings)
    spec = require_spec(table_id)
    selected = {spec.row(key).key for key in rows} if rows else {r.key for r in spec.rows}
    configs = []
    for row, column in spec.runs():
        if row.key not in selected:
            continue
        for seed in range(seeds):
            cfg = with_paper_batch(spec.resolve(row, column, scale, seed, data_root))  # before the user's options
            configs.append(apply_overrides(cfg, given))
            check_run_sources(configs[-1])  # here, so that --dry-run refuses a bad run: source where a run would
    return configs


def missing_data(cfg: RunConfig) -> str | None:
    """Why a run cannot start for lack of data (a real dataset without a root on disk), else None."""
    where = expected_data(cfg)
    return None if where is None else f"needs data: {cfg.data.dataset} ({where})"


def expected_data(cfg: RunConfig) -> str | None:
    """Where the run's dataset should be, if it is a real dataset that is absent; None when the run can start."""
    from data import generated_locally  # it imports torch: only when a run is checked, never for the CLI's help

    if generated_locally(cfg.data.dataset, cfg.data.root):
        return None
    if cfg.data.root is None:
        return f"pass --data-root DIR holding {cfg.data.dataset}/"
    if not Path(cfg.data.root).exists():
        return f"not found at {shown(cfg.data.root)}"
    return None


def missing_datasets(configs: Iterable[RunConfig]) -> dict[str, str]:
    """Each absent dataset once, with where it was expected: {dataset: "not found at DIR" | "pass --data-root ..."}."""
    out: dict[str, str] = {}
    for cfg in configs:
        where = expected_data(cfg)
        if where is not None:
            out.setdefault(cfg.data.dataset, where)
    return out


def dataset_shown(cfg: RunConfig) -> str:
    """The run's dataset as the console names it, marked when the run generates it in place of the release it
    would read (LRA ListOps without ``lra_listops/`` under ``--data-root``), as its report cells are."""
    from data import generated_in_place_of_release

    if generated_in_place_of_release(cfg.data.dataset, cfg.data.root, cfg.data.synthetic_params):
        name = cfg.data.dataset
        return f"{name}, generated locally in place of the release: no {name}/ under --data-root"
    return cfg.data.dataset


def run_line(cfg: RunConfig, runs_root: str | Path) -> str:
    """One run as the console names it: table, row, column (dataset), seed, scale and its directory (escaped where
    it holds a line break or an ESC: ``shown``)."""
    return (f"{cfg.table} row={cfg.row} column={cfg.column} ({dataset_shown(cfg)}) seed={cfg.seed} "
            f"scale={cfg.scale} -> {shown(RunDir.of(cfg, runs_root).path)}")


def planned_steps(configs: Iterable[RunConfig], runs_root: str | Path, force: bool = False) -> list[Step]:
    """What ``run`` does next with each run (``RunDir.next_step``, once a run): a run whose data is absent is
    skipped (``missing_datasets`` says where it was expected)."""
    return [RunDir.of(cfg, runs_root).next_step(cfg, runs_root, force, missing_data=_needs(cfg)) for cfg in configs]


def _needs(cfg: RunConfig) -> str | None:
    return None if expected_data(cfg) is None else f"needs {cfg.data.dataset}"


def runs_to_train(configs: Sequence[RunConfig], steps: Sequence[Step], sources_finished: bool = False
                  ) -> list[RunConfig]:
    """The runs that will train, in order: not done, not an identical run's reuse (a configuration that two rows
    share trains once), not waiting for another run's checkpoint (unless ``sources_finished``: the caller found
    every run they start from finished)."""
    to_train, seen = [], set()
    for cfg, step in zip(configs, steps):
        key = json.dumps(comparable_config(cfg.to_dict()), sort_keys=True)
        if step.trains and (step.forced or key not in seen) and (sources_finished or not needs_another_run(cfg)):
            to_train.append(cfg)
            seen.add(key)
    return to_train


def needs_another_run(cfg: RunConfig) -> bool:
    """Starts from another run's checkpoint (``run:<table>/<row>/<column>``): it trains after that run has."""
    return bool(run_sources(cfg))


def pretrained_source_errors(cfg: RunConfig) -> list[tuple[str, Exception]]:
    """Each pretrained source of the run that cannot be read here (a missing file, a model timm does not have), as
    (its part: the submodule it initialises, "" for the whole model; the error that names it). ``run:`` sources may
    be trained by this very command: they are checked when their run starts."""
    from models.sources import check_source

    sources = cfg.model.pretrained
    errors: list[tuple[str, Exception]] = []
    for part, source in ({"": sources} if isinstance(sources, str) else dict(sources or {})).items():
        try:
            if not check_source_early(source):  # a shipped source's error names the command that writes it
                check_source(source, other_kinds=source_kinds())
        except (ValueError, OSError) as err:  # CheckpointError is a ValueError
            errors.append((part, err))
    return errors


def check_pretrained_sources(cfg: RunConfig) -> None:
    """A pretrained source naming a missing file or a model timm does not have fails here, by name."""
    errors = pretrained_source_errors(cfg)
    if errors:
        raise errors[0][1]


def check_buildable(cfg: RunConfig, check_sources: bool = True) -> None:
    """Check the run's data options and (when its data is there, and ``check_sources``) pretrained sources, and
    build its model on the ``meta`` device: an unknown or misspelled option, a missing checkpoint file or an unknown
    timm model fails here, by name, before anything trains (cheap at paper scale: no memory is allocated)."""
    # A verb/noun model that fixes its verb count (CAST's split heads: ``num_verbs``) is built with that many verb
    # logits and a few nouns, as the data would give it; any other model with the task's count, or 2 classes.
    check_data_options(cfg)
    if check_sources and expected_data(cfg) is None:  # a run skipped for its data needs no weights either
        check_pretrained_sources(cfg)
    verbs = cfg.model.overrides.get("num_verbs")
    build_model(cfg, get_task(cfg.task).num_classes or (verbs + 3 if verbs else 2), device="meta")


def check_resolved(configs: Sequence[RunConfig], runs_root: str | Path, dry_run: bool,
                   check_sources: bool = True) -> list[str]:
    """What ``run`` checks once its runs resolve, before static columns, data or training, and ``--dry-run`` with
    it: the table's runs folder takes new files, each run's launch and trainer options are Lightning's and its
    static record reads. A run that would start here (not a dry run, its data there) also needs its accelerator
    and, on several nodes, their launcher; a dry run returns what it lacks here as notes instead. Each run's lock
    path must be free or a lock file (``RunDir.check_lock_file``), and each distinct model builds on the meta device
    with its data options, generated-set sizes and pretrained sources (``check_buildable``): the dry run and the run
    refuse a bad option with the same line, before anything is written. ``check_sources=False``: the pretrained
    files were checked and noted already (``run --submit --dry-run``)."""
    notes: dict[str, None] = {}
    for table in dict.fromkeys(cfg.table for cfg in configs):
        check_writable(RunsTree(runs_root).table(table), "--runs-dir")
        if require_spec(table).static_columns:  # the run recomputes it, keeping what it held
            read_static(static_record_path(runs_root, table))
    for cfg in configs:
        here = not dry_run and expected_data(cfg) is None
        if here and get_task(cfg.task).trains:  # an evaluation runs on one device, whatever the preset's nodes
            check_multi_node_launch(cfg)
        check_mixed_batch(cfg)
        RunDir.of(cfg, runs_root).check_lock_file()
        note = check_trainer_options(cfg, on_this_machine=here)
        if note:
            notes[note] = None
    built = set()
    for cfg in configs:  # every model built on the meta device: a bad option fails here, by name
        model = json.dumps({**cfg.to_dict(), "seed": None}, sort_keys=True, default=str)  # seeds build alike
        if model not in built:
            check_buildable(cfg, check_sources)
            built.add(model)
    return list(notes)


def describe_runs(configs: Iterable[RunConfig], runs_root: str | Path = "runs") -> str:
    """The --dry-run listing: each run's directory and fully resolved configuration."""
    blocks = []
    for cfg in configs:
        blocks.append(f"# {shown(RunDir.of(cfg, runs_root).path)}\n{json.dumps(cfg.to_dict(), indent=2)}")
    return "\n".join(blocks)
