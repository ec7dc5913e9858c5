"""``python -m experiments predict``: what a model says is in a user's video, as its top-k class names.

The model is an authors' released checkpoint (``--released NAME``: read and checked as ``evaluate`` reads it, on the
row of its entry's first cell), a trained run (``--run RUN_DIR``: the table, row, column and scale its record names,
and its last checkpoint) or a weights file of a row (``TABLE --rows ROW --weights FILE``: the column whose model it
fits). Each video goes through the test of that model exactly as ``evaluate`` and a run's test read a validation
video: the data module's test dataset (``VideoDataModule.test_dataset``: its temporal views placed by its
convention, decoded selectively, each through the test transform's spatial views) and the LightningModule's
combination of the views (``VideoClassifier.video_probabilities``). Only the views' frames are decoded, after the
frame size the stream's header states has passed ``sizes.check_video_frames``.

The class names are the head's, in its order (``data.class_lists``): a generated stand-in's own, or a real dataset's
from the user's annotation files (``--data-root DIR`` holding ``DIR/<dataset>/``), else from a committed list; a
dataset with neither is one line asking for its annotation files. A folder gives one line per video (a progress bar
on a terminal); ``--out FILE.csv|.json`` writes the table, atomically, replacing a link rather than following it.

Bad input is one line and exit status 2: a file that is no video (in a folder: that video's line, the others
predicted), a video shorter than a clip (predicted as the test protocol pads it, and the line says how), weights
that do not fit the entry or row, a folder without videos.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.command_line import checked, count, printable
from data.root_files import shown

VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg")
VIDEO_TASKS = ("video_classification", "verb_noun_classification")
MAX_TOP = 1000  # more than any head's classes


@dataclass
class Prediction:
    """One video's answer: per head ("class", or "verb", "noun", "action") the top-k (index, name, probability);
    ``note`` how the video was padded, ``error`` why it could not be read (then no answer)."""

    video: Path
    heads: dict[str, list[tuple[int, str, float]]] = field(default_factory=dict)
    note: str | None = None
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"{shown(self.video)}: {printable(self.error)}"
        parts = [("" if head == "class" else f"{head}: ") + ", ".join(f"{printable(name)} {p:.3f}" for _, name, p in
                                                                     top) for head, top in self.heads.items()]
        return f"{shown(self.video)}: {'; '.join(parts)}"


# ---- the model ----------------------------------------------------------------------------------------------------


def predicting_model(args: argparse.Namespace) -> tuple[Any, Any, str, Any]:
    """(cfg at its test protocol, the model in eval mode, what it is in words, its head's classes) of the
    command's weights."""
    from .row_model import data_classes, fitting_column, released_model
    from .run_dir import RunDir

    if args.released:
        from .released_weights import find_checkpoint

        entry = find_checkpoint(args.released)
        cell = entry.cells[0]
        named = argparse.Namespace(table=cell.table, rows=cell.row, released=args.released,
                                   weights_dir=args.weights_dir, column=None, data_root=args.data_root)
        cfg, model, evaluation = released_model(named)
        return cfg, model, f"{entry.full_name} ({cell})", evaluation.entry.expects["classes"]
    if args.run:
        run = RunDir(Path(args.run))
        record = run.finished(("table", "row", "column", "scale"))
        if record is None:
            raise ValueError(f"{shown(run.path)}: no record of a finished run ({RunDir.RECORD}); predict reads a "
                             f"finished run, or TABLE --rows ROW --weights {shown(run.last_checkpoint)}")
        cfg, model = fitting_column(record["table"], record["row"], record["scale"], record["column"],
                                    args.data_root, run.checkpoint_inside(run.path))
        return cfg, model.eval(), f"the run {shown(run.path)} ({cfg.table}/{cfg.row}/{cfg.column})", \
            data_classes(cfg)
    cfg, model = fitting_column(args.table, args.rows, args.scale, args.column, args.data_root, Path(args.weights))
    return cfg, model.eval(), f"{shown(Path(args.weights))} ({cfg.table}/{cfg.row}/{cfg.column})", data_classes(cfg)


def head_names(cfg: Any, classes: Any) -> tuple[dict[str, list[str]], str]:
    """({head: names in the head's order}, where they come from) for a model of ``classes`` on ``cfg``'s data; one
    line where its dataset's names are not to be had, or do not fit the head."""
    from data.class_lists import ANNOTATION_FILES, dataset_names
    from data.synthetic import SYNTHETIC_SETS

    dataset = cfg.data.dataset
    spec = SYNTHETIC_SETS.get(dataset)
    if spec is not None:
        names: Any = ({"verb": list(spec.verb_names), "noun": list(spec.noun_names)} if spec.verb_names
                      else list(spec.class_names))
        where = f"the generated stand-in {dataset}"
    else:
        found = dataset_names(dataset, cfg.data.root)
        if found is None:
            files = ANNOTATION_FILES.get(dataset, "its annotation files")
            raise ValueError(f"{dataset}: no class list of it is committed, and no annotation files were given to "
                             f"read its names from: give --data-root DIR holding {dataset}/ with {files}")
        names, where = found
    heads = names if isinstance(names, dict) else {"class": names}
    wanted = classes if isinstance(classes, dict) else {"class": classes}
    if set(heads) != set(wanted) or any(len(heads[h]) < wanted[h] for h in wanted) or (
            spec is None and any(len(heads[h]) != wanted[h] for h in wanted)):
        counts = {h: len(n) for h, n in heads.items()}
        raise ValueError(f"{where}: {counts} class names, the model's head has {wanted}: not the dataset the "
                         f"model was trained on")
    return {h: heads[h][:wanted[h]] for h in wanted}, where


# ---- the videos ---------------------------------------------------------------------------------------------------


def videos_of(source: Path) -> list[Path]:
    """The video, or the folder's videos (by suffix, sorted); a folder without one is one line."""
    if not source.exists():
        raise FileNotFoundError(f"{shown(source)}: no such video or folder")
    if not source.is_dir():
        return [source]
    found = sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and not p.is_dir())
    if not found:
        raise ValueError(f"{shown(source)}: a folder without videos (none of {', '.join(VIDEO_SUFFIXES)})")
    return found


