"""``trainer.epoch_steps="whole_global_batches"``: an epoch of ``train set // global batch`` optimizer steps, each
process drawing that many accumulations and nothing past them (``experiments.harness.epoch_steps``); the count of
CAST's training loop, checked step by step against it in tests/parity/test_cast_optim.py. Here: the limit's
arithmetic, the one-line refusal of a set without a whole global batch, and a resume after an epoch the limit cut
short, which starts the next epoch whole."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import Dataset

from experiments.harness.epoch_steps import epoch_batch_limit
from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import RunDir
from experiments.harness.runner import execute
from tests.experiments.micro_run import ROW, TABLE


class _Items(Dataset):
    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, int]:
        return {"index": index}


def _loader(size: int):
    """The training loader a data module makes (data.datamodule.train_dataloader), batches of 2."""
    from data.datamodule import ResumableDataLoader
    from data.datasets import collate_skip_none
    from data.resumable import EpochSampler, SeededItems

    items = SeededItems(_Items(size), 0)
    return ResumableDataLoader(items, batch_size=2, sampler=EpochSampler(items, 0), drop_last=True,
                               collate_fn=collate_skip_none, num_workers=0)


def _cast_paper(column: str):
    return next(c for c in resolve_runs("cast_table2", "paper", rows=["cast"]) if c.column == column)


@pytest.mark.parametrize(("column", "train_samples", "limit"), [
    ("SSv2", 168_913, 439 * 4),  # each process's loader: 1,759 batches, the last 3 a partial accumulation
    ("K-400", 234_619, 407 * 6),  # 2,444 batches
    ("EK-100", 67_217, 175 * 4),  # 700 batches: whole accumulations only, the same epoch either way
])
def test_the_limit_is_the_whole_global_batches_times_the_accumulated_batches(column, train_samples, limit):
    cfg = _cast_paper(column)
    assert cfg.trainer.epoch_steps == "whole_global_batches"
    assert epoch_batch_limit(cfg, train_samples, 16) == limit
    lightning = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, epoch_steps="all_batches"))
    assert epoch_batch_limit(lightning, train_samples, 16) is None


def test_a_training_set_without_one_whole_global_batch_is_refused_in_one_line():
    cfg = _cast_paper("SSv2")
    with pytest.raises(ValueError) as caught:
        epoch_batch_limit(cfg, 383, 16)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("cast_table2/cast/SSv2: trainer.epoch_steps=")
    assert "383 // 384 = 0 steps an epoch" in message and "6 per process x 16 x 4 accumulated" in message
    with pytest.raises(ValueError, match="needs the training set's size"):
        epoch_batch_limit(cfg, None, 16)


def test_a_loader_state_at_the_end_of_a_cut_epoch_resumes_with_the_whole_next_epoch():
    """Saved after the last batch the limit lets an epoch draw (2 of the loader's 4): the resumed pass is the next
    epoch from its first batch, not the rest of the cut one."""
    from lightning_modules.resume import ExactResumeCallback

    whole_epoch_2 = _loader(8)
    whole_epoch_2.sampler.set_epoch(2)
    expected = [b["index"].tolist() for b in whole_epoch_2]
    for drawn, epoch, batches in ((2, 2, expected), (1, 1, None)):
        loader = _loader(8)
        trainer = SimpleNamespace(train_dataloader=loader, num_training_batches=2)
        callback = ExactResumeCallback()
        callback.on_load_checkpoint(trainer, None, {"loops": {"fit_loop": {"state_dict": {
            "combined_loader": [{"epoch": 1, "batches_drawn": drawn}]}}}})
        callback.on_train_start(trainer, None)
        assert loader.sampler.epoch == epoch
        got = [b["index"].tolist() for b in loader]
        assert got == (batches if batches is not None else got[:3]) and len(got) == (4 if drawn == 2 else 3)


@pytest.mark.slow
def test_a_cut_epoch_run_takes_whole_global_batches_and_resumes_after_an_epoch_as_if_never_killed(tmp_path):
    """32 training videos in batches of 6 (5 a process), 2 accumulated: Lightning's own count steps 3 times an
    epoch (the last on one batch), the whole global batches 2, on 4 batches. Killed in the second epoch, its last
    checkpoint the first epoch's end, and started again, the run ends as the uninterrupted one."""
    from lightning_modules import data_wait

    class Killed(Exception):
        pass

    class KilledAfterTheFirstEpoch(data_wait.DataWaitMonitor):
        """Raises after step 3, before its checkpoint: the last one written is step 2's, the end of epoch 0."""

        def on_train_batch_end(self, trainer, *args, **kwargs):
            super().on_train_batch_end(trainer, *args, **kwargs)
            if trainer.global_step == 3:
                raise Killed

    cfg = resolve_runs(TABLE, "tiny", [ROW], 1, None, {
        "optim": {"warmup_epochs": 0, "epochs": 2, "mixup_alpha": 0.8},
        "data": {"synthetic_params": {"num_train": 32, "num_val": 16, "seed": 0}, "num_workers": 0, "batch_size": 6},
        "trainer": {"num_threads": 1, "accumulate_grad_batches": 2, "epoch_steps": "whole_global_batches",
                    "checkpoint_every_n_steps": 1, "check_val_every_n_epoch": 100}})[0]
    quiet = {"progress_bar": False, "echo": lambda _: None}
    reference, runs = tmp_path / "uninterrupted", tmp_path / "killed"
    reference_record = execute(cfg, reference, **quiet)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(data_wait, "DataWaitMonitor", KilledAfterTheFirstEpoch)
    try:
        with pytest.raises(Killed):
            execute(cfg, runs, **quiet)
    finally:
        monkeypatch.undo()
    saved = torch.load(RunDir.of(cfg, runs).last_checkpoint, weights_only=True)
    record = execute(cfg, runs, **quiet)
    assert saved["global_step"] == 2
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"][0] == {"epoch": 0, "batches_drawn": 4}
    final, reference_final = (torch.load(RunDir.of(cfg, root).last_checkpoint, weights_only=True)
                              for root in (runs, reference))
    assert final["global_step"] == reference_final["global_step"] == 2 * 2
    assert final["lr_schedulers"] == reference_final["lr_schedulers"]
    assert all(torch.equal(v, reference_final["state_dict"][k]) for k, v in final["state_dict"].items())
    assert record["metrics"] == reference_record["metrics"]
