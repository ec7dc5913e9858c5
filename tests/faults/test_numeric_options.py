"""Every number a command takes is checked where argparse reads it: finite, in its stated range, a whole number
where one is meant. The options are found in the commands' own parsers (``tests/faults/doors.py``), so an option
added later is held to it too: no command of ``experiments``, ``data``, ``reports`` or ``tools`` reads a plain
``int`` or ``float``, and each refuses NaN, infinity, a fraction, a negative count or a number past its bound in one
line naming the option, through its entry point. A step or epoch count that trains nothing (``--set
trainer.max_steps=0``, once recorded as a trained run of 0 steps) is refused as the runs resolve."""

from __future__ import annotations

import pytest

from tests.faults.doors import numeric_doors, one_line, run_command
from tests.faults.test_checks_at_resolve_time import run_twice

DOORS = numeric_doors()

# Refused by every numeric option, whatever its range (another script's digits and "1_000": test_every_door.py)
NEVER = ["nan", "inf", "-inf", "1e999", "9" * 40, "", "abc", "1,5"]
# Refused by every whole-number option besides
NOT_WHOLE = ["1.5", "1e3", "0x10", "1_0", "٣", " 2.0"]


def test_the_doors_are_found():
    commands = {(door.module, door.command) for door in DOORS}
    assert {("experiments", "run"), ("experiments", "evaluate"), ("data", "synth"), ("data", "check"),
            ("tools", "smoke"), ("tools", "bench"), ("tools", "loader-rate")} <= commands, commands
    assert len(DOORS) >= 60, [str(door) for door in DOORS]


# The options that took another script's digits ('١٢') and, as floats, '1_000': each now refuses both
ONCE_TOOK_OTHER_DIGITS = [("experiments", "run", option) for option in (
    "--nodes", "--gpus-per-node", "--cpus-per-task", "--time", "--array-parallelism", "--mem-gb")] + [
    ("experiments", "status", "--seeds"), ("tools", "loader-rate", "--seconds"),
    ("experiments", "attention", "--query")]


@pytest.mark.parametrize("module, command, option", ONCE_TOOK_OTHER_DIGITS)
def test_the_options_that_took_other_scripts_digits_refuse_them_in_one_line(module, command, option):
    [door] = [d for d in DOORS if (d.module, d.command, d.option) == (module, command, option)]
    for value in ("١٢", "1_000", "١,٢,٣" if option == "--query" else "12.5e١"):
        code, out, err = run_command(door.module, [*door.prefix, f"{door.option}={value}"])
        one_line(code, err, f"argument {door.option}")
        assert code == 2 and out == "", (value, out)


@pytest.mark.parametrize("door", DOORS, ids=str)
def test_no_option_reads_a_plain_int_or_float(door):
    assert door.bounds is not None, f"{door}: type={door.action.type} (use data.command_line.count or number)"


@pytest.mark.parametrize("door", DOORS, ids=str)
def test_each_numeric_option_refuses_what_is_no_number_of_its_range_in_one_line(door):
    low, high, whole = door.bounds
    values = NEVER + (NOT_WHOLE if whole else [])
    values += [str(low - 1)] if low is not None else []
    values += [str(high + 1), str(high * 10)] if high is not None else []
    for value in values:
        code, out, err = run_command(door.module, [*door.prefix, f"{door.option}={value}"])
        one_line(code, err, f"argument {door.option}")
        assert code == 2 and out == "", (value, out)


@pytest.mark.parametrize("setting, named", [
    ("trainer.max_steps=0", "trainer.max_steps=0: must be -1 (the schedule's epochs) or at least 1"),
    ("trainer.max_steps=-7", "trainer.max_steps=-7: must be -1"),
    ("trainer.max_steps=2.5", "trainer.max_steps=2.5: expects an integer"),
    ("trainer.max_steps=NaN", "trainer.max_steps=nan: expects an integer"),
    ("optim.epochs=0", "optim.epochs=0: must be at least 1"),
    ("optim.epochs=true", "optim.epochs=True: expects an integer"),
    ("optim.epochs=null", "optim.epochs=None: expects an integer"),
    ("optim.warmup_epochs=-1", "optim.warmup_epochs=-1: must be at least 0"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0: must be at least 1"),
    ("trainer.num_threads=99999999999", "trainer.num_threads=99999999999: holds an integer past 2,147,483,647"),
    ("trainer.checkpoint_every_n_steps=0", "trainer.checkpoint_every_n_steps=0: must be at least 1"),
    ("optim.lr=Infinity", "optim.lr=inf: must be finite"),
])
def test_a_step_or_epoch_count_that_trains_nothing_is_refused(capsys, tmp_path, nothing_starts, setting, named):
    """`--set trainer.max_steps=0` trained no step and was recorded as trained: now the dry run and the run refuse
    it, and any count of steps or epochs that is not one, in the same line, writing nothing."""
    dry, real = run_twice(capsys, tmp_path, "--set", setting)
    assert dry == real
    code, err = real
    one_line(code, err, named)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("setting, named", [
    ("model.overrides.depth=\"abc\"", "model vit_tiny_video cannot be built from model.overrides"),
    ("model.overrides.num_heads=0", "(integer modulo by zero)"),
    ("model.overrides.embed_dim=-5", "negative dimension"),
    ("model.overrides.mlp_ratio=1e300", "cannot be built"),
])
def test_a_model_argument_the_model_cannot_take_is_one_line_naming_the_run(capsys, tmp_path, nothing_starts,
                                                                          setting, named):
    """A model argument of the wrong type or an impossible value stopped the meta build with the model's own
    traceback (a TypeError, a ZeroDivisionError, torch's RuntimeError of 60 C++ frames): now one line."""
    dry, real = run_twice(capsys, tmp_path, "--set", setting)
    assert dry == real
    one_line(*real, "mformer_table4/joint/K-400", named)
