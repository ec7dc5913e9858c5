"""Motionformer's training augmentation beyond clip start, scale jitter, crop and flip (test_mformer_pipeline.py has
those) against the authors' code (facebookresearch/Motionformer @bf43d50), from the golden files
``tools/pipeline_golden/mformer_augment.py`` made by calling it.

What their configurations call (``augment_calls.json``: one training item of their dataset class per configuration of
configs/K400, K600, SSV2, EK, its augmentation calls read out) is what the paper presets set: Kinetics colour jitter
0.4 (``frames_augmentation``), SSv2 and EK RandAugment ("rand-m20-mstd0.5-inc1" / "rand-m15-mstd0.5-inc1", their
seeded copy of timm's), the K-400 32x3 configuration's random resized crop, SSv2's inverse-uniform short side and no
flip; GRAYSCALE and GAUSSIAN are off everywhere. One pinned difference: the official SSv2 joint configuration turns
RandAugment off, our joint rows keep the one recipe of the paper.

Exact for the same draws (``augment.json``, ``augment_tensors.npz``):
- RandAugment: ``TrainTransform(timm_rand_augment=..., timm_rand_augment_seeded=True)`` (timm's ops, reseeded as
  their copy reseeds: one seed per clip, frame 0's ops from the stream before it) gives their uint8 frames, every
  clip, with Python's and NumPy's generators as theirs were.
- Colour jitter: ``pyslowfast_color_jitter=True`` (their blend on the normalised crop, NumPy's draws) gives their
  output to float tolerance (the per-frame mean differs in summation order).
- Random resized crop: pytorchvideo's ``random_resized_crop`` (the option ``random_resized_crop``) draws their boxes
  from torch's generator and resizes as theirs (bilinear, no antialias): the same boxes and, to float tolerance
  (ours resizes [0, 1] frames, theirs normalised ones), the same output.
"""

from __future__ import annotations

import functools
import inspect
import json
import random
from pathlib import Path

import numpy as np
import torch
from pytorchvideo.transforms.functional import _get_param_spatial_crop

from data.datamodule import VideoDataModule
from data.transforms import TrainTransform

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "pipelines" / "mformer"
COLUMNS = {"configs/K400": "K-400", "configs/K600": "K-600", "configs/SSV2": "SSv2", "configs/EK": "EK-100"}
NO_RAND_AUGMENT = {"configs/SSV2/joint_224_16x4.yaml"}  # theirs off, ours on: the paper's one recipe


@functools.cache
def golden(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


@functools.cache
def tensors() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "augment_tensors.npz") as npz:
        return {key: npz[key] for key in npz.files}


def paper_data(config: str):
    """Our paper preset's data for one official configuration: its dataset's column, with the Mformer-L (32x3)
    and Mformer-HR (336) rows' changes."""
    from experiments.mformer.tables import MFORMER_HR, MFORMER_L, MFORMER_L_K400, PAPER

    folder, name = config.rsplit("/", 1)
    data = PAPER.data[COLUMNS[folder]]
    row = (MFORMER_L_K400 if (folder, name) == ("configs/K400", "motionformer_224_32x3.yaml") else
           MFORMER_L if "32x3" in name else MFORMER_HR if name.startswith("motionformer_336") else {"paper": {}})
    changes = row["paper"].get("data", {})
    import dataclasses

    return dataclasses.replace(data, **{k: v for k, v in changes.items()})


