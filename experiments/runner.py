"""Run a table: every (row, result column, seed) is one Lightning fit + multi-view test.

Each run lives in ``runs/<table>/<row>/seed<k>/<column>/``: TensorBoard events, ``hparams.yaml``,
``checkpoints/last.ckpt`` and, once tested, ``metrics.json`` (the flat record the reports read).
A run with a ``metrics.json`` is done and skipped; a run with only ``last.ckpt`` resumes from it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .spec import RunConfig, TableSpec, table_spec
from .paper_tables import paper_table

REPO_ROOT = Path(__file__).resolve().parent.parent


class TableNotImplementedError(RuntimeError):
    pass


def resolve_runs(
    table_id: str,
    scale: str = "tiny",
    rows: Sequence[str] | None = None,
    seeds: int = 1,
    data_root: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> list[RunConfig]:
    """Every run a table needs at a scale, rows in the paper's order, with CLI overrides applied."""
    spec = require_spec(table_id)
    selected = [spec.row(key) for key in rows] if rows else list(spec.rows)
    configs = []
    for row in selected:
        for column in spec.metric_columns:
            for seed in range(seeds):
                cfg = spec.resolve(row, column.column, scale, seed, data_root)
                configs.append(apply_overrides(cfg, overrides or {}))
    return configs


def require_spec(table_id: str) -> TableSpec:
    spec = table_spec(table_id)  # unknown ids raise with close matches
    if spec is None:
        table = paper_table(table_id)
        raise TableNotImplementedError(
            f"{table_id} ({table.paper_short} {table.label}) is listed but not implemented yet; it belongs to the "
            f"{table.area} work. Implemented tables: `python -m experiments list`."
        )
    return spec


def apply_overrides(cfg: RunConfig, overrides: dict[str, dict[str, Any]]) -> RunConfig:
    """overrides = {"data": {...}, "optim": {...}, "trainer": {...}}: replace fields, rejecting unknown ones."""
    changes = {}
    for section, values in overrides.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            changes[section] = dataclasses.replace(getattr(cfg, section), **values)
    return dataclasses.replace(cfg, **changes)


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_table(
    table_id: str,
    scale: str = "tiny",
    rows: Sequence[str] | None = None,
    seeds: int = 1,
    data_root: str | Path | None = None,
    runs_root: str | Path = "runs",
    overrides: dict[str, dict[str, Any]] | None = None,
    force: bool = False,
    progress_bar: bool = True,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train and test every run of a table, then rebuild its report. Returns the metrics records."""
    configs = resolve_runs(table_id, scale, rows, seeds, data_root, overrides)
    records, start = [], time.perf_counter()
    for i, cfg in enumerate(configs, 1):
        echo(f"[{i}/{len(configs)}] {cfg.table} row={cfg.row} column={cfg.column} ({cfg.data.dataset}) "
             f"seed={cfg.seed} scale={cfg.scale} -> {cfg.run_dir(runs_root)}")
        record = execute(cfg, runs_root, force=force, progress_bar=progress_bar, echo=echo)
        top1 = record["metrics"].get("top1")
        echo(f"    top1={top1:.2f}%  ({record['wall_time_s']:.0f}s{', cached' if record.get('cached') else ''})")
        records.append(record)
    echo(f"{len(configs)} run(s) in {time.perf_counter() - start:.0f}s")

    from reports.build import build_report  # late import: reports depend on experiments

    path = build_report(table_id, runs_root=runs_root)
    echo(f"report: {path}")
    return records


def execute(
    cfg: RunConfig,
    runs_root: str | Path = "runs",
    force: bool = False,
    progress_bar: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One fit + test. Skips a finished run, resumes an interrupted one, writes metrics.json last."""
    run_dir = cfg.run_dir(runs_root)
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists() and not force:
        return {**json.loads(metrics_path.read_text()), "cached": True}

    import lightning as L
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from data.datamodule import VideoDataModule
    from lightning_modules import VideoClassifier
    from models import create_model, load_pretrained

    start = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    data_kwargs = dataclasses.asdict(cfg.data)
    dm = VideoDataModule(**data_kwargs, failures_dir=run_dir / "data_failures")
    dm.prepare_data()
    dm.setup("fit")
    model = create_model(cfg.model.name, num_classes=dm.num_classes, **dict(cfg.model.overrides))
    if cfg.model.pretrained:
        load_pretrained(model, cfg.model.pretrained)
    optim = dataclasses.asdict(cfg.optim)
    module = VideoClassifier(model, dm.num_classes, **optim)

    class LogRunConfig(Callback):
        """Record the row's whole configuration as TensorBoard hyper-parameters (after Lightning's own)."""

        def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            trainer.logger.log_hyperparams({**cfg.to_dict(), "num_params": num_params})

    num_params = sum(p.numel() for p in model.parameters())
    logger = TensorBoardLogger(save_dir=str(run_dir.parent), name=run_dir.name, version="",
                               default_hp_metric=False)
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0)
    t = cfg.trainer
    trainer = L.Trainer(
        max_epochs=cfg.optim.epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        log_every_n_steps=t.log_every_n_steps,
        logger=logger,
        callbacks=[checkpoint, LogRunConfig()],
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        deterministic=False,
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    resume = str(last) if last.exists() and not force else None
    if resume:
        echo(f"    resuming from {last}")
    trainer.fit(module, datamodule=dm, ckpt_path=resume)
    results = trainer.test(module, datamodule=dm, verbose=False)[0]

    metrics = {k.split("/", 1)[1]: 100.0 * v if "top" in k else v for k, v in results.items()
               if k.startswith("test/")}
    if not all(math.isfinite(v) for v in metrics.values()):
        raise RuntimeError(f"{run_dir}: non-finite test metrics {metrics}")
    record = {
        "table": cfg.table,
        "row": cfg.row,
        "column": cfg.column,
        "seed": cfg.seed,
        "scale": cfg.scale,
        "dataset": cfg.data.dataset,
        "data": dm.describe(),
        "metrics": metrics,
        "num_params": num_params,
        "config": cfg.to_dict(),
        "data_report": dm.data_report(),
        "git_commit": git_commit(),
        "resumed_from": resume,
        "wall_time_s": time.perf_counter() - start,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "platform": platform.platform(),
                 "cpu_count": os.cpu_count(), "argv": sys.argv},
    }
    if trainer.is_global_zero:
        tmp = metrics_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str))
        tmp.replace(metrics_path)  # atomic: a metrics.json is always complete
    return record


def describe_runs(configs: Iterable[RunConfig], runs_root: str | Path = "runs") -> str:
    """The --dry-run listing: each run's directory and fully resolved configuration."""
    blocks = []
    for cfg in configs:
        blocks.append(f"# {cfg.run_dir(runs_root)}\n{json.dumps(cfg.to_dict(), indent=2)}")
    return "\n".join(blocks)