def padding(clips: list[Any]) -> str | None:
    """How the test protocol padded a video shorter than its clips, from the views' frames; None where it did
    not."""
    for clip in clips:
        frames = list(clip.frame_indices)
        if any(b < a for a, b in zip(frames, frames[1:])):
            return "by wrapping round to its first frame"
        if len(set(frames)) == len(frames):
            continue
        first = frames.index(frames[-1])  # where the last frame starts to repeat
        if len(set(frames[:first])) == first:
            return f"by repeating its last frame ({len(frames) - 1 - first} times in a view)"
        return "by repeating frames (each of the clip's segments shorter than a frame)"
    return None


def predict_videos(cfg: Any, model: Any, videos: list[Path], names: dict[str, list[str]], top: int,
                   progress: bool = True) -> list[Prediction]:
    """Each video's top-``top`` classes under the model's test protocol (module doc)."""
    import dataclasses
    import tempfile
    import types

    import torch
    from tqdm import tqdm

    from data.annotations import Sample
    from data.synthetic import SYNTHETIC_SETS
    from data.video_io import Video, VideoDecodeError

    from .sizes import check_video_frames
    from .tasks import get_task, video_datamodule

    if cfg.task not in VIDEO_TASKS:
        raise ValueError(f"{cfg.table}/{cfg.row}: its model reads more than a video ({cfg.task}); predict reads "
                         f"videos alone")
    classes = {h: len(n) for h, n in names.items()}
    classes = classes["class"] if "class" in classes else {"verb": classes["verb"], "noun": classes["noun"]}
    data = cfg.data
    if data.root is None and data.dataset not in SYNTHETIC_SETS:  # the data module's root; nothing is read there
        data = dataclasses.replace(data, root=str(videos[0].parent))
    label = (0, 0) if isinstance(classes, dict) else 0  # unread: the test's loss wants one
    samples = [Sample(video, label, video.name, None, root=video.parent) for video in videos]
    system = get_task(cfg.task).system(cfg, model, types.SimpleNamespace(num_classes=classes)).eval()
    out = []
    with tempfile.TemporaryDirectory(prefix="vidrepro-predict-") as scratch:
        dataset = video_datamodule(data, Path(scratch)).test_dataset(samples)
        for index, video in enumerate(tqdm(videos, file=sys.stderr, disable=not progress or len(videos) == 1 or None,
                                           unit="video")):
            try:
                with Video(video) as header:
                    clips = dataset.views(index)
                    check_video_frames(str(video), header.width, header.height,
                                       len({i for c in clips for i in c.frame_indices}))
                    count = header.num_frames
            except VideoDecodeError as err:
                out.append(Prediction(video, error=f"not a readable video ({err.reason})"))
                continue
            item = dataset[index]
            if item is None:
                out.append(Prediction(video, error=f"not a readable video ({dataset.failures()[-1]['reason']})"))
                continue
            how = padding(clips)
            note = None if how is None else (
                f"{count} frames, shorter than a clip of {data.num_frames}"
                + (f" at stride {data.frame_stride}" if data.sampling == "dense" else "")
                + f": padded as the test protocol pads it, {how}")
            batch = {"video": item["video"][None], "label": torch.as_tensor([label])}
            with torch.no_grad():
                probs, _ = system.video_probabilities(batch)
            out.append(Prediction(video, ranked(probs, names, top), note))
    return out


