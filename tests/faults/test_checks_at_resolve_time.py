"""Every option a run takes is checked when its runs resolve: a value Lightning, the optimiser or the data loader
would refuse stops `run --dry-run` and `run` alike, with the same one line naming the option, before the static
columns, the data or any training; `--seeds` has an upper bound, so that a typo cannot plan for hours."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from experiments.__main__ import main
from tests.experiments.micro_run import cli_env

TABLE, ROW = "mformer_table4", "joint"


def run_twice(capsys, tmp_path, *options: str) -> tuple[tuple[int, str], tuple[int, str]]:
    """(exit status, stderr) of `run --dry-run` and of `run` with ``options`` (one row, one seed)."""
    argv = ["run", TABLE, "--rows", ROW, "--seeds", "1", "--jobs", "1", "--no-progress-bar",
            "--runs-dir", str(tmp_path / "runs"), "--reports-dir", str(tmp_path / "reports"), *options]
    outcomes = []
    for extra in (["--dry-run"], []):
        code = main(argv + extra)
        outcomes.append((code, capsys.readouterr().err))
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("options, named", [
    (["--devices", "abc"], "--devices abc"),
    (["--precision", "7-bogus"], "trainer.precision='7-bogus' (--precision)"),
    (["--accelerator", "tpu9"], "trainer.accelerator='tpu9' (--accelerator) is not a Lightning accelerator"),
    (["--strategy", "nonsense"], "trainer.strategy='nonsense' (--strategy) is not a Lightning strategy"),
    (["--set", "data.num_workers=-1"], "data.num_workers=-1: must be at least 0"),  # --num-workers: argparse's
    (["--set", "optim.lr=-1"], "optim.lr=-1: must be greater than 0"),
    (["--set", "optim.weight_decay=-0.05"], "optim.weight_decay=-0.05: must be at least 0"),
    (["--set", "optim.momentum=1.5"], "optim.momentum=1.5: must be between 0 and 1"),
    (["--batch-size", "1", "--set", "optim.mixup_alpha=0.8"], "data.batch_size=1 (--batch-size) trains on no clip"),
])
def test_a_bad_option_stops_the_dry_run_where_the_run_stops(capsys, tmp_path, nothing_starts, options, named):
    dry, real = run_twice(capsys, tmp_path, *options)
    assert dry == real, "the dry run and the run stop alike"
    code, err = real
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and named in err, err
    assert not (tmp_path / "runs" / TABLE).exists()  # nothing of the table was written


@pytest.mark.parametrize("options, named", [
    (["--set", "model.name=bogus"], "unknown model 'bogus'"),
    (["--set", 'data.options={"bogus": 1}'], "unknown data option(s) ['bogus']"),
    (["--set", "model.overrides.bogus_arg=1"], "unknown option(s) 'bogus_arg'"),
    (["--set", 'data.synthetic_params={"num_train": 1000000000000}'],
     "data.synthetic_params: num_train: Input should be less than or equal to 100000"),
    (["--set", 'data.synthetic_params={"num_train": 100000, "num_video_frames": 1024, "size": 1024}'],
     "data.synthetic_params: 100200 samples of 1024 frames of 1024x1024"),
    (["--pretrained", "/no/such/weights.pt"], "pretrained checkpoint /no/such/weights.pt does not exist"),
    (["--pretrained", "timmm:vit_base_patch16_224"], "no source kind 'timmm'"),
    (["--pretrained", "TORCHSCRIPT"], "a TorchScript archive, whose loading would run the code it carries"),
])
def test_a_bad_setting_or_source_is_refused_before_anything_is_written(capsys, tmp_path, nothing_starts, options,
                                                                        named):
    """Every ``--set`` value, pretrained source and generated-set size is resolved with the options: the run
    refuses it with the dry run's line before its static columns, locks, data or workers (``nothing_starts``)."""
    if "TORCHSCRIPT" in options:
        archive = tmp_path / "scripted.pt"
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(archive))
        options = [str(archive) if option == "TORCHSCRIPT" else option for option in options]
    dry, real = run_twice(capsys, tmp_path, *options)
    assert dry == real, "the dry run and the run stop alike"
    code, err = real
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and named in err, err
    assert not (tmp_path / "runs").exists()  # no static.json, no lock, no run folder


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA device")
def test_an_accelerator_this_machine_lacks_stops_the_run_and_is_noted_by_the_dry_run(capsys, tmp_path,
                                                                                    nothing_starts):
    """The dry run plans a job for another machine (a cluster job from a login node): it says what this one
    lacks; the run itself stops before anything starts, naming the accelerator."""
    argv = ["run", TABLE, "--rows", ROW, "--seeds", "1", "--runs-dir", str(tmp_path / "runs"), "--accelerator",
            "cuda"]
    assert main(argv + ["--dry-run"]) == 0
    assert "# not on this machine: trainer.accelerator='cuda' (--accelerator): none here" in capsys.readouterr().out
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trainer.accelerator='cuda'" in err and "--accelerator cpu" in err, err
    assert not (tmp_path / "runs" / TABLE).exists()


def test_an_absurd_seed_count_is_refused_at_once():
    """`--seeds 100000 --dry-run` would resolve and plan a million runs, for hours: the bound refuses it."""
    command = [sys.executable, "-m", "experiments", "run", TABLE, "--seeds", "100000", "--dry-run"]
    out = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "--seeds" in out.stderr and "seeds per row from 1 to 100" in out.stderr and "100000" in out.stderr


@pytest.mark.parametrize("value", ["[" * 2000 + "]" * 2000, "[" * 2000, '{"a":' * 2000 + "1" + "}" * 2000])
def test_a_setting_nested_past_the_bound_is_one_line(capsys, tmp_path, nothing_starts, value):
    """`--set "data.options=[[[...2,000 deep...]]]"` ended in a RecursionError's traceback (only a JSONDecodeError was
    caught): the value's depth is bounded before it is parsed."""
    for status in ([], ["status", TABLE, "--runs-dir", str(tmp_path / "runs")]):
        argv = status or ["run", TABLE, "--rows", ROW, "--seeds", "1", "--dry-run", "--runs-dir", str(tmp_path / "r")]
        with pytest.raises(SystemExit) as stop:
            main([*argv, "--set", f"data.options={value}"])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1 and "nested more than 64 deep" in err, err
