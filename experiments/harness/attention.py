"""``python -m experiments attention ID --rows ROW``: the papers' attention figures drawn from a row's model.

The row's model is built as the harness builds it (``plan.resolve_runs``, ``tasks.build_model``) at ``--scale``, with
weights from a trained run (``--run RUN_DIR``: its last checkpoint), a file (``--weights FILE``, a state dict of the
row's model) or the authors' released checkpoint (``--released NAME``, read and checked as ``evaluate`` does; paper
scale). Its input is one clip: sample K of the row's generated validation set, rendered in memory exactly as the
set's writer renders it (``--sample K``, default 0), or a user's video file (``--video FILE``); the centre clip of
the row's frames at its stride, through the row's test transform (centre crop). A set of untrimmed videos
(``SEGMENT_SETS``) and a real dataset under ``--data-root`` give sample K through the row's own test pipeline (its
first view, with its joints where the model reads them). The attention of the last block is
taken with ``models.attention.capture`` (the logits unchanged) and drawn in the paper's layout, one PNG per figure
in ``--out`` and the same images in a TensorBoard event file there.

Each paper's figures live in its folder, ``experiments/<paper>/figures.py``, registered with ``@register_figures``
(the model class they read, and the measure of ``attention-score`` that scores them, if any); importing
``experiments`` imports every paper's folder, as it does for the tables. A row is drawn by the figures whose model
class its model is (``figures_of``).

``--query T,Y,X`` is the video's frame and pixel, mapped to the clip and through the test view's resize and crop
(``attention_clip.place_query``; the caption says where it landed); default, as the papers' figures: in the clip's
first frame, on the moving thing where the generated sample records its box, else at the centre. The clip and its
video are ``experiments.harness.attention_clip``'s, the model and its weights ``experiments.harness.row_model``'s,
the drawing every paper shares ``experiments.harness.attention_figures``'.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from data.command_line import count

from ..paper_tables import paper_code
from .attention_clip import (  # noqa: F401  (the clip's names, read from here too)
    SEGMENT_SETS,
    Clip,
    Frames,
    Query,
    ThingBoxes,
    captioned,
    centre_clip,
    check_query,
    generated_frames,
    input_geometry,
    load_clip,
    make_clip,
    parse_query,
    pipeline_clip,
    place_query,
    video_file_frames,
)
from .row_model import build_row_model, data_classes, load_state_file, pipeline_data, row_config  # noqa: F401

# ---- the papers' figures and their measures -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Measure:
    """One measure of ``attention-score``: the record it writes (``kind``, file name), its definition page, which of
    a table's runs it scores, how it scores one run's model (config, model in eval mode, sample limit, a cache the
    runs of one table share) -> values, the line it prints a run with, and the runs it reads, in words."""

    kind: str
    record_name: str
    definition: str
    selects: Callable[[Any], bool]
    score: Callable[[Any, Any, int | None, dict], dict[str, Any]]
    headline: Callable[[dict[str, Any]], str]
    reads: str


@dataclasses.dataclass(frozen=True)
class PaperFigures:
    """One paper's figures: its folder's name, the model class they read (``module.Class``, imported only when a
    model is drawn), what they are in the paper (``title``), the function that draws them (model in eval mode, clip,
    query -> {figure name: RGB image}) and the measure that scores them (None: drawn, not scored)."""

    paper: str
    model_class: str
    title: str
    draw: Callable[[Any, Clip, Query], dict[str, np.ndarray]]
    measure: Measure | None

    def reads(self, model: Any) -> bool:
        module, _, name = self.model_class.rpartition(".")
        return isinstance(model, getattr(importlib.import_module(module), name))


_FIGURES: dict[str, PaperFigures] = {}


def register_figures(model_class: str, title: str, measure: Measure | None = None) -> Callable:
    """Registers the function of ``experiments/<paper>/figures.py`` that draws the paper's figures of a
    ``model_class`` model, and the measure that scores them: ``@register_figures("models.cast.model.CAST",
    "CAST Fig. 3c", measure=...)``."""

    def register(draw: Callable[[Any, Clip, Query], dict[str, np.ndarray]]) -> Callable:
        paper = draw.__module__.split(".")[-2]  # experiments.<paper>.figures
        if paper in _FIGURES:
            raise ValueError(f"@register_figures {draw.__module__}.{draw.__name__}: {paper}'s figures are already "
                             f"registered ({_FIGURES[paper].draw.__name__})")
        _FIGURES[paper] = PaperFigures(paper, model_class, title, draw, measure)
        return draw

    return register


def registered_figures() -> list[PaperFigures]:
    """Every paper's figures, in the order the papers' folders are imported."""
    return list(_FIGURES.values())


def figures_of(model: Any, table: str) -> PaperFigures:
    """The figures of ``table``'s paper that draw ``model``. Another paper's figures are never borrowed: a model
    class two papers share (X-ViT's and MSCA's video ViTs are Motionformer's class) does not attend as the other
    paper's figure reads it."""
    readers = [figures for figures in _FIGURES.values() if figures.reads(model)]
    own = [figures for figures in readers if figures.paper == paper_code(table)]
    if own:
        return own[0]
    drawn = ", ".join(f"{figures.title} ({figures.paper})" for figures in _FIGURES.values())
    raise ValueError(f"{table}: its paper has no attention figure of its {type(model).__name__} (the figures: "
                     f"{drawn})")


def last_record(records: list, suffix: str) -> Any:
    """The record of the last module whose name ends with ``suffix``."""
    return [r for r in records if r.name.endswith(suffix)][-1]


def capture_forward(model: Any, batch: Any, names: list[str]) -> tuple[Any, list]:
    """(the logits of ``batch``, the attention records of the modules ``names``), without gradients."""
    import torch

    from models.attention.capture import capture_attention

    with torch.no_grad(), capture_attention(model, names) as records:
        logits = model(batch)
    return logits, records


def write_figures(figures: dict[str, np.ndarray], out: Path) -> list[Path]:
    """Each figure as ``out/<name>.png`` and as an image of one TensorBoard event file in ``out``, through the one
    writer (a link where a figure goes is replaced, never written through)."""
    from torch.utils.tensorboard import SummaryWriter

    from data.atomic_write import make_folder, save_image

    make_folder(out)
    paths = []
    writer = SummaryWriter(log_dir=str(out))
    try:
        for name, image in figures.items():
            path = save_image(out / f"{name}.png", image)
            writer.add_image(f"attention/{name}", image, 0, dataformats="HWC")
            paths.append(path)
    finally:
        writer.close()
    return paths


def cmd_attention(args: argparse.Namespace) -> int:
    from data.atomic_write import check_folder, shown

    from .sizes import allowing_large

    if args.out:
        check_folder(args.out)  # before the model is built and the clip decoded
    with allowing_large(args.allow_large):  # the bound on a video's frames (sizes.check_video_frames)
        cfg, model = build_row_model(args)
        figures = figures_of(model, cfg.table)
        clip = load_clip(cfg, args)
    query, caption = place_query(clip, args.query, cfg.data.crop_size)
    clip = captioned(clip, caption)
    out = Path(args.out) if args.out else Path(args.runs_dir) / cfg.table / cfg.row / "attention"
    for path in write_figures(figures.draw(model, clip, query), out):
        print(shown(path))
    return 0


def add_command(sub: Any) -> None:
    """Adds ``attention`` to ``python -m experiments``."""
    from .sizes import ALLOW_FLAG
    from .spec import SCALES

    titles = ", ".join(figures.title for figures in registered_figures())
    parser = sub.add_parser("attention", help=f"draw a row's attention in the layout of its paper's figures "
                                              f"({titles})")
    parser.add_argument("table")
    parser.add_argument("--rows", required=True, metavar="ROW", help="the row whose model is drawn (see `show`)")
    parser.add_argument("--scale", choices=SCALES, default="tiny")
    parser.add_argument("--column", help="the column whose run is drawn, where the row has several (default: first)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--run", metavar="RUN_DIR", help="a trained run folder: its last checkpoint")
    weights.add_argument("--released", metavar="NAME", help="an authors' checkpoint from the catalogue (paper scale)")
    weights.add_argument("--weights", metavar="FILE", help="a state dict of the row's model")
    parser.add_argument("--weights-dir", help="where --released names are found")
    parser.add_argument("--data-root", metavar="DIR",
                        help="where a paper-scale row's real dataset is (DIR/<dataset>/): --sample K is then its "
                             "validation sample K through the row's test pipeline")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--video", metavar="FILE", help="a video file (the row's frames from its centre)")
    source.add_argument("--sample", type=count(0, 100_000, "a sample index"), default=0,
                        help="sample K of the row's validation set: generated, or under --data-root (default 0)")
    parser.add_argument("--query", type=parse_query, metavar="T,Y,X",
                        help="the video's frame and pixel of the query, mapped through the test view's resize and "
                             "crop (a sample of the test pipeline: the clip's frame and the model input's pixel; "
                             "default: the moving thing's centre in the clip's first frame where the generated "
                             "sample records it, else that frame's centre)")
    parser.add_argument("--out", metavar="DIR", help="where the PNGs and the TensorBoard file go "
                                                     "(default: <runs-dir>/<table>/<row>/attention)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument(ALLOW_FLAG, action="store_true",
                        help="decode a video whose frames are past the size bound (10x a 1920x1080 frame)")
    parser.set_defaults(fn=cmd_attention)


__all__ = ["Clip", "Frames", "Measure", "PaperFigures", "Query", "add_command", "capture_forward", "centre_clip",
           "cmd_attention", "figures_of", "last_record", "register_figures", "registered_figures"]
