"""A run whose generated set is read from its decoded-frames store (``data.decoded_store``) records what a run that
decodes the same set in its own process records, bit for bit: metrics, curve and weights."""

import json

import pytest
import torch

from data.synthetic import ensure_synthetic
from data.video_io import DECODED_VIDEOS
from experiments.harness.plan import resolve_runs
from experiments.harness.run_dir import RunDir
from experiments.harness.runner import execute
from tests.experiments.micro_run import ROW, TABLE

pytestmark = pytest.mark.slow  # trains two micro runs (two steps each)

MICRO = {"optim": {"warmup_epochs": 0},
         "data": {"synthetic_params": {"num_train": 32, "num_val": 16, "seed": 0}, "num_workers": 0,
                  "batch_size": 8},
         "trainer": {"num_threads": 1, "log_every_n_steps": 1, "max_steps": 2}}


def _micro(data: dict):
    overrides = {**MICRO, "data": {**MICRO["data"], **data}}
    return resolve_runs(TABLE, "tiny", [ROW], 1, None, overrides)[0]


def test_a_run_from_the_store_records_what_a_decoding_run_records(tmp_path):
    cache = tmp_path / "cache"
    reference = _micro({})
    root = ensure_synthetic(reference.data.dataset, cache, **reference.data.synthetic_params)
    ways = {"decoding": _micro({"root": str(root)}),  # named by its folder: decoded in this process
            "store": _micro({"options": {"cache_dir": str(cache)}})}  # named by its parameters: the store
    records, weights = {}, {}
    for way, cfg in ways.items():
        DECODED_VIDEOS.clear()  # nothing carried over from the other way
        runs = tmp_path / way
        execute(cfg, runs, progress_bar=False, echo=lambda _: None)
        assert (DECODED_VIDEOS.bytes == 0) is (way == "store")  # mapped from the store, or decoded here
        run = RunDir.of(cfg, runs)
        records[way] = json.loads(run.record_file.read_text())
        weights[way] = torch.load(run.last_checkpoint, weights_only=True)["state_dict"]
    DECODED_VIDEOS.clear()
    assert [p.name for p in cache.iterdir() if p.is_dir() and ".decoded-" in p.name]  # it was written
    assert records["store"]["metrics"] == records["decoding"]["metrics"]  # floats compared exactly
    assert records["store"]["metrics"]["loss"] > 0
    assert weights["store"].keys() == weights["decoding"].keys()
    assert all(torch.equal(weights["store"][k], weights["decoding"][k]) for k in weights["store"])
