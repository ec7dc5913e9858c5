"""Command line for the data package.

``python -m data check NAME --root PATH [--split SPLIT] [--json] [--manifest PATH] [--format FMT] [--quick]``
    Checks every file the dataset's annotations name (found, missing or corrupt), writes a manifest and exits 0
    when all is usable, 1 when anything is missing, corrupt or malformed, 2 when the annotation files themselves
    cannot be read or the root does not exist. What it checks and prints: data/README.md#checking-a-dataset.

``python -m data synth NAME --out DIR [--videos N] [--seed S]``
    Generates a synthetic set with N samples in all, ``N // 3`` (at least one) for validation and the rest for
    training; a sample is a video, or an action segment for synth_verbnoun.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from data.annotations import annotation_layout, annotation_source, read_annotations
from data.atomic_write import WriteRefusedError, atomic_write_text
from data.cache import build_once
from data.command_line import SEED, OneLineParser, count, printable
from data.command_line import path as file_name
from data.datamodule import DATASETS, annotation_format_of, dataset_num_classes, naming_missing_files
from data.datasets import build_report, check_files, check_segments, split_check
from data.root_files import OUTSIDE_ROOT, shown
from data.samples import SPLITS
from data.synthetic import MAX_SAMPLES, SYNTHETIC_SETS, generate_synthetic, synthetic_params

# ``synth --videos N``: a third of N for validation, the rest for training, each split within the generated sets'
# bound (``data.synthetic.MAX_SAMPLES``)
MAX_VIDEOS = 3 * MAX_SAMPLES // 2


def _entry(sample, status: dict[str, str | None]) -> dict[str, Any]:
    problems = [f"{p}: {status[str(p)]}" for p in (sample.path, sample.pose)
                if p is not None and status.get(str(p)) is not None]
    return {
        "video_id": sample.video_id, "path": str(sample.path),
        "label": list(sample.label) if isinstance(sample.label, tuple) else sample.label,
        "line": sample.line, "segment": list(sample.segment) if sample.segment else None,
        "pose": str(sample.pose) if sample.pose is not None else None,
        "status": "ok" if not problems else "; ".join(problems),
    }


def check(name: str, root: Path, splits: list[str], fmt: str, decode: bool, workers: int) -> tuple[dict, dict]:
    """(summary, manifest) of the given splits; raises FileNotFoundError/ValueError on unreadable annotations or an
    inconsistent class table."""
    per_split, manifest_splits, files_of_split = {}, {}, {}
    num_classes = dataset_num_classes(name, fmt, root)  # as a run reads it: labels past it are bad lines
    for split in splits:
        samples, bad = read_annotations(fmt, root, split, num_classes=num_classes)
        status = check_files(samples, decode=decode, workers=workers)
        # Segments past their video's end, recorded the way a training run records them.
        segments = [{"mode": "check", "kind": "bad_segment", **b} for b in check_segments(samples, status)]
        report = build_report(name, split, samples, bad, [segments], scanned=split_check(status))
        per_split[split] = report
        files_of_split[split] = ({str(s.path) for s in samples}, {str(s.pose) for s in samples if s.pose is not None})
        manifest_splits[split] = {**_summary(report, bad), "entries": [_entry(s, status) for s in samples]}
    if len(splits) == 1:
        summary = _summary(per_split[splits[0]], None)
    else:  # totals over the splits; a bad label file of unknown split (PennAction) is listed by both: count it once
        summary = _combine([_summary(r, None) for r in per_split.values()], list(files_of_split.values()))
        summary["splits"] = {s: _summary(r, None) for s, r in per_split.items()}
    # A split without samples cannot be trained or tested on (a run refuses it): named with its annotation file.
    summary["empty_splits"] = [{"split": s, "source": str(annotation_source(fmt, root, s))}
                               for s, r in per_split.items() if not r["samples"]]
    summary.update(format=fmt, layout=annotation_layout(fmt, root), root=str(root), decoded=decode)
    manifest = {"dataset": name, "format": fmt, "layout": summary["layout"], "root": str(root), "decoded": decode,
                "created": datetime.now(UTC).isoformat(timespec="seconds"), "splits": manifest_splits}
    return summary, manifest


def _summary(report: dict[str, Any], bad=None) -> dict[str, Any]:
    out = {
        "dataset": report["dataset"], "split": report["split"],
        "expected": report["expected"], "found": report["found"], "missing": len(report["missing"]),
        "corrupt": len(report["corrupt"]), "bad_annotation_lines": len(report["bad_annotation_lines"]),
        "samples": report["samples"], "unusable_samples": report["unusable_samples"],
        "missing_paths": report["missing"], "corrupt_paths": report["corrupt"],
        "bad_lines": report["bad_annotation_lines"], "bad_segments": report.get("bad_segments", []),
    }
    if bad is not None:  # the manifest keeps the offending text too
        out["bad_lines"] = [b.as_dict() for b in bad]
    for key in ("pose_expected", "pose_found"):
        if key in report:
            out[key] = report[key]
    return out


def _combine(summaries: list[dict[str, Any]], files: list[tuple[set[str], set[str]]]) -> dict[str, Any]:
    """Totals over the splits: samples are each split's own, files (``files``: each split's videos and pose files)
    and problems are counted once however many splits list them; ``shared_videos`` names the videos of several."""
    total = {"dataset": summaries[0]["dataset"], "split": "all"}
    for key in ("samples", "unusable_samples"):
        total[key] = sum(s[key] for s in summaries)
    total["missing_paths"] = sorted({p for s in summaries for p in s["missing_paths"]})
    missing = set(total["missing_paths"])
    videos, poses = set().union(*(v for v, _ in files)), set().union(*(p for _, p in files))
    total["expected"], total["found"] = len(videos), len(videos - missing)
    if any("pose_expected" in s for s in summaries):
        total["pose_expected"], total["pose_found"] = len(poses), len(poses - missing)
    total["shared_videos"] = sorted(v for v in videos if sum(v in split_videos for split_videos, _ in files) > 1)
    total["corrupt_paths"] = sorted({c["path"]: c for s in summaries for c in s["corrupt_paths"]}.values(),
                                    key=lambda c: c["path"])
    total["bad_lines"] = list({(b["file"], b["line"]): b for s in summaries for b in s["bad_lines"]}.values())
    total["bad_segments"] = [b for s in summaries for b in s["bad_segments"]]
    total["missing"], total["corrupt"] = len(total["missing_paths"]), len(total["corrupt_paths"])
    total["bad_annotation_lines"] = len(total["bad_lines"])
    return total


def _write_manifest(manifest: dict, path: Path | None, root: Path, name: str, split: str) -> Path:
    """The manifest written whole, by a rename (``atomic_write_text``): a reader never sees half of it, and a link
    at its path is replaced itself, never written through (a dataset may hold a link planted there)."""
    default_name = f"manifest-{name}-{split}.json"
    target = path or root / default_name
    text = json.dumps(manifest, indent=1)
    try:
        atomic_write_text(target, text)
    # OSError: a read-only root or a missing folder; WriteRefusedError: a folder, FIFO or device where the file goes
    except (OSError, WriteRefusedError) as err:
        reason = getattr(err, "strerror", None) or err
        if path is not None:  # the user's own choice: said as a bad argument (exit 2), not a data problem (exit 1)
            raise ValueError(f"--manifest {shown(path)}: cannot write it ({reason})") from err
        target = Path.cwd() / default_name  # a dataset root that takes no manifest: keep it here instead
        print(f"cannot write {shown(root / default_name)} ({reason}); writing {shown(target)}", file=sys.stderr)
        atomic_write_text(target, text)
    return target


def _print_text(summary: dict[str, Any]) -> None:
    pose = (f", pose files {summary['pose_found']}/{summary['pose_expected']} found"
            if "pose_expected" in summary else "")
    layout = f", {summary['layout']} layout" if summary["layout"] else ""
    print(f"{summary['dataset']} [{summary['split']}] {shown(summary['root'])} ({summary['format']}{layout}): "
          f"{summary['expected']} videos expected, {summary['found']} found, {summary['missing']} missing, "
          f"{summary['corrupt']} corrupt; {summary['samples']} samples, {summary['unusable_samples']} unusable; "
          f"{summary['bad_annotation_lines']} bad annotation lines{pose}")
    # every path and reason on its line: a name read from a dataset's file may hold a newline or ESC
    for path in summary["missing_paths"]:
        print(f"  missing  {shown(path)}")
    for item in summary["corrupt_paths"]:  # a file refused for leaving the root is unusable too, but not corrupt
        print(f"  {'outside' if item['reason'].startswith(OUTSIDE_ROOT) else 'corrupt'}  {shown(item['path'])}: "
              f"{printable(item['reason'])}")
    for item in summary["bad_lines"]:
        print(f"  bad line {shown(item['file'])}:{item['line']}: {printable(item['reason'])}")
    for item in summary["bad_segments"]:
        print(f"  bad segment {shown(item['path'])} ({printable(item['reason'])})")
    for item in summary["empty_splits"]:
        print(f"  no samples in the {item['split']} split ({shown(item['source'])})")
    for path in summary.get("shared_videos", []):  # not unusable, but a test on it measures seen data
        print(f"  in several splits  {shown(path)}")
    print(f"manifest: {shown(summary['manifest'])}")


def _run_check(args: argparse.Namespace) -> int:
    # Said in one line, for this dataset only, before anything is read: a root that is not a folder, or one without
    # annotation files; then any annotation file that is missing, with what the dataset needs.
    fmt = annotation_format_of(args.name, args.root, args.format or DATASETS[args.name].annotation_format)
    splits = [args.split] if args.split else list(SPLITS)
    with naming_missing_files(args.name, fmt):
        summary, manifest = check(args.name, args.root, splits, fmt, decode=not args.quick, workers=args.workers)
    summary["manifest"] = str(_write_manifest(manifest, args.manifest, args.root, args.name,
                                              args.split or "all"))
    if args.json:
        print(json.dumps(summary))
    else:
        _print_text(summary)
    problems = (summary["missing"] or summary["corrupt"] or summary["bad_annotation_lines"] or summary["bad_segments"]
                or summary["empty_splits"])
    return 1 if problems else 0


def _run_synth(args: argparse.Namespace) -> int:
    num_val = max(1, args.videos // 3)
    try:  # within the generated sets' bounds (samples, and the pixels of the whole set), before anything is written
        synthetic_params(num_train=args.videos - num_val, num_val=num_val, seed=args.seed)
    except ValueError as err:
        raise ValueError(f"--videos {args.videos}: {str(err).removeprefix('synthetic_params: ')}") from None
    out: Path = args.out
    # A new folder, written beside it and renamed into place: writing into an existing one would follow the links
    # it holds, and a set killed half-way would look whole.
    if out.is_symlink() or (out.exists() and not (out.is_dir() and not any(out.iterdir()))):
        raise ValueError(f"--out {shown(out)} exists and is not an empty folder; synth writes a new folder")
    if out.exists():
        out.rmdir()
    root = build_once(out, lambda tmp: generate_synthetic(args.name, tmp, num_train=args.videos - num_val,
                                                          num_val=num_val, seed=args.seed))
    print(f"{args.name}: {args.videos - num_val} train + {num_val} val videos in {shown(root)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser(
        "check", help="report found / missing / corrupt files against the annotations",
        description="Read a dataset's annotation files and check every file they name: found, missing or corrupt "
                    "(each video's first and last frames are decoded; --quick only stats files). Prints a summary "
                    "and writes a manifest of every sample's status. Exit status: 0 all usable; 1 something "
                    "missing, corrupt or malformed; 2 the annotations cannot be read or the root does not exist.")
    p.add_argument("name", choices=sorted(DATASETS))
    p.add_argument("--root", type=file_name("a dataset folder"), required=True, help="dataset directory")
    p.add_argument("--split", choices=SPLITS, help="one split (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--manifest", type=file_name("a manifest file"),
                   help="manifest path (default: <root>/manifest-<name>-<split>.json)")
    p.add_argument("--format", help="annotation format (default: the dataset's; e.g. ntu60_xview)")
    p.add_argument("--quick", action="store_true", help="stat files only, decode nothing")
    p.add_argument("--workers", type=count(1, 256, "a thread count"), default=1, help="decoding threads (1 to 256)")
    p.set_defaults(run=_run_check)

    p = commands.add_parser("synth", help="generate a synthetic set",
                            description="Write a synthetic set (videos and annotations in the real dataset's "
                                        "format): N samples, a third of them (at least one) for validation.")
    p.add_argument("name", choices=sorted(SYNTHETIC_SETS))
    p.add_argument("--out", type=file_name("a folder"), required=True, help="output directory")
    p.add_argument("--videos", type=count(2, MAX_VIDEOS, "a video count"), default=600,
                   help=f"videos in all, 2 to {MAX_VIDEOS:,}; a third (at least one) for val")
    p.add_argument("--seed", type=SEED, default=0)
    p.set_defaults(run=_run_synth)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a bad option said in one line: the status, as a command's
        return int(stop.code or 0)
    try:
        return args.run(args)
    except (OSError, ValueError) as err:  # unreadable annotations, bad arguments: say which, exit 2
        print(f"error: {printable(str(err))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
