"""Semi-supervised video object segmentation by label propagation on frozen features (Motionformer Table 9).

The protocol is Jabri et al.'s as DINO runs it for ViTs, with DINO's defaults (``n_last_frames=7``,
``size_mask_neighborhood=12``, ``topk=5``, temperature 0.1): each target frame's patches take the labels of their
most similar patches in the first and the previous frames. Features come from any callable ``frames (T, 3, H, W) in
[0, 1] -> (T, h, w, C)``; ``VideoViTFeatures`` builds one for ``VideoViT``. The protocol step by step and which
features the paper used: docs/mformer_paper_scale.md#table-5-long-range-arena-and-table-9-davis.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image
from timm.layers import resample_abs_pos_embed
from torch import Tensor

from models.video_vit import VideoViT

from .davis_metrics import BOUND_TH, sequence_scores, summarize

_logger = logging.getLogger(__name__)

FeatureFn = Callable[[Tensor], Tensor]  # (T, 3, H, W) float in [0, 1] -> (T, h, w, C)

# DINO eval_video_segmentation.py defaults (argparse) and its hard-coded temperature.
DINO_DEFAULTS = dict(n_last_frames=7, size_mask_neighborhood=12, topk=5, temperature=0.1)


# --- propagation -----------------------------------------------------------------------------------------------


def neighborhood_mask(h: int, w: int, radius: int) -> Tensor:
    """(h*w, h*w) bool: source patch (row) within ``radius`` patches of target patch (column) in both axes.

    DINO's ``restrict_neighborhood``: a (2r+1) x (2r+1) square window; ``radius <= 0`` allows every pair.
    """
    if radius <= 0:
        return torch.ones(h * w, h * w, dtype=torch.bool)
    rows = torch.arange(h).repeat_interleave(w)  # (h*w,): row of each patch, order (h w)
    cols = torch.arange(w).repeat(h)
    near_rows = (rows[:, None] - rows[None, :]).abs() <= radius
    near_cols = (cols[:, None] - cols[None, :]).abs() <= radius
    return near_rows & near_cols


def propagate_labels(feats: Tensor, first_labels: Tensor, n_last_frames: int = 7, size_mask_neighborhood: int = 12,
                     topk: int = 5, temperature: float = 0.1) -> Tensor:
    """Propagate the first frame's labels through a sequence of patch features.

    Args:
        feats: (T, h, w, C) features of every frame (any scale; they are L2-normalised here).
        first_labels: (K, h, w) labels of frame 0 at feature resolution (one-hot or soft), K classes with
            background first.
        n_last_frames: previous frames in the context queue (besides frame 0).
        size_mask_neighborhood: spatial radius in patches of the sources a target patch may draw from (<= 0: all).
        topk: sources kept per target patch, over all context frames jointly (ties at the k-th value are kept).
        temperature: softmax temperature of the cosine affinities.

    Returns:
        (T, K, h, w) soft labels; frame 0 is ``first_labels``.
    """
    if feats.ndim != 4 or first_labels.ndim != 3 or feats.shape[1:3] != first_labels.shape[1:]:
        raise ValueError(f"feats (T, h, w, C) {tuple(feats.shape)} and first_labels (K, h, w) "
                         f"{tuple(first_labels.shape)} do not fit")
    num_frames, h, w, _ = feats.shape
    feats = F.normalize(rearrange(feats, "t h w d -> t (h w) d"), dim=-1)
    labels = [rearrange(first_labels.to(feats.dtype), "k h w -> k (h w)")]
    allowed = neighborhood_mask(h, w, size_mask_neighborhood).to(feats.device)  # (source, target)
    for t in range(1, num_frames):
        context = [0] + list(range(max(1, t - n_last_frames), t))  # DINO's queue: frame 0 + the n previous
        logits = feats[context] @ feats[t].T / temperature  # (m, source, target)
        logits = logits.masked_fill(~allowed, float("-inf"))
        logits = rearrange(logits, "m s q -> (m s) q")
        kth = logits.topk(min(topk, logits.shape[0]), dim=0).values[-1:]  # (1, target): k-th largest per target
        # exp(a/T) normalised over the kept sources, as DINO's exp / threshold / sum; the max shift changes nothing
        weights = torch.exp(logits - logits.max(dim=0, keepdim=True).values)
        weights = torch.where(logits >= kth, weights, torch.zeros_like(weights))
        weights = weights / weights.sum(dim=0, keepdim=True)
        source_labels = rearrange(torch.stack([labels[c] for c in context]), "m k s -> k (m s)")
        labels.append(source_labels @ weights)  # (k, target)
    return rearrange(torch.stack(labels), "t k (h w) -> t k h w", h=h)


def labels_to_masks(soft_labels: Tensor, frame_size: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
    """(T, K, h, w) soft labels -> (T, H, W) uint8 ids as DINO does: bilinear upsampling to the (resized) frame,
    per-channel min-max normalisation (channels whose max is 0 stay, as there; constant positive channels are
    left unnormalised instead of DINO's 0/0), argmax, nearest resize to the annotation size ``out_size``."""
    up = F.interpolate(soft_labels.float(), size=frame_size, mode="bilinear", align_corners=False)
    low = up.amin(dim=(2, 3), keepdim=True)
    high = up.amax(dim=(2, 3), keepdim=True)
    scale = torch.where((high > 0) & (high > low), high - low, torch.ones_like(high))
    shift = torch.where((high > 0) & (high > low), low, torch.zeros_like(low))
    ids = ((up - shift) / scale).argmax(dim=1).to(torch.uint8).cpu().numpy()
    out_h, out_w = out_size
    return np.stack([np.asarray(Image.fromarray(m).resize((out_w, out_h), Image.NEAREST)) for m in ids])


def first_frame_labels(mask: np.ndarray, grid: tuple[int, int], num_classes: int) -> Tensor:
    """(K, h, w) one-hot labels of an (H, W) id map resized to the feature grid with PIL nearest (DINO's
    ``read_seg``); K = ``num_classes`` (background + objects of the first annotation)."""
    h, w = grid
    small = np.asarray(Image.fromarray(np.asarray(mask, dtype=np.uint8)).resize((w, h), Image.NEAREST))
    small = torch.from_numpy(small.astype(np.int64))
    return F.one_hot(small.clamp(max=num_classes - 1), num_classes).permute(2, 0, 1).float()


def resize_shape(height: int, width: int, short_side: int | None = 480, multiple: int = 64) -> tuple[int, int]:
    """DINO's ``read_frame`` size: short side -> ``short_side``, long side scaled and floored to ``multiple``."""
    if short_side is None:
        return height, width
    long_side = int((short_side * max(height, width) / min(height, width)) // multiple * multiple)
    if long_side == 0:
        raise ValueError(f"short side {short_side} leaves a {height}x{width} frame no long side that is a multiple "
                         f"of {multiple}")
    return (long_side, short_side) if height > width else (short_side, long_side)


def segment_sequence(feature_fn: FeatureFn, frames: np.ndarray, first_mask: np.ndarray, num_classes: int,
                     short_side: int | None = 480, size_multiple: int = 64,
                     propagation_device: str | torch.device | None = None, **propagation) -> np.ndarray:
    """Predict (T, H, W) uint8 ids for a sequence from its (T, H, W, 3) uint8 frames and first annotation.

    Propagation runs where ``feature_fn`` returned its features unless ``propagation_device`` says otherwise
    (at DAVIS scale it costs ~15 GFLOP per frame: seconds on one CPU core, milliseconds on a GPU).
    """
    height, width = frames.shape[1:3]
    size = resize_shape(height, width, short_side, size_multiple)
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    if size != (height, width):
        video = F.interpolate(video, size=size, mode="bilinear", align_corners=False)  # cv2.resize INTER_LINEAR
    with torch.no_grad():
        feats = feature_fn(video)
    if feats.ndim != 4 or feats.shape[0] != len(frames):
        raise ValueError(f"feature_fn returned {tuple(feats.shape)} for {len(frames)} frames; expected (T, h, w, C)")
    feats = feats.float().to(propagation_device or feats.device)
    first = first_frame_labels(first_mask, tuple(feats.shape[1:3]), num_classes).to(feats.device)
    soft = propagate_labels(feats, first, **propagation)
    masks = labels_to_masks(soft, size, (height, width))
    masks[0] = first_mask  # the given frame, as DINO writes it
    return masks


def evaluate_davis(feature_fn: FeatureFn, root: str | Path, split: str = "val", *,
                   sequences: Sequence[str] | None = None, short_side: int | None = 480, size_multiple: int = 64,
                   n_last_frames: int = 7, size_mask_neighborhood: int = 12, topk: int = 5, temperature: float = 0.1,
                   bound_th: float = BOUND_TH, on_error: Literal["raise", "skip"] = "raise",
                   output_dir: str | Path | None = None,
                   propagation_device: str | torch.device | None = None) -> dict:
    """Label propagation on a DAVIS 2017 split, scored with the official J and F definitions.

    Args:
        feature_fn: frames (T, 3, H, W) in [0, 1] -> (T, h, w, C) features.
        root: DAVIS folder (``JPEGImages/480p``, ``Annotations/480p``, ``ImageSets/2017``).
        split, sequences: "val" for Table 9; an optional subset of it.
        short_side, size_multiple: frame resizing before feature extraction (None: native size).
        n_last_frames, size_mask_neighborhood, topk, temperature: see ``propagate_labels``.
        bound_th: F tolerance (fraction of the diagonal).
        on_error: "raise" on a sequence with unreadable files, or "skip" it and list it under "skipped".
        output_dir: if given, palette PNGs in the layout the official ``davis2017-evaluation`` reads.
        propagation_device: where the propagation runs (default: where the features are).

    Returns:
        ``{"J&F", "J", "F"}`` (fractions in [0, 1]; the paper prints x100), ``"sequences"`` and ``"objects"``
        evaluated, ``"per_sequence"`` ({name: {"J", "F", "objects"}}), ``"skipped"`` ({name: reason}),
        ``"unreadable_files"`` (count over skipped sequences) and the ``"params"`` used.
    """
    from data.davis import DavisDataset, DavisReadError, num_objects, read_sequence, write_mask_png

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    dataset = DavisDataset(root, split, sequences=list(sequences) if sequences is not None else None)
    params = dict(n_last_frames=n_last_frames, size_mask_neighborhood=size_mask_neighborhood, topk=topk,
                  temperature=temperature)
    j_all, f_all, per_sequence, skipped, unreadable = [], [], {}, {}, 0
    for seq in dataset.sequences:
        try:
            frames, masks = read_sequence(seq)
        except DavisReadError as err:
            if on_error == "raise":
                raise
            _logger.warning("skipping %s", err)
            skipped[seq.name] = str(err)
            unreadable += len(err.bad_files)
            continue
        if len(masks) < 3:  # J and F leave out the first and the last frame (davis_metrics.sequence_scores)
            raise ValueError(f"DAVIS sequence {seq.name} ({root}): {len(masks)} frames leave none to evaluate once "
                             f"the first and last are excluded")
        k = num_objects(masks)
        pred = segment_sequence(feature_fn, frames, masks[0], k + 1, short_side, size_multiple,
                                propagation_device, **params)
        scores = sequence_scores(masks, pred, bound_th=bound_th)
        j_all.extend(scores["J"].tolist())
        f_all.extend(scores["F"].tolist())
        per_sequence[seq.name] = {"J": float(scores["J"].mean()), "F": float(scores["F"].mean()), "objects": k}
        _logger.info("%s: J %.3f F %.3f (%d objects)", seq.name, per_sequence[seq.name]["J"],
                     per_sequence[seq.name]["F"], k)
        if output_dir is not None:
            seq_dir = Path(output_dir) / seq.name
            seq_dir.mkdir(parents=True, exist_ok=True)
            for path, mask in zip(seq.frame_paths, pred):
                write_mask_png(seq_dir / f"{path.stem}.png", mask)
    if not per_sequence:
        raise RuntimeError(f"no sequence of {root} could be evaluated; skipped: {skipped}")
    return {**summarize(j_all, f_all), "sequences": len(per_sequence), "objects": len(j_all),
            "per_sequence": per_sequence, "skipped": skipped, "unreadable_files": unreadable,
            "params": {**params, "short_side": short_side, "size_multiple": size_multiple, "bound_th": bound_th,
                       "split": split}}


# --- features of a VideoViT ------------------------------------------------------------------------------------


def pos_embed_for(model: VideoViT, thw: tuple[int, int, int]) -> tuple[Tensor, Tensor]:
    """(CLS position (1, 1, D), patch positions (1, T*h*w, D)) for a token grid of another spatial size: the
    spatial table (a joint table's, one tubelet at a time) is resampled as ``timm.layers.resample_abs_pos_embed``
    does when loading a checkpoint."""
    t, h, w = thw
    mt, mh, mw = model.grid_size
    if t != mt:
        raise ValueError(f"{t} tubelets per clip but the model's temporal table has {mt}: feed model.num_frames "
                         f"({model.num_frames}) frames")
    cls_pos = model.pos_embed[:, :1]
    if model.pos_embed_type == "separate":
        spatial = model.pos_embed[:, 1:]
        if (h, w) != (mh, mw):
            spatial = resample_abs_pos_embed(spatial, new_size=[h, w], old_size=[mh, mw], num_prefix_tokens=0)
        patch = rearrange(spatial, "1 n d -> 1 1 n d") + rearrange(model.time_embed, "1 t d -> 1 t 1 d")
        return cls_pos, rearrange(patch, "1 t n d -> 1 (t n) d")
    # timm resamples one (1, N, C) table: the tubelets' tables go side by side in its channels, each resampled alone
    joint = rearrange(model.pos_embed[:, 1:], "1 (t n) d -> 1 n (t d)", t=mt)
    if (h, w) != (mh, mw):
        joint = resample_abs_pos_embed(joint, new_size=[h, w], old_size=[mh, mw], num_prefix_tokens=0)
    return cls_pos, rearrange(joint, "1 n (t d) -> 1 (t n) d", t=mt)


def video_vit_patch_features(model: VideoViT, video: Tensor,
                             feature: Literal["tokens", "keys"] = "tokens") -> Tensor:
    """Patch features (B, T / tubelet_size, h, w, D) of a (B, C, T, H, W) normalised clip at any H, W divisible by
    the patch size (the spatial position table resampled): "tokens" = the last block's output patch tokens after the
    final norm (DINO's), "keys" = the last attention's keys, all heads concatenated."""
    x, thw = model.patch_embed(video)
    cls_pos, patch_pos = pos_embed_for(model, thw)
    cls = (model.cls_token + cls_pos).expand(x.shape[0], -1, -1)
    x = model.pos_drop(torch.cat([cls, x + patch_pos], dim=1))
    captured = {}
    handle = None
    if feature == "keys":
        handle = model.blocks[-1].attn.qkv.register_forward_hook(lambda m, i, o: captured.__setitem__("qkv", o))
    elif feature != "tokens":
        raise ValueError(f"feature must be 'tokens' or 'keys', got {feature!r}")
    try:
        for block in model.blocks:
            x = block(x, thw)
    finally:
        if handle is not None:
            handle.remove()
    if feature == "tokens":
        patches = model.norm(x)[:, 1:]
    else:
        qkv = captured["qkv"]
        if qkv.shape[:2] != x.shape[:2]:
            raise ValueError(f"last attention's qkv output {tuple(qkv.shape)} is not per token {tuple(x.shape[:2])}")
        patches = rearrange(qkv, "b n (three c) -> three b n c", three=3)[1][:, 1:]
    t, h, w = thw
    return rearrange(patches, "b (t h w) d -> b t h w d", t=t, h=h, w=w)


class VideoViTFeatures:
    """Frozen ``VideoViT`` as a ``FeatureFn`` for label propagation (the choices: docs/mformer_paper_scale.md).

    Args:
        model: the frozen model (put in eval mode here).
        feature: "tokens" (last block output, DINO's choice) or "keys" (last attention's keys: a key-key attention map).
        mode: "clip" (consecutive clips, each frame takes its tubelet's features) or "static" (each frame as a still
            clip, features averaged over the tubelets).
        mean, std: input normalisation on the [0, 1] scale (Motionformer trains with 0.5 / 0.5).
        device: where the model runs (its current device if None).
        batch_size: clips per forward pass.
        autocast_dtype: e.g. ``torch.bfloat16`` for mixed precision on a GPU; None for full precision.
    """

    def __init__(self, model: VideoViT, feature: Literal["tokens", "keys"] = "tokens",
                 mode: Literal["clip", "static"] = "clip", mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.5, 0.5, 0.5), device: str | torch.device | None = None,
                 batch_size: int = 1, autocast_dtype: torch.dtype | None = None) -> None:
        if feature not in ("tokens", "keys"):
            raise ValueError(f"feature must be 'tokens' or 'keys', got {feature!r}")
        if mode not in ("clip", "static"):
            raise ValueError(f"mode must be 'clip' or 'static', got {mode!r}")
        self.model = model.eval()
        self.feature, self.mode = feature, mode
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model.to(self.device)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
        self.batch_size = batch_size
        self.autocast_dtype = autocast_dtype
        self.num_frames = model.num_frames
        self.tubelet = model.patch_embed.tubelet_size

    def _run(self, clips: list[Tensor]) -> Tensor:
        """(C, T, H, W) clips in [0, 1] -> (N, T', h, w, D) features on the CPU."""
        out = []
        for i in range(0, len(clips), self.batch_size):
            batch = (torch.stack(clips[i:i + self.batch_size]) - self.mean) / self.std
            batch = batch.to(self.device)
            with torch.no_grad(), torch.autocast(self.device.type, dtype=self.autocast_dtype,
                                                 enabled=self.autocast_dtype is not None):
                out.append(video_vit_patch_features(self.model, batch, self.feature).float().cpu())
        return torch.cat(out)

    def __call__(self, frames: Tensor) -> Tensor:
        """(T, 3, H, W) frames in [0, 1] -> (T, h, w, D) features."""
        video = rearrange(frames, "t c h w -> c t h w")
        total = video.shape[1]
        if self.mode == "static":
            clips = [video[:, i:i + 1].expand(-1, self.num_frames, -1, -1) for i in range(total)]
            return self._run(clips).mean(dim=1)
        if total < self.num_frames:  # pad by repeating the last frame
            video = torch.cat([video, video[:, -1:].expand(-1, self.num_frames - total, -1, -1)], dim=1)
        starts = list(range(0, max(total - self.num_frames, 0) + 1, self.num_frames))
        if starts[-1] + self.num_frames < total:
            starts.append(total - self.num_frames)  # last clip ends at the last frame
        feats = self._run([video[:, s:s + self.num_frames] for s in starts])  # (clips, T', h, w, D)
        out = []
        for frame in range(total):
            clip = min(i for i, s in enumerate(starts) if s <= frame < s + self.num_frames)
            out.append(feats[clip, (frame - starts[clip]) // self.tubelet])
        return torch.stack(out)


def _device(text: str) -> str:
    """A device torch names (``cpu``, ``cuda``, ``cuda:1``)."""
    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"expected a torch device (cpu, cuda, cuda:N), got {text[:40]!r}") from None
    return text


MAX_SIDE = 8192  # pixels: a frame side of DAVIS is at most 1080 (its full-resolution release), 4K video's 3840


def main(argv: Sequence[str] | None = None) -> dict:
    """``python -m lightning_modules.label_propagation --root DAVIS [--checkpoint ckpt.pth]``: Table 9's protocol for a
    registered model; prints the result as JSON (and writes it to ``--out`` if given)."""
    import json

    from data.atomic_write import atomic_write_text
    from data.command_line import OneLineParser, checked, count, path
    from models.pretrained import load_pretrained
    from models.registry import create_model

    parser = OneLineParser(prog="python -m lightning_modules.label_propagation", description=main.__doc__)
    parser.add_argument("--root", type=path("a DAVIS folder"), required=True,
                        help="DAVIS 2017 folder (JPEGImages/, Annotations/, ImageSets/)")
    parser.add_argument("--model", default="vit_base_patch16_video", help="registered model name")
    parser.add_argument("--checkpoint", type=path("a weights file"), default=None,
                        help="weights for load_pretrained (else random init)")
    parser.add_argument("--feature", default="tokens", choices=["tokens", "keys"])
    parser.add_argument("--mode", default="clip", choices=["clip", "static"])
    parser.add_argument("--device", type=checked(_device, "a torch device"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--short-side", type=count(0, MAX_SIDE, "a frame side in pixels"), default=480,
                        help="frame short side for the model (0: native)")
    parser.add_argument("--size-multiple", type=count(1, MAX_SIDE, "a side multiple in pixels"), default=64,
                        help="long side floored to a multiple of this")
    parser.add_argument("--out", type=path("a JSON file"), default=None, help="JSON file for the result")
    parser.add_argument("--predictions", type=path("a folder"), default=None, help="folder for the predicted PNGs")
    args = parser.parse_args(argv)

    model = create_model(args.model, num_classes=0)
    if args.checkpoint:
        load_pretrained(model, args.checkpoint)
    amp = torch.bfloat16 if args.device.startswith("cuda") else None
    feature_fn = VideoViTFeatures(model, feature=args.feature, mode=args.mode, device=args.device,
                                  autocast_dtype=amp)
    result = evaluate_davis(feature_fn, args.root, "val", short_side=args.short_side or None,
                            size_multiple=args.size_multiple,
                            output_dir=args.predictions, propagation_device=args.device)
    result["setup"] = {"model": args.model, "checkpoint": args.checkpoint, "feature": args.feature,
                       "mode": args.mode}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        atomic_write_text(args.out, text)
    return result


if __name__ == "__main__":
    from data.command_line import exit_status

    raise SystemExit(exit_status(main))
