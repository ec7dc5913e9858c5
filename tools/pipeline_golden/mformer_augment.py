"""Golden files of Motionformer's training augmentation beyond clip start, scale jitter, crop and flip
(tools/pipeline_golden/mformer.py has those), made by calling the authors' own code.

    python -m tools.pipeline_golden.mformer_augment --official-code OFFICIAL/Motionformer

``--official-code`` is a checkout of facebookresearch/Motionformer (commit bf43d50 was used); none of its code is in
this repository. Needs what tools/pipeline_golden/mformer.py needs (cv2, ffmpeg-python, joblib, simplejson, psutil,
scikit-learn, pandas), and that maker's golden videos and frame folders (run it first).

One shim, at run time: their ``autoaugment.posterize`` keeping 0 bits (which "rand-...-inc1" asks for at magnitude
10: 4 - int(10 / 10 * 4)) calls ``ImageOps.posterize(img, 0)``, which Pillow >= 10 refuses; the Pillow of their
time gave a black image (its table ``i & ~(2 ** 8 - 1)`` = 0), which the shim returns for 0 bits (more bits: theirs).

It writes into ``tests/golden/pipelines/mformer/``:

- ``augment_calls.json``: for every configuration of configs/K400, K600, SSV2 and EK, one training item of their
  dataset class (``Kinetics`` / ``Ssv2`` / ``Epickitchens(cfg, 'train')[0]``) on the golden videos, with the
  augmentation calls it made read out (their functions wrapped, never changed): ``rand_augment_transform``'s config
  string, hparams and seed (and how many frames), ``frames_augmentation``'s flags, ``color_jitter``'s strengths,
  ``random_resize_crop_video``'s arguments, ``random_short_side_scale_jitter``'s, ``random_crop``'s
  and ``horizontal_flip``'s; and the configuration's DATA flags. (``frames_augmentation``'s GAUSSIAN branch calls a
  ``transform.gaussian_blur`` that their transform.py does not define: GAUSSIAN is off in every configuration.)
- ``augment.json`` + ``augment_tensors.npz``: their output for given random states, to compare with ours for the
  same draws: ``rand_augment`` (``random.seed(k)``, ``np.random.seed(k)``, then as their datasets do:
  ``seed = random.randint(0, 100000000)`` and ``rand_augment_transform(config, aa_params, seed)(frame)`` for every
  frame; uint8 frames out, the ops each frame ran read out), ``color_jitter`` (``np.random.seed(k)``, then
  ``utils.frames_augmentation(frames, colorjitter=True, use_grayscale=False, use_gaussian=False)`` on frames
  normalised by ``utils.tensor_normalize``), ``resized_crop`` (``torch.manual_seed(k)``, then
  ``transform.random_resize_crop_video(frames, size, interpolation_mode="bilinear")`` on normalised (C, T, H, W)
  frames: the box ``get_params`` drew and the output; and the boxes alone of 1,000 seeds on a 256 x 340 frame).
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.atomic_write import atomic_write_text, save_arrays
from data.command_line import OneLineParser, path
from tools.pipeline_golden.mformer import EPIC_VIDEOS, SSV2_VIDEOS
from tools.pipeline_golden.mformer_common import EVERY_RUN, GOLDEN, REPO, Capture, git_commit, official_cfg, sha, write

COMMAND = "python -m tools.pipeline_golden.mformer_augment --official-code OFFICIAL/Motionformer"
REPOSITORY = "facebookresearch/Motionformer"
CONFIG_DIRS = ("configs/K400", "configs/K600", "configs/SSV2", "configs/EK")
SHIM = ("slowfast.datasets.autoaugment.posterize: for 0 bits a black image (what Pillow < 10's ImageOps.posterize "
        "gave: its lookup table i & ~(2 ** 8 - 1)), since Pillow >= 10 refuses 0 bits; other bits call theirs")
RAND_AUGMENT_CLIPS = {"rand-m20-mstd0.5-inc1": 40, "rand-m15-mstd0.5-inc1": 8}  # SSv2's, EK's (kinetics.py: m20)
RAND_AUGMENT_FRAMES, RAND_AUGMENT_SIZE, RAND_AUGMENT_CROP = 3, (12, 16), 224  # frames, (height, width), crop size
JITTER_CLIPS, JITTER_SHAPE = 64, (2, 6, 6)  # (frames, height, width), square: our crop keeps the whole frame
RESIZED_CROP_CLIPS, RESIZED_CROP_SHAPE, RESIZED_CROP_SIZE = 24, (2, 20, 28), 8
RESIZED_CROP_BOXES, RESIZED_CROP_FRAME = 1000, (256, 340)


def official(commit: str, called: str) -> dict[str, Any]:
    return {"official": {"repository": REPOSITORY, "official_commit": commit, "called": called, "command": COMMAND,
                         "shim": SHIM}}


def shim_posterize() -> None:
    from PIL import Image
    from slowfast.datasets import autoaugment

    theirs = autoaugment.posterize

    def posterize(img, bits_to_keep, **kwargs):
        if bits_to_keep <= 0:
            return Image.new(img.mode, img.size)
        return theirs(img, bits_to_keep, **kwargs)

    for name, op in list(autoaugment.NAME_TO_OP.items()):
        if op is theirs:
            autoaugment.NAME_TO_OP[name] = posterize
    autoaugment.posterize = posterize


def capture_augmentation(capture: Capture) -> None:
    """Record the augmentation calls of one training item in ``capture.records["calls"]``."""
    from slowfast.datasets import autoaugment, transform, utils

    calls = capture.records.setdefault("calls", {})

    def rand_augment(original):
        def wrapped(config_str, hparams, seed=None):
            entry = calls.setdefault("rand_augment_transform", {"config_str": config_str, "seeds": [], "calls": 0})
            entry["calls"] += 1
            entry["seeds"] = sorted(set(entry["seeds"]) | {seed})
            out = original(config_str, hparams, seed)
            entry["hparams"] = {k: list(v) if isinstance(v, tuple) else v for k, v in hparams.items()}
            return out
        return wrapped

    def frames_augmentation(original):
        def wrapped(frames, colorjitter=True, use_grayscale=True, use_gaussian=False):
            calls["frames_augmentation"] = {"colorjitter": colorjitter, "use_grayscale": use_grayscale,
                                            "use_gaussian": use_gaussian}
            return original(frames, colorjitter=colorjitter, use_grayscale=use_grayscale, use_gaussian=use_gaussian)
        return wrapped

    def recorder(name):
        def wrap(original):
            def wrapped(*args, **kwargs):
                calls[name] = {"args": [a for a in args if not torch.is_tensor(a)],
                               "kwargs": {k: v for k, v in kwargs.items() if not torch.is_tensor(v)}}
                return original(*args, **kwargs)
            return wrapped
        return wrap

    capture.wrap(autoaugment, "rand_augment_transform", rand_augment)
    capture.wrap(utils, "frames_augmentation", frames_augmentation)
    # grayscale not: color_jitter's contrast and saturation call it too (frames_augmentation's flags say GRAYSCALE);
    # gaussian_blur not: transform.py has none (GAUSSIAN is off everywhere)
    for name in ("color_jitter", "random_resize_crop_video", "random_short_side_scale_jitter", "random_crop",
                 "horizontal_flip"):
        capture.wrap(transform, name, recorder(name))


def calls(code: Path, commit: str, tmp: Path) -> None:
    import pandas as pd
    from slowfast.datasets.epickitchens import Epickitchens
    from slowfast.datasets.kinetics import Kinetics
    from slowfast.datasets.ssv2 import Ssv2

    video = GOLDEN / "videos" / "k30_111f_40x40.mp4"
    atomic_write_text(tmp / "train.csv", f"{video} 0\n")
    name, (count, _, _) = next(iter(SSV2_VIDEOS.items()))
    ssv2_root = GOLDEN / "videos" / "ssv2"
    ssv2_dir = tmp / "ssv2"
    ssv2_dir.mkdir()
    lines = ["original_vido_id video_id frame_id path labels"]
    lines += [f"{name} 0 {t} {name}/frame_{t + 1:010d}.jpg \"\"" for t in range(count)]
    atomic_write_text(ssv2_dir / "train.csv", "\n".join(lines) + "\n")
    atomic_write_text(ssv2_dir / "something-something-v2-labels.json", json.dumps({"Doing something": "0"}))
    atomic_write_text(ssv2_dir / "something-something-v2-train.json", json.dumps(
        [{"id": name, "template": "Doing [something]"}]))
    epic_video = next(iter(EPIC_VIDEOS))
    pd.DataFrame([{"participant_id": epic_video.split("_")[0], "video_id": epic_video,
                   "start_timestamp": "00:00:00.10", "stop_timestamp": "00:00:01.37", "verb_class": 0,
                   "noun_class": 0}], index=[f"{epic_video}_0"]).to_pickle(tmp / "EPIC_100_train.pkl")
    datasets = {"configs/K400": (Kinetics, {"DATA.PATH_TO_DATA_DIR": str(tmp)}),
                "configs/K600": (Kinetics, {"DATA.PATH_TO_DATA_DIR": str(tmp)}),
                "configs/SSV2": (Ssv2, {"DATA.PATH_TO_DATA_DIR": str(ssv2_dir), "DATA.PATH_PREFIX": str(ssv2_root)}),
                "configs/EK": (Epickitchens, {"EPICKITCHENS.VISUAL_DATA_DIR": str(GOLDEN / "videos" / "epic"),
                                              "EPICKITCHENS.ANNOTATIONS_DIR": str(tmp)})}
    cases = []
    for folder in CONFIG_DIRS:
        dataset_class, overrides = datasets[folder]
        for config in sorted((code / folder).glob("*.yaml")):
            config_name = f"{folder}/{config.name}"
            cfg = official_cfg(code, config_name, overrides)
            dataset = dataset_class(cfg, "train")
            capture = Capture()
            capture_augmentation(capture)
            random.seed(0)
            np.random.seed(0)
            torch.manual_seed(0)
            try:
                frames = dataset[0][0][0]
            finally:
                capture.restore()
            flags = {key: cfg.DATA[key] for key in ("USE_RAND_AUGMENT", "COLORJITTER", "GRAYSCALE", "GAUSSIAN",
                                                    "USE_RANDOM_RESIZE_CROPS", "INV_UNIFORM_SAMPLE", "RANDOM_FLIP",
                                                    "TRAIN_CROP_SIZE")}
            flags.update(TRAIN_JITTER_SCALES=list(cfg.DATA.TRAIN_JITTER_SCALES), MEAN=list(cfg.DATA.MEAN),
                         STD=list(cfg.DATA.STD), NUM_FRAMES=cfg.DATA.NUM_FRAMES)
            cases.append({"config": config_name, "data": flags, "calls": capture.records.get("calls", {}),
                          "output_shape": list(frames.shape)})
            print(f"calls {config_name}: {sorted(capture.records.get('calls', {}))}")
    write(GOLDEN / "augment_calls.json", {
        **official(commit, "slowfast/datasets/{kinetics,ssv2,epickitchens}.py: Kinetics / Ssv2 / Epickitchens(cfg, "
                   "'train')[0] after random.seed(0), np.random.seed(0), torch.manual_seed(0), every configuration "
                   "of " + ", ".join(CONFIG_DIRS)),
        "overrides": {**EVERY_RUN, "Kinetics": datasets["configs/K400"][1] | {"video": "videos/k30_111f_40x40.mp4"},
                      "SSv2": {"video": f"videos/ssv2/{name}"}, "EK": {"segment": f"{epic_video} 0.10 s - 1.37 s"}},
        "read_out": "autoaugment.rand_augment_transform, utils.frames_augmentation and transform.color_jitter, "
                    "random_resize_crop_video, random_short_side_scale_jitter, "
                    "random_crop, horizontal_flip wrapped (module attributes, as their code calls them): their "
                    "non-tensor arguments of the item's last call; rand_augment_transform: calls (one per frame), "
                    "the distinct seeds, hparams after the call",
        "cases": cases})


def clip_pixels(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """(T, H, W, 3) uint8: random colours (every channel differs, so grey weights and channel order show)."""
    return np.random.RandomState(seed).randint(0, 256, (*shape, 3)).astype(np.uint8)


def rand_augment(code: Path, commit: str, tmp: Path, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    from PIL import Image
    from slowfast.datasets import autoaugment

    frames = clip_pixels((RAND_AUGMENT_FRAMES, *RAND_AUGMENT_SIZE), 1)
    frames[:, 3:9, 4:10] = (230, 40, 90)  # a block, so that geometric ops move something
    tensors["rand_augment_input"] = frames
    ran: list[list[str]] = []
    original_call = autoaugment.AugmentOp.__call__

    def recording_call(self, img):
        applied = []
        out = original_call(self, img)
        applied.append(self.name_ if out is not img else f"({self.name_})")
        ran[-1].extend(applied)
        return out

    original_make = autoaugment.rand_augment_transform

    def naming_make(config_str, hparams, seed=None):
        transform = original_make(config_str, hparams, seed)
        names = (autoaugment._RAND_INCREASING_TRANSFORMS if "inc1" in config_str else autoaugment._RAND_TRANSFORMS)
        for op, op_name in zip(transform.ops, names, strict=True):
            op.name_ = op_name
        return transform

    autoaugment.AugmentOp.__call__ = recording_call
    clips, outputs = [], []
    try:
        k = 0
        for config, count in RAND_AUGMENT_CLIPS.items():
            for _ in range(count):
                random.seed(k)
                np.random.seed(k)
                aa_params = {"translate_const": int(RAND_AUGMENT_CROP * 0.45),
                             "img_mean": tuple(min(255, round(255 * x)) for x in (0.5, 0.5, 0.5))}
                seed = random.randint(0, 100000000)
                out, ops = [], []
                for frame in frames:
                    ran.append([])
                    out.append(np.array(naming_make(config, aa_params, seed)(Image.fromarray(frame))))
                    ops.append(ran.pop())
                out = np.stack(out)
                outputs.append(out)
                clips.append({"k": k, "config": config, "seed": seed, "ops": ops, "sha": sha(torch.from_numpy(out))})
                k += 1
    finally:
        autoaugment.AugmentOp.__call__ = original_call
    tensors["rand_augment_output"] = np.stack(outputs)
    print(f"rand_augment: {len(clips)} clips; ops run: "
          f"{sorted({o for c in clips for f in c['ops'] for o in f if not o.startswith('(')})}")
    return {"called": "random.seed(k); np.random.seed(k); seed = random.randint(0, 100000000) (as kinetics.py l.270, "
                      "ssv2.py l.264, epickitchens.py l.153); for each frame: slowfast/datasets/autoaugment.py "
                      "rand_augment_transform(config, aa_params, seed)(PIL frame), np.array of it",
            "aa_params": {"translate_const": int(RAND_AUGMENT_CROP * 0.45), "img_mean": [128, 128, 128]},
            "frames": RAND_AUGMENT_FRAMES, "size": list(RAND_AUGMENT_SIZE), "crop_size": RAND_AUGMENT_CROP,
            "input": "augment_tensors.npz rand_augment_input (T, H, W, 3) uint8 RGB",
            "output": "augment_tensors.npz rand_augment_output (clips, T, H, W, 3) uint8",
            "ops_read_out": "per frame, the ops AugmentOp.__call__ ran, in order; '(name)': its coin skipped it",
            "clips": clips}


def color_jitter(code: Path, commit: str, tmp: Path, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    from slowfast.datasets import transform, utils

    pixels = clip_pixels(JITTER_SHAPE, 2)
    tensors["color_jitter_input"] = pixels
    normalised = utils.tensor_normalize(torch.from_numpy(pixels), [0.5] * 3, [0.5] * 3).permute(0, 3, 1, 2)
    order: list[str] = []
    undo = []
    for name in ("brightness_jitter", "contrast_jitter", "saturation_jitter"):
        original = getattr(transform, name)
        undo.append((name, original))

        def wrapped(var, images, _name=name, _original=original):
            order.append(_name.split("_")[0])
            return _original(var, images)
        setattr(transform, name, wrapped)
    clips, outputs = [], []
    try:
        for k in range(JITTER_CLIPS):
            np.random.seed(k)
            order.clear()
            out = utils.frames_augmentation(normalised.clone(), colorjitter=True, use_grayscale=False,
                                            use_gaussian=False)
            outputs.append(out.numpy())
            clips.append({"k": k, "applied": bool(order), "order": list(order)})
    finally:
        for name, original in undo:
            setattr(transform, name, original)
    tensors["color_jitter_output"] = np.stack(outputs).astype(np.float32)
    coins = []
    for k in range(JITTER_CLIPS):  # the coin of each clip (their first draw), to show which clips 0.7 would change
        np.random.seed(k)
        coins.append(round(float(np.random.uniform()), 6))
    print(f"color_jitter: {sum(c['applied'] for c in clips)} of {len(clips)} jittered, "
          f"{sum(0.2 <= c < 0.3 for c in coins)} with a coin in [0.2, 0.3)")
    return {"called": "np.random.seed(k); slowfast/datasets/utils.py frames_augmentation(frames, colorjitter=True, "
                      "use_grayscale=False, use_gaussian=False) (kinetics.py l.310-316), frames (T, C, H, W) = "
                      "utils.tensor_normalize(uint8 (T, H, W, C), [0.5] * 3, [0.5] * 3) permuted",
            "shape": list(JITTER_SHAPE), "mean": [0.5] * 3, "std": [0.5] * 3,
            "input": "augment_tensors.npz color_jitter_input (T, H, W, 3) uint8 RGB",
            "output": "augment_tensors.npz color_jitter_output (clips, C, T, H, W) float32",
            "order_read_out": "transform.brightness_jitter / contrast_jitter / saturation_jitter wrapped: the order "
                              "color_jitter called them", "coins": coins, "clips": clips}


def resized_crop(code: Path, commit: str, tmp: Path, tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    import inspect

    from slowfast.datasets import transform, utils

    defaults = {name: list(p.default) for name, p in inspect.signature(transform.random_resize_crop_video).parameters
                .items() if name in ("scale", "ratio")}
    boxes: list[list[int]] = []
    original = transform.get_params

    def recording(img, scale, ratio):
        box = original(img, scale, ratio)
        boxes.append(list(box))
        return box

    pixels = clip_pixels(RESIZED_CROP_SHAPE, 3)
    tensors["resized_crop_input"] = pixels
    frames = utils.tensor_normalize(torch.from_numpy(pixels), [0.5] * 3, [0.5] * 3).permute(3, 0, 1, 2)
    transform.get_params = recording
    outputs = []
    try:
        for k in range(RESIZED_CROP_CLIPS):
            torch.manual_seed(k)
            outputs.append(transform.random_resize_crop_video(frames, RESIZED_CROP_SIZE,
                                                              interpolation_mode="bilinear").numpy())
        clip_boxes = boxes[:]
        boxes.clear()
        frame = torch.zeros(1, 1, *RESIZED_CROP_FRAME)
        for k in range(RESIZED_CROP_BOXES):
            torch.manual_seed(k)
            transform.random_resize_crop_video(frame, 224, interpolation_mode="bilinear")
    finally:
        transform.get_params = original
    tensors["resized_crop_output"] = np.stack(outputs).astype(np.float32)
    return {"called": "torch.manual_seed(k); slowfast/datasets/transform.py random_resize_crop_video(frames, size, "
                      "interpolation_mode='bilinear') (its defaults: scale (0.08, 1.0), ratio (3/4, 4/3); "
                      "kinetics.py l.285), frames (C, T, H, W) = utils.tensor_normalize(uint8 (T, H, W, C), "
                      "[0.5] * 3, [0.5] * 3) permuted; boxes: transform.get_params wrapped",
            "defaults": defaults, "shape": list(RESIZED_CROP_SHAPE), "size": RESIZED_CROP_SIZE,
            "clip_boxes": clip_boxes,
            "input": "augment_tensors.npz resized_crop_input (T, H, W, 3) uint8 RGB",
            "output": "augment_tensors.npz resized_crop_output (clips, C, T, size, size) float32",
            "frame": list(RESIZED_CROP_FRAME), "frame_size": 224, "frame_boxes": boxes}


def main() -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-code", required=True, type=path("a folder"))
    args = parser.parse_args()
    code = args.official_code.resolve()
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(code))
    commit = git_commit(code)
    torch.set_num_threads(1)
    shim_posterize()
    with tempfile.TemporaryDirectory() as tmp:
        calls(code, commit, Path(tmp))
        tensors: dict[str, np.ndarray] = {}
        parts = {part.__name__: part(code, commit, Path(tmp), tensors)
                 for part in (rand_augment, color_jitter, resized_crop)}
    write(GOLDEN / "augment.json", {**official(commit, "see each part's 'called'"), **parts})
    save_arrays(GOLDEN / "augment_tensors.npz", compressed=True, **tensors)
    print(f"wrote augment_tensors.npz ({(GOLDEN / 'augment_tensors.npz').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
