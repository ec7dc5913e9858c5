"""``python -m experiments weights`` (the catalogue of the authors' released checkpoints) and ``python -m experiments
evaluate ID --rows ROW --checkpoint SOURCE`` (a cell tested from released weights at the paper's protocol:
``experiments.harness.evaluate``), registered by ``add_command``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from data.command_line import LOADER_WORKERS, count, printable
from data.root_files import shown

from ..paper_tables import printed
from .evaluate import DEFAULT_WEIGHTS_DIR, Evaluation, evaluate, resolve_evaluation
from .interruption import Interrupted, stop_on_signals
from .overrides import add_lightning_options, lightning_options
from .released_weights import ReleasedCheckpoint, catalogue
from .sizes import ALLOW_FLAG, allowing_large


def cmd_weights(args: argparse.Namespace) -> int:
    """The catalogue: per checkpoint its name, the cells it fills and the paper's numbers there, the protocol, the
    file and the authors' link."""
    entries = [e for e in catalogue() if args.paper is None or e.paper == args.paper]
    if args.json:
        print(json.dumps([catalogue_json(e) for e in entries], indent=1, ensure_ascii=False))
        return 0
    for entry in entries:
        print(entry.full_name)
        for cell in entry.cells:
            print(f"    fills    {cell}: paper {numbers_text(cell.paper_numbers())}")
        if entry.authors_number:
            number = entry.authors_number
            print(f"    authors  {number.get('metric', '')} {number['value']} at {number.get('views', '?')} views "
                  f"({number['source']})")
        print(f"    protocol {entry.protocol.summary()}")
        print(f"    file     {entry.file}  <- {entry.link}")
    print(f"\n{len(entries)} released checkpoint(s); `python -m experiments evaluate TABLE --rows ROW --checkpoint "
          f"NAME --weights-dir DIR` tests one where its cell is (DIR default: {DEFAULT_WEIGHTS_DIR})")
    return 0


def numbers_text(numbers: dict[str, Any]) -> str:
    return ", ".join(f"{column} {printed(value)}" for column, value in numbers.items())


def catalogue_json(entry: ReleasedCheckpoint) -> dict[str, Any]:
    from dataclasses import asdict

    return {"name": entry.full_name, "file": entry.file, "link": entry.link, "layout": entry.layout,
            "cells": [{"table": c.table, "row": c.row, "columns": list(c.columns),
                       "paper": {k: None if v is None else str(v) for k, v in c.paper_numbers().items()}}
                      for c in entry.cells],
            "authors_number": entry.authors_number, "expects": dict(entry.expects), "model": dict(entry.model),
            "protocol": asdict(entry.protocol), "config": entry.config, "note": entry.note}


def cmd_evaluate(args: argparse.Namespace) -> int:
    with allowing_large(args.allow_large):  # the bounds of experiments.harness.sizes, checked on the meta device
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    overrides = {"data": {"batch_size": args.batch_size, "num_workers": args.num_workers},
                 "trainer": lightning_options(args)}
    evaluation = resolve_evaluation(args.table, args.rows, args.checkpoint, args.weights_dir, args.data_root,
                                    args.column, overrides, args.set or ())
    if args.dry_run:
        return dry_run(evaluation, args.runs_dir)
    try:
        with stop_on_signals():
            record = evaluate(evaluation, args.runs_dir, force=args.force, progress_bar=not args.no_progress_bar)
    except Interrupted as stop:
        print(f"{stop}: nothing was recorded; the same command evaluates again", file=sys.stderr)
        return stop.exit_code
    how = "already evaluated (--force evaluates again)" if record.get("cached") else "evaluated"
    metrics = ", ".join(f"{k}={v:.2f}" for k, v in record["metrics"].items() if "top" in k)
    record_file = evaluation.folder(args.runs_dir).record_file
    print(f"{evaluation.entry.full_name} on {evaluation.cell}: {metrics} ({how}; paper: "
          f"{numbers_text(evaluation.cell.paper_numbers())}) -> {record_file}")
    return 0


