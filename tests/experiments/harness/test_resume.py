"""A run killed mid-epoch (a real SIGKILL of ``python -m experiments run``) and started again with the same command
ends with the same test metrics and bit-identical weights as a run that was never interrupted: the resumed epoch
draws the remaining batches in the same order with the same augmentations, and the model's random draws continue
from where they were (``data.resumable``, ``lightning_modules.resume``)."""

import json
import os
import signal
import subprocess
import time

import pytest
import torch

from experiments.harness.run_dir import RunDir
from tests.experiments.micro_run import RUN, cli_command, cli_env, run_cli

ARGS = ("--epochs", "3", "--set", "trainer.checkpoint_every_n_steps=1")  # 4 batches an epoch, a checkpoint each
BATCHES_PER_EPOCH = 4


def _loader_state(checkpoint):
    return checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]


def _poll(path):
    """The checkpoint's (global step, loader state), or None while there is none (it is replaced atomically, so a
    read never sees half a file)."""
    if not path.exists():
        return None
    checkpoint = torch.load(path, weights_only=True)
    return checkpoint["global_step"], _loader_state(checkpoint)


def _train_losses(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    losses = {}
    for events in sorted(run_dir.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events)).Reload()
        if "train/loss" in accumulator.Tags()["scalars"]:
            losses.update({e.step: e.value for e in accumulator.Scalars("train/loss")})  # later files win
    return losses


def _kill_mid_epoch(runs):
    """Start the run, SIGKILL it as soon as a checkpoint inside the second epoch exists; return that state and the
    killed process's id."""
    last = runs / RUN / "checkpoints" / "last.ckpt"
    child = subprocess.Popen(cli_command(runs, *ARGS), env=cli_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    try:
        while child.poll() is None and time.monotonic() < deadline:
            state = _poll(last)
            if state and state[0] > BATCHES_PER_EPOCH and 0 < state[1]["batches_drawn"] < BATCHES_PER_EPOCH - 1:
                break
            time.sleep(0.01)
        assert child.poll() is None, "the run ended before it could be killed mid-epoch:\n" + child.stdout.read()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    return (*_poll(last), child.pid)


def _loader(num_workers, epoch=0):
    from data.datamodule import VideoDataModule

    dm = VideoDataModule("synth_appearance", synthetic_params={"num_train": 32, "num_val": 16, "seed": 0},
                         batch_size=8, num_workers=num_workers)  # the micro set of the runs below (cached)
    dm.prepare_data()
    dm.setup("fit")
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)  # what Lightning does at each epoch's start
    return loader


def test_the_training_loader_resumes_mid_epoch_with_the_same_batches_and_augmentations():
    """Loader level, fast: epoch 1 in full; then a fresh loader given the state after two of its batches yields
    exactly the rest, crops and flips included; and the batches do not depend on the number of workers."""
    full = _loader(0, epoch=1)
    batches = list(full)
    assert len(batches) == 4 and full.state_dict() == {"epoch": 1, "batches_drawn": 4}
    assert not torch.equal(batches[0]["video"], list(_loader(0, epoch=0))[0]["video"])  # another epoch, other batches

    resumed = _loader(0)
    resumed.load_state_dict({"epoch": 1, "batches_drawn": 2})
    rest = list(resumed)
    assert len(rest) == 2 and resumed.state_dict() == {"epoch": 1, "batches_drawn": 4}
    for got, want in zip(rest, batches[2:]):
        assert torch.equal(got["index"], want["index"]) and torch.equal(got["video"], want["video"])
    assert len(list(resumed)) == 4  # the skip applies once: the next pass is a whole epoch

    with_workers = list(_loader(2, epoch=1))
    assert all(torch.equal(a["video"], b["video"]) for a, b in zip(with_workers, batches))


@pytest.mark.slow  # three micro runs in fresh processes: ~45 s on 2 idle cores
def test_a_run_killed_mid_epoch_resumes_to_the_same_numbers(tmp_path):
    reference = tmp_path / "uninterrupted" / "runs"
    run_cli(reference, *ARGS)

    runs = tmp_path / "killed" / "runs"
    step, loader, killed = _kill_mid_epoch(runs)
    assert loader["epoch"] == 1 and 0 < loader["batches_drawn"] < BATCHES_PER_EPOCH, (step, loader)
    assert not (runs / RUN / "metrics.json").exists()
    # its lock file stays; the lock does not
    assert json.loads(RunDir(runs / RUN).lock_file.read_text())["pid"] == killed

    out = run_cli(runs, *ARGS)  # the same command again: it takes the dead run's lock over
    assert "resuming from" in out.stdout

    expected = json.loads((reference / RUN / "metrics.json").read_text())
    resumed = json.loads((runs / RUN / "metrics.json").read_text())
    assert resumed["metrics"] == expected["metrics"]  # exact floats, loss included
    assert resumed["resumed_from"] and expected["resumed_from"] is None

    final = torch.load(runs / RUN / "checkpoints" / "last.ckpt", weights_only=True)
    reference_final = torch.load(reference / RUN / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == reference_final["global_step"] == 3 * BATCHES_PER_EPOCH
    assert all(torch.equal(v, reference_final["state_dict"][k]) for k, v in final["state_dict"].items())

    # Each step after the resume point saw the same batch: the logged losses agree there, bit for bit.
    after = {s: v for s, v in _train_losses(runs / RUN).items() if s >= step}
    reference_losses = _train_losses(reference / RUN)
    assert after and all(reference_losses[s] == v for s, v in after.items())
