"""data package: decoding (video_io), clip sampling, transforms, annotation formats, pose files (pose), datasets,
synthetic sets and the LightningDataModule; ``python -m data check|synth`` is the command line (``data.__main__``).
``VideoDataModule`` lives in ``data.datamodule`` (not re-exported here, so that importing ``data`` does not import
lightning)."""

import importlib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import torchvision_compat  # noqa: F401  (repairs torchvision as it is imported; loads no torch itself)

# The names this package re-exports, each from its module, imported on first use: importing ``data`` loads no torch
# (the commands' help and listings answer at once), and a model-only process (a GPU benchmark) needs neither PyAV nor
# pytorchvideo, which decoding and the transforms import.
_EXPORTS = {
    "read_annotations": "annotations",
    **dict.fromkeys(["ClipInfo", "dense_clip", "segment_range", "shift_clip", "temporal_views", "uniform_segments"],
                    "clip_sampling"),
    **dict.fromkeys(["VideoClipDataset", "check_files", "collate_skip_none"], "datasets"),
    **dict.fromkeys(["PENNACTION_ACTIONS", "PENNACTION_JOINTS", "NTUBody", "PennActionLabels", "PoseFormatError",
                     "ntu_body", "read_gym_pose", "read_ntu_skeleton", "read_pennaction_labels", "write_gym_pose",
                     "write_ntu_skeleton", "write_pennaction_labels"], "pose"),
    **dict.fromkeys(["BadAnnotation", "Sample"], "samples"),
    **dict.fromkeys(["SYNTHETIC_SETS", "SyntheticSpec", "ensure_synthetic", "generate_synthetic"], "synthetic"),
    **dict.fromkeys(["TestTransform", "TrainTransform"], "transforms"),
    **dict.fromkeys(["FrameFolderVideo", "Video", "VideoDecodeError", "open_video", "write_frame_folder",
                     "write_video"], "video_io"),
}


def __getattr__(name: str) -> Any:
    """A re-exported name (``_EXPORTS``), or a submodule not imported yet (``data.cache``), imported now."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"data.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"data.{name}") is not None:
        return importlib.import_module(f"data.{name}")
    raise AttributeError(f"module 'data' has no attribute {name!r}")


def generated_locally(dataset: str, root: object) -> bool:
    """Whether the repository makes ``dataset`` itself: every synthetic video set, and LRA ListOps when no ``root``
    holds the public files (``data.lra`` follows the official generator)."""
    from data.synthetic import SYNTHETIC_SETS

    return dataset in SYNTHETIC_SETS or (dataset == "lra_listops" and root is None)


def generated_in_place_of_release(dataset: str, root: object, synthetic_params: Mapping[str, Any]) -> bool:
    """Whether a run generates, at the benchmark's own size, a dataset whose released files it would otherwise read
    (LRA ListOps with no ``lra_listops/`` under ``--data-root``): its numbers are not the release's. A synthetic set
    says so by its name, and a generated set of a size the config asks for (``synthetic_params``, tiny ListOps) by
    its scale."""
    from data.synthetic import SYNTHETIC_SETS

    return dataset not in SYNTHETIC_SETS and generated_locally(dataset, root) and not synthetic_params


def check_generated_params(dataset: str, synthetic_params: Mapping[str, Any]) -> None:
    """A ValueError naming the parameter where ``synthetic_params`` name no parameter of ``dataset``'s generator or
    leave its declared bounds (``data.synthetic.SyntheticSize``, ``data.lra.LISTOPS_BOUNDS``): checked with the
    run's options, before a set of a terabyte is started."""
    from data.lra import ListOpsSpec
    from data.synthetic import SYNTHETIC_SETS
    from data.synthetic import synthetic_params as resolve

    try:
        if dataset in SYNTHETIC_SETS:
            resolve(**synthetic_params)
        elif dataset == "lra_listops":
            ListOpsSpec(**synthetic_params)
        elif synthetic_params:
            raise ValueError(f"{dataset} is read from its files, not generated: it takes no synthetic_params")
    except TypeError as err:  # an unknown name
        raise ValueError(str(err)) from None


def dataset_root(dataset: str, data_root: str | Path, synthetic_params: Mapping[str, Any]) -> Path | None:
    """Where ``dataset`` is read from under ``data_root`` (``--data-root``: one folder per dataset, named as the
    dataset), or None where the repository generates it: every synthetic set, and LRA ListOps when ``data_root`` has
    no ``lra_listops/`` or the config asks for a generated set of its own size (``synthetic_params``, tiny scale's).
    A ``lra_listops/`` folder is taken for the LRA release and read: a file missing there is an error, never
    replaced by a generated set."""
    from data.synthetic import SYNTHETIC_SETS

    folder = Path(data_root) / dataset
    if dataset in SYNTHETIC_SETS or (dataset == "lra_listops" and (synthetic_params or not folder.exists())):
        return None
    return folder


__all__ = [
    "BadAnnotation", "ClipInfo", "FrameFolderVideo", "NTUBody", "PENNACTION_ACTIONS", "PENNACTION_JOINTS",
    "PennActionLabels", "PoseFormatError", "SYNTHETIC_SETS", "Sample", "SyntheticSpec", "TestTransform",
    "TrainTransform", "Video", "VideoClipDataset", "VideoDecodeError", "check_files", "collate_skip_none",
    "dataset_root", "dense_clip", "ensure_synthetic", "generate_synthetic", "generated_in_place_of_release",
    "generated_locally", "ntu_body", "open_video", "read_annotations", "read_gym_pose", "read_ntu_skeleton",
    "read_pennaction_labels", "segment_range", "shift_clip", "temporal_views", "uniform_segments",
    "write_frame_folder", "write_gym_pose", "write_ntu_skeleton", "write_pennaction_labels", "write_video",
]