def dry_run(evaluation: Evaluation, runs_root: str) -> int:
    """What ``evaluate`` would do: the layout it recognises in the file (or why it refuses it), what the row
    expects, the views, and the data it would read (and whether it is there). Reads the file, runs nothing."""
    from models.released import LAYOUTS

    from .evaluate import check_checkpoint
    from .plan import expected_data

    entry, cfg, protocol = evaluation.entry, evaluation.cfg, evaluation.entry.protocol
    print(f"{entry.full_name} on {evaluation.cell} (paper: {numbers_text(evaluation.cell.paper_numbers())})")
    if evaluation.source.exists():
        checked = check_checkpoint(evaluation)  # a refusal is the command's one line
        d = checked.description
        print(f"file: {printable(checked.label)}: recognised as layout {checked.reader.name} ({checked.reader.title}): "
              f"variant {d.get('variant')}, classes {d.get('classes')}, {d.get('frames')} frames, crop {d.get('crop')}"
              f", epoch {d.get('epoch')}; it fits the row's model, every key and shape")
    else:
        print(f"file: {shown(evaluation.source)} is not there: {entry.full_name} is {entry.link} (layout "
              f"{entry.layout}, {LAYOUTS[entry.layout].title})")
    print(f"the row expects: {cfg.model.name} {json.dumps(dict(cfg.model.overrides), sort_keys=True)}, "
          f"{entry.expects['classes']} classes, {protocol.frames} frames of {protocol.crop} x {protocol.crop}")
    print(f"views: {protocol.temporal_views} temporal x {protocol.spatial_views} spatial; {protocol.placement()}; "
          f"short side {protocol.short_side}, crop {protocol.crop}; mean {list(protocol.mean)}, std "
          f"{list(protocol.std)}, channels {cfg.data.options.get('channel_order', 'RGB')}; {protocol.aggregation} "
          f"(ours: mean of "
          f"{protocol.view_average})" + (f"; {protocol.scoring}" if protocol.scoring else ""))
    if entry.note:
        print(f"note: {entry.note}")
    missing = expected_data(cfg)
    print(f"data: {cfg.data.dataset}, its validation split" + (f" from {shown(cfg.data.root)}" if cfg.data.root else "")
          + (f": missing, {printable(missing)}" if missing else ""))
    print(f"record: {shown(evaluation.folder(runs_root).record_file)} (marked as evaluated from released "
          f"weights)")
    print("# nothing run (--dry-run)")
    return 0


def add_command(sub: Any, setting: Callable[[str], tuple[str, Any]]) -> None:
    """The ``weights`` and ``evaluate`` subcommands (``setting``: the parser of ``--set SECTION.FIELD=VALUE``)."""
    weights = sub.add_parser("weights", help="the authors' released checkpoints: the cells they fill, the paper's "
                                             "numbers there, the test protocol, file and link")
    weights.add_argument("--paper", help="one paper's (mformer, msca, xvit, cast)")
    weights.add_argument("--json", action="store_true", help="one JSON list")
    weights.set_defaults(fn=cmd_weights)

    run = sub.add_parser("evaluate", help="test a table cell from the authors' released checkpoint, at the paper's "
                                          "test protocol (no training); its record is kept apart from trained runs")
    run.add_argument("table")
    run.add_argument("--rows", required=True, metavar="ROW", help="the row the checkpoint fills (see `show`)")
    run.add_argument("--checkpoint", required=True, metavar="SOURCE",
                     help="a catalogue name (`weights`: e.g. mformer:k400_motionformer_224_16x4, found in "
                          "--weights-dir) or the file (a CAST DeepSpeed tag folder too)")
    run.add_argument("--weights-dir", help=f"where catalogue names are found (default {DEFAULT_WEIGHTS_DIR})")
    run.add_argument("--column", help="the column the checkpoint fills, where the row has several runs")
    run.add_argument("--data-root", help="folder holding one sub-folder per dataset (kinetics400/, ssv2/, ...)")
    run.add_argument("--dry-run", action="store_true",
                     help="read and check the file, say what the row expects, the views and the data; run nothing")
    run.add_argument("--runs-dir", default="runs", help="where the evaluation is logged (default: runs/)")
    run.add_argument("--force", action="store_true", help="evaluate again, moving the old record away")
    run.add_argument("--batch-size", type=count(1, 1024, "a batch size"),
                     help="videos per batch, each with all its views (default 1)")
    run.add_argument("--num-workers", type=LOADER_WORKERS)
    run.add_argument(ALLOW_FLAG, action="store_true", help="past the size bounds, as `run` takes it")
    add_lightning_options(run, defaults={"accelerator": "auto", "devices": "1", "num_nodes": "1", "strategy": "auto",
                                         "precision": "32-true"})  # evaluate.evaluation_config's
    run.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", type=setting,
                     help="any config field, VALUE as JSON (else a string)")
    run.add_argument("--no-progress-bar", action="store_true")
    run.set_defaults(fn=cmd_evaluate)


__all__ = ["add_command", "catalogue_json", "cmd_evaluate", "cmd_weights", "dry_run"]
