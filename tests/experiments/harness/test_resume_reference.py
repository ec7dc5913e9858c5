"""Resuming a killed run, checked against plain loops and an uninterrupted run: ``EpochSampler``'s order against
``torch.randperm`` seeded by (seed, epoch), ``SeededItems``' draws against fresh generators, the loader's position
across unreadable batches and across an epoch's end, ``ExactResumeCallback``'s generator states across a
``weights_only`` checkpoint round trip, an in-process run killed twice (at an epoch's end, then mid-epoch) against
the same run never killed (weights, optimiser and lr-scheduler states, metrics and its record), and ``--force``:
the old run moved whole to ``.replaced/<time>/<table>/<row>/seed<k>/<column>``, never reused instead of trained."""

from __future__ import annotations

import hashlib
import io
import json
import random

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from experiments.harness import provenance as provenance_module
from experiments.harness.plan import planned_steps
from experiments.harness.records import run_state
from experiments.harness.run_dir import RunDir, RunsTree
from experiments.harness.runner import execute
from tests.experiments.harness.test_run_guards import Stop, micro_config, raise_stop, write_done


def planned_action(cfg, runs_root, force=False):
    """What ``run --dry-run`` says of one run (``plan.planned_steps``; a refusal raised, as it stops the dry run)."""
    return planned_steps([cfg], runs_root, force)[0].unless_refused().line(runs_root)


class Draws(Dataset):
    """Each item: its index and one draw from each process generator an augmentation uses (torch, Python,
    NumPy); ``unreadable`` indices give None, as an unreadable video does."""

    def __init__(self, size: int, unreadable: tuple[int, ...] = ()) -> None:
        self.size, self.unreadable = size, set(unreadable)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        if index in self.unreadable:
            return None
        return {"index": index, "draws": torch.tensor([torch.rand(()).item(), random.random(), np.random.rand()],
                                                      dtype=torch.float64)}


def process_draws():
    """One draw from each process generator, Gaussian caches included (Python's ``gauss`` and NumPy's legacy
    normal keep the second value of a pair)."""
    return (torch.rand(3).tolist(), random.random(), random.gauss(0, 1), np.random.rand(2).tolist(),
            np.random.standard_normal())


def _loader(dataset, seed=0, batch_size=2):
    from data.datamodule import ResumableDataLoader
    from data.datasets import collate_skip_none
    from data.resumable import EpochSampler, SeededItems

    items = SeededItems(dataset, seed)
    return ResumableDataLoader(items, batch_size=batch_size, sampler=EpochSampler(items, seed), drop_last=True,
                               collate_fn=collate_skip_none, num_workers=0)


# --- data.resumable against plain loops --------------------------------------------------------------------------

def test_the_epoch_sampler_is_randperm_seeded_by_seed_plus_epoch_offset_by_the_epoch():
    from data.resumable import EpochSampler

    size, seed = 10, 7
    sampler = EpochSampler(Draws(size), seed)
    for epoch in (0, 3):
        sampler.set_epoch(epoch)
        generator = torch.Generator()
        generator.manual_seed(seed + epoch)  # DistributedSampler's convention
        expected = [epoch * size + i for i in torch.randperm(size, generator=generator).tolist()]
        assert list(sampler) == expected


def test_an_items_augmentation_depends_on_seed_epoch_and_index_only_and_leaves_the_process_generators_alone():
    from data.resumable import SeededItems

    size = 6
    items = SeededItems(Draws(size), seed=3)
    torch.manual_seed(1), random.seed(1), np.random.seed(1)
    first = items[1 * size + 4]["draws"]  # epoch 1, index 4

    torch.manual_seed(2), random.seed(2), np.random.seed(2)  # another process state: the same item
    before = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    assert torch.equal(items[1 * size + 4]["draws"], first)
    after = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1])
    assert torch.equal(before[0], after[0]) and before[1] == after[1] and np.array_equal(before[2], after[2])

    # another epoch, another index, another seed: other draws in all three generators (a fixed crop every epoch
    # would be a silent loss of augmentation)
    for other in (items[2 * size + 4]["draws"], items[1 * size + 5]["draws"],
                  SeededItems(Draws(size), seed=4)[1 * size + 4]["draws"]):
        assert (other != first).all()