def ranked(probs: list[Any], names: dict[str, list[str]], top: int) -> dict[str, list[tuple[int, str, float]]]:
    """Per head the top-``top`` (index, name, probability) of one video's probabilities (a verb-noun model: verb,
    noun and the action, scored p(verb) p(noun) as the test scores it)."""
    heads = dict(zip(names, (p[0].double() for p in probs)))
    if set(heads) == {"verb", "noun"}:
        action = (heads["verb"][:, None] * heads["noun"][None, :]).flatten()
        noun_count = len(names["noun"])
        names = {**names, "action": [f"{v} {n}" for v in names["verb"] for n in names["noun"]]}
        heads["action"] = action
        assert len(names["action"]) == noun_count * len(names["verb"])
    out = {}
    for head, scores in heads.items():
        values, indices = scores.topk(min(top, len(scores)))
        out[head] = [(int(i), names[head][int(i)], float(v)) for v, i in zip(values, indices)]
    return out


# ---- the table ----------------------------------------------------------------------------------------------------


def table_text(predictions: list[Prediction], what: str, names_from: str, suffix: str) -> str:
    """The predictions as CSV (one row per video, head and rank) or JSON (one object per video)."""
    if suffix == ".json":
        return json.dumps({"model": what, "class_names": names_from, "videos": [
            {"video": str(p.video), "error": p.error, "note": p.note,
             "predictions": {head: [{"rank": r + 1, "index": i, "class": name, "probability": prob}
                                    for r, (i, name, prob) in enumerate(top)] for head, top in p.heads.items()}}
            for p in predictions]}, indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["video", "head", "rank", "index", "class", "probability", "note"])
    for p in predictions:
        if p.error:
            writer.writerow([str(p.video), "", "", "", "", "", p.error])
        for head, top in p.heads.items():
            for r, (i, name, prob) in enumerate(top):
                writer.writerow([str(p.video), head, r + 1, i, name, f"{prob:.6f}", p.note or ""])
    return buffer.getvalue()


def write_table(path: Path, text: str) -> None:
    """``text`` into ``path`` atomically: a link there is replaced, never followed; a folder or another non-file
    there is one line."""
    from data.atomic_write import atomic_write_text

    if path.exists() and not path.is_symlink() and not path.is_file():
        raise ValueError(f"--out {shown(path)}: not a regular file; the table is written to a file")
    atomic_write_text(path, text)


def _table_file(text: str) -> Path:
    """A .csv or .json file name (``--out``)."""
    path = Path(text)
    if path.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"{printable(text[:80])!r}: the table is a .csv or .json file")
    return path


out_file = checked(_table_file, "a .csv or .json file")


# ---- the command --------------------------------------------------------------------------------------------------


