"""Optimizer and learning-rate golden files of the four papers with code, made with the authors' own code.

    python -m tools.pipeline_golden.optim mformer --official-code OFFICIAL/Motionformer
    python -m tools.pipeline_golden.optim xvit --official-code OFFICIAL/video-transformers
    python -m tools.pipeline_golden.optim tokshift --official-code OFFICIAL/TokShift-Transformer
    python -m tools.pipeline_golden.optim cast --official-code OFFICIAL/CAST

Each writes ``tests/golden/pipelines/<codebase>/optim_groups.json`` and ``optim_lr.json`` (CAST also its training
loop's steps of an epoch, ``tools/pipeline_golden/cast_epoch.py``); none of the authors' code is in this repository,
it is imported from ``--official-code``.

``optim_groups.json``: per authors' model (one per released-golden case, ``tools/released_golden``: the same config at
the same small width, so the parameter names are those of the checkpoint in ``tests/golden/released/<case>/``), every
parameter (the authors' name) with its shape, ``trainable`` (in the authors' optimizer), its ``weight_decay`` and
``lr_scale`` (the factor the training loop multiplies the scheduled lr by), and the optimizer's class and defaults:
- Motionformer, X-ViT: ``slowfast/models/optimizer.py`` ``construct_optimizer(model, cfg)``; ``lr_scale`` is the group
  lr after their train loop's ``optim.set_lr(optimizer, 1.0)`` (``tools/train_net.py``).
- TokShift (MSCA's base): ``main_ddp_shift_v3.py``'s ``main_worker`` builds ``torch.optim.SGD(model.parameters(),
  cfg['LR'], momentum=cfg['MOMENTUM'], weight_decay=cfg['WEIGHT_DECAY'])`` inline (it cannot be called alone):
  that call is made here with the values of their yml, read from their file.
- CAST: ``run_bidirection.py`` (K400, SSv2) / ``run_bidirection_compo.py`` (EK100): ``unfreeze_block`` with the
  script's list, ``LayerDecayValueAssigner`` as the script makes it, ``model.no_weight_decay()`` and
  ``util_tools/optim_factory.py`` ``get_parameter_groups`` (the ``--enable_deepspeed`` branch the scripts take; the
  other branch's ``create_optimizer`` is run too and must agree); ``lr_scale`` is the group's ``lr_scale``, which
  ``engine_for_*.py`` multiplies ``lr_schedule_values[it]`` by.

``optim_lr.json``: per recipe the authors' lr at every optimiser step of the whole schedule for ``steps_per_epoch``
12, and for the paper's steps per epoch (its training set // the global batch) the first 40 steps, the first and last
step of every epoch and the steps around the warm-up's end:
- Motionformer, X-ViT: ``slowfast/utils/lr_policy.py`` ``get_lr_at_epoch(cfg, cur_epoch + iter / steps)``, as their
  ``train_epoch`` calls it before every step;
- TokShift: ``torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)`` stepped once after every
  epoch, as their loop; the yml's milestones and MSCA's (Sec. 4.1: 12 epochs, lr/10 at 10);
- CAST: ``util_tools/utils.py`` ``cosine_scheduler(args.lr, args.min_lr, epochs, steps, warmup_epochs=5)`` with
  ``args.lr`` and ``args.min_lr`` scaled by ``total_batch / 256`` as ``run_bidirection.py`` does.

Run-time shims (nothing in the checkouts changes): X-ViT's timm-0.4 calls (``timm.models.create_model``,
``build_model_with_cfg``) as ``tools/released_golden/xvit.py`` describes, written to a scratch file; CAST's
``util_tools/utils.py`` imports ``torch._six.inf`` (gone in torch 2), ``tensorboardX``, and ``optim_factory.py`` a few
timm 0.4 optimizers by old names (``Nadam``...): stand-ins are registered for those only, and recorded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import torch

from data.atomic_write import atomic_write_text
from data.command_line import OneLineParser, path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "golden" / "pipelines"
SMALL_SPE = 12  # steps per epoch of the whole-schedule record (every step)
FIRST_STEPS = 40  # at the paper's steps per epoch: the first steps, then each epoch's first and last

# The paper's steps per epoch: the training set (as the papers' data report it) // the global batch.
TRAIN_VIDEOS = {"K-400": 240436, "K-600": 392622, "SSv2": 168913, "EK-100": 67217}


def command(codebase: str) -> str:
    return f"python -m tools.pipeline_golden.optim {codebase} --official-code OFFICIAL"


def checkout_facts(repository: str, folder: Path) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tools.released_golden.common import checkout

    return checkout(repository, folder)


def write(codebase: str, name: str, payload: dict[str, Any]) -> None:
    folder = OUT / codebase
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=False) + "\n")
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def per_parameter(model: torch.nn.Module, groups: list[dict[str, Any]], scale_of) -> dict[str, dict[str, Any]]:
    """Every parameter of ``model`` by name: shape, whether a group holds it, its weight decay and lr scale."""
    where = {}
    for group in groups:
        for p in group["params"]:
            if id(p) in where:
                raise AssertionError("a parameter in two groups")
            where[id(p)] = group
    out = {}
    for name, p in model.named_parameters():
        group = where.get(id(p))
        out[name] = {"shape": list(p.shape), "trainable": group is not None and p.requires_grad,
                     "weight_decay": None if group is None else float(group["weight_decay"]),
                     "lr_scale": None if group is None else float(scale_of(group))}
    return out


def optimizer_facts(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    keep = ("lr", "momentum", "nesterov", "dampening", "betas", "eps", "weight_decay", "amsgrad")
    return {"class": f"{type(optimizer).__module__}.{type(optimizer).__name__}",
            "defaults": {k: (list(v) if isinstance(v, tuple) else v) for k, v in optimizer.defaults.items()
                         if k in keep}}


def sampled_steps(total: int, spe: int, warmup: int) -> list[int]:
    """The first steps, the first and last step of each epoch, and the steps around the warm-up's end."""
    steps = set(range(min(total, FIRST_STEPS)))
    steps |= {e * spe for e in range(total // spe)} | {e * spe - 1 for e in range(1, total // spe + 1)}
    steps |= {s for s in range(warmup - 2, warmup + 3) if 0 <= s < total}
    return sorted(steps)


# ---- PySlowFast (Motionformer, X-ViT) ---------------------------------------------------------------------------


def pyslowfast_lrs(cfg, epochs: int, spe: int, steps: list[int] | None = None) -> list[float]:
    from slowfast.models import optimizer as optim

    steps = range(epochs * spe) if steps is None else steps
    return [optim.get_epoch_lr(s // spe + float(s % spe) / spe, cfg) for s in steps]


def pyslowfast_groups(model, cfg) -> tuple[dict[str, Any], dict[str, Any]]:
    from slowfast.models import optimizer as optim

    optimizer = optim.construct_optimizer(model, cfg)
    facts = optimizer_facts(optimizer)
    optim.set_lr(optimizer, 1.0)  # the train loop's set_lr: every group gets the scheduled lr
    return per_parameter(model, optimizer.param_groups, lambda g: g["lr"]), facts


def solver(cfg) -> dict[str, Any]:
    s = cfg.SOLVER
    return {"BASE_LR": s.BASE_LR, "LR_POLICY": s.LR_POLICY, "STEPS": list(s.STEPS), "LRS": list(s.LRS),
            "MAX_EPOCH": s.MAX_EPOCH, "WARMUP_EPOCHS": s.WARMUP_EPOCHS, "WARMUP_START_LR": s.WARMUP_START_LR,
            "COSINE_END_LR": s.COSINE_END_LR, "WEIGHT_DECAY": s.WEIGHT_DECAY, "BN.WEIGHT_DECAY": cfg.BN.WEIGHT_DECAY,
            "OPTIMIZING_METHOD": s.OPTIMIZING_METHOD, "MOMENTUM": s.MOMENTUM, "NESTEROV": s.NESTEROV,
            "TRAIN.BATCH_SIZE": cfg.TRAIN.BATCH_SIZE, "NUM_GPUS": cfg.NUM_GPUS, "NUM_SHARDS": cfg.NUM_SHARDS}


def pyslowfast_recipe(cfg, config: str, column: str, function: str) -> dict[str, Any]:
    """The lr record of one config: the schedule at 20 steps per epoch, and at the paper's steps per epoch."""
    s = cfg.SOLVER
    # PySlowFast: each GPU's loader takes TRAIN.BATCH_SIZE / NUM_GPUS clips (slowfast/datasets/loader.py)
    global_batch = int(cfg.TRAIN.BATCH_SIZE / max(1, cfg.NUM_GPUS)) * cfg.NUM_GPUS * cfg.NUM_SHARDS
    epochs = int(s.MAX_EPOCH)
    spe = TRAIN_VIDEOS[column] // global_batch
    warmup = round(s.WARMUP_EPOCHS * spe)
    steps = sampled_steps(epochs * spe, spe, warmup)
    return {"config": config, "function": function, "solver": solver(cfg), "global_batch": global_batch,
            "lr_at_global_batch": s.BASE_LR, "epochs": epochs,
            "small": {"steps_per_epoch": SMALL_SPE, "lr": pyslowfast_lrs(cfg, epochs, SMALL_SPE)},
            "paper": {"column": column, "train_videos": TRAIN_VIDEOS[column], "steps_per_epoch": spe,
                      "steps": steps, "lr": pyslowfast_lrs(cfg, epochs, spe, steps)}}


def recipe_config(code: Path, config: str):
    """The authors' config as their run reads it (no overrides: NUM_GPUS and NUM_SHARDS set the global batch)."""
    from slowfast.config.defaults import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(str(code / config))
    return cfg


def make_mformer(code: Path) -> None:
    from tools.released_golden import mformer as released
    from tools.released_golden.common import put_official_code_on_path

    facts = checkout_facts("facebookresearch/Motionformer", code)
    put_official_code_on_path(code)
    from slowfast.models import build_model

    variants = {}
    for case, (config, overrides) in released.VARIANTS.items():
        cfg = released.MAKER.config(code, config, overrides)
        model = build_model(cfg)
        params, opt = pyslowfast_groups(model, cfg)
        variants[case] = {"released_case": case, "config": config, "overrides": {**released.EVERY_RUN, **overrides},
                          "function": "slowfast/models/optimizer.py:construct_optimizer", "solver": solver(cfg),
                          "optimizer": opt, "params": params}
    write("mformer", "optim_groups.json", {"official": facts, "command": command("mformer"), "variants": variants})
    recipes = {}
    for name, config, column in (("k400", "configs/K400/motionformer_224_16x4.yaml", "K-400"),
                                 ("ssv2", "configs/SSV2/motionformer_224_16x4.yaml", "SSv2"),
                                 ("epic", "configs/EK/motionformer_224_16x4.yaml", "EK-100"),
                                 ("k400_32x3", "configs/K400/motionformer_224_32x3.yaml", "K-400")):
        cfg = recipe_config(code, config)
        recipes[name] = pyslowfast_recipe(cfg, config, column, "slowfast/utils/lr_policy.py:get_lr_at_epoch")
    write("mformer", "optim_lr.json", {"official": facts, "command": command("mformer"), "recipes": recipes})


XVIT_SHIM = '''
"""timm-0.4 behaviour for 1adrianb/video-transformers (tools/released_golden/xvit.py, --shim)."""
import re
import timm.models
import slowfast.models.transformers.vit as vit

def _build(cls, variant, pretrained, default_cfg=None, pretrained_filter_fn=None, **kwargs):
    return cls(**kwargs)

vit.build_model_with_cfg = _build

def create_model(name, pretrained=False, **kwargs):
    kwargs = {k: v for k, v in kwargs.items() if v is not None and k != "bn_tf"}
    small = re.fullmatch(r"xvit_golden_patch16_(\\d+)d_(\\d+)l_(\\d+)h", name)
    if small:
        e, l, h = map(int, small.groups())
        return vit._create_vision_transformer("vit_base_patch16_224_in21k", pretrained=False, patch_size=16,
                                              embed_dim=e, depth=l, num_heads=h, representation_size=e, **kwargs)
    return getattr(vit, name)(pretrained=pretrained, **kwargs)

timm.models.create_model = create_model
'''


def make_xvit(code: Path) -> None:
    from tools.released_golden import xvit as released
    from tools.released_golden.common import put_official_code_on_path

    facts = checkout_facts("1adrianb/video-transformers", code)
    with tempfile.TemporaryDirectory() as scratch:
        shim = Path(scratch) / "xvit_timm_shim.py"
        atomic_write_text(shim, XVIT_SHIM)
        put_official_code_on_path(code, shim)
    from slowfast.models.video_model_builder import XVIT

    facts["shim"] = "timm 0.4's create_model / build_model_with_cfg (tools/released_golden/xvit.py docstring)"
    variants = {}
    for case, (config, overrides) in released.VARIANTS.items():
        cfg = released.MAKER.config(code, config, {**overrides, "TRAIN.ENABLE": True})
        model = XVIT(cfg)
        params, opt = pyslowfast_groups(model, cfg)
        variants[case] = {"released_case": case, "config": config,
                          "overrides": {**released.EVERY_RUN, **overrides, "TRAIN.ENABLE": True},
                          "function": "slowfast/models/optimizer.py:construct_optimizer", "solver": solver(cfg),
                          "optimizer": opt, "params": params}
    write("xvit", "optim_groups.json", {"official": facts, "command": command("xvit"), "variants": variants})
    recipes = {}
    for name, config, column in (("ssv2", "configs/SSv2/xvit_B16_16x16.yaml", "SSv2"),
                                 ("k400", "configs/Kinetics/xvit_B16_16x16_k400.yaml", "K-400"),
                                 ("k600", "configs/Kinetics/xvit_B16_16x16_k600.yaml", "K-600")):
        cfg = recipe_config(code, config)
        recipes[name] = pyslowfast_recipe(cfg, config, column, "slowfast/utils/lr_policy.py:get_lr_at_epoch")
    write("xvit", "optim_lr.json", {"official": facts, "command": command("xvit"), "recipes": recipes})


# ---- TokShift ----------------------------------------------------------------------------------------------------

TOKSHIFT_CONFIGS = {"vit": "config/custom/kinetics400/k400_vit_8x32_224.yml",
                    "tokshift": "config/custom/kinetics400/k400_tokshift_div4_8x32_base_224.yml"}


def read_yml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def multistep_lrs(lr: float, milestones: list[int], epochs: int, spe: int) -> list[float]:
    """The lr of every step: MultiStepLR(gamma=0.1) stepped once after each epoch, as main_ddp_shift_v3.py's loop."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    out = []
    for _ in range(epochs):
        out += [optimizer.param_groups[0]["lr"]] * spe
        optimizer.step()
        scheduler.step()
    return out


def make_tokshift(code: Path) -> None:
    from tools.released_golden import tokshift as released

    facts = checkout_facts("VideoNetworks/TokShift-Transformer", code)
    official = released.official_modules(code.resolve())
    backbone = released.small_backbone(official)
    small = released.SMALL
    variants = {}
    for variant, case in (("vit", "tokshift_vit"), ("tokshift", "tokshift_shift")):
        cfg = read_yml(code / TOKSHIFT_CONFIGS[variant])
        net = released.official_net(official, variant, backbone, small["frames"], small["classes"],
                                     small["img_size"])
        # main_worker: policies = model.parameters(); SGD(policies, cfg['LR'], momentum, weight_decay)
        optimizer = torch.optim.SGD(net.parameters(), cfg["LR"], momentum=cfg["MOMENTUM"],
                                    weight_decay=float(cfg["WEIGHT_DECAY"]))
        variants[case] = {"released_case": case, "config": TOKSHIFT_CONFIGS[variant], "small": small,
                          "function": "main_ddp_shift_v3.py:main_worker (its torch.optim.SGD call, made here with "
                                      "the yml's LR, MOMENTUM, WEIGHT_DECAY)",
                          "yml": {k: cfg[k] for k in ("LR", "MOMENTUM", "WEIGHT_DECAY", "LR_STEPS", "EPOCH",
                                                      "TRN_BATCH", "GRADIENT_ACCUMULATION_STEPS", "CLIP_GD")},
                          "optimizer": optimizer_facts(optimizer),
                          "params": per_parameter(net, optimizer.param_groups, lambda g, lr=cfg["LR"]: g["lr"] / lr)}
    write("tokshift", "optim_groups.json", {"official": facts, "command": command("tokshift"),
                                            "variants": variants})
    cfg = read_yml(code / TOKSHIFT_CONFIGS["tokshift"])
    gpus = 2  # "This setting is on 2xV100" (the yml's TRN_BATCH comment)
    global_batch = cfg["TRN_BATCH"] * gpus * cfg["GRADIENT_ACCUMULATION_STEPS"]
    spe = math.ceil(TRAIN_VIDEOS["K-400"] // (cfg["TRN_BATCH"] * gpus) / cfg["GRADIENT_ACCUMULATION_STEPS"])
    recipes = {}
    for name, milestones, epochs, source in (
            ("tokshift_yml", cfg["LR_STEPS"], cfg["EPOCH"], TOKSHIFT_CONFIGS["tokshift"]),
            ("msca", [10], 12, "MSCA Sec. 4.1 (12 epochs, lr/10 at epoch 10) on TokShift's scheduler")):
        paper = multistep_lrs(cfg["LR"], milestones, epochs, spe)
        steps = sampled_steps(len(paper), spe, 0)
        recipes[name] = {"config": source, "function": "main_ddp_shift_v3.py: MultiStepLR(optimizer, milestones, "
                                                        "gamma=0.1), scheduler.step() after each epoch",
                         "milestones": milestones, "epochs": epochs, "base_lr": cfg["LR"],
                         "global_batch": global_batch, "lr_at_global_batch": cfg["LR"],
                         "small": {"steps_per_epoch": SMALL_SPE,
                                   "lr": multistep_lrs(cfg["LR"], milestones, epochs, SMALL_SPE)},
                         "paper": {"column": "K-400", "train_videos": TRAIN_VIDEOS["K-400"],
                                   "steps_per_epoch": spe, "steps": steps, "lr": [paper[s] for s in steps]}}
    write("tokshift", "optim_lr.json", {"official": facts, "command": command("tokshift"), "recipes": recipes})


# ---- CAST --------------------------------------------------------------------------------------------------------

CAST_UNFREEZE = {  # the scripts' unfreeze_block lists
    "run_bidirection.py": ['cross', 'clip_space_time_pos', 'clip_time_pos', 'vmae_time_pos', 'Adapter', 'ln_post',
                           'vmae_fc_norm', 'last_proj', 'fusion', 'head'],
    "run_bidirection_compo.py": ['cross', 'clip_space_time_pos', 'clip_time_pos', 'vmae_time_pos', 'Adapter',
                                 'ln_post', 'vmae_fc_norm', 'last_proj', 'head'],
}
CAST_STANDINS = {"timm.optim.adafactor": "Adafactor", "timm.optim.adahessian": "Adahessian",
                 "timm.optim.adamp": "AdamP", "timm.optim.lookahead": "Lookahead", "timm.optim.nadam": "Nadam",
                 "timm.optim.nvnovograd": "NvNovoGrad", "timm.optim.radam": "RAdam",
                 "timm.optim.rmsprop_tf": "RMSpropTF", "timm.optim.sgdp": "SGDP"}
# (script, data set, --epochs, --update_freq, --layer_decay) of scripts/*/*.sh; world size 16 (8 GPUs x 2 nodes);
# the ablation recipe: Sec. 4.2, the EK100 script with update_freq 2 and layer decay 0.8
CAST_RECIPES = {"ek100": ("scripts/ek100/ek100.sh", "EK-100", 50, 4, 0.75),
                "ssv2": ("scripts/ssv2/ssv2.sh", "SSv2", 50, 4, 0.75),
                "k400": ("scripts/kinetics/k400.sh", "K-400", 70, 6, 0.75),
                "ablation": ("scripts/ek100/ek100.sh, --update_freq 2 --layer_decay 0.8 (Sec. 4.2)", "EK-100", 50,
                             2, 0.8)}
CAST_BATCH, CAST_WORLD = 6, 16


def _unavailable(self, *args: Any, **kwargs: Any) -> None:
    raise NotImplementedError(f"{type(self).__name__}: a stand-in for an optimizer today's timm lacks")


def cast_imports(code: Path) -> tuple[Any, Any, list[str]]:
    """``util_tools.optim_factory`` and ``util_tools.utils`` with stand-ins for what today's libraries lack."""
    shims = []
    sys.path.insert(0, str(REPO))

    if "torch._six" not in sys.modules:
        sys.modules["torch._six"] = types.SimpleNamespace(inf=math.inf)
        shims.append("torch._six = {inf: math.inf}")
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        sys.modules["tensorboardX"] = types.SimpleNamespace(SummaryWriter=None)
        shims.append("tensorboardX = {SummaryWriter: None} (unused here)")
    for module_name, name in CAST_STANDINS.items():
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            setattr(module, name, type(name, (), {"__init__": _unavailable}))
            shims.append(f"{module_name}.{name}: a stand-in that raises (not used by --opt adamw)")
    sys.path.append(str(code))
    return importlib.import_module("util_tools.optim_factory"), importlib.import_module("util_tools.utils"), shims


def cast_groups(module, optim_factory, utils, variant: str, layer_decay: float) -> tuple[dict, dict]:
    from tools.released_golden import cast as released

    net = released.small_net(module, variant)
    script = "run_bidirection_compo.py" if variant == "compo_bidir" else "run_bidirection.py"
    net, _ = utils.unfreeze_block(net, CAST_UNFREEZE[script])
    num_layers = net.get_num_layers()
    assigner = optim_factory.LayerDecayValueAssigner(
        list(layer_decay ** (num_layers + 1 - i) for i in range(num_layers + 2)))
    skip = net.no_weight_decay()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # both print every group
        groups = optim_factory.get_parameter_groups(net, 0.05, skip, assigner.get_layer_id, assigner.get_scale)
        args = argparse.Namespace(opt="adamw", weight_decay=0.05, lr=1e-3, opt_eps=1e-8, opt_betas=[0.9, 0.999],
                                  momentum=0.9)
        optimizer = optim_factory.create_optimizer(args, net, skip_list=skip, get_num_layer=assigner.get_layer_id,
                                                   get_layer_scale=assigner.get_scale)
    params = per_parameter(net, groups, lambda g: g["lr_scale"])
    check = per_parameter(net, optimizer.param_groups, lambda g: g["lr_scale"])
    if params != check:
        raise AssertionError("get_parameter_groups and create_optimizer disagree")
    return params, {"script": script, "unfreeze_block": CAST_UNFREEZE[script], "no_weight_decay": sorted(skip),
                    "layer_decay": layer_decay, "layer_scales": assigner.values,
                    "optimizer_without_deepspeed": optimizer_facts(optimizer),
                    "optimizer_deepspeed": "Adam, adam_w_mode True, betas (0.9, 0.999), eps 1e-8 (create_ds_config)"}


def make_cast(code: Path) -> None:
    from tools.released_golden import cast as released

    facts = checkout_facts("KHU-VLL/CAST", code)
    optim_factory, utils, shims = cast_imports(code)
    facts["shims"] = shims
    module = released.official_module(code.resolve())
    variants = {}
    for case, variant in (("cast_k400", "bidir"), ("cast_ek100", "compo_bidir")):
        for layer_decay in (0.75, 0.8):
            params, details = cast_groups(module, optim_factory, utils, variant, layer_decay)
            variants[f"{case}_ld{layer_decay:g}"] = {
                "released_case": case, "entry_point": released.ENTRY_POINTS[variant], "small": released.SMALL,
                "function": f"{details['script']}: unfreeze_block, LayerDecayValueAssigner; "
                            f"util_tools/optim_factory.py:get_parameter_groups (and create_optimizer)",
                **details, "params": params}
    write("cast", "optim_groups.json", {"official": facts, "command": command("cast"), "variants": variants})
    recipes = {}
    for name, (script, column, epochs, update_freq, layer_decay) in CAST_RECIPES.items():
        total = CAST_BATCH * update_freq * CAST_WORLD
        lr, min_lr = 1e-3 * total / 256, 1e-6 * total / 256  # run_bidirection.py, l.365-366
        spe = TRAIN_VIDEOS[column] // total  # num_training_steps_per_epoch
        paper = utils.cosine_scheduler(lr, min_lr, epochs, spe, warmup_epochs=5, warmup_steps=-1)
        steps = sampled_steps(len(paper), spe, 5 * spe)
        small = utils.cosine_scheduler(lr, min_lr, epochs, SMALL_SPE, warmup_epochs=5, warmup_steps=-1)
        recipes[name] = {"config": script, "function": "util_tools/utils.py:cosine_scheduler",
                         "args": {"lr": 1e-3, "min_lr": 1e-6, "warmup_epochs": 5, "epochs": epochs,
                                  "batch_size": CAST_BATCH, "update_freq": update_freq, "world_size": CAST_WORLD,
                                  "layer_decay": layer_decay},
                         "global_batch": total, "lr_at_global_batch": lr, "min_lr_at_global_batch": min_lr,
                         "epochs": epochs, "warmup_epochs": 5,
                         "small": {"steps_per_epoch": SMALL_SPE, "lr": [float(v) for v in small]},
                         "paper": {"column": column, "train_videos": TRAIN_VIDEOS[column], "steps_per_epoch": spe,
                                   "steps": steps, "lr": [float(paper[s]) for s in steps]}}
    write("cast", "optim_lr.json", {"official": facts, "command": command("cast"), "recipes": recipes})
    from tools.pipeline_golden.cast_epoch import make_cast_epochs

    make_cast_epochs(code, utils, CAST_RECIPES, CAST_BATCH, CAST_WORLD, facts, command("cast"), OUT / "cast")


MAKERS = {"mformer": make_mformer, "xvit": make_xvit, "tokshift": make_tokshift, "cast": make_cast}


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("codebase", choices=sorted(MAKERS))
    parser.add_argument("--official-code", type=path("a folder"), required=True, help="the authors' checkout")
    args = parser.parse_args(argv)
    torch.set_default_dtype(torch.float32)
    MAKERS[args.codebase](args.official_code.resolve())


if __name__ == "__main__":
    main()