def test_the_loader_position_counts_unreadable_batches_so_a_resume_skips_exactly_the_batches_drawn():
    # 12 items in batches of 2 (6 batches an epoch); items 0-5 unreadable, so some batches are None (not yielded)
    dataset = Draws(12, unreadable=tuple(range(6)))
    raw = _epoch_batches(dataset, 1)
    assert len(raw) == 6 and any(b is None for b in raw) and any(b is not None for b in raw)
    for drawn in range(6):
        resumed = _loader(dataset)
        resumed.load_state_dict({"epoch": 1, "batches_drawn": drawn})
        assert _indices(resumed) == _indices(raw[drawn:])
        assert resumed.state_dict() == {"epoch": 1, "batches_drawn": 6}


def _epoch_batches(dataset, epoch):
    """Every batch of one epoch, None for an unreadable one."""
    loader = _loader(dataset)
    loader.sampler.set_epoch(epoch)
    return list(loader.raw_batches())


def _indices(batches):
    return [batch["index"].tolist() for batch in batches if batch is not None]


def test_a_state_saved_at_an_epochs_end_resumes_with_the_whole_next_epoch():
    """A checkpoint after the last batch of epoch 1: the next pass is epoch 2 from its first batch (not an empty
    epoch 1, nor epoch 1 again), even when Lightning sets the epoch only after the iterator exists."""
    dataset = Draws(8)
    resumed = _loader(dataset)
    resumed.load_state_dict({"epoch": 1, "batches_drawn": 4})
    assert resumed.sampler.epoch == 2
    got = _indices(resumed)
    assert got == _indices(_epoch_batches(dataset, 2)) and len(got) == 4


# --- ExactResumeCallback's generator states ----------------------------------------------------------------------

def test_the_process_generators_continue_after_a_checkpoint_round_trip_once_and_only_at_the_first_batch():
    from lightning_modules.resume import ExactResumeCallback

    torch.manual_seed(11), random.seed(11), np.random.seed(11)
    random.gauss(0, 1), np.random.standard_normal()  # a cached second Gaussian in both: part of the state
    buffer = io.BytesIO()
    torch.save({"state": ExactResumeCallback().state_dict()}, buffer)  # as in a checkpoint
    expected = process_draws()

    torch.manual_seed(99), random.seed(99), np.random.seed(99)  # the new process, seeded by seed_everything
    buffer.seek(0)
    callback = ExactResumeCallback()
    callback.load_state_dict(torch.load(buffer, weights_only=True)["state"])
    callback.on_train_batch_start(None, None, None, 0)
    assert process_draws() == expected
    callback.on_train_batch_start(None, None, None, 1)  # applied once: later batches draw on
    assert process_draws() != expected


# --- a run killed twice against the same run never killed ---------------------------------------------------------

class _Killed(Exception):
    pass


def _killing_monitor(kill_at_steps):
    """``DataWaitMonitor`` that raises after the optimizer step numbered by the next entry of ``kill_at_steps``
    (one kill per run): the checkpoint of the step before is the last one written."""
    from lightning_modules.data_wait import DataWaitMonitor

    class KillingMonitor(DataWaitMonitor):
        def on_train_batch_end(self, trainer, *args, **kwargs):
            super().on_train_batch_end(trainer, *args, **kwargs)
            if kill_at_steps and trainer.global_step == kill_at_steps[0]:
                kill_at_steps.pop(0)
                raise _Killed

    return KillingMonitor


@pytest.fixture(scope="module")
def killed_and_uninterrupted(tmp_path_factory):
    """The micro run (3 epochs of 4 steps, mixup on so each step draws from the process generators, a checkpoint
    every step) once uninterrupted and once killed after step 5 (its checkpoint: the end of epoch 0) and after step
    7 (mid-epoch 1), each time started again with the same call."""
    from lightning_modules import data_wait

    cfg = micro_config(optim={"epochs": 3, "mixup_alpha": 0.8},
               trainer={"checkpoint_every_n_steps": 1, "check_val_every_n_epoch": 100})
    quiet = {"progress_bar": False, "echo": lambda _: None}
    reference = tmp_path_factory.mktemp("uninterrupted")
    reference_record = execute(cfg, reference, **quiet)

    runs, kills, saved = tmp_path_factory.mktemp("killed"), [5, 7], []
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(data_wait, "DataWaitMonitor", _killing_monitor(kills))
    last = RunDir.of(cfg, runs).path / "checkpoints" / "last.ckpt"
    try:
        for _ in range(2):
            with pytest.raises(_Killed):
                execute(cfg, runs, **quiet)
            checkpoint = torch.load(last, weights_only=True)
            saved.append((checkpoint["global_step"], checkpoint["loops"]["fit_loop"]["state_dict"]
                          ["combined_loader"][0]))
        record = execute(cfg, runs, **quiet)
    finally:
        monkeypatch.undo()
    final, reference_final = (torch.load(RunDir.of(cfg, root).path / "checkpoints" / "last.ckpt", weights_only=True)
                              for root in (runs, reference))
    return cfg, saved, record, reference_record, final, reference_final, runs