def test_their_configs_call_what_our_paper_presets_set():
    for case in golden("augment_calls.json")["cases"]:
        config, calls, flags = case["config"], case["calls"], case["data"]
        data = paper_data(config)
        options = data.options
        where = (config, data.dataset)
        mean = tuple(options.get("mean", inspect.signature(VideoDataModule).parameters["mean"].default))
        assert list(mean) == flags["MEAN"] and [0.5] * 3 == flags["STD"], where
        assert not flags["GRAYSCALE"] and not flags["GAUSSIAN"], where  # nothing of ours to match
        assert calls["frames_augmentation"] == {"colorjitter": flags["COLORJITTER"], "use_grayscale": False,
                                                "use_gaussian": False}, where
        # colour jitter: their frames_augmentation -> color_jitter(0.4, 0.4, 0.4), ours pyslowfast_color_jitter
        if flags["COLORJITTER"]:
            assert calls["color_jitter"]["args"] == [options["color_jitter"]] * 3, where
            assert options["color_jitter_prob"] == 0.8 and options["pyslowfast_color_jitter"] is True, where
        else:
            assert "color_jitter" not in calls and "color_jitter" not in options, where
        # RandAugment: their config string, translate_const int(crop * 0.45), fill round(255 * mean), one seed for
        # the clip's frames
        augment = calls.get("rand_augment_transform")
        if augment is None:
            assert config in NO_RAND_AUGMENT or "timm_rand_augment" not in options, where
        else:
            assert options["timm_rand_augment"] == augment["config_str"], where
            assert options["timm_rand_augment_seeded"] is True and "rand_augment" not in options, where
            assert augment["calls"] == flags["NUM_FRAMES"] and len(augment["seeds"]) == 1, where
            ours = TrainTransform(data.crop_size, data.train_scale, data.hflip, mean,
                                  timm_rand_augment=options["timm_rand_augment"], timm_rand_augment_seeded=True)
            op = ours._timm_rand_augment.ops[0].op
            hparams = augment["hparams"]
            assert int(0.45 * data.crop_size) == hparams["translate_const"] == op.hparams["translate_const"], where
            assert list(op.kwargs["fillcolor"]) == hparams["img_mean"], where
            assert op.magnitude_std == hparams["magnitude_std"], where
            assert isinstance(op.kwargs["resample"], tuple) and len(op.kwargs["resample"]) == 2, where  # random
        # the spatial choices
        crop = calls.get("random_resize_crop_video")
        if crop is not None:
            assert crop == {"args": [data.crop_size], "kwargs": {"interpolation_mode": "bilinear"}}, where
            defaults = golden("augment.json")["resized_crop"]["defaults"]
            assert [list(r) for r in options["random_resized_crop"]] == [defaults["scale"], defaults["ratio"]], where
        else:
            assert "random_resized_crop" not in options, where
            jitter = calls["random_short_side_scale_jitter"]["kwargs"]
            assert (jitter["min_size"], jitter["max_size"]) == tuple(data.train_scale), where
            assert jitter["inverse_uniform_sampling"] == options.get("inverse_uniform_scale", False), where
            assert calls["random_crop"]["args"] == [data.crop_size], where
        assert data.hflip == ("horizontal_flip" in calls), where
        assert flags["RANDOM_FLIP"] or "horizontal_flip" not in calls or crop is not None, where