def cmd_predict(args: argparse.Namespace) -> int:
    from .sizes import allowing_large

    positional = list(args.inputs)
    if args.released or args.run:
        if len(positional) != 1 or args.rows or args.weights:
            raise ValueError("predict --released NAME / --run RUN_DIR takes one VIDEO_OR_FOLDER (the entry or the run "
                             "names its table and row)")
        args.table = None
    else:
        if len(positional) != 2 or not args.rows or not args.weights:
            raise ValueError("predict takes --released NAME, --run RUN_DIR, or TABLE --rows ROW --weights FILE, then "
                             "VIDEO_OR_FOLDER")
        args.table = positional[0]
    source = Path(positional[-1])
    videos = videos_of(source)
    with allowing_large(args.allow_large):
        cfg, model, what, classes = predicting_model(args)
        names, names_from = head_names(cfg, classes)
        predictions = predict_videos(cfg, model, videos, names, args.top, progress=source.is_dir())
    for prediction in predictions:
        if not prediction.error:
            print(prediction.line())
        for problem in (prediction.error, prediction.note):
            if problem:
                print(f"error: {shown(prediction.video)}: {printable(problem)}", file=sys.stderr)
    if args.out:
        write_table(args.out, table_text(predictions, what, names_from, args.out.suffix.lower()))
    return 2 if any(p.error or p.note for p in predictions) else 0


def add_command(sub: Any) -> None:
    """Adds ``predict`` to ``python -m experiments``."""
    from .sizes import ALLOW_FLAG
    from .spec import SCALES

    parser_class, sub._parser_class = sub._parser_class, _intermixed(sub._parser_class)
    try:
        parser = _add_parser(sub)
    finally:
        sub._parser_class = parser_class
    parser.add_argument("inputs", nargs="+", metavar="[TABLE] VIDEO_OR_FOLDER",
                        help="TABLE with --rows and --weights; the video, or a folder of videos")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--released", metavar="NAME", help="an authors' checkpoint (`python -m experiments weights`)")
    weights.add_argument("--run", metavar="RUN_DIR", help="a finished run folder: its last checkpoint")
    weights.add_argument("--weights", metavar="FILE", help="a state dict of TABLE's row ROW's model")
    parser.add_argument("--weights-dir", help="where --released names are found (default: checkpoints/released)")
    parser.add_argument("--rows", metavar="ROW", help="the row whose model --weights holds (see `show`)")
    parser.add_argument("--column", help="the column of the row (default: the one whose model the weights fit)")
    parser.add_argument("--scale", choices=SCALES, default="tiny", help="the row's scale with --weights")
    parser.add_argument("--data-root", metavar="DIR",
                        help="DIR/<dataset>/ holds the dataset's annotation files: the class names are read there")
    parser.add_argument("--top", type=count(1, MAX_TOP, "a count of classes"), default=5,
                        help="classes shown per video (default 5)")
    parser.add_argument("--out", type=out_file, metavar="FILE.csv|.json", help="also write the table there")
    parser.add_argument(ALLOW_FLAG, action="store_true",
                        help="decode a video whose frames are past the size bound (10x a 1920x1080 frame)")
    parser.set_defaults(fn=cmd_predict)


def _intermixed(base: type) -> type:
    """``base`` reading its positionals wherever they stand among the options (``TABLE --rows ROW --weights FILE
    VIDEO``), as ``parse_intermixed_args`` does; argparse alone takes the positionals of the first run only."""

    class Intermixed(base):
        _inside = False

        def parse_known_args(self, args=None, namespace=None):
            if self._inside:
                return super().parse_known_args(args, namespace)
            self._inside = True
            try:
                return self.parse_known_intermixed_args(args, namespace)
            finally:
                self._inside = False

    return Intermixed


def _add_parser(sub: Any) -> argparse.ArgumentParser:
    return sub.add_parser("predict", help="the top-k class names a model gives a video (or each video of a "
                                          "folder), at its test protocol",
                          usage="python -m experiments predict (--released NAME [--weights-dir DIR] | --run "
                                "RUN_DIR | TABLE --rows ROW --weights FILE) VIDEO_OR_FOLDER [--top K] "
                                "[--out FILE.csv|.json] [options]")


__all__ = ["Prediction", "add_command", "cmd_predict", "head_names", "padding", "predict_videos", "ranked",
           "videos_of"]