def test_a_run_killed_at_an_epochs_end_then_mid_epoch_ends_as_if_never_killed(killed_and_uninterrupted):
    cfg, saved, record, reference_record, final, reference_final, _ = killed_and_uninterrupted
    assert saved == [(4, {"epoch": 0, "batches_drawn": 4}), (6, {"epoch": 1, "batches_drawn": 2})]
    assert final["global_step"] == reference_final["global_step"] == 12
    assert final["epoch"] == reference_final["epoch"]  # no epoch counted twice
    assert final["state_dict"].keys() == reference_final["state_dict"].keys()
    assert all(torch.equal(v, reference_final["state_dict"][k]) for k, v in final["state_dict"].items())
    # the optimiser's moments and step counts, and the schedule's position, continue as if never stopped
    assert final["lr_schedulers"] == reference_final["lr_schedulers"]
    assert final["lr_schedulers"][0]["last_epoch"] == 12
    for got, want in zip(final["optimizer_states"][0]["state"].values(),
                         reference_final["optimizer_states"][0]["state"].values()):
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert record["metrics"] == reference_record["metrics"]


def test_the_resumed_runs_record_names_its_checkpoint_and_the_configuration_that_trained(killed_and_uninterrupted):
    cfg, _, record, reference_record, final, _, runs = killed_and_uninterrupted
    written = json.loads((RunDir.of(cfg, runs).path / "metrics.json").read_text())
    assert written["resumed_from"] == str(RunDir.of(cfg, runs).path / "checkpoints" / "last.ckpt")
    assert reference_record["resumed_from"] is None
    assert written["config"] == cfg.to_dict() == final["callbacks"]["vidrepro_run"]["config"]
    canonical = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    assert written["provenance"]["config_hash"] == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert written["metrics"] == record["metrics"]


# --- --force -----------------------------------------------------------------------------------------------------

def test_force_moves_the_whole_old_run_under_replaced_time_table_row_seed_column(tmp_path, monkeypatch):
    runs, cfg = tmp_path / "runs", micro_config()
    write_done(runs, cfg)
    last = RunDir.of(cfg, runs).path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    torch.save({"callbacks": {"vidrepro_run": run_state(micro_config(optim={"lr": 0.5}), 1)}}, last)  # another config's
    assert planned_action(cfg, runs, force=True) == "train (--force)"
    monkeypatch.setattr(provenance_module, "set_threads", raise_stop)  # the first step after the move
    with pytest.raises(Stop):
        execute(cfg, runs, force=True, echo=lambda _: None)
    stamps = list(RunsTree(runs).replaced_root.iterdir())
    assert len(stamps) == 1
    archived = stamps[0] / "mformer_table6b" / "mformer" / "seed0" / "tiny-k_400"
    assert sorted(p.relative_to(archived).as_posix() for p in archived.rglob("*")) == \
        ["checkpoints", "checkpoints/last.ckpt", "metrics.json"]
    assert not RunDir.of(cfg, runs).path.exists() or not any(RunDir.of(cfg, runs).path.iterdir())


def test_force_trains_even_when_an_identical_run_of_another_table_finished(tmp_path, monkeypatch):
    runs, cfg = tmp_path / "runs", micro_config()
    write_done(runs, micro_config("mformer_table7", "mformer_b"))  # the same experiment in another table
    assert planned_action(cfg, runs) == "reuse mformer_table7/mformer_b/seed0/tiny-k_400"
    monkeypatch.setattr(provenance_module, "set_threads", raise_stop)  # reached only by a run that trains
    with pytest.raises(Stop):
        execute(cfg, runs, force=True, echo=lambda _: None)
    assert not (RunDir.of(cfg, runs).path / "metrics.json").exists()
