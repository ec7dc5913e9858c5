"""Sizes are bounded before anything is allocated: a model, a batch, a frame or a schedule past 10x the largest
paper configuration (``experiments.harness.sizes``) stops `run --dry-run` and `run` alike at resolve time, with one
line naming the run, the field and the bound, and nothing written; ``--allow-large`` lifts the bounds for hardware
that has room. ``python -m data synth`` bounds the sets it generates the same way: one line, before a byte is
written. The last test walks every table's paper-scale runs and checks that none comes within 10x of a bound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data.__main__ import main as data_main
from experiments.__main__ import main
from tests.experiments.micro_run import cli_env
from tests.faults.test_checks_at_resolve_time import ROW, TABLE, run_twice


@pytest.mark.parametrize("setting, named", [
    ("model.overrides.embed_dim=1000000", "model embed_dim=1000000 is past the bound of 10,240"),
    ("model.overrides.depth=1000000000", "model depth=1000000000 is past the bound of 240"),
    ("model.overrides.mlp_ratio=1e6", "a model of 33,024,094,146 parameters"),
    ("data.batch_size=100000000", "a training batch of 819,200,000,000 pixels (data.batch_size=100000000"),
    ("data.num_frames=100000000", "data.num_frames=100000000"),
    ("data.test_clips=1000000", "a test batch of 131,072,000,000 pixels"),
    ("data.train_scale=[100000, 100001]", "data.train_scale (a frame's short side) of 100001 pixels"),
    ("optim.epochs=100000", "optim.epochs=100000 is past the bound of 2,000 epochs"),
    ("trainer.max_steps=1000000000", "trainer.max_steps=1000000000 is past the bound of 1,000,000 steps"),
])
def test_a_run_past_a_size_bound_is_refused_at_resolve_time(capsys, tmp_path, nothing_starts, setting, named):
    """What would allocate terabytes, or train for years, is one line naming the field and the flag that lifts the
    bound, from the dry run as from the run, before static columns, data or training (``nothing_starts``)."""
    dry, real = run_twice(capsys, tmp_path, "--set", setting)
    assert dry == real, "the dry run and the run stop alike"
    code, err = real
    assert code == 2 and err.count("\n") == 1 and named in err and "--allow-large" in err, err
    assert not (tmp_path / "runs").exists()


def test_allow_large_plans_a_run_past_the_bounds(capsys, tmp_path):
    """On hardware with room, ``--allow-large`` takes the run: the dry run builds it on the meta device and plans
    it, allocating nothing."""
    argv = ["run", TABLE, "--rows", ROW, "--seeds", "1", "--runs-dir", str(tmp_path / "runs"), "--dry-run",
            "--json", "--set", "model.overrides.embed_dim=20000", "--set", "data.batch_size=100000"]
    assert main(argv) == 2 and "--allow-large" in capsys.readouterr().err
    assert main([*argv, "--allow-large"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["summary"]["train"] == 2 and not (tmp_path / "runs").exists()


def test_a_huge_frame_count_ends_in_one_line_at_once():
    """A frame count of a trillion, in a process of its own: the dry run ends within seconds, not in a hang."""
    command = [sys.executable, "-m", "experiments", "run", TABLE, "--rows", ROW, "--seeds", "1", "--dry-run",
               "--set", "data.num_frames=1000000000000", "--runs-dir", "/nonexistent/runs"]
    out = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "data.num_frames=1000000000000" in out.stderr and "Traceback" not in out.stderr


def test_run_help_and_the_option_reference_name_allow_large(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--allow-large" in capsys.readouterr().out
    assert "- `--allow-large`:" in (Path(__file__).resolve().parents[2] / "experiments" / "README.md").read_text()


@pytest.mark.parametrize("videos", ["1000000000000", "150001"])
def test_synth_refuses_a_set_past_its_bound_in_one_line_writing_nothing(capsys, tmp_path, videos):
    """`data synth --videos 1000000000000` was a numpy MemoryError of 4.85 TiB: now one line naming the option."""
    out = tmp_path / "set"
    assert data_main(["synth", "synth_objects", "--out", str(out), "--videos", videos]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--videos" in err and "150,000" in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_every_paper_configuration_is_a_tenth_of_the_bounds():
    """The principle the bounds are set by: 10x the largest paper configuration. Every registered table's runs at
    paper scale (and tiny scale) are built on the meta device and measured; each is at most a tenth of each bound,
    so a new paper configuration past it says that the bounds (``experiments.harness.sizes``) must move."""
    from experiments.harness import sizes
    from experiments.harness.plan import resolve_runs
    from experiments.harness.spec import registered_specs, table_spec
    from experiments.harness.tasks import build_model, get_task, model_kwargs

    def integers(kwargs, found):
        for name, value in kwargs.items():
            if isinstance(value, dict):
                integers(value, found)
            elif isinstance(value, int) and not isinstance(value, bool):
                found[name] = max(found.get(name, 0), value)
        return found

    largest, built = {}, set()
    for table in registered_specs():
        for scale in table_spec(table).scales:
            for cfg in resolve_runs(table, scale, None, 1, "/datasets"):
                train, test = sizes.batch_pixels(cfg)
                checks = {"train pixels": (train, sizes.MAX_TRAIN_PIXELS), "test pixels": (test, sizes.MAX_TEST_PIXELS),
                          "short side": (max(cfg.data.train_scale), sizes.MAX_SHORT_SIDE),
                          "epochs": (cfg.optim.epochs, sizes.MAX_EPOCHS),
                          "steps": (max(cfg.trainer.max_steps, cfg.optim.warmup_steps or 0), sizes.MAX_STEPS)}
                for what, (value, bound) in checks.items():
                    assert 10 * value <= bound, f"{table}/{cfg.row} at {scale}: {what} {value} > a tenth of {bound}"
                integers(model_kwargs(cfg), largest)
                key = json.dumps({**cfg.to_dict(), "seed": 0, "table": "", "row": "", "column": ""}, sort_keys=True,
                                 default=str)
                if scale == "paper" and key not in built:
                    built.add(key)
                    verbs = cfg.model.overrides.get("num_verbs")
                    model = build_model(cfg, get_task(cfg.task).num_classes or (verbs + 3 if verbs else 400),
                                        device="meta")
                    parameters = sum(p.numel() for p in model.parameters())
                    assert 10 * parameters <= sizes.MAX_PARAMETERS, f"{table}/{cfg.row}: {parameters:,} parameters"
    for name, value in largest.items():
        assert 10 * value <= sizes.model_argument_bound(name), f"model argument {name}={value}"
