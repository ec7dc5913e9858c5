"""The training side of CAST's golden files (github.com/KHU-VLL/CAST, checked out outside this repository), made
by running the authors' arguments, transforms, mixup and RandAugment; ``python -m tools.pipeline_golden.cast
--official-code DIR`` (``tools/pipeline_golden/cast.py``) writes these to ``tests/golden/pipelines/cast/`` (read by
tests/parity/test_cast_pipeline.py):

- ``train.json`` and ``train_draws.npz``: the scripts' training arguments as ``run_bidirection.py``'s parser reads
  them, RandAugment's configuration (``video_transforms.create_random_augment``), the flip flag of each dataset
  (``_aug_frame``), 10,000 boxes of ``video_transforms._get_param_spatial_crop`` and 10,000 mixup lambdas of
  ``util_tools.mixup.Mixup`` (K400's and SSv2 / EK100's probabilities), one resized crop's pixels, and the soft
  targets of ``mixup_target`` for verbs and nouns at one lambda;
- ``rand_augment.json`` and ``rand_augment.npz``: their RandAugment (``_aug_frame``: ``create_random_augment`` ->
  ``util_tools/rand_augment.py``, timm's copied) on one 3-frame uint8 clip, with Python's ``random`` and NumPy's
  global generator seeded alike just before, for the scripts' ``rand-m7-n4-mstd0.5-inc1`` and Table 4's m9: the
  output frames, the ops drawn, whether each applied and its level, and their hparams (``--only rand_augment``
  writes these two files alone).

Shim, at run time (none in the checkout), for RandAugment: ``util_tools.rand_augment.ImageOps.posterize`` as
Pillow's before 11 (a lookup table; 0 bits gave a black image, Pillow 11+ raises), which their posterize calls at
magnitude 10. The other shims (loading the authors' code) are ``cast_common.py``'s.
"""

from __future__ import annotations

import importlib
import random
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tools.pipeline_golden.cast_common import DATA_SET, frame_pixels, module_of, official_args

DRAWS = 10_000


# ---- training -------------------------------------------------------------------------------------------------


def training(mods: dict[str, Any], folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    vt = mods["util_tools.video_transforms"]
    record: dict[str, Any] = {"arguments": {}, "flip": {}}
    for key in DATA_SET:
        args = official_args(folder, key)
        record["arguments"][key] = {k: getattr(args, k) for k in (
            "num_frames", "sampling_rate", "input_size", "short_side_size", "test_num_segment", "test_num_crop",
            "aa", "train_interpolation", "color_jitter", "reprob", "remode", "recount", "num_sample", "mixup",
            "cutmix", "cutmix_minmax", "mixup_prob", "mixup_switch_prob", "mixup_mode", "smoothing", "nb_classes",
            "data_set")}
        # _aug_frame's flip: spatial_sampling's random_horizontal_flip, spied
        flags = []
        real_spatial = mods[module_of(key)].spatial_sampling

        def spy(frames: Any, flags: list = flags, **kwargs: Any) -> Any:
            flags.append(kwargs["random_horizontal_flip"])
            record["spatial_sampling"] = {k: v for k, v in kwargs.items() if k != "random_horizontal_flip"}
            return frames
        mods[module_of(key)].spatial_sampling = spy
        try:
            cls = {"K400": "VideoClsDataset", "SSV2": "SSVideoClsDataset", "EPIC": "EpicVideoClsDataset"}[key]
            holder = object.__new__(getattr(mods[module_of(key)], cls))
            holder.crop_size, holder.rand_erase = 224, False
            getattr(mods[module_of(key)], cls)._aug_frame(holder, np.zeros((2, 8, 8, 3), np.uint8), args)
        finally:
            mods[module_of(key)].spatial_sampling = real_spatial
        record["flip"][key] = flags[0]
    aug = vt.create_random_augment(input_size=(224, 224), auto_augment=record["arguments"]["K400"]["aa"],
                                   interpolation=record["arguments"]["K400"]["train_interpolation"])
    ra = aug.transforms[0]
    record["rand_augment"] = {
        "config": record["arguments"]["K400"]["aa"], "num_layers": ra.num_layers,
        "choice": "np.random.choice(ops, num_layers, replace=True)" if ra.choice_weights is None else "weighted",
        "ops": [f"{op.aug_fn.__name__}/{op.level_fn.__name__ if op.level_fn else None}" for op in ra.ops],
        "magnitude": ra.ops[0].magnitude, "magnitude_std": ra.ops[0].magnitude_std, "prob": ra.ops[0].prob,
        "translate_const": ra.ops[0].hparams["translate_const"], "resample": int(ra.ops[0].kwargs["resample"])}
    # random resized crop: the authors' box draws (python random), 10,000 of them
    random.seed(0)
    height, width = 240, 320
    scale, ratio = record["spatial_sampling"]["scale"], record["spatial_sampling"]["aspect_ratio"]  # _aug_frame's
    boxes = np.array([vt._get_param_spatial_crop(scale, ratio, height, width) for _ in range(DRAWS)], dtype=np.int16)
    record["resized_crop"] = {"frame": [height, width], "scale": list(scale), "ratio": list(ratio),
                              "function": "util_tools/video_transforms.py:_get_param_spatial_crop", "seed": 0}
    # one resized crop's pixels: normalised frames (as _aug_frame crops them) at a fixed box
    random.seed(5)
    gen = torch.Generator().manual_seed(0)
    clip = torch.rand((3, 2, 24, 32), generator=gen)
    normalised = (clip - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)) / \
        torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)
    state = random.getstate()
    box = vt._get_param_spatial_crop(scale, ratio, 24, 32)
    random.setstate(state)
    crop = vt.random_resized_crop(normalised, 16, 16, scale=scale, ratio=ratio)
    record["resized_crop_pixels"] = {"box": list(box), "size": 16, "input_seed": 0}
    # mixup: the authors' Mixup as run_bidirection builds it, 10,000 batch draws for each probability
    draws = {"resized_crop_boxes": boxes, "resized_crop_input": clip.numpy(), "resized_crop_output": crop.numpy()}
    record["mixup"] = {}
    for key in ("K400", "EPIC"):
        a = record["arguments"][key]
        mixup = mods["util_tools.mixup"].Mixup(
            mixup_alpha=a["mixup"], cutmix_alpha=a["cutmix"], cutmix_minmax=a["cutmix_minmax"], prob=a["mixup_prob"],
            switch_prob=a["mixup_switch_prob"], mode=a["mixup_mode"], label_smoothing=a["smoothing"],
            num_classes=a["nb_classes"], composition=key == "EPIC")
        np.random.seed(0)
        params = [mixup._params_per_batch() for _ in range(DRAWS)]
        draws[f"mixup_lam_{key}"] = np.array([p[0] for p in params], dtype=np.float32)
        record["mixup"][key] = {"prob": a["mixup_prob"], "any_cutmix": any(p[1] for p in params), "seed": 0}
    # EK100's soft targets at one lambda: noun and verb heads (300, 97 classes: mixup_target's constants)
    target = torch.tensor([[5, 3], [299, 96], [0, 0], [17, 42]])  # (noun, verb) as the EPIC loader's label_array
    lam = 0.7
    noun = mods["util_tools.mixup"].mixup_target(target[:, 0], 300, lam, 0.1, "cpu")
    verb = mods["util_tools.mixup"].mixup_target(target[:, 1], 97, lam, 0.1, "cpu")
    record["mixup_targets"] = {"noun_verb": target.tolist(), "lam": lam, "smoothing": 0.1}
    draws["mixup_target_noun"], draws["mixup_target_verb"] = noun.numpy(), verb.numpy()
    return record, draws


