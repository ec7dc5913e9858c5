"""CAST's attention figure (Fig. 3(c): T2S along time at the query's patch, S2T along space in the query's step) and
its measure (docs/attention_windows_and_points.md: where T2S and S2T put their mass, own token, along time, along
space, elsewhere, against the uniform map's), over Table 1(e)'s runs on ``synth_verbnoun``.

Both read each direction at the exchange whose output a head reads (``read_exchanges``). ``key_parts`` and
``window_mass`` are pure numpy over captured weights (``models.attention.capture``), checked on hand-built weights
whose answer is known exactly (tests/experiments/harness/test_attention_measures.py); ``score_windows`` runs a
run's model over its test pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..harness import attention_figures as draw
from ..harness.attention import Clip, Measure, Query, capture_forward, last_record, register_figures
from ..harness.attention_score import pipeline_inputs

PARTS = ("own", "time", "space", "elsewhere")  # the partition of a CAST query's keys
DEFINITION = "docs/attention_windows_and_points.md"


def read_exchanges(model: Any) -> dict[str, str]:
    """direction -> the exchange measured (docs/attention_windows_and_points.md): the last whose output of that
    direction is read. S2T's output goes to the temporal expert's tokens, which the verb head reads: the last
    exchange. T2S's goes to the spatial expert's patch tokens, which no head reads after the last block (EK-100's
    noun head reads the spatial CLS token): the exchange before the last."""
    if not model.exchange:
        raise ValueError("this CAST row has no exchange (exchange='none'): no T2S or S2T attention to measure")
    order = sorted(model.exchange, key=int)
    chosen = {"s2t": order[-1]} | ({"t2s": order[-2]} if len(order) > 1 else {})
    return {d: index for d, index in chosen.items() if getattr(model.exchange[index], d) is not None}


# ---- the figure ---------------------------------------------------------------------------------------------------


def cast_maps(t2s: Any, s2t: Any, step: int, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """(T2S weights over the T steps at the query's patch, (T,); S2T weights over the N patches of its step, (N,)),
    mean over heads, for the first video of the batch (window b*N + n along time, b*T + t along space)."""
    along_time = t2s.weights["windows"][patch].mean(0)[step]
    along_space = s2t.weights["windows"][step].mean(0)[patch]
    return along_time.double().numpy(), along_space.double().numpy()


def cast_windows(frames: Sequence[np.ndarray], t2s: np.ndarray, s2t: np.ndarray, query_step: int,
                 query_cell: tuple[int, int], grid: tuple[int, int], query_xy: tuple[float, float],
                 title: str) -> np.ndarray:
    """CAST Fig. 3(c): first group T2S, the query's weights over the T steps at its own patch (its cell in each
    frame, the weight in the panel's title); second group S2T, its weights over the patches of its own step (one
    frame). Each direction's weights drawn as their ratio to its uniform map's (1/T, 1/N), both on one scale; the
    query is the cyan cross."""
    t2s_ratio, s2t_ratio = t2s * len(t2s), s2t * s2t.size
    norm = draw.ratio_scale(float(max(t2s_ratio.max(), s2t_ratio.max())))
    fig, axes, (top, bottom) = draw.panels(len(frames), title, groups=2)
    for step, (ax, frame) in enumerate(zip(top, frames)):
        cell = np.full(grid, np.nan)  # only the query's own patch is a key of T2S's time window
        cell[query_cell] = t2s_ratio[step]
        draw.overlay(ax, frame, cell, norm)
        ax.set_title(f"T2S t={step}: {t2s[step]:.2f}", fontsize=7)
        if step == query_step:
            draw.mark(ax, *query_xy)
    for step, ax in enumerate(bottom):
        if step == query_step:
            draw.overlay(ax, frames[step], s2t_ratio, norm)
            draw.mark(ax, *query_xy)
            ax.set_title(f"S2T t={step}", fontsize=7)
        else:
            ax.axis("off")
    draw.colour_bar(fig, axes, norm, f"weight ÷ uniform's (1/{len(t2s)}, 1/{s2t.size})")
    return draw.rendered(fig)


# ---- the measure: where T2S and S2T put their mass ----------------------------------------------------------------


def key_parts(window: str, num_steps: int, num_patches: int) -> np.ndarray:
    """(L, L) index into ``PARTS`` of each (query, key) pair of a window of shape ``window`` (the token orders of
    ``models.cast.layers.to_windows``: a ``time`` window's tokens are steps, a ``space`` window's patches, a
    ``space_time`` window's (t n))."""
    if window == "time":
        steps, patches = np.arange(num_steps), np.zeros(num_steps, dtype=int)
    elif window == "space":
        steps, patches = np.zeros(num_patches, dtype=int), np.arange(num_patches)
    elif window == "space_time":
        steps, patches = np.divmod(np.arange(num_steps * num_patches), num_patches)
    else:
        raise ValueError(f"a CAST window is time, space or space_time, got {window!r}")
    same_step = steps[:, None] == steps[None, :]
    same_patch = patches[:, None] == patches[None, :]
    return np.select([same_step & same_patch, same_patch, same_step], [0, 1, 2], default=3)


def window_mass(weights: np.ndarray, window: str, num_steps: int, num_patches: int) -> dict[str, dict[str, float]]:
    """Where the queries of one CAST cross-attention put their weight.

    Args:
        weights: (windows, L, L) head-averaged softmax weights, each row a query over its window's keys.
        window, num_steps, num_patches: the window's shape and the (T, N) grid it cuts (``key_parts``).

    Returns ``{"share": {part: mean over queries of the row's mass on that part}, "chance": {part: the uniform
    map's}}`` over ``PARTS`` (a part the window does not hold has share and chance 0).
    """
    parts = key_parts(window, num_steps, num_patches)
    if weights.shape[1:] != parts.shape:
        raise ValueError(f"window weights {weights.shape[1:]} do not fit a {window} window of {num_steps} steps x "
                         f"{num_patches} patches {parts.shape}")
    one_hot = parts[..., None] == np.arange(len(PARTS))  # (L, L, parts)
    share = np.einsum("wqk,qkp->p", weights, one_hot) / (weights.shape[0] * weights.shape[1])
    chance = one_hot.mean(axis=(0, 1))
    return {"share": dict(zip(PARTS, share.tolist())), "chance": dict(zip(PARTS, chance.tolist()))}


def cast_batch(model: Any, video: Any) -> list[dict[str, Any]]:
    """The window mass of T2S and S2T, each at the exchange ``read_exchanges`` names, on one batch of views
    ``video`` (V, C, T, H, W): one entry per view, ``{direction: window_mass(...)}`` plus each direction's window
    shape and exchange."""
    exchanges = read_exchanges(model)
    _, records = capture_forward(model, video, [f"exchange.{index}.{d}" for d, index in exchanges.items()])
    views = []
    for view in range(video.shape[0]):
        entry = {}
        for record in records:
            layout = record.layout
            per_view = layout["num_patches"] if layout["window"] == "time" else \
                layout["num_steps"] if layout["window"] == "space" else 1
            weights = record.weights["windows"][view * per_view:(view + 1) * per_view].double().mean(dim=1).numpy()
            direction = record.name.rsplit(".", 1)[1]
            entry[direction] = {"window": layout["window"], "exchange": int(exchanges[direction]),
                                **window_mass(weights, layout["window"], layout["num_steps"], layout["num_patches"])}
        views.append(entry)
    return views


def score_windows(cfg: Any, model: Any, limit: int | None, prepared: dict | None = None) -> dict[str, Any]:
    """A CAST run's window mass (docs/attention_windows_and_points.md): per direction, its window shape and each
    part's mean share over every view of every test video, beside the uniform map's."""
    views, samples = [], 0
    for x, videos in pipeline_inputs(cfg, model, limit):
        views += cast_batch(model, x)
        samples += videos
    out: dict[str, Any] = {}
    for direction in views[0]:
        first = views[0][direction]
        out[direction] = {"window": first["window"], "exchange": first["exchange"], "chance": first["chance"],
                          "share": {part: float(np.mean([v[direction]["share"][part] for v in views]))
                                    for part in PARTS}}
    return {**out, "samples": samples, "views": len(views)}


def _window_headline(run: dict[str, Any]) -> str:
    t2s, s2t = run.get("t2s"), run.get("s2t")
    parts = [f"T2S ({t2s['window']}) along time {t2s['share']['time'] - t2s['chance']['time']:+.4f}" if t2s else "",
             f"S2T ({s2t['window']}) along space {s2t['share']['space'] - s2t['chance']['space']:+.4f}" if s2t else ""]
    return "; ".join(p for p in parts if p) + " over chance"


WINDOWS = Measure("attention_windows", "attention_windows.json", DEFINITION,
                  lambda cfg: cfg.model.name.startswith("cast_") and cfg.data.dataset == "synth_verbnoun",
                  score_windows, _window_headline, "CAST's Table 1(e) (cast_table1e) on synth_verbnoun")


@register_figures("models.cast.model.CAST", "CAST Fig. 3c", measure=WINDOWS)
def cast_figures(model: Any, clip: Clip, query: Query) -> dict[str, np.ndarray]:
    """Fig. 3(c) of the exchanges ``read_exchanges`` names: T2S along time at the query's patch, S2T along space in
    the query's step."""
    from models.cast.experts import FRAME_OFFSET, FRAME_STRIDE

    exchanges = read_exchanges(model)  # each direction where its output is read, as the measure takes it
    names = [f"exchange.{index}.{d}" for d, index in exchanges.items()]
    _, records = capture_forward(model, clip.video, names)
    if len(records) != 2 or {r.layout["window"] for r in records} != {"time", "space"}:
        raise ValueError("Figure 3(c) needs both directions with T2S over time and S2T over space; this row's "
                         f"exchange has {[(r.name, r.layout['window']) for r in records]}")
    patch = model.spatial.patch_size
    side = model.img_size // patch
    step, cell = query.frame // FRAME_STRIDE, (query.y // patch, query.x // patch)
    t2s, s2t = cast_maps(last_record(records, "t2s"), last_record(records, "s2t"), step, cell[0] * side + cell[1])
    frames = clip.frames[FRAME_OFFSET::FRAME_STRIDE]
    title = (f"B-CAST T2S of exchange {exchanges['t2s']}, S2T of exchange {exchanges['s2t']} (the last whose output "
             f"a head reads), mean over heads: {clip.source}")
    image = cast_windows(frames, t2s, s2t.reshape(side, side), step, cell, (side, side),
                         (query.x + 0.5, query.y + 0.5), title)
    return {"cast_fig3c": image}


__all__ = ["DEFINITION", "PARTS", "WINDOWS", "cast_batch", "cast_figures", "cast_maps", "cast_windows", "key_parts",
           "read_exchanges", "score_windows", "window_mass"]
