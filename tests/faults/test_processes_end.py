"""Processes end with the command that started them: the jobs of ``run --submit local`` when the command is killed
(``kill -9`` leaves it no time to stop them; submitit's controller and the job it starts would train on), and a run's
loader workers when an error ends the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from data.worker_signals import StopSafeDataLoader
from tests.experiments.micro_run import TABLE, cli_command, cli_env
from tests.faults.commands import EXACT_ARGS, assert_nothing_left, output, started, wait_until
from tools.signal_stress import kill_session, session_processes


@pytest.mark.slow  # two micro runs as local jobs, each in a fresh controller and job process: ~40 s on 2 cores
def test_kill_9_of_a_submit_local_command_ends_its_jobs(tmp_path):
    runs = tmp_path / "runs"
    seeds = [runs / TABLE / "mformer" / f"seed{k}" / "tiny-k_400" / "checkpoints" / "last.ckpt" for k in (0, 1)]
    # epochs enough that no job could end of itself within the wait
    with started(runs, *EXACT_ARGS, "--epochs", "1000", "--seeds", "2", "--jobs", "2", "--submit", "local") as command:
        wait_until(command, lambda: all(path.exists() for path in seeds), "both jobs training")
        jobs = {pid: line for pid, line in session_processes(command.pid).items() if pid != command.pid}
        assert len([line for line in jobs.values() if "submitit.core._submit" in line]) == 2, jobs
        os.kill(command.pid, signal.SIGKILL)
        command.wait()
        start = time.monotonic()
        assert_nothing_left(command.pid, grace_s=30.0)
        assert time.monotonic() - start < 30.0, output(runs)[-3000:]


@pytest.mark.slow  # a micro run as a local job in a fresh controller and job process: ~30 s on 2 cores
def test_sigterm_of_a_submit_local_command_stops_its_job_in_one_line_with_status_143(tmp_path):
    runs = tmp_path / "runs"
    last = runs / TABLE / "mformer" / "seed0" / "tiny-k_400" / "checkpoints" / "last.ckpt"
    with started(runs, *EXACT_ARGS, "--epochs", "1000", "--submit", "local") as command:
        wait_until(command, last.exists, "the job training")
        os.kill(command.pid, signal.SIGTERM)
        code = command.wait(90)
        assert_nothing_left(command.pid)
    text = output(runs)
    assert code == 128 + signal.SIGTERM and "Traceback" not in text, text[-3000:]
    assert "interrupted by SIGTERM" in text.strip().splitlines()[-1], text[-3000:]


# The micro run refuses with a ValueError, as a check inside a run does, while two loader workers (persistent: they
# wait for the next epoch) are alive: in its training step at its third batch, or in a loader worker at one video.
REFUSING_RUN = """
import sys
from data.datasets import VideoClipDataset
from experiments.__main__ import main
from lightning_modules.video_classifier import VideoClassifier
step, item = VideoClassifier.training_step, VideoClipDataset.__getitem__
def refuse_the_third(self, batch, batch_idx):
    if batch_idx == 2 and sys.argv[1] == "step":
        raise ValueError("the third batch is refused")
    return step(self, batch, batch_idx)
def refuse_one_video(self, index):
    if index == 5 and self.mode == "train" and sys.argv[1] == "worker":
        raise ValueError("video 5 is refused")
    return item(self, index)
VideoClassifier.training_step, VideoClipDataset.__getitem__ = refuse_the_third, refuse_one_video
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow  # a micro run in a fresh process with two loader workers: ~20 s on 2 cores
@pytest.mark.parametrize("where, refusal", [("step", "the third batch is refused"), ("worker", "video 5 is refused")])
def test_an_error_inside_a_run_ends_the_command_and_its_loader_workers_within_seconds(tmp_path, where, refusal):
    runs = tmp_path / "runs"
    command = [sys.executable, "-c", REFUSING_RUN, where, *cli_command(runs, "--num-workers", "2")[3:]]
    with open(f"{runs}.out", "w") as out:
        child = subprocess.Popen(command, env=cli_env(), stdout=out, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True)
    try:
        wait_until(child, lambda: len(session_processes(child.pid)) >= 3, "the loader workers", timeout=120)
        code = child.wait(60)
        stopped = time.monotonic()
        assert_nothing_left(child.pid, grace_s=10.0)
        assert time.monotonic() - stopped < 10.0
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        kill_session(child.pid)
    lines = output(runs).strip().splitlines()
    assert code == 2 and refusal in lines[-1] and "Traceback" not in output(runs), lines[-5:]


class _RefusesItemThree(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        if index == 3:
            raise KeyError("clip 3: no such label 'x'") if self.key else ValueError("clip 3: unreadable")
        return torch.tensor(index)

    key = False


@pytest.mark.parametrize("key", [False, True])
def test_a_refusal_in_a_loader_worker_comes_out_with_its_own_message(key):
    dataset = _RefusesItemThree()
    dataset.key = key
    loader = StopSafeDataLoader(dataset, batch_size=2, num_workers=2)
    with pytest.raises(KeyError if key else ValueError) as raised:
        list(loader)
    assert raised.value.args == (("clip 3: no such label 'x'" if key else "clip 3: unreadable"),)


def test_a_bug_in_a_loader_worker_keeps_its_traceback():
    loader = StopSafeDataLoader([1, "a"], batch_size=2, num_workers=1)
    with pytest.raises(TypeError, match="Original Traceback"):
        list(loader)
