"""The tiny experts' pretraining (``experiments.tiny_pretraining.experts``): a run of a registered task trains the very
weights the hand-written loop it replaced trained."""

import dataclasses

import pytest
import torch

from experiments.cast.shipped import SHIPPED
from experiments.harness.tasks import get_task, video_datamodule
from experiments.presets import TINY_STAND_INS
from experiments.tiny_pretraining.experts import (
    EXPERT_FILE,
    ExpertPretraining,
    own_random_state,
    pretrain_expert,
    pretraining_run,
)
from lightning_modules.expert_pretraining import FramePretraining, MaskedVideoPretraining
from models.cast import build_expert

# The pretrainings tested: a shipped expert's masked autoencoding, and the frame classification of CLIP's structure
# (the "frames" method, which no shipped expert uses) on the K-400 stand-in.
PRETRAININGS = {
    "videomae_ek100": SHIPPED["videomae_ek100"],
    "clip": ExpertPretraining("clip", "frames", dataclasses.replace(TINY_STAND_INS["K-400"], num_workers=0), epochs=1,
                              lr=1e-3),
}


def _micro(name: str, **changes):
    """A tiny expert's pretraining on 8 generated videos, one epoch of two steps."""
    config = PRETRAININGS[name]
    data = dataclasses.replace(config.data, batch_size=4,
                               synthetic_params={**config.data.synthetic_params, "num_train": 8, "num_val": 4})
    return dataclasses.replace(config, data=data, epochs=1, **changes)


def _former_loop(config, folder) -> dict[str, torch.Tensor]:
    """The pretraining as the CAST spec ran it before it became a task, transcribed: its own data module, expert,
    system and Trainer, in its own random state."""
    import lightning as L

    with own_random_state(config.seed):
        dm = video_datamodule(config.data, folder / "data_failures")
        dm.prepare_data()
        dm.setup("fit")
        if config.method == "frames":
            expert = build_expert(config.arch, "tiny", num_frames=2)
            system = FramePretraining(expert, dm.num_classes, lr=config.lr, weight_decay=config.weight_decay)
        else:
            expert = build_expert(config.arch, "tiny")
            system = MaskedVideoPretraining(expert, mask_ratio=config.mask_ratio,
                                            normalize_target=config.normalize_target, lr=config.lr,
                                            weight_decay=config.weight_decay)
        trainer = L.Trainer(max_epochs=config.epochs, accelerator="cpu", devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, deterministic=True)
        trainer.fit(system, train_dataloaders=dm.train_dataloader())
    return expert.state_dict()


@pytest.mark.parametrize("name,changes", [("clip", {}), ("videomae_ek100", {"mask_ratio": 0.75,
                                                                            "normalize_target": True})])
def test_the_pretraining_task_trains_the_weights_the_former_loop_trained(tmp_path, name, changes):
    config = _micro(name, **changes)
    (tmp_path / "task").mkdir()
    pretrain_expert(config, tmp_path / "task")
    ours = torch.load(tmp_path / "task" / EXPERT_FILE, weights_only=True)
    (tmp_path / "former").mkdir()
    former = _former_loop(config, tmp_path / "former")
    assert ours.keys() == former.keys()
    differing = [key for key in ours if not torch.equal(ours[key], former[key])]
    assert not differing, differing[:5]


def test_a_pretraining_run_hands_its_method_and_options_to_the_task():
    cfg = pretraining_run(dataclasses.replace(PRETRAININGS["videomae_ek100"], mask_ratio=0.75))
    assert cfg.task == "masked_video_pretraining" and get_task(cfg.task).trains
    assert cfg.data.options["mask_ratio"] == 0.75 and cfg.data.options["normalize_target"] is False
    assert (cfg.optim.lr, cfg.optim.epochs) == (1.5e-3, 40)
    frames = pretraining_run(PRETRAININGS["clip"])
    assert frames.task == "frame_pretraining" and frames.model.overrides == {"num_frames": 2}
    assert "mask_ratio" not in frames.data.options
    with pytest.raises(ValueError, match="unknown pretraining method 'mim'"):
        pretraining_run(dataclasses.replace(PRETRAININGS["clip"], method="mim"))