# ---- RandAugment's pixels ---------------------------------------------------------------------------------------

RA_FRAMES = (3, 16, 20)  # frames, height, width of the clip RandAugment runs on (uint8, a few KB per output)
RA_SEEDS = range(12)  # per configuration; plus the first seeds that apply an op none of these applied, and, at m9,
# the first that posterizes to 0 bits (magnitude 10; m7 + 0.5 N(0, 1) never reaches it in a few thousand draws)


def _old_pillow_posterize(image: Any, bits: int) -> Any:
    """Pillow's ``ImageOps.posterize`` as it was before it refused 0 bits (< 11): a lookup table keeping the top
    ``bits`` bits of every value (0 bits: black). Their ``posterize`` calls it at magnitude 10 (4 - int(4) bits)."""
    lut = [i & ~(2 ** (8 - bits) - 1) for i in range(256)]
    return image.point(lut * len(image.getbands()))


def _spied_call(original_call: Any, calls: list[tuple[str, bool, tuple]]) -> Any:
    """``AugmentOp.__call__`` spied: (op, applied, level drawn) of each call appended to ``calls``."""
    def spied_call(op: Any, img_list: Any) -> Any:
        levels: list[tuple] = []
        level_fn = op.level_fn
        if level_fn is not None:  # the level it draws, recorded on its way
            op.level_fn = lambda *args: levels.append(level_fn(*args)) or levels[-1]
        try:
            out = original_call(op, img_list)
        finally:
            op.level_fn = level_fn
        calls.append((f"{op.aug_fn.__name__}/{level_fn.__name__ if level_fn else None}", out is not img_list,
                      tuple(float(v) for v in (levels[0] if levels else ()))))
        return out
    return spied_call


