"""Motionformer's attention figures (Fig. 1 and 4: a query's attention map over every frame) and their measure, the
tracking score of docs/attention_tracking.md (Table 4's rows, on the column whose set records its moving thing's
boxes, ``BOXED_SETS``).

``motionformer_maps`` reads a captured record of the last block (joint, divided or trajectory attention) as the
query's map over every step; ``frame_maps`` draws them, the moving thing's patches outlined where the sample knows
them. The score (``tracking_score``, against the no-motion maps of ``baseline_maps``) is pure numpy, checked on
hand-built maps whose answer is known exactly (tests/experiments/harness/test_attention_command.py,
test_attention_score.py); ``score_tracking`` is ``attention-score``'s measure of one run.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..harness import attention_figures as draw
from ..harness.attention import Clip, Measure, Query, capture_forward, register_figures
from ..harness.attention_score import NotScoredError

DEFINITION = "docs/attention_tracking.md"
BOXED_SETS = ("synth_motion_pairs",)  # generated sets whose generator gives the moving thing's box per frame
RECORD_NAME = "attention_tracking.json"  # under <runs-dir>/reports/<table>/ (default) or reports/results/<table>/


# ---- the maps and their figure ------------------------------------------------------------------------------------


def motionformer_maps(record: Any, query_token: tuple[int, int, int]) -> np.ndarray:
    """The query token's (t, y, x) attention over every step's patches, (T, H, W), mean over heads, each step's
    weights as the model normalises them: joint attention's row restricted to the step; trajectory attention's
    stage one (Eq. 4); divided attention's spatial stage in the query's step and its temporal stage elsewhere (the
    weight on the query's own location, the only key there besides, in the official block, the class token)."""
    t, h, w = record.layout["thw"]
    qt, qy, qx = query_token
    location = qy * w + qx
    index = qt * h * w + location  # among the patch tokens
    if record.kind == "joint":
        row = record.weights["all"][0].mean(0)[1 + index, 1:]
        return row.reshape(t, h, w).double().numpy()
    if record.kind == "trajectory":
        return record.weights["stage_one"][0].mean(0)[index].reshape(t, h, w).double().numpy()
    temporal = record.weights["temporal"][0].mean(0)[location, qt]  # (T,), or (1 + T) with the class token first
    if record.layout["temporal_keys"] == "cls+steps":  # the official divided block's temporal stage
        temporal = temporal[1:]
    maps = np.zeros((t, h, w))
    maps[:, qy, qx] = temporal.double().numpy()
    maps[qt] = record.weights["spatial"][0].mean(0)[qt, location, 1:].reshape(h, w).double().numpy()
    return maps


def frame_maps(frames: Sequence[np.ndarray], maps: np.ndarray, query_step: int, query_xy: tuple[float, float],
               title: str, labels: Sequence[str], thing: np.ndarray | None = None,
               by_construction: str | None = None) -> np.ndarray:
    """Motionformer Fig. 1/4: one panel per time step, its frame under that step's map, the query's pixel marked
    (cyan cross) in its own step. Each step's map is renormalised to sum to 1 over the step's patches (where in
    that frame the query looks, as the tracking score reads it) and drawn as its ratio to the uniform map's share
    (1 / patches), every step on the figure's one scale. Where the sample knows its moving thing,
    ``thing`` (steps, h, w) bool: the white outline of the patches the tracking score counts as on it. A map fixed by
    the model's design rather than its weights says so: ``by_construction`` is added to the title and every step
    but the query's is marked "by construction"."""
    totals = maps.reshape(maps.shape[0], -1).sum(axis=1)
    ratios = maps / np.where(totals > 0, totals, 1.0)[:, None, None] * (maps.shape[1] * maps.shape[2])
    norm = draw.ratio_scale(float(ratios.max()))
    fig, axes, (panels,) = draw.panels(len(frames), title + (f"; {by_construction}" if by_construction else ""))
    for step, (ax, frame, heat, label) in enumerate(zip(panels, frames, ratios, labels)):
        draw.overlay(ax, frame, heat, norm)
        construction = "\nby construction" if by_construction and step != query_step else ""
        ax.set_title(label + construction, fontsize=7)
        if thing is not None:
            draw.outline(ax, thing[step], frame.shape[0] / thing.shape[1], frame.shape[1] / thing.shape[2])
        if step == query_step:
            draw.mark(ax, *query_xy)
    draw.colour_bar(fig, axes, norm, "step's share ÷ uniform's")
    return draw.rendered(fig)


# ---- the tracking score -------------------------------------------------------------------------------------------


def query_cells(inside: np.ndarray, step: int) -> list[tuple[int, int, int]]:
    """The queries of the score: every patch (step, y, x) that overlaps the box at ``step`` (``inside`` (T', H, W)
    from ``attention_clip.box_patches``)."""
    return [(step, int(y), int(x)) for y, x in zip(*np.nonzero(inside[step]))]


def tracking_score(maps: np.ndarray, query_step: int, inside: np.ndarray) -> dict[str, float]:
    """The score of one clip: ``maps`` (Q, T', H, W), the Q queries' attention weights over every step's patches
    (mean over heads); ``inside`` (T', H, W) from ``box_patches``. Each step's map is renormalised to sum to 1 over
    its patches (where the query's attention in that step goes, whatever the step's total).

    Returns ``share`` (the mean, over queries and over the steps other than ``query_step``, of the map's mass inside
    the box), ``chance`` (the mean over those steps of the share of patches inside the box: a map that ignores the
    thing), ``excess`` = share - chance, and ``queries`` (Q). With no query, share, chance and excess are NaN.
    """
    others = [t for t in range(inside.shape[0]) if t != query_step]
    if maps.shape[0] == 0 or not others:
        return {"share": float("nan"), "chance": float("nan"), "excess": float("nan"), "queries": 0}
    if maps.shape[1:] != inside.shape:
        raise ValueError(f"attention maps {maps.shape[1:]} and box patches {inside.shape} differ in (T', H, W)")
    mass = maps[:, others].reshape(maps.shape[0], len(others), -1)
    mass = mass / mass.sum(axis=-1, keepdims=True)
    box = inside[others].reshape(len(others), -1)
    share = float((mass * box).sum(axis=-1).mean())
    chance = float(box.mean(axis=-1).mean())
    return {"share": share, "chance": chance, "excess": share - chance, "queries": int(maps.shape[0])}


def baseline_maps(queries: Sequence[tuple[int, int, int]], inside: np.ndarray) -> dict[str, np.ndarray]:
    """The maps of docs/attention_tracking.md's two baselines for ``queries`` (``query_cells``), each (Q, T', H, W):
    ``static``, uniform at every step over the patches in the box at the query's step (where the thing was, held
    still); ``locality``, all the mass on the query's own location at every step."""
    static, locality = np.zeros((len(queries), *inside.shape)), np.zeros((len(queries), *inside.shape))
    for i, (step, y, x) in enumerate(queries):
        held = inside[step] / inside[step].sum()
        static[i] = np.broadcast_to(held, inside.shape)
        locality[i, :, y, x] = 1.0
    return {"static": static, "locality": locality}


def scores_with_baselines(maps: np.ndarray, queries: Sequence[tuple[int, int, int]], inside: np.ndarray
                          ) -> dict[str, float]:
    """``tracking_score`` of ``maps`` for ``queries`` (all at one step), with the share each baseline map
    (``baseline_maps``) gets on the same queries and steps: ``static_share``, ``locality_share``."""
    query_step = queries[0][0] if queries else 0
    score = tracking_score(maps, query_step, inside)
    baselines = baseline_maps(queries, inside) if queries else {}
    for name in ("static", "locality"):
        score[f"{name}_share"] = tracking_score(baselines[name], query_step, inside)["share"] if queries \
            else float("nan")
    return score


def stronger_baseline(static_share: float, locality_share: float) -> tuple[str, float]:
    """(name, share) of the stronger baseline of a run: the larger share over its samples (static on a tie)."""
    return ("locality", locality_share) if locality_share > static_share else ("static", static_share)


# ---- a run's score over its generated validation samples ----------------------------------------------------------


def prepared_sample(model: Any, cfg: Any, index: int) -> tuple[Any, Any]:
    """(the model's input clip, the patches inside the moving thing's box at each token step) of one generated
    validation sample of ``cfg``'s row: the sample's test clip, its moving thing's boxes mapped to the model input's
    pixels and patch grid (docs/attention_tracking.md). Depends on the data options and the patch grid only, so the
    rows and seeds of a column share it."""
    from ..harness.attention_clip import generated_frames, make_clip

    clip = make_clip(cfg, generated_frames(cfg, index))
    if clip.thing is None:
        raise ValueError(f"{cfg.table}/{cfg.row}: its data {cfg.data.dataset} records no boxes of a moving thing; the "
                         f"tracking score reads synth_motion_pairs (Table 4's SSv2 column)")
    embed = model.patch_embed
    return clip.video, clip.thing.patches(embed.tubelet_size, tuple(embed.grid_size[1:]), embed.patch_size)


def clip_tracking(model: Any, video: Any, inside: Any) -> dict[str, float]:
    """``tracking_score`` of one prepared clip (``prepared_sample``) through ``model`` (a Motionformer video ViT in
    eval mode): the queries of step 0 and their maps from the last block."""
    _, records = capture_forward(model, video, [f"blocks.{len(model.blocks) - 1}.attn"])
    queries = query_cells(inside, 0)
    maps = np.stack([motionformer_maps(records[0], q) for q in queries]) if queries else np.zeros((0, *inside.shape))
    return scores_with_baselines(maps, queries, inside)


def sample_tracking(model: Any, cfg: Any, index: int) -> dict[str, float]:
    """``tracking_score`` of one generated validation sample of ``cfg``'s row through ``model``."""
    return clip_tracking(model, *prepared_sample(model, cfg, index))


def score_tracking(cfg: Any, model: Any, limit: int | None, prepared: dict[tuple, list]) -> dict[str, Any]:
    """The tracking score of one run's model: the means over its validation samples that have queries.
    ``prepared``: the clips and boxes already made for other runs, by the data options and patch grid that make
    them (``prepared_sample``: rendering a sample costs far more than a tiny model's forward)."""
    from data.synthetic import synthetic_params

    samples = synthetic_params(**(cfg.data.synthetic_params or {}))["num_val"]
    samples = min(samples, limit) if limit else samples
    embed = model.patch_embed
    key = (json.dumps(dataclasses.asdict(cfg.data), sort_keys=True, default=str), embed.tubelet_size,
           tuple(embed.grid_size), embed.patch_size)
    clips = prepared.setdefault(key, [])
    clips += [prepared_sample(model, cfg, index) for index in range(len(clips), samples)]
    scores = [clip_tracking(model, *clip) for clip in clips[:samples]]
    kept = [s for s in scores if s["queries"]]
    if not kept:
        raise NotScoredError(f"{cfg.table}/{cfg.row}: none of its {len(scores)} validation samples has a query (a "
                             f"patch on the moving thing at step 0)")
    mean = {name: statistics.fmean(s[name] for s in kept)
            for name in ("share", "chance", "excess", "static_share", "locality_share")}
    baseline, baseline_share = stronger_baseline(mean["static_share"], mean["locality_share"])
    return {**mean, "baseline": baseline, "baseline_share": baseline_share,
            "excess_over_baseline": mean["share"] - baseline_share, "samples": len(kept),
            "samples_without_queries": len(scores) - len(kept), "queries": sum(s["queries"] for s in kept)}


TRACKING = Measure("attention_tracking", RECORD_NAME, DEFINITION, lambda cfg: cfg.data.dataset in BOXED_SETS,
                   score_tracking,
                   lambda run: f"excess over the {run['baseline']} baseline {run['excess_over_baseline']:+.4f}, over "
                               f"uniform {run['excess']:+.4f}",
                   f"Motionformer's Table 4 (mformer_table4) on {', '.join(BOXED_SETS)}")


@register_figures("models.video_vit.VideoViT", "Motionformer Fig. 1/4", measure=TRACKING)
def mformer_figures(model: Any, clip: Clip, query: Query) -> dict[str, np.ndarray]:
    """Fig. 1/4 of the last block's attention (joint, divided or trajectory), the query's map over every step."""
    embed = model.patch_embed
    last = f"blocks.{len(model.blocks) - 1}.attn"
    _, records = capture_forward(model, clip.video, [last])
    token = (query.frame // embed.tubelet_size, query.y // embed.patch_size, query.x // embed.patch_size)
    maps = motionformer_maps(records[0], token)
    frames = clip.frames[:: embed.tubelet_size][: maps.shape[0]]
    kind = records[0].kind
    title = f"{kind} attention, last block, mean over heads: {clip.source}"
    labels = [f"t={step} ({clip.frame_label(step * embed.tubelet_size)})" for step in range(len(frames))]
    thing = None if clip.thing is None else clip.thing.patches(embed.tubelet_size, tuple(embed.grid_size[1:]),
                                                                embed.patch_size)
    # divided attention's temporal stage has one key a step, the query's own location: its map there is the design's
    construction = "the temporal stage's map at the other steps is the query's own location, by construction" \
        if kind == "divided" else None
    image = frame_maps(frames, maps, token[0], (query.x + 0.5, query.y + 0.5), title, labels, thing, construction)
    return {f"mformer_fig1_fig4_{kind}": image}


__all__ = ["BOXED_SETS", "DEFINITION", "RECORD_NAME", "TRACKING", "baseline_maps", "clip_tracking", "frame_maps",
           "mformer_figures", "motionformer_maps", "prepared_sample", "query_cells", "sample_tracking",
           "score_tracking", "scores_with_baselines", "stronger_baseline", "tracking_score"]
