"""Tasks: what a run does with its model and data. The runner asks this registry and never a dataset's name.

A ``Task`` says which LightningDataModule serves a run, which LightningModule trains it (or, for a task that only
evaluates a trained model, which function evaluates it), which model-constructor arguments the data fixes (a video
model's frames and crop), and what class counts it accepts. ``build_model`` is the one way to build a run's model
from its configuration, on any device (``meta`` for ``--dry-run`` and the static columns), with its pretrained
sources loaded. A paper that brings a new task registers it from its own spec module with ``register_task``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .spec import DataConfig, RunConfig

if TYPE_CHECKING:
    import lightning as L
    import torch
    from torch import nn


@dataclass(frozen=True)
class EvaluatedOn:
    """What an evaluation-only run evaluated on, for its record: ``data`` (the data module's description, or the
    evaluation's own details), and for a test of a data module's split, as a trained run records them, the data
    report of its splits (missing and corrupt files, bad lines) and the videos its test counted."""

    data: dict[str, Any]
    data_report: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    test_videos: int | None = None


# (run config, resolved weights, the device it evaluates on) -> (metrics, what it evaluated on)
Evaluation = Callable[[RunConfig, "str | Mapping[str, str] | None", "torch.device"],
                      "tuple[dict[str, float], EvaluatedOn]"]


@dataclass(frozen=True)
class Task:
    """How one kind of run is served.

    Args:
        name: the name specs give in ``DataConfig.task``.
        datamodule: (run config, run directory) -> LightningDataModule; None for an evaluation-only task.
        system: (run config, model, data module) -> LightningModule that trains and tests the model.
        model_inputs: the model-constructor arguments the data fixes, from the data config (a video model's
            ``num_frames`` and ``img_size``); a row that sets them differently is an error.
        check_classes: raises when a data module's class count does not fit the task (an int for one label per
            sample, ``{"verb": V, "noun": N}`` for verb/noun labels).
        evaluate: for a task that trains nothing: (run config, resolved weights, device) -> (metrics,
            ``EvaluatedOn``); the runner picks the device (``evaluation_device``) and records it.
        num_classes: class count of the model built for an evaluation-only task (0 = no head).
        data_options: the names ``DataConfig.options`` may hold for this task (what its data module or evaluation
            reads besides the config's own fields); any other name is refused before a run starts
            (``check_data_options``).
    """

    name: str
    datamodule: Callable[[RunConfig, Path], L.LightningDataModule] | None = None
    system: Callable[[RunConfig, nn.Module, Any], L.LightningModule] | None = None
    model_inputs: Callable[[DataConfig], dict[str, Any]] = lambda data: {}
    check_classes: Callable[[Any], None] = lambda num_classes: None
    evaluate: Evaluation | None = None
    num_classes: int = 0
    data_options: Callable[[], AbstractSet[str]] = frozenset

    @property
    def trains(self) -> bool:
        return self.evaluate is None


_TASKS: dict[str, Task] = {}


def check_data_options(cfg: RunConfig) -> None:
    """Refuse, by name and before anything is built or written, a data option the run's task does not read (a
    misspelt option would otherwise stop the run with a TypeError, or be ignored), and generated-set parameters
    outside their declared bounds."""
    accepted = get_task(cfg.task).data_options()
    unknown = sorted(set(cfg.data.options) - set(accepted))
    if unknown:
        raise ValueError(f"{cfg.table}/{cfg.row}/{cfg.column}: unknown data option(s) {unknown} for the task "
                         f"{cfg.task}; valid: {sorted(accepted)}")
    from data import check_generated_params

    try:  # a generated set's size, within its declared bounds (a terabyte set would start to generate)
        check_generated_params(cfg.data.dataset, cfg.data.synthetic_params)
    except ValueError as err:
        raise ValueError(f"{cfg.table}/{cfg.row}/{cfg.column}: data.synthetic_params: "
                         f"{str(err).removeprefix('synthetic_params: ')}") from None


def keyword_options(function: Callable[..., Any], *set_elsewhere: str) -> frozenset[str]:
    """The keyword parameters of ``function`` (a class: its constructor) but those the caller sets itself."""
    import inspect

    parameters = inspect.signature(function).parameters.values()
    keywords = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return frozenset(keywords - set(set_elsewhere))


def register_task(task: Task) -> Task:
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is already registered")
    if (task.evaluate is None) == (task.datamodule is None or task.system is None):
        raise ValueError(f"task {task.name!r}: give either a datamodule and a system, or an evaluate function")
    _TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    try:
        return _TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; registered tasks: {', '.join(sorted(_TASKS))}") from None


def list_tasks() -> list[str]:
    return sorted(_TASKS)


# ---- building a run's model ------------------------------------------------------------------------------------


def model_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """The model's constructor arguments: the row's options plus what the data fixes (checked to agree)."""
    kwargs = dict(cfg.model.overrides)
    for name, value in get_task(cfg.task).model_inputs(cfg.data).items():
        if kwargs.setdefault(name, value) != value:
            raise ValueError(f"{cfg.table}/{cfg.row}: model {name}={kwargs[name]} but the data gives {value}; set it "
                             f"in the data config only")
    return kwargs


def class_kwargs(cfg: RunConfig, num_classes: int | Mapping[str, int]) -> dict[str, Any]:
    """The model's ``num_classes`` argument for the data's classes: an int, or for verb and noun labels
    ``{"verb": V, "noun": N}`` where the model lays out verb and noun logits itself (it has a ``num_verbs`` option:
    CAST's split heads), its configured ``num_verbs`` checked against V; any other model produces V + N logits from
    one head, which the classifier splits at the data's V (``lightning_modules.video_classifier``)."""
    from models.registry import list_models, model_options

    if not isinstance(num_classes, Mapping):
        return {"num_classes": num_classes}
    if cfg.model.name not in list_models() or "num_verbs" not in model_options(cfg.model.name):
        return {"num_classes": sum(num_classes.values())}  # an unknown name fails in create_model, named
    configured = cfg.model.overrides.get("num_verbs")
    if configured not in (None, num_classes["verb"]):
        data = cfg.data.dataset + (f" from {cfg.data.root}" if cfg.data.root else "")
        raise ValueError(f"{cfg.table}/{cfg.row}: model num_verbs={configured} but the data ({data}) has "
                         f"{num_classes['verb']} verbs and {num_classes['noun']} nouns, so verb and noun logits would "
                         f"be read from the wrong head; correct the data's verb classes, or configure "
                         f"num_verbs={num_classes['verb']}")
    return {"num_classes": dict(num_classes)}


def build_model(cfg: RunConfig, num_classes: int | Mapping[str, int], device: str | None = None,
                weights: str | Mapping[str, str] | None = None) -> nn.Module:
    """The run's registered model for ``num_classes`` (an int, or the data's ``{"verb": V, "noun": N}``, as
    ``class_kwargs`` hands them to the model), built on ``device`` (default: the current one).

    An unknown option fails here with its name and the valid ones (``models.create_model`` checks them), so
    building on ``meta`` checks a spec at paper scale without allocating it; what is built there is a plan, so its
    size is checked there too, against the bounds of ``experiments.harness.sizes`` (the model's arguments before it
    is built, its parameters after). ``weights``: resolved pretrained sources (see ``ModelConfig.pretrained``): one
    source for the whole model, or ``{submodule: source}``.
    """
    import torch

    from models import create_model, load_pretrained

    from .sizes import check_model_arguments, check_run_size

    kwargs, planned = model_kwargs(cfg), str(device) == "meta"
    if planned:
        check_run_size(cfg)
        check_model_arguments(cfg, kwargs)
    with torch.device(device) if device else nullcontext():
        try:
            model = create_model(cfg.model.name, **class_kwargs(cfg, num_classes), **kwargs)
        except (TypeError, ArithmeticError, RuntimeError, AssertionError, IndexError) as err:
            if not planned:
                raise
            # a model that cannot be built from its arguments (a depth of "abc", 0 heads, a negative width): said
            # where the run is planned, naming it, rather than as the model's own traceback
            raise ValueError(f"{cfg.table}/{cfg.row}/{cfg.column}: model {cfg.model.name} cannot be built from "
                             f"model.overrides {_brief(cfg.model.overrides)} ({_brief(err)})") from None
    if planned:
        check_run_size(cfg, model)
    if weights:
        sources = {"": weights} if isinstance(weights, str) else dict(weights)
        for part, source in sources.items():
            load_pretrained(model.get_submodule(part) if part else model, resolve_source(source))
    return model


def _brief(value: Any) -> str:
    """``value`` on one short line: an error's first line, a mapping's items."""
    if isinstance(value, Mapping):
        text = "{" + ", ".join(f"{key}={item!r}" for key, item in value.items()) + "}"
    else:
        text = " ".join((str(value).strip().splitlines() or [""])[0].split()) or type(value).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def final_metrics(logged: dict[str, float]) -> dict[str, float]:
    """The record's final metrics from what the test logged: ``test/top1`` 0.65 -> ``top1`` 65.0 (accuracies in
    percent), other ``test/*`` values as logged."""
    return {k.split("/", 1)[1]: 100.0 * v if "top" in k else v for k, v in logged.items() if k.startswith("test/")}


def logged_metrics(final: dict[str, float]) -> dict[str, float]:
    """``final_metrics`` undone: a record's metrics as the test logs them (``top1`` 65.0 -> ``test/top1`` 0.65)."""
    return {f"test/{k}": v / 100.0 if "top" in k else v for k, v in final.items()}


# Lightning's precision names, its legacy aliases too, by the name a trainer reports.
_EVALUATION_PRECISIONS = {"32-true": "32-true", "32": "32-true", "bf16-mixed": "bf16-mixed", "bf16": "bf16-mixed",
                          "16-mixed": "16-mixed", "16": "16-mixed"}


def evaluation_precision(precision: str, device: torch.device) -> tuple[str, torch.dtype | None]:
    """The precision an evaluation-only run without a trainer of its own runs at (its name, as a trainer on
    ``device`` would report it, and the autocast dtype; None: full fp32), from ``trainer.precision``: as Lightning
    does, "16-mixed" on a CPU runs as "bf16-mixed"."""
    import torch

    if str(precision) not in _EVALUATION_PRECISIONS:
        raise ValueError(f"an evaluation-only run takes trainer.precision {', '.join(_EVALUATION_PRECISIONS)}; "
                         f"got {precision!r}")
    name = _EVALUATION_PRECISIONS[str(precision)]
    if name == "16-mixed" and device.type == "cpu":
        name = "bf16-mixed"
    return name, {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}[name]


def evaluation_device(accelerator: str) -> torch.device:
    """The one device an evaluation-only run uses, for ``trainer.accelerator`` as Lightning reads it: "cpu"; "gpu"
    or "cuda" (an error without one, as Lightning's); "auto": the first GPU when there is one, else the CPU."""
    import torch

    if accelerator == "cpu":
        return torch.device("cpu")
    if accelerator in ("gpu", "cuda", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if accelerator == "auto":
            return torch.device("cpu")
        raise ValueError(f"trainer.accelerator={accelerator!r} but torch sees no CUDA device; use --accelerator cpu")
    raise ValueError(f"an evaluation-only run takes trainer.accelerator cpu, gpu, cuda or auto; got {accelerator!r}")


def tested_only(trained: Task) -> Evaluation:
    """The evaluation of a task that tests a model trained by ``trained``'s kind of run and trains nothing
    (other test views, other clip lengths): ``trained``'s data module and system, with the run's data config."""

    def evaluate(cfg: RunConfig, weights: str | Mapping[str, str] | None,
                 device: torch.device) -> tuple[dict[str, float], EvaluatedOn]:
        import tempfile

        import lightning as L

        with tempfile.TemporaryDirectory() as scratch:
            dm = trained.datamodule(cfg, Path(scratch))
            dm.prepare_data()
            dm.setup("test")
            module = trained.system(cfg, build_model(cfg, dm.num_classes, weights=weights), dm)
            trainer = L.Trainer(accelerator=device.type, devices=[device.index] if device.type == "cuda" else 1,
                                precision=cfg.trainer.precision,
                                logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False)
            metrics = final_metrics(trainer.test(module, datamodule=dm, verbose=False)[0])
            # read before the scratch directory, which holds the test's record of unreadable files, goes
            return metrics, EvaluatedOn(dm.describe(), dm.data_report(), getattr(module, "test_videos", None))

    return evaluate


# Pretrained-source prefixes that a spec module resolves to a local file itself (``prefix:NAME``), e.g. CAST's
# tiny experts, pretrained on first use and cached (``experiments.cast.experts``). Resolved only when weights load.
_SOURCE_RESOLVERS: dict[str, Callable[[str], str]] = {}
# Prefixes whose resolution only reads files that are already there: resolved before anything trains as well.
_CHECKED_EARLY: set[str] = set()


def register_source(prefix: str, resolve: Callable[[str], str], check_early: bool = False) -> None:
    """Resolve pretrained sources ``<prefix>:<rest>`` with ``resolve(rest) -> local file`` when weights load, and
    with ``check_early`` also when a run is checked before anything trains (``check_source_early``): only for a
    ``resolve`` that trains nothing."""
    if prefix in _SOURCE_RESOLVERS:
        raise ValueError(f"pretrained-source prefix {prefix!r} is already registered")
    _SOURCE_RESOLVERS[prefix] = resolve
    if check_early:
        _CHECKED_EARLY.add(prefix)


def check_source_early(source: str) -> bool:
    """Resolve ``source`` now if its prefix is registered with ``check_early`` (its error names the file); True if
    it was, False for any other source."""
    prefix, _, rest = str(source).partition(":")
    if prefix in _CHECKED_EARLY and rest:
        _SOURCE_RESOLVERS[prefix](rest)
        return True
    return False


def source_kinds() -> tuple[str, ...]:
    """The ``kind:`` prefixes this floor registers (``register_source``), ``run:`` among them."""
    return ("run", *_SOURCE_RESOLVERS)


def resolve_source(source: str) -> str:
    """A source with a registered prefix resolved to its file; any other source as given."""
    prefix, _, rest = str(source).partition(":")
    return _SOURCE_RESOLVERS[prefix](rest) if rest and prefix in _SOURCE_RESOLVERS else source


# ---- the tasks of the implemented papers ----------------------------------------------------------------------


def _video_inputs(data: DataConfig) -> dict[str, Any]:
    return {"num_frames": data.num_frames, "img_size": data.crop_size}


# DataConfig fields that the LightningModule applies (``test_protocol``), not the data module
SYSTEM_FIELDS = ("test_view_average",)


def video_datamodule(data: DataConfig, failures_dir: Path) -> L.LightningDataModule:
    """The ``VideoDataModule`` a data configuration describes (its fields and options; ``failures_dir`` records its
    unreadable videos)."""
    from data.datamodule import VideoDataModule

    kwargs = {k: v for k, v in dataclasses.asdict(data).items() if k not in ("options", "task") + SYSTEM_FIELDS}
    return VideoDataModule(**kwargs, **dict(data.options), failures_dir=failures_dir)


def datamodule_for_run(cfg: RunConfig, run_dir: Path) -> L.LightningDataModule:
    return video_datamodule(cfg.data, run_dir / "data_failures")


def video_data_options() -> frozenset[str]:
    """``VideoDataModule``'s parameters that a ``DataConfig`` field does not set, and the augmentations it takes by
    name (``AugmentOptions``): its options."""
    from data.datamodule import VideoDataModule
    from data.transforms import AugmentOptions

    return (keyword_options(VideoDataModule, *(f.name for f in dataclasses.fields(DataConfig)), "failures_dir")
            | {f.name for f in dataclasses.fields(AugmentOptions)})


def _video_classifier(cfg: RunConfig, model: nn.Module, dm: Any) -> L.LightningModule:
    from lightning_modules import VideoClassifier

    return VideoClassifier(model, dm.num_classes, **dataclasses.asdict(cfg.optim), **test_protocol(cfg))


def test_protocol(cfg: RunConfig) -> dict[str, Any]:
    """The test-time choices of ``cfg.data`` that the LightningModule, not the data module, carries out."""
    return {"view_average": cfg.data.test_view_average}


def _single_label(num_classes: Any) -> None:
    if not isinstance(num_classes, int):
        raise ValueError(f"video_classification needs one label per clip, but the data has classes {num_classes}; "
                         f"use the task verb_noun_classification")


def _verb_noun(num_classes: Any) -> None:
    if not (isinstance(num_classes, Mapping) and list(num_classes) == ["verb", "noun"]):
        raise ValueError(f"verb_noun_classification needs verb and noun labels, but the data has classes "
                         f"{num_classes!r}")


def _sequence_datamodule(cfg: RunConfig, run_dir: Path) -> L.LightningDataModule:
    from data.lra import LRA_TASKS
    from data.lra_datamodule import LRADataModule

    datasets = {f"lra_{task}": task for task in LRA_TASKS}  # Long Range Arena's tasks, one dataset each
    if cfg.data.dataset not in datasets:
        raise ValueError(f"{cfg.table}/{cfg.row}: sequence_classification reads the Long Range Arena datasets "
                         f"{', '.join(datasets)}; got {cfg.data.dataset!r}")
    return LRADataModule(task=datasets[cfg.data.dataset], root=cfg.data.root,
                         synthetic_params=cfg.data.synthetic_params, batch_size=cfg.data.batch_size,
                         num_workers=cfg.data.num_workers, **dict(cfg.data.options))


def _sequence_data_options() -> frozenset[str]:
    from data.lra_datamodule import LRADataModule

    return keyword_options(LRADataModule, "task", "root", "synthetic_params", "batch_size", "num_workers")


def _sequence_classifier(cfg: RunConfig, model: nn.Module, dm: Any) -> L.LightningModule:
    from lightning_modules.sequence_classifier import SequenceClassifier

    return SequenceClassifier(model, dm.num_classes, **dataclasses.asdict(cfg.optim))


def _label_propagation(cfg: RunConfig, weights: str | Mapping[str, str] | None,
                       device: torch.device) -> tuple[dict[str, float], EvaluatedOn]:
    """Motionformer Table 9: DAVIS 2017 label propagation with the frozen model's patch features (no training)."""
    from lightning_modules.label_propagation import VideoViTFeatures, evaluate_davis

    options = dict(cfg.data.options)
    model = build_model(cfg, num_classes=0, weights=weights)
    _, autocast_dtype = evaluation_precision(cfg.trainer.precision, device)
    features = VideoViTFeatures(model, feature=options.pop("feature", "tokens"), mode=options.pop("mode", "clip"),
                                device=device, autocast_dtype=autocast_dtype)
    result = evaluate_davis(features, cfg.data.root, "val", propagation_device=device, **options)
    metrics = {"J&F": 100 * result["J&F"], "J": 100 * result["J"], "F": 100 * result["F"]}
    return metrics, EvaluatedOn({k: result[k] for k in ("sequences", "objects", "skipped", "unreadable_files",
                                                        "params")})


def _label_propagation_options() -> frozenset[str]:
    from lightning_modules.label_propagation import evaluate_davis

    return frozenset({"feature", "mode"}) | keyword_options(evaluate_davis, "feature_fn", "root", "split",
                                                            "propagation_device")


VIDEO_CLASSIFICATION = register_task(Task(
    "video_classification", datamodule_for_run, _video_classifier, _video_inputs, _single_label,
    data_options=video_data_options))
VERB_NOUN_CLASSIFICATION = register_task(Task(
    "verb_noun_classification", datamodule_for_run, _video_classifier, _video_inputs, _verb_noun,
    data_options=video_data_options))
SEQUENCE_CLASSIFICATION = register_task(Task(
    "sequence_classification", _sequence_datamodule, _sequence_classifier, data_options=_sequence_data_options))
LABEL_PROPAGATION = register_task(Task(
    "label_propagation", model_inputs=_video_inputs, evaluate=_label_propagation, num_classes=0,
    data_options=_label_propagation_options))
