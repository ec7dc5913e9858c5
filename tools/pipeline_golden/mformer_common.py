"""What the Motionformer golden-file makers (``tools/pipeline_golden/mformer.py``, ``mformer_augment.py``) share:
the wrappers that read out what the authors' functions did (``Capture``; their functions are only wrapped at run
time, never changed), the authors' config with the settings of every run, checksums, and the writing of the files
with the record of the authors' code that made them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from data.atomic_write import atomic_write_text

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "pipelines" / "mformer"
REPOSITORY = "facebookresearch/Motionformer"
COMMAND = "python -m tools.pipeline_golden.mformer --official-code OFFICIAL/Motionformer"
EVERY_RUN = {"NUM_GPUS": 0, "NUM_SHARDS": 1, "DATA_LOADER.NUM_WORKERS": 0}


def sha(tensor: torch.Tensor) -> str:
    """The first 16 hex digits of the SHA-256 of a tensor's bytes."""
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()[:16]


def all_pts(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return sorted(f.pts for f in container.decode(video=0))


def probe(tensor: torch.Tensor) -> torch.Tensor:
    """A strided sample of a (C, T, H, W) input: every 4th frame, every 4th row, every 8th column."""
    return tensor[:, ::4, ::4, ::8].float().contiguous()


class Capture:
    """Wraps the authors' functions (module attributes, as their code calls them) to read out what they did."""

    def __init__(self) -> None:
        self.records: dict[str, Any] = {}
        self.undo: list[tuple[Any, str, Any]] = []

    def wrap(self, module: Any, name: str, wrapper: Any) -> None:
        original = getattr(module, name)
        self.undo.append((module, name, original))
        setattr(module, name, wrapper(original))

    def restore(self) -> None:
        for module, name, original in reversed(self.undo):
            setattr(module, name, original)
        self.undo.clear()


def capture_spatial(capture: Capture) -> None:
    """Record the resized size (``random_short_side_scale_jitter``) and the crop box (``uniform_crop``, found in its
    input) of each call."""
    from slowfast.datasets import transform

    def scale(original):
        def wrapped(images, *args, **kwargs):
            out = original(images, *args, **kwargs)
            capture.records["resized"] = list(out[0].shape[-2:])
            return out
        return wrapped

    def crop(original):
        def wrapped(images, size, spatial_idx, boxes=None):
            out = original(images, size, spatial_idx, boxes)
            boxes_found = [(top, left) for top in range(images.shape[2] - size + 1)
                           for left in range(images.shape[3] - size + 1)
                           if torch.equal(images[:, :, top:top + size, left:left + size], out[0])]
            capture.records["crop"] = {"spatial_idx": spatial_idx, "size": size, "boxes": boxes_found}
            return out
        return wrapped

    capture.wrap(transform, "random_short_side_scale_jitter", scale)
    capture.wrap(transform, "uniform_crop", crop)


def official_cfg(code: Path, config: str, overrides: dict[str, Any]):
    from slowfast.config.defaults import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(str(code / config))
    cfg.merge_from_list([item for key, value in {**EVERY_RUN, **overrides}.items() for item in (key, value)])
    return cfg


def view_record(frames: torch.Tensor, sampled: torch.Tensor, indices: list[int], capture: Capture, k: int,
                spatial_views: int) -> dict[str, Any]:
    crop = capture.records["crop"]
    return {"view": k, "temporal": k // spatial_views, "spatial": k % spatial_views, "frame_indices": indices,
            "resized": capture.records["resized"], "crop_boxes": crop["boxes"], "crop_size": crop["size"],
            "frames_sha": sha(sampled), "input_sha": sha(frames), "input_shape": list(frames.shape),
            "input_sum": round(float(frames.double().sum()), 6)}


def capture_decoding(capture: Capture, pts_index: dict[int, int]) -> None:
    """Record the frame indices ``decoder.temporal_sampling`` picks (its output matched in the buffer
    ``pyav_decode_stream`` decoded, whose pts give the indices) and the frames it returns."""
    import slowfast.datasets.decoder as decoder

    def stream(original):
        def wrapped(*args, **kwargs):
            result, max_pts = original(*args, **kwargs)
            capture.records["buffer_pts"] = [f.pts for f in result]
            return result, max_pts
        return wrapped

    def sampling(original):
        def wrapped(buffer, start_idx, end_idx, num_samples):
            out = original(buffer, start_idx, end_idx, num_samples)
            picked = [next(j for j in range(len(buffer)) if torch.equal(buffer[j], f)) for f in out]
            capture.records["indices"] = [pts_index[capture.records["buffer_pts"][j]] for j in picked]
            capture.records["sampled"] = out.clone()
            return out
        return wrapped

    capture.wrap(decoder, "pyav_decode_stream", stream)
    capture.wrap(decoder, "temporal_sampling", sampling)

def capture_images(capture: Capture) -> None:
    """Record the paths and the decoded (BGR, cv2) frames of ``utils.retry_load_images``."""
    from slowfast.datasets import utils

    def load(original):
        def wrapped(image_paths, *args, **kwargs):
            out = original(image_paths, *args, **kwargs)
            capture.records["paths"] = [Path(p).name for p in image_paths]
            capture.records["sampled"] = torch.as_tensor(np.asarray(out)).clone()
            return out
        return wrapped

    capture.wrap(utils, "retry_load_images", load)


def official(commit: str, called: str) -> dict[str, Any]:
    return {"official": {"repository": REPOSITORY, "official_commit": commit, "called": called, "command": COMMAND,
                         "shim": None}}


def write(path: Path, content: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(content, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size} bytes)")


def git_commit(folder: Path) -> str:
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