def _their_output(mods: dict[str, Any], folder: Path, clip: np.ndarray, key: str, config: str,
                  seed: int) -> np.ndarray:
    """``_aug_frame`` of ``key``'s dataset on ``clip`` with RandAugment ``config``, both generators seeded with
    ``seed`` just before: ``spatial_sampling``'s input, un-normalised back to uint8."""
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    args = official_args(folder, key, aa=config)
    taken = []
    module = mods[module_of(key)]
    real_spatial = module.spatial_sampling
    module.spatial_sampling = lambda frames, **kwargs: taken.append(frames) or frames
    try:
        cls = {"K400": "VideoClsDataset", "SSV2": "SSVideoClsDataset", "EPIC": "EpicVideoClsDataset"}[key]
        holder = object.__new__(getattr(module, cls))
        holder.crop_size, holder.rand_erase = 224, False
        random.seed(seed)
        np.random.seed(seed)
        getattr(module, cls)._aug_frame(holder, clip.copy(), args)
    finally:
        module.spatial_sampling = real_spatial
    normalised = taken[0].permute(1, 2, 3, 0).double().numpy()  # C T H W -> T H W C
    values = (normalised * std + mean) * 255
    assert np.abs(values - values.round()).max() < 1e-3
    return values.round().astype(np.uint8)


def _plan(mods: dict[str, Any], folder: Path, clip: np.ndarray, calls: list[tuple[str, bool, tuple]],
          script_config: str) -> list[tuple[str, str, int]]:
    """The cases (dataset, config, seed): K400 at the scripts' config and at m9, ``RA_SEEDS`` and then the first
    seeds that apply an op not applied yet (at m9, posterizing to 0 bits too); SSv2's and EK100's at one seed."""
    plan = []
    for config in (script_config, "rand-m9-n4-mstd0.5-inc1"):
        every_op = {f"{o.aug_fn.__name__}/{o.level_fn.__name__ if o.level_fn else None}" for o in
                    mods["util_tools.video_transforms"].create_random_augment((224, 224), config).transforms[0].ops}
        missing = every_op | {"posterize to 0 bits"}  # each op applied once at least, and 0 bits (m9 only)
        for seed in [*RA_SEEDS, *range(100, 5000)]:
            calls.clear()
            _their_output(mods, folder, clip, "K400", config, seed)
            covered = {n for n, applied, _ in calls if applied} | {
                "posterize to 0 bits" for n, applied, level in calls
                if n.startswith("posterize") and applied and level == (0.0,)}
            if seed in RA_SEEDS or covered & missing:
                plan.append(("K400", config, seed))
            missing -= covered
            if not missing or (missing == {"posterize to 0 bits"} and "m7" in config and seed >= 100):
                break
    plan += [("SSV2", official_args(folder, "SSV2").aa, 3), ("EPIC", official_args(folder, "EPIC").aa, 4)]
    return plan


def rand_augment_cases(mods: dict[str, Any], folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Their RandAugment on one small clip: ``_aug_frame`` of each dataset (``create_random_augment(input_size=
    (crop, crop), auto_augment=args.aa, interpolation=args.train_interpolation)`` on the list of PIL frames, then
    ToTensor and their normalisation), ``spatial_sampling`` spied to take its input, un-normalised back to uint8
    (exact: every value within 1e-3 of an integer). Python's ``random`` and NumPy's global generator are both seeded
    with the case's seed just before; the ops drawn and whether each applied are recorded (``AugmentOp.__call__``
    spied)."""
    ra = importlib.import_module("util_tools.rand_augment")
    ra.ImageOps = types.SimpleNamespace(**{**vars(ra.ImageOps), "posterize": _old_pillow_posterize})
    frames, height, width = RA_FRAMES
    clip = np.stack([frame_pixels(5 * t + 2, height, width) for t in range(frames)])
    calls: list[tuple[str, bool, tuple]] = []
    original_call = ra.AugmentOp.__call__
    ra.AugmentOp.__call__ = _spied_call(original_call, calls)
    cases, arrays = [], {"rand_augment_input": clip}
    try:
        script_config = official_args(folder, "K400").aa
        plan = _plan(mods, folder, clip, calls, script_config)
        for i, (key, config, seed) in enumerate(plan):
            calls.clear()
            arrays[f"rand_augment_{i}"] = _their_output(mods, folder, clip, key, config, seed)
            cases.append({"dataset": key, "config": config, "seed": seed,
                          "ops": [{"op": n, "applied": a, "level": list(v)} for n, a, v in calls]})
    finally:
        ra.AugmentOp.__call__ = original_call
    aug = mods["util_tools.video_transforms"].create_random_augment(
        input_size=(224, 224), auto_augment=script_config,
        interpolation=official_args(folder, "K400").train_interpolation)
    op = aug.transforms[0].ops[0]
    record = {"frames": list(RA_FRAMES), "cases": cases,
              "hparams": {"translate_const": op.hparams["translate_const"], "fillcolor": list(op.kwargs["fillcolor"]),
                          "resample": int(op.kwargs["resample"]), "magnitude_std": op.magnitude_std,
                          "img_mean": op.hparams.get("img_mean")},
              "ops": [f"{o.aug_fn.__name__}/{o.level_fn.__name__ if o.level_fn else None}"
                      for o in aug.transforms[0].ops],
              "seeding": "random.seed(seed); np.random.seed(seed) just before _aug_frame",
              "shim": "util_tools.rand_augment.ImageOps.posterize: Pillow's before 11 (0 bits: black; Pillow 11+ "
                      "raises), as a lookup table (_old_pillow_posterize)"}
    return record, arrays