def our_clip(pixels: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> our (C, T, H, W)."""
    return torch.from_numpy(pixels).permute(3, 0, 1, 2).contiguous()


def test_rand_augment_is_their_output_for_the_same_draws():
    """Their ``rand_augment_transform(config, aa_params, seed)`` per frame, the seed randint(0, 100000000) from
    Python's generator, against ours from the paper presets' options (SSv2's m20, EK's m15), both generators
    seeded alike: every clip's uint8 frames equal, all 15 ops run."""
    from experiments.mformer.tables import PAPER

    part, frames = golden("augment.json")["rand_augment"], tensors()
    video = our_clip(frames["rand_augment_input"])
    ours_by_config = {}
    for column in ("SSv2", "EK-100"):
        options = PAPER.data[column].options
        ours_by_config[options["timm_rand_augment"]] = TrainTransform(
            part["crop_size"], (part["crop_size"],) * 2, False,
            timm_rand_augment=options["timm_rand_augment"],
            timm_rand_augment_seeded=options["timm_rand_augment_seeded"])
    assert set(ours_by_config) == {clip["config"] for clip in part["clips"]}
    differ = []
    for clip, theirs in zip(part["clips"], frames["rand_augment_output"], strict=True):
        random.seed(clip["k"])
        np.random.seed(clip["k"])
        out = ours_by_config[clip["config"]]._seeded_rand_augment_clip(video).permute(1, 2, 3, 0).numpy()
        if not np.array_equal(out, theirs):
            differ.append((clip["k"], clip["ops"], int(np.abs(out.astype(int) - theirs).max())))
    assert not differ, f"{len(differ)} of {len(part['clips'])} clips differ (k, their ops, max |diff|): {differ[:4]}"
    ran = {op for clip in part["clips"] for frame in clip["ops"] for op in frame if not op.startswith("(")}
    assert len(ran) == 15
    # frame 0 takes its ops from the stream before the seed, frames 1.. from the seed: they differ in some clips
    assert any(clip["ops"][0] != clip["ops"][1] for clip in part["clips"])


def test_seeded_rand_augment_is_what_a_training_item_runs(monkeypatch):
    """``TrainTransform.__call__`` sends the seeded option through ``_seeded_rand_augment_clip``, on the uint8 frames
    before the crop, and leaves Python's generator one draw on (the seed) as theirs is before its ops reseed it."""
    transform = TrainTransform(8, (8, 8), False, timm_rand_augment="rand-m20-mstd0.5-inc1",
                               timm_rand_augment_seeded=True)
    seen = []
    real = transform._seeded_rand_augment_clip
    monkeypatch.setattr(transform, "_seeded_rand_augment_clip", lambda video: seen.append(video.shape) or real(video))
    transform({"video": torch.zeros(3, 2, 12, 16, dtype=torch.uint8)})
    assert seen == [(3, 2, 12, 16)]
    random.seed(5)
    np.random.seed(5)
    real(torch.zeros(3, 2, 12, 16, dtype=torch.uint8))
    after = random.random()
    random.seed(5)
    random.randint(0, 100_000_000)
    assert after == random.random()


def test_color_jitter_is_their_output_for_the_same_draws():
    """Their ``frames_augmentation(colorjitter=True)`` on normalised frames after np.random.seed(k), against our
    ``TrainTransform`` with the K-400 paper preset's options (the crop the whole frame, no flip) after the same seed:
    equal to float tolerance, clips whose coin is in [0.2, 0.3) included (a probability of 0.7 would skip them)."""
    from experiments.mformer.tables import PAPER

    part, frames = golden("augment.json")["color_jitter"], tensors()
    options = PAPER.data["K-400"].options
    side = part["shape"][1]
    transform = TrainTransform(side, (side, side), False, part["mean"], part["std"],
                               color_jitter=options["color_jitter"], color_jitter_prob=options["color_jitter_prob"],
                               pyslowfast_color_jitter=options["pyslowfast_color_jitter"])
    video = our_clip(frames["color_jitter_input"])
    assert sum(0.2 <= coin < 0.3 for coin in part["coins"]) > 0
    differ = []
    for clip, theirs in zip(part["clips"], frames["color_jitter_output"], strict=True):
        np.random.seed(clip["k"])
        out = transform({"video": video})["video"].numpy()
        if not np.allclose(out, theirs, atol=1e-6, rtol=0):
            differ.append((clip["k"], clip["order"], float(np.abs(out - theirs).max())))
    assert not differ, f"{len(differ)} of {len(part['clips'])} clips differ (k, their order, max |diff|): {differ[:4]}"
    assert sum(clip["applied"] for clip in part["clips"]) < len(part["clips"])  # some clips left alone


def test_random_resized_crop_is_their_output_for_the_same_draws():
    """Their ``random_resize_crop_video(frames, size, interpolation_mode="bilinear")`` after torch.manual_seed(k),
    against our ``TrainTransform`` with the Mformer-L K-400 row's ``random_resized_crop`` (no flip) after the same
    seed: the same output to float tolerance; and the same boxes for 1,000 seeds on a 256 x 340 frame."""
    from experiments.mformer.tables import MFORMER_L_K400

    part, frames = golden("augment.json")["resized_crop"], tensors()
    (area, ratio) = MFORMER_L_K400["paper"]["data"]["options"]["random_resized_crop"]
    size = part["size"]
    transform = TrainTransform(size, (size, size), False, random_resized_crop=(area, ratio))
    video = our_clip(frames["resized_crop_input"])
    for k, theirs in enumerate(frames["resized_crop_output"]):
        torch.manual_seed(k)
        out = transform({"video": video})["video"].numpy()
        assert np.allclose(out, theirs, atol=1e-5, rtol=0), (k, part["clip_boxes"][k],
                                                             float(np.abs(out - theirs).max()))
    height, width = part["frame"]
    ours = []
    for k in range(len(part["frame_boxes"])):
        torch.manual_seed(k)
        ours.append(list(_get_param_spatial_crop(transform.random_resized_crop[0], transform.random_resized_crop[1],
                                                 height, width)))
    assert ours == part["frame_boxes"]


def test_the_datamodule_gives_the_options_to_the_training_transform(tmp_path):
    """The paper presets' new options reach the training transform a run builds, and a training item goes through
    both (a generated set: uint8 frames, RandAugment, crop, normalisation, colour jitter)."""
    from experiments.mformer.tables import OFFICIAL_COLOR_JITTER, OFFICIAL_SSV2_RAND_AUGMENT

    dm = VideoDataModule("synth_appearance", cache_dir=str(tmp_path), num_workers=0, batch_size=2, num_frames=4,
                         synthetic_params={"num_train": 2, "num_val": 2, "num_video_frames": 8}, crop_size=32,
                         train_scale=(36, 40), **OFFICIAL_COLOR_JITTER, **OFFICIAL_SSV2_RAND_AUGMENT)
    dm.prepare_data()
    dm.setup("fit")
    transform = dm._datasets["train"].transform
    assert transform.pyslowfast_color_jitter and transform.color_jitter_prob == 0.8 and not transform._photometric
    assert transform.timm_rand_augment_seeded and transform.timm_rand_augment == "rand-m20-mstd0.5-inc1"
    assert dm._datasets["train"][0]["video"].shape == (3, 4, 32, 32)
